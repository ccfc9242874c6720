"""The face detector on ONNX Runtime: BlazeFace converted to ONNX by the set-up (``python -m export.face_detector``).

``FaceDetector(folder).detect(image)`` → every face as a :class:`Detection` in the image's pixels, ordered by
score (ties: x0, then y0), so face k is numbered k + 1 everywhere. :func:`select` applies a mode (``auto``,
``largest``, ``off``) and the cap (``MAX_FACES``). The providers are the caller's (the server passes the same
choice as its parser: ``webapp.parsing.select_providers``); CPU by default.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.faces.anchors import Detections, decode, weighted_nms
from face_studio.faces.geometry import letterbox, tiles
from face_studio.faces.spec import (
    DETECTOR,
    DETECTORS,
    MANIFEST,
    MAX_FACES,
    MIN_FACE_PX,
    MODES,
    NMS_IOU,
    SCORE_THRESHOLD,
    SETUP_HINT,
    SMALL_FACES,
    DetectorSpec,
)
from face_studio.hashing import sha256


class DetectorNotReady(UserError):
    """The detector's ONNX file is missing or damaged; the message names the set-up step."""


@dataclass
class Detection:
    """One face in image pixels: ``box`` [x0, y0, x1, y1], ``score`` (0..1), ``keypoints`` 6 × [x, y]."""

    box: list[float]
    score: float
    keypoints: list[list[float]] = field(default_factory=list)

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


def order(detections: list[Detection]) -> list[Detection]:
    """Score descending, ties by x0 then y0: the numbering order (face k is number k + 1)."""
    return sorted(detections, key=lambda d: (-d.score, d.box[0], d.box[1]))


def select(detections: list[Detection], mode: str, max_faces: int = MAX_FACES) -> tuple[list[Detection], str | None]:
    """The faces ``mode`` parses (already :func:`order`-ed input), and a note when the cap dropped some."""
    if mode not in MODES:
        raise UserError(f"unknown faces mode {mode!r}: choose one of {', '.join(MODES)}.")
    if mode == "off" or not detections:
        return [], None
    if mode == "largest":
        return [max(detections, key=lambda d: (d.area, d.score))], None
    if len(detections) > max_faces:
        return detections[:max_faces], (f"found {len(detections)} faces; parsed the {max_faces} with the highest "
                                        f"scores (the cap is {max_faces} a picture)")
    return detections, None


def _check_file(folder: Path, spec: DetectorSpec) -> Path:
    path = folder / spec.onnx
    if not path.is_file():
        raise DetectorNotReady(f"the face detector ({spec.onnx}) is missing from {folder.name}/: {SETUP_HINT}. "
                               "Parsing with faces off still works.")
    try:
        expected = json.loads((folder / MANIFEST).read_text())["models"][spec.name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DetectorNotReady(f"the face detector's {MANIFEST} is missing or unreadable: {SETUP_HINT}. "
                               "Parsing with faces off still works.") from None
    if sha256(path) != expected:
        raise DetectorNotReady(f"the face detector ({spec.onnx}) is damaged (its sha256 is not the one set-up "
                               f"recorded): {SETUP_HINT}. Parsing with faces off still works.")
    return path


class FaceDetector:
    """One ONNX Runtime session over ``<folder>/<DETECTORS[name].onnx>``, loaded (and checked) on first use."""

    def __init__(self, folder: str | Path, name: str = DETECTOR, providers: list[str] | None = None,
                 small_faces: str = SMALL_FACES, threshold: float = SCORE_THRESHOLD) -> None:
        self.folder = Path(folder)
        self.spec = DETECTORS[name]
        self.providers = providers or ["CPUExecutionProvider"]
        self.small_faces = small_faces
        self.threshold = threshold
        self._session = None
        self._lock = threading.Lock()

    @property
    def session(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    def _load(self):
        import onnxruntime as ort

        path = _check_file(self.folder, self.spec)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), options, providers=self.providers)
        except Exception:  # onnxruntime's own exception types for a corrupt file
            raise DetectorNotReady(f"the face detector ({self.spec.onnx}) could not be loaded: {SETUP_HINT}. "
                                   "Parsing with faces off still works.") from None

    def check(self) -> None:
        """Load now: raises :class:`DetectorNotReady` with what to do when the file is missing or damaged."""
        _ = self.session

    def raw(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``regressors``, ``classificators`` for a ``(1, 3, S, S)`` input."""
        reg, cls = self.session.run([self.spec.regressors, self.spec.classificators],
                                    {self.spec.input_name: pixels})
        return reg, cls

    def _detect_in(self, image: Image.Image, offset: tuple[int, int] = (0, 0)) -> Detections:
        pixels, box = letterbox(image, self.spec.input_size)
        found = decode(*self.raw(pixels), self.spec, self.threshold)
        if not len(found):
            return found
        corners = box.to_image(found.boxes.reshape(-1, 2, 2)).reshape(-1, 4) + np.tile(offset, 2)
        keypoints = box.to_image(found.keypoints) + np.asarray(offset)
        return Detections(corners.astype(np.float32), found.scores, keypoints.astype(np.float32))

    def detect(self, image: Image.Image, timings: dict[str, float] | None = None) -> list[Detection]:
        """Every face in ``image`` (RGB), in image pixels, :func:`order`-ed. Small-face search per
        ``small_faces``: ``whole`` (the letterbox only) or ``tiles`` (also :func:`tiles` of a big image)."""
        _ = self.session  # load outside the timing
        start = time.perf_counter()
        parts = [self._detect_in(image)]
        if self.small_faces == "tiles":
            for x0, y0, x1, y1 in tiles(image.width, image.height, self.spec.input_size):
                parts.append(self._detect_in(image.crop((x0, y0, x1, y1)), (x0, y0)))
        merged = weighted_nms(Detections.concat(parts), NMS_IOU)
        faces = []
        for i in range(len(merged)):
            x0, y0, x1, y1 = (float(v) for v in merged.boxes[i])
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            x1, y1 = min(x1, float(image.width)), min(y1, float(image.height))
            if x1 - x0 < MIN_FACE_PX or y1 - y0 < MIN_FACE_PX:
                continue  # too small to parse, or (almost) all outside the picture
            box = [float(v) for v in merged.boxes[i]]
            faces.append(Detection([round(v, 2) for v in box], round(float(merged.scores[i]), 4),
                                   [[round(float(x), 2), round(float(y), 2)] for x, y in merged.keypoints[i]]))
        if timings is not None:
            timings["detect"] = (time.perf_counter() - start) * 1000
        return order(faces)
