"""The server: the `parse` API through gradio_client, the static routes and their headers."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.preprocess import overlay
from tests.parsing.samples import says
from webapp.parsing import FaceParser, area_summary


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def test_parse_returns_label_map_overlay_and_summary(client, tiny_export_dir: Path, samples) -> None:
    from gradio_client import handle_file

    label_path, overlay_path, summary = client.predict(handle_file(samples["wide"]), "q8", "off", api_name="/parse")
    label_map = Image.open(label_path)
    assert label_map.mode == "L" and label_map.size == (640, 480)
    labels = np.asarray(label_map)

    image = Image.open(samples["wide"]).convert("RGB")
    expected = FaceParser(tiny_export_dir, "q8").parse(image)
    assert (labels == expected).mean() >= 0.999  # same ONNX file, same session options
    assert np.array_equal(np.asarray(Image.open(overlay_path).convert("RGB")),
                          np.asarray(overlay(image, labels, 0.5)))
    assert summary["width"] == 640 and summary["height"] == 480 and summary["dtype"] == "q8"
    assert summary["area_percent"] == area_summary(labels)
    assert summary["backend"].startswith("server · ONNX Runtime")
    assert {"preprocess", "model", "postprocess"} <= set(summary["timings_ms"])


def test_bad_inputs_get_clear_errors_and_the_server_keeps_serving(client, samples) -> None:
    from gradio_client import handle_file

    for kind in ("non-image", "corrupt", "bomb", "empty"):
        with pytest.raises(Exception) as caught:
            client.predict(handle_file(samples[kind]), "q8", api_name="/parse")
        assert says(str(caught.value), kind), f"{kind}: {caught.value}"
        assert samples[kind].name in str(caught.value)
    with pytest.raises(Exception, match="int8 is not in the list of choices"):
        client.predict(handle_file(samples["square"]), "int8", api_name="/parse")
    label_path, _, _ = client.predict(handle_file(samples["square"]), "q8", api_name="/parse")
    assert Image.open(label_path).size == (512, 512)


def test_every_route_is_cross_origin_isolated_with_real_mime_types_and_404s(server) -> None:
    from webapp.routes import parser_model_id

    for path, status, media in [
        ("", 200, "text/html"),
        ("studio/js/worker.js", 200, "text/javascript"),
        ("studio/vendor/ort-wasm-simd-threaded.mjs", 200, "text/javascript"),
        ("studio/vendor/ort-wasm-simd-threaded.wasm", 200, "application/wasm"),
        ("studio/js/no-such-module.js", 404, None),
        ("gradio_api/info", 200, "application/json"),
    ]:
        code, headers, _ = fetch(server.url + path)
        assert code == status, path
        assert headers["cross-origin-opener-policy"] == "same-origin", path
        assert headers["cross-origin-embedder-policy"] == "require-corp", path
        assert headers["cross-origin-resource-policy"] == "same-origin", path
        if media:
            assert headers["content-type"].startswith(media), (path, headers["content-type"])
    model_id = parser_model_id(server.settings.parser_dir)
    assert model_id in fetch(server.url + "config")[2].decode()  # the page is told this URL
    code, headers, body = fetch(f"{server.url}parser/{model_id}/onnx/model_quantized.onnx")
    assert code == 200 and headers["content-type"] == "application/octet-stream"
    assert body == (server.settings.parser_dir / "onnx" / "model_quantized.onnx").read_bytes()
    code, headers, _ = fetch(f"{server.url}parser/{model_id}/onnx/model_int4.onnx")
    assert code == 404  # transformers.js reads only 404 as "absent"
    assert fetch(f"{server.url}parser/face-parsing-stale/config.json")[0] == 404


def test_app_starts_without_an_export_and_says_how_to_make_one(tmp_path: Path, samples) -> None:
    from gradio_client import Client, handle_file

    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    missing = tmp_path / "no-export"
    with run_in_thread(ServeSettings(port=0, parser_dir=missing)) as handle:
        _, _, config = fetch(handle.url + "config")
        assert f"face-studio export --out {missing}" in config.decode()
        with pytest.raises(Exception, match="face-studio export"):
            Client(handle.url, verbose=False).predict(handle_file(samples["square"]), "q8", api_name="/parse")


def test_auth_guards_the_api(tiny_export_dir: Path, samples) -> None:
    from gradio_client import Client, handle_file

    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    with run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir, auth=("ada", "lovelace"))) as handle:
        assert fetch(handle.url + "gradio_api/info")[0] == 401
        client = Client(handle.url, auth=("ada", "lovelace"), verbose=False)
        label_path, _, _ = client.predict(handle_file(samples["square"]), "q8", api_name="/parse")
        assert Image.open(label_path).size == (512, 512)
        # Our static mounts too: the page's code and the model need the login cookie.
        from webapp.routes import parser_model_id

        model_url = f"{handle.url}parser/{parser_model_id(tiny_export_dir)}/onnx/model_quantized.onnx"
        for url in (handle.url + "studio/js/worker.js", model_url):
            assert fetch(url)[0] == 401, url
        import httpx

        with httpx.Client() as session:  # Gradio's login form sets the cookie
            assert session.post(handle.url + "login", data={"username": "ada", "password": "lovelace"}).is_success
            for url in (handle.url + "studio/js/worker.js", model_url):
                assert session.get(url).status_code == 200, url


def test_parse_finds_faces_by_default_and_lists_them_in_the_summary(client, tiny_export_dir: Path, tmp_path) -> None:
    from gradio_client import handle_file

    from tests.faces.conftest import scene
    from webapp.parsing import parse_image

    path = tmp_path / "group.png"
    image = scene(1280, 720, [(1, 40, 150, 420), (4, 480, 120, 400), (5, 900, 300, 360)])[0]
    image.save(path)
    label_path, _, summary = client.predict(handle_file(path), "q8", api_name="/parse")  # faces: auto by default
    expected = parse_image(FaceParser(tiny_export_dir, "q8"), image, "auto")
    assert summary["faces_mode"] == "auto" and summary["faces_note"] is None
    assert [face["crop"] for face in summary["faces"]] == [face.crop for face in expected.faces]
    assert all(set(face) >= {"box", "score", "crop", "area_percent"} for face in summary["faces"])
    assert (np.asarray(Image.open(label_path)) == expected.labels).mean() >= 0.999
    assert {"detect", "crop", "paste"} <= set(summary["timings_ms"])
    _, _, largest = client.predict(handle_file(path), "q8", "largest", api_name="/parse")
    assert len(largest["faces"]) == 1
