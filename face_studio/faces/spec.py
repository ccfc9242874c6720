"""Face detection and crop framing, as data. One source of truth for Python and the browser: set-up writes
:func:`faces_json` to ``static/faces.json`` (next to ``labels.json``), and ``static/js/faces.js`` reads it.

Detector: MediaPipe BlazeFace (Apache-2.0) from the npm package ``@mediapipe/face_detection``, converted from
TFLite to ONNX by ``python -m export.face_detector`` (set-up) into ``static/vendor/face-detector/``.
Input: the whole image letterboxed into a square (aspect kept, Pillow BILINEAR, centred, black padding), RGB
scaled to [-1, 1], NCHW float32. Outputs: ``regressors`` (1, N, 16) and ``classificators`` (1, N, 1) logits.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = "@mediapipe/face_detection"
PACKAGE_VERSION = "0.4.1657300184"
PACKAGE_LICENSE = "Apache-2.0"
DETECTOR_FOLDER = "vendor/face-detector"  # under static/ (and webapp/static in the wheel)
MANIFEST = "manifest.json"
SETUP_HINT = "run the set-up again (`make run`, or `bash scripts/setup.sh`): it converts the face detector"

# The six keypoints BlazeFace predicts, in its order (the person's right eye is on the image's left).
KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")


@dataclass(frozen=True)
class AnchorLayer:
    """One feature map of the SSD head: a ``grid``×``grid`` map, ``per_cell`` anchors at each cell's centre."""

    stride: int
    grid: int
    per_cell: int


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    onnx: str  # file name in DETECTOR_FOLDER
    tflite: str  # file name in the npm package
    input_size: int  # square side
    input_name: str
    regressors: str  # output names (they differ between the two files)
    classificators: str
    layers: tuple[AnchorLayer, ...]
    score_threshold: float  # MediaPipe's min_score_thresh for this model

    @property
    def num_anchors(self) -> int:
        return sum(layer.grid * layer.grid * layer.per_cell for layer in self.layers)


# MediaPipe's SsdAnchorsCalculator options, with layers of the same stride merged (fixed anchor size: every
# anchor is 1×1 in normalised units; a box is its centre offset and size, in input pixels).
DETECTORS: dict[str, DetectorSpec] = {
    "short": DetectorSpec("short", "face_detection_short_range.onnx", "face_detection_short_range.tflite", 128,
                          "input", "regressors", "classificators",
                          (AnchorLayer(8, 16, 2), AnchorLayer(16, 8, 6)), 0.5),
    "full": DetectorSpec("full", "face_detection_full_range.onnx", "face_detection_full_range.tflite", 192,
                         "input", "reshaped_regressor_face_4", "reshaped_classifier_face_4",
                         (AnchorLayer(4, 48, 1),), 0.6),
}

# Which detector runs, and how small faces are found (measured by bench/faces.py, see docs/faces.md).
DETECTOR = "full"
# "whole": the letterboxed image only. "tiles": also a pyramid of overlapping square tiles (TILE_LEVELS, each a
# fraction of the image's longer side; a level is used only when its tile is at least the detector's input side,
# so small pictures are never upsampled). Full-range finds a synthetic face when it spans ≥ 25 % of its input
# (12/12; 17 %: 6/12), so a face at 5 % of the longer side needs tiles of ≤ 20-25 %; neighbours share half a tile,
# so a face up to half a tile is whole in one of them.
SMALL_FACES = "tiles"
SMALL_FACES_REASON = "placeholder: measured in bench/faces.py"
TILE_LEVELS: tuple[float, ...] = (0.5, 0.25)
TILE_OVERLAP = 0.5  # fraction of a tile shared with its neighbour

SCORE_THRESHOLD = 0.6  # keep a detection at or above this sigmoid score
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold; weighted NMS (blend the overlapping boxes by score)
MAX_FACES = 20  # over it, keep the highest-scoring MAX_FACES and say so
MIN_FACE_PX = 8  # boxes narrower than this (image px) are dropped: too small to parse

# Crop framing (CelebAMask-HQ-like: face, hair, ears, neck). From the detection box (w, h, centre cx, cy):
# side = CROP_SCALE × max(w, h) (at most the image's longer side); centre = (cx, cy + CROP_SHIFT × h). Pixel edges:
# x0 = floor(cx' − side/2 + 0.5), x1 = x0 + side (JS: Math.floor(v + 0.5), not Math.round/Python round, which
# differ on halves). Measured: our synthetic faces' own pictures are 2.7 × the detected box (median of 29; σ 0.6),
# centred 0.06 h below it; FFHQ/CelebA-HQ's alignment (eyes at ~47 % height, ~25 % of the side apart) gives
# ~2.1 and −0.08 h. 2.4 and 0 sit between the two, so neither the real parser nor a synthetic one is far off.
CROP_SCALE = 2.4
CROP_SHIFT = 0.0
ROLL_UPRIGHT = False  # rolling crops upright by the eye keypoints: see docs/faces.md for why not

MODES: tuple[str, ...] = ("auto", "largest", "off")
DEFAULT_MODE = "auto"


def faces_json() -> dict:
    """The constants the browser needs (``static/faces.json``)."""
    return {
        "detectorFolder": DETECTOR_FOLDER,
        "detector": DETECTOR,
        "detectors": {name: {**asdict(d), "layers": [asdict(layer) for layer in d.layers],
                             "num_anchors": d.num_anchors} for name, d in DETECTORS.items()},
        "keypoints": list(KEYPOINTS),
        "smallFaces": SMALL_FACES,
        "tileLevels": list(TILE_LEVELS),
        "tileOverlap": TILE_OVERLAP,
        "scoreThreshold": SCORE_THRESHOLD,
        "nmsIou": NMS_IOU,
        "maxFaces": MAX_FACES,
        "minFacePx": MIN_FACE_PX,
        "cropScale": CROP_SCALE,
        "cropShift": CROP_SHIFT,
        "rollUpright": ROLL_UPRIGHT,
        "modes": list(MODES),
        "defaultMode": DEFAULT_MODE,
    }


def write_faces_json(path: str | Path) -> Path:
    """Write :func:`faces_json` to ``path`` (atomically) and return it."""
    from face_studio.atomic import atomic_write

    return atomic_write(Path(path), (json.dumps(faces_json(), indent=1) + "\n").encode())
