"""The converted detector on real inputs: the astronaut, synthetic group scenes, small faces, modes and the cap,
its manifest (fidelity against ai-edge-litert, sha256), and a missing or damaged file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from face_studio.errors import UserError
from face_studio.faces.detector import Detection, DetectorNotReady, FaceDetector, select
from face_studio.faces.spec import DETECTORS, MAX_FACES, SETUP_HINT
from face_studio.hashing import sha256
from tests.faces.conftest import scene


def test_it_finds_the_astronauts_face(detector_dir) -> None:
    from skimage import data

    faces = FaceDetector(detector_dir).detect(Image.fromarray(data.astronaut()))
    assert len(faces) == 1 and faces[0].score > 0.8
    x0, y0, x1, y1 = faces[0].box
    assert 150 < x0 < 210 and 60 < y0 < 120 and 250 < x1 < 300 and 150 < y1 < 210, faces[0].box
    right_eye, left_eye = faces[0].keypoints[:2]
    assert x0 < right_eye[0] < left_eye[0] < x1 and y0 < right_eye[1] < y1


def test_a_group_finds_every_face_in_score_order(detector_dir) -> None:
    image, _, squares = scene(1280, 720, [(1, 40, 150, 420), (4, 480, 120, 400), (5, 900, 300, 360)])
    faces = FaceDetector(detector_dir).detect(image)
    assert len(faces) == 3
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for x0, y0, x1, y1 in squares:  # each pasted face holds one detection's centre
        assert sum(x0 < (f.box[0] + f.box[2]) / 2 < x1 and y0 < (f.box[1] + f.box[3]) / 2 < y1 for f in faces) == 1


def test_small_faces_need_the_tiles(detector_dir) -> None:
    image, _, _ = scene(1920, 1080, [(4, 900, 500, 110)])  # a face picture 5.7 % of the width
    assert FaceDetector(detector_dir, small_faces="whole").detect(image) == []
    (face,) = FaceDetector(detector_dir, small_faces="tiles").detect(image)
    assert 900 < face.box[0] < face.box[2] < 1010


def test_no_face_is_no_detection(detector_dir) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert FaceDetector(detector_dir).detect(Image.fromarray(noise)) == []
    assert FaceDetector(detector_dir).detect(Image.new("RGB", (3, 2))) == []  # a tiny image


def test_modes_and_the_cap() -> None:
    faces = [Detection([i * 10.0, 0, i * 10 + 5 + i, 8], 0.9 - i * 0.01) for i in range(MAX_FACES + 5)]
    chosen, note = select(faces, "auto")
    assert chosen == faces[:MAX_FACES] and f"found {MAX_FACES + 5} faces" in note and str(MAX_FACES) in note
    assert select(faces, "largest") == ([faces[-1]], None)
    assert select(faces, "off") == ([], None) and select([], "auto") == ([], None)
    with pytest.raises(UserError, match="choose one of auto, largest, off"):
        select(faces, "every")


def test_the_manifest_records_fidelity_against_the_tflite_runtime(detector_dir) -> None:
    manifest = json.loads((detector_dir / "manifest.json").read_text())
    for name, spec in DETECTORS.items():
        entry = manifest["models"][name]
        assert entry["sha256"] == sha256(detector_dir / spec.onnx)
        assert entry["input"]["shape"] == [1, 3, spec.input_size, spec.input_size]
        assert entry["outputs"] == {spec.regressors: [1, spec.num_anchors, 16],
                                    spec.classificators: [1, spec.num_anchors, 1]}
        fidelity = entry["fidelity"]
        assert "astronaut" in fidelity["inputs"] and fidelity["reference"].startswith("ai-edge-litert")
        assert max(fidelity["max_relative_diff"].values()) <= fidelity["tolerance"]
        assert fidelity["detections_agree"] and fidelity["faces_found"]["astronaut"] == 1


@pytest.mark.parametrize("damage", ["missing", "truncated", "no manifest"])
def test_a_missing_or_damaged_detector_names_the_set_up_step(detector_dir, tmp_path, damage: str) -> None:
    folder = tmp_path / "face-detector"
    shutil.copytree(detector_dir, folder)
    target = folder / DETECTORS["full"].onnx
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        (folder / "manifest.json").unlink()
    with pytest.raises(DetectorNotReady) as caught:
        FaceDetector(folder).check()
    assert SETUP_HINT in str(caught.value) and "faces off still works" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # no server path for a visitor
