"""Faces anywhere in the Parse view (issue 15), in real Chromium: a group scene is parsed face by face in the page
(detector in the worker's ONNX Runtime, crop → parse → paste) and matches the server's reference pipeline; the
faces select, the numbered faces, one face in the legend and the downloads; a missing detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.faces.detector import FaceDetector
from face_studio.faces.parse import parse_faces
from tests.faces.conftest import DETECTOR_DIR, scene

pytestmark = pytest.mark.browser

# Three synthetic faces of different sizes; the smallest (8 % of the width) is found only in a tile.
GROUP = [(1, 70, 180, 400), (4, 560, 120, 300), (5, 1010, 390, 150)]


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Path:
    image, _, _ = scene(1280, 720, GROUP)
    path = tmp_path_factory.mktemp("faces") / "group.png"
    image.save(path)
    return path


def reference(tiny_export_dir: Path, path: Path, mode: str):
    """The server's pipeline in Python (face_studio.faces.parse), fp32: for its owner map and crops."""
    from webapp.parsing import get_parser

    parser = get_parser(tiny_export_dir, "fp32")
    return parse_faces(Image.open(path).convert("RGB"), FaceDetector(DETECTOR_DIR),
                       lambda images: [r.labels for r in parser.parse_batch(images)], mode)


def server_parse(server, path: Path, mode: str) -> tuple[np.ndarray, dict]:
    """The server `parse` API at fp32 with ``faces=mode``: its label map and summary."""
    from gradio_client import Client, handle_file

    label_path, _, summary = Client(server.url, verbose=False).predict(handle_file(path), "fp32", mode,
                                                                       api_name="/parse")
    return np.asarray(Image.open(label_path)), summary


def downloaded_labels(page) -> np.ndarray:
    return np.asarray(Image.open(page.download("labels")))


def test_a_group_is_parsed_face_by_face_like_the_server(parse_page, server, tiny_export_dir, group) -> None:
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    page.page.select_option("[data-role=dtype]", "fp32")
    assert page.page.locator("[data-role=faces]").input_value() == "auto"  # faces are found by default
    assert page.upload(group) == "done", page.text("error")
    expected = reference(tiny_export_dir, group, "auto")

    # Every face found, numbered on the picture in score order, each over its face.
    assert page.root.get_attribute("data-faces") == "3"
    tags = page.page.locator("[data-role=face-layer] [data-face]")
    assert tags.all_text_contents() == ["1", "2", "3"]
    for seed, x, y, side in GROUP:  # each pasted face holds exactly one numbered box's centre
        centres = [tags.nth(k).evaluate("(e) => [e.offsetLeft + e.offsetWidth / 2, e.offsetTop + e.offsetHeight / 2,"
                                        " e.parentElement.offsetWidth, e.parentElement.offsetHeight]")
                   for k in range(3)]
        inside = [x < cx / w * 1280 < x + side and y < cy / h * 720 < y + side for cx, cy, w, h in centres]
        assert sum(inside) == 1, (seed, centres)

    # The label map equals the server's `parse` with faces=auto, pixel for pixel (fp32: the page's ORT-web and
    # native ORT agree exactly, and faces.js = face_studio/faces: same detections, crops and paste), and the JSON
    # lists the faces the server's summary lists.
    labels = downloaded_labels(page)
    server_map, summary = server_parse(server, group, "auto")
    assert np.array_equal(labels, server_map)
    assert np.array_equal(labels, expected.labels)
    areas = json.loads(page.download("json").read_text())
    assert areas["faces_mode"] == "auto" and areas["face"] is None
    assert [f["box"] for f in areas["faces"]] == [f["box"] for f in summary["faces"]]
    assert [f["crop"] for f in areas["faces"]] == [f["crop"] for f in summary["faces"]]
    for ours, theirs in zip(areas["faces"], summary["faces"], strict=True):
        for name, value in theirs["area_percent"].items():
            assert abs(ours["area_percent"][name] - value) < 1e-3, name
    for stage in ("detect", "crop", "model", "paste"):
        assert stage in page.text("timings")
    # The worker's `detect` message (for views that crop themselves: live mode, Edit) finds the same faces.
    found = page.page.evaluate("""(async () => { const v = document.querySelector('.fs-parse').view;
        return (await v.parser.detect(v.image.rgba, v.image.width, v.image.height)).faces; })()""")
    assert [(f["box"], f["crop"]) for f in found] == [(f.box, f.crop) for f in expected.faces]

    # One face: the legend, the overlay and the downloads follow face 2 only.
    page.page.select_option("[data-role=face-pick]", "2")
    assert page.page.locator("[data-role=legend]").get_attribute("data-face") == "2"
    one = downloaded_labels(page)
    assert np.array_equal(one, np.where(expected.owner == 2, expected.labels, 0))
    body = json.loads(page.download("json").read_text())
    assert body["face"] == 2 and len(body["faces"]) == 1 and body["faces"][0]["crop"] == expected.faces[1].crop
    # The exact crop face 2 was parsed on: black outside the picture, what PIL's crop gives.
    crop = np.asarray(Image.open(page.download("crop")).convert("RGB"))
    assert np.array_equal(crop, np.asarray(expected.crops[1]))
    page.page.click("[data-role=face-layer] [data-face='2']")  # clicking the shown face again shows all
    assert page.page.locator("[data-role=face-pick]").input_value() == "0"
    assert not page.errors


def test_largest_and_off(parse_page, server, group) -> None:
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    page.page.select_option("[data-role=dtype]", "fp32")
    page.page.select_option("[data-role=faces]", "largest")
    assert page.upload(group) == "done", page.text("error")
    assert page.root.get_attribute("data-faces") == "1"
    assert np.array_equal(downloaded_labels(page), server_parse(server, group, "largest")[0])

    page.page.evaluate("document.querySelector('.fs-parse').dataset.state = 'waiting'")
    page.page.select_option("[data-role=faces]", "off")  # re-parses the same picture: the whole image
    page.page.wait_for_selector(".fs-parse[data-state=done]", state="attached", timeout=180_000)
    assert page.root.get_attribute("data-faces") == "0"
    assert page.page.locator("[data-role=face-layer] [data-face]").count() == 0
    assert np.array_equal(downloaded_labels(page), server_parse(server, group, "off")[0])


def test_a_missing_detector_falls_back_to_the_whole_image(parse_page, samples) -> None:
    page = parse_page
    page.page.route("**/face-detector/*.onnx", lambda route: route.fulfill(status=404, body="missing"))
    page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    assert page.upload(samples["wide"]) == "done", page.text("error")
    assert page.root.get_attribute("data-faces") == "0"
    note = page.text("faces-note")
    assert note.startswith("The face detector face_detection_") and "is missing" in note, note
    assert "run scripts/setup.sh" in note and note.endswith("parsed the whole image."), note
    assert "Parsed in this browser" in page.text("status") and page.page.locator("[data-role=error]").is_hidden()
    assert not page.errors


def test_no_face_parses_the_whole_image_and_says_so(parse_page, tmp_path) -> None:
    path = tmp_path / "no-face.png"
    Image.new("RGB", (320, 240), (40, 90, 160)).save(path)
    page = parse_page.open()
    page.page.select_option("[data-role=backend]", "wasm")
    assert page.upload(path) == "done", page.text("error")
    assert page.root.get_attribute("data-faces") == "0"
    assert page.text("faces-note") == "No face found: parsed the whole image."
