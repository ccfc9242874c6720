"""Face-aware parsing on the server side (issue 15): crop → parse → paste, the CLI's JSON and crops, the
awkward pictures of tests/faces/bad_inputs.py. A tiny random parser: the labels are noise, the geometry is real."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.faces.spec import MAX_FACES
from tests.faces.bad_inputs import BAD_INPUTS, NO_NOTE
from tests.faces.conftest import scene
from webapp.cli import main
from webapp.parsing import FaceParser, parse_image

GROUP = [(1, 40, 150, 420), (4, 480, 120, 400), (5, 900, 300, 360)]


def build(name: str) -> Image.Image:
    if name == "noise":
        return Image.fromarray(np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8))
    if name == "crowd":
        return scene(1920, 1080, [(10 + i, 20 + (i % 6) * 315, 20 + (i // 6) * 265, 250) for i in range(24)])[0]
    if name == "edge":
        return scene(800, 600, [(4, -150, -100, 400), (5, 500, 300, 400)])[0]
    if name == "tiny":
        return Image.new("RGB", (3, 2), (200, 150, 120))
    if name == "huge":
        return scene(4000, 3000, [(4, 1500, 1000, 900)])[0]
    raise KeyError(name)


@pytest.fixture(scope="module")
def parser(tiny_export_dir) -> FaceParser:
    return FaceParser(tiny_export_dir, "fp32")


def test_each_face_is_parsed_on_its_crop_and_pasted_back(parser) -> None:
    image = scene(1280, 720, GROUP)[0]
    result = parse_image(parser, image, "auto")
    assert len(result.faces) == 3 and result.note is None
    assert result.labels.shape == result.owner.shape == (720, 1280)
    assert set(np.unique(result.owner)) <= {0, 1, 2, 3}
    assert (result.labels[result.owner == 0] == 0).all()  # outside every face: background
    for number, (face, crop) in enumerate(zip(result.faces, result.crops, strict=True), start=1):
        x0, y0, x1, y1 = face.crop
        assert x1 - x0 == y1 - y0 == crop.width == crop.height
        alone = parser.parse(crop)  # the crop alone reproduces the face's pixels
        mine = result.owner == number
        ys, xs = np.nonzero(mine)
        assert mine.any() and (result.labels[mine] == alone[ys - y0, xs - x0]).all()
        assert abs(sum(face.area_percent.values()) - 100) < 1e-2 and face.area_percent["background"] == 0
    assert [f.score for f in result.faces] == sorted((f.score for f in result.faces), reverse=True)
    largest = parse_image(parser, image, "largest")
    assert len(largest.faces) == 1
    assert largest.faces[0].box == max((f.box for f in result.faces), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    off = parse_image(parser, image, "off")
    assert off.faces == [] and off.note is None and np.array_equal(off.labels, parser.parse(image))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_awkward_pictures(case, parser) -> None:
    image = build(case.args[0])
    result = parse_image(parser, image, "auto")
    assert result.labels.shape == (image.height, image.width)
    if case.expect.startswith(NO_NOTE):
        assert result.note is None
    else:
        assert case.expect in (result.note or "")
    if case.args[0] in ("noise", "tiny"):
        assert result.faces == [] and np.array_equal(result.labels, parser.parse(image))
    if case.args[0] == "crowd":
        assert len(result.faces) == MAX_FACES and result.owner.max() == MAX_FACES
    if case.args[0] == "edge":
        cut = [f for f in result.faces if f.box[0] < 0 or f.box[1] < 0]
        assert len(result.faces) == 2 and cut and cut[0].crop[0] < 0 and cut[0].crop[1] < 0
        assert np.asarray(result.crops[result.faces.index(cut[0])])[:5, :5].max() == 0  # padded with black
    if case.args[0] == "huge":
        assert len(result.faces) == 1 and result.faces[0].crop[2] - result.faces[0].crop[0] <= 4000


def test_cli_writes_faces_json_owner_map_and_crops(tiny_export_dir: Path, tmp_path: Path, capsys) -> None:
    scene(1280, 720, GROUP)[0].save(tmp_path / "group.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(
        tmp_path / "noise.png")
    out = tmp_path / "out"
    assert main(["parse", str(tmp_path / "group.png"), str(tmp_path / "noise.png"), "--out", str(out),
                 "--parser", str(tiny_export_dir), "--dtype", "fp32"]) == 0
    captured = capsys.readouterr()
    assert "faces auto" in captured.out
    assert f"note: {tmp_path / 'noise.png'}: no face found: parsed the whole image" in captured.err
    summary = json.loads((out / "group.json").read_text())
    assert summary["faces_mode"] == "auto" and summary["faces_note"] is None and len(summary["faces"]) == 3
    assert summary["face_crops"] == ["group.face-1.png", "group.face-2.png", "group.face-3.png"]
    owner = np.asarray(Image.open(out / "group.faces.png"))
    labels = np.asarray(Image.open(out / "group.labels.png"))
    parser = FaceParser(tiny_export_dir, "fp32")
    for number, face in enumerate(summary["faces"], start=1):
        assert set(face) >= {"box", "score", "crop", "area_percent"} and len(face["box"]) == 4
        x0, y0, x1, y1 = face["crop"]
        crop = Image.open(out / f"group.face-{number}.png")
        assert crop.size == (x1 - x0, y1 - y0)
        ys, xs = np.nonzero(owner == number)
        assert (labels[ys, xs] == parser.parse(crop.convert("RGB"))[ys - y0, xs - x0]).all()
    noise = json.loads((out / "noise.json").read_text())
    assert noise["faces"] == [] and noise["faces_note"] == "no face found: parsed the whole image"
    assert not (out / "noise.faces.png").exists()


def test_without_a_detector_faces_off_still_parses(tiny_export_dir: Path, samples, tmp_path: Path) -> None:
    (tmp_path / "no-detector").mkdir()
    assert main(["parse", str(samples["square"]), "--out", str(tmp_path / "out"), "--parser", str(tiny_export_dir),
                 "--faces", "off", "--detector", str(tmp_path / "no-detector")]) == 0
    assert json.loads((tmp_path / "out" / "astronaut.json").read_text())["faces"] == []
