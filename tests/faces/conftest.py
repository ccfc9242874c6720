"""Fixtures for the face tests: the detector the set-up converted (static/vendor/face-detector) and scenes made of
synthetic faces (face_studio.training.synth) with their ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DETECTOR_DIR = REPO / "static" / "vendor" / "face-detector"
BACKDROP = (90, 110, 100)


@pytest.fixture(scope="session")
def detector_dir() -> Path:
    assert (DETECTOR_DIR / "manifest.json").is_file(), \
        "static/vendor/face-detector is missing: run `bash scripts/setup.sh` (it converts the face detector)"
    return DETECTOR_DIR


def scene(width: int, height: int, faces: list[tuple[int, int, int, int]]) -> tuple[Image.Image, np.ndarray, list]:
    """A ``width``×``height`` picture with synthetic face images (seed, x, y, side) pasted on a flat backdrop, its
    ground-truth label map, and each face's pasted square [x0, y0, x1, y1] (clipped paste for faces at an edge)."""
    from face_studio.training.synth import render_face

    image = Image.new("RGB", (width, height), BACKDROP)
    truth = np.zeros((height, width), np.uint8)
    boxes = []
    for seed, x, y, side in faces:
        face, labels = render_face(seed, side)
        image.paste(face, (x, y))
        canvas = Image.new("L", (width, height), 0)
        canvas.paste(Image.fromarray(labels), (x, y))
        pasted = np.asarray(canvas)
        truth = np.where(pasted > 0, pasted, truth)
        boxes.append([x, y, x + side, y + side])
    return image, truth, boxes
