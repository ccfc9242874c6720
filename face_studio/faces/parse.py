"""Crop → parse → paste back: the face-aware parse every server path uses (the page has its twin in JS).

``parse_faces(image, detector, parse_images, mode)``: find the faces (:mod:`face_studio.faces.detector`), cut each
face's square crop (:func:`~face_studio.faces.geometry.crop_box`, black outside the image), parse the crops with
``parse_images`` (a list of RGB images → one label map each, at each image's own size — what
``webapp.parsing.FaceParser.parse_batch`` gives), and paste them into a full-size label map in face order (an
earlier face keeps the pixels it claimed). Pixels outside every crop are background. With no face (``auto``) or
``off``, the whole image is parsed as before. Anyone can reproduce face k's labels by parsing ``crops[k]`` alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from face_studio.faces.detector import Detection, FaceDetector, select
from face_studio.faces.geometry import crop_box, crop_image, paste
from face_studio.faces.spec import DEFAULT_MODE
from face_studio.labels import LABELS

NO_FACE_NOTE = "no face found: parsed the whole image"


@dataclass
class Face:
    """One parsed face, numbered by its place in ``FaceParse.faces`` (+1), in the original image's pixels."""

    box: list[float]
    score: float
    keypoints: list[list[float]]
    crop: list[int]
    area_percent: dict[str, float]

    def to_json(self) -> dict:
        return {"box": self.box, "score": self.score, "keypoints": self.keypoints, "crop": self.crop,
                "area_percent": self.area_percent}


@dataclass
class FaceParse:
    """``labels`` (H, W) uint8 class ids; ``owner`` (H, W) uint8 (0: no face, k: face k's pixel); ``faces``; a
    ``note`` for the user (no face found, cap reached) or None; ``crops``: the exact images parsed per face."""

    labels: np.ndarray
    owner: np.ndarray
    faces: list[Face]
    note: str | None = None
    crops: list[Image.Image] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def faces_json(self) -> list[dict]:
        return [face.to_json() for face in self.faces]


def face_area(labels: np.ndarray, owner: np.ndarray, number: int) -> dict[str, float]:
    """% of face ``number``'s claimed pixels per label name (all 19 in table order; background 0)."""
    mine = labels[owner == number]
    counts = np.bincount(mine, minlength=len(LABELS))
    total = max(int(mine.size), 1)
    return {label.name: round(100.0 * int(counts[label.id]) / total, 4) for label in LABELS}


def parse_faces(image: Image.Image, detector: FaceDetector | None,
                parse_images: Callable[[list[Image.Image]], list[np.ndarray]],
                mode: str = DEFAULT_MODE, detections: list[Detection] | None = None) -> FaceParse:
    """The face-aware parse of RGB ``image`` (see the module's docstring). ``detections`` skips the detector
    (already found, e.g. by the caller); ``detector`` may be None only for ``off`` or with ``detections``."""
    timings: dict[str, float] = {}
    width, height = image.size
    if mode != "off" and detections is None:
        detections = detector.detect(image, timings)
    chosen, note = select(detections or [], mode)
    if not chosen:
        start = time.perf_counter()
        labels = parse_images([image])[0]
        timings["parse"] = (time.perf_counter() - start) * 1000
        note = NO_FACE_NOTE if mode != "off" else None
        return FaceParse(labels, np.zeros_like(labels), [], note, [], timings)

    start = time.perf_counter()
    crops = [crop_box(d.box, width, height) for d in chosen]
    crop_images = [crop_image(image, crop) for crop in crops]
    timings["crop"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    crop_labels = parse_images(crop_images)
    timings["parse"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    labels = np.zeros((height, width), np.uint8)
    owner = np.zeros((height, width), np.uint8)
    for number, (crop, item) in enumerate(zip(crops, crop_labels, strict=True), start=1):
        paste(labels, owner, np.asarray(item, np.uint8), crop, number)
    faces = [Face(d.box, d.score, d.keypoints, crop, face_area(labels, owner, number))
             for number, (d, crop) in enumerate(zip(chosen, crops, strict=True), start=1)]
    timings["paste"] = (time.perf_counter() - start) * 1000
    return FaceParse(labels, owner, faces, note, crop_images, timings)
