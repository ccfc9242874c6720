"""static/js/faces.js is the twin of face_studio/faces (anchors, geometry, detector's pure part): on the same images
and the same raw detector outputs, the same detector inputs, detections, NMS, modes, crops and pasted maps.

Node runs the JS on what Python recorded (no ONNX Runtime in node: the outputs are the ones native ORT gave the
Python detector for each of its inputs, and the JS must have asked for exactly those inputs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.faces.anchors import decode, weighted_nms
from face_studio.faces.detector import FaceDetector, select
from face_studio.faces.geometry import crop_box, crop_image, paste
from face_studio.faces.spec import DETECTOR, DETECTORS, MAX_FACES, NMS_IOU
from tests.faces.conftest import DETECTOR_DIR, scene

SCRIPT = Path(__file__).with_name("faces_twin.mjs")
SPEC = Path(__file__).resolve().parents[2] / "static" / "faces.json"
LOW_THRESHOLD = 0.05  # far below the detector's: dozens of overlapping candidates for NMS


def crop_labels(side: int, k: int) -> np.ndarray:
    """The integer formula faces_twin.mjs uses: a stand-in for the parser's label map of crop k."""
    y, x = np.mgrid[0:side, 0:side]
    out = ((3 * x + 5 * y) // 7 + k) % 19
    out[(x + 2 * y + k) % 5 == 0] = 0
    return out.astype(np.uint8)


def astronaut_at_the_edge() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).crop((195, 60, 895, 520))  # face cut by the left edge; black pad right


def crowd() -> Image.Image:
    return scene(1400, 1400, [(s, 20 + 270 * (s % 5), 20 + 270 * (s // 5), 250) for s in range(25)])[0]


CASES = {
    "group": lambda: scene(1600, 900, [(1, 60, 200, 420), (4, 620, 150, 300), (5, 1150, 420, 180)])[0],
    "edge": astronaut_at_the_edge,
    "crowd": crowd,  # more faces than the cap
    "tiny": lambda: Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 41, 3), dtype=np.uint8)),
}


@pytest.fixture(scope="module")
def detector_dir() -> Path:
    assert (DETECTOR_DIR / "manifest.json").is_file(), \
        "static/vendor/face-detector is missing: run `bash scripts/setup.sh` (it converts the face detector)"
    return DETECTOR_DIR


class Recording(FaceDetector):
    """The Python detector, keeping every input it ran and the raw outputs native ORT gave."""

    runs: list

    def raw(self, pixels: np.ndarray):
        reg, cls = super().raw(pixels)
        self.runs.append((pixels.copy(), reg, cls))
        return reg, cls


@pytest.mark.parametrize("case", list(CASES))
def test_js_faces_match_python(case: str, detector_dir: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs it with WITH_TEST=1)"
    assert SPEC.is_file(), "static/faces.json is missing: run scripts/setup.sh"
    image = CASES[case]().convert("RGB")
    width, height = image.size
    detector = Recording(detector_dir)
    detector.runs = []
    faces = detector.detect(image)
    (tmp_path / "image.rgba").write_bytes(np.asarray(image.convert("RGBA")).tobytes())
    for i, (pixels, reg, cls) in enumerate(detector.runs):
        for name, array in (("input", pixels), ("reg", reg), ("cls", cls)):
            (tmp_path / f"{name}-{i}.f32").write_bytes(np.ascontiguousarray(array, np.float32).tobytes())
    (tmp_path / "case.json").write_text(json.dumps({"spec": str(SPEC), "width": width, "height": height,
                                                   "lowThreshold": LOW_THRESHOLD}))
    subprocess.run([node, str(SCRIPT), str(tmp_path)], check=True, timeout=300)
    js = json.loads((tmp_path / "js.json").read_text())

    # The detector saw the same inputs (letterbox of the image, then of each tile): bit for bit.
    assert js["runs"] == len(detector.runs)
    assert js["inputDiff"] == [0] * len(detector.runs)
    # Every face: box, score, keypoints (rounded as the JSON gives them) and the numbering order.
    assert [[f["box"], f["score"], f["keypoints"]] for f in js["faces"]] == \
        [[f.box, f.score, f.keypoints] for f in faces]

    # Decode and weighted NMS alone, at a threshold that leaves many overlapping candidates: float32-exact.
    spec = DETECTORS[DETECTOR]
    low = decode(detector.runs[0][1], detector.runs[0][2], spec, LOW_THRESHOLD)
    for ours, theirs in ((low, js["low"]), (weighted_nms(low, NMS_IOU), js["lowNms"])):
        assert len(theirs) == len(ours)
        if len(ours):
            assert np.array_equal(np.asarray([d["box"] for d in theirs], np.float32), ours.boxes)
            assert np.array_equal(np.asarray([d["score"] for d in theirs], np.float32), ours.scores)
            assert np.array_equal(np.asarray([d["keypoints"] for d in theirs], np.float32), ours.keypoints)

    # Modes, the cap's note, crops, the crop pixels and the pasted label and owner maps.
    for mode in ("auto", "largest", "off"):
        chosen, note = select(faces, mode)
        crops = [crop_box(d.box, width, height) for d in chosen]
        labels, owner = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
        claimed = [paste(labels, owner, crop_labels(c[2] - c[0], k), c, k) for k, c in enumerate(crops, start=1)]
        theirs = js["modes"][mode]
        assert theirs["boxes"] == [d.box for d in chosen] and theirs["note"] == note, mode
        assert theirs["crops"] == crops and theirs["claimed"] == claimed, mode
        assert np.array_equal(np.fromfile(tmp_path / f"js-{mode}.labels", np.uint8).reshape(height, width), labels)
        assert np.array_equal(np.fromfile(tmp_path / f"js-{mode}.owner", np.uint8).reshape(height, width), owner)
        if mode == "auto":
            for k, c in enumerate(crops, start=1):
                rgba = np.fromfile(tmp_path / f"js-crop-{k}.rgba", np.uint8).reshape(c[3] - c[1], c[2] - c[0], 4)
                assert np.array_equal(rgba[..., :3], np.asarray(crop_image(image, c)))

    expected = {"group": 3, "edge": 1, "crowd": MAX_FACES, "tiny": 0}[case]
    assert len(js["modes"]["auto"]["crops"]) == expected, f"{case}: {len(faces)} faces found"
