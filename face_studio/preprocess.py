"""Pre- and post-processing for the face parser, Python side (the browser has its twin in JS).

Pre: resize to 512×512 (bilinear), scale to [0, 1], normalise with ImageNet mean/std, NCHW float32.
Post: logits (H/4 × W/4) → bilinear upsample to the image size → argmax → uint8 label map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.labels import PALETTE

INPUT_SIZE = 512
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocessor_config(size: int = INPUT_SIZE) -> dict:
    """``preprocessor_config.json`` for transformers.js / transformers (SegformerImageProcessor)."""
    return {
        "image_processor_type": "SegformerImageProcessor",
        "do_resize": True,
        "size": {"height": size, "width": size},
        "resample": 2,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": MEAN.tolist(),
        "image_std": STD.tolist(),
        "do_reduce_labels": False,
    }


def input_size(folder: str | Path) -> int:
    """The square input side a model folder or export was made for (its ``preprocessor_config.json``; 512
    when absent). Export, the server, evaluation and the browser all resize to it."""
    try:
        size = json.loads((Path(folder) / "preprocessor_config.json").read_text())["size"]
        return int(size["height"]) if isinstance(size, dict) else int(size)
    except (OSError, ValueError, KeyError, TypeError):
        return INPUT_SIZE


def to_pixel_values(images: list[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
    """Stack RGB images into a normalised ``(N, 3, size, size)`` float32 batch."""
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        arr = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
        batch[i] = ((arr - MEAN) / STD).transpose(2, 0, 1)
    return batch


def _resize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half-pixel centres (align_corners=False), as torch.nn.functional.interpolate and transformers.js use.
    x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x = np.clip(x, 0, n_in - 1)
    lo = np.floor(x).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (x - lo).astype(np.float32)


def upsample_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(C, h, w)`` logits to ``(C, height, width)``."""
    y0, y1, wy = _resize_weights(logits.shape[1], height)
    x0, x1, wx = _resize_weights(logits.shape[2], width)
    rows = logits[:, y0, :] * (1 - wy)[None, :, None] + logits[:, y1, :] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx)[None, None, :] + rows[:, :, x1] * wx[None, None, :]


def logits_to_labels(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(C, h, w)`` logits → ``(height, width)`` uint8 label map: the argmax of the bilinear upsample.

    Same answer as ``upsample_logits(...).argmax(0)`` without upsampling all C channels everywhere: where
    the four logit cells around an output pixel share one argmax, any convex mix of them keeps it, so that
    label is taken directly; only pixels near a class border interpolate all channels.
    """
    logits = logits.astype(np.float32, copy=False)
    y0, y1, wy = _resize_weights(logits.shape[1], height)
    x0, x1, wx = _resize_weights(logits.shape[2], width)
    coarse = logits.argmax(axis=0)
    a, b = coarse[y0][:, x0], coarse[y0][:, x1]
    c, d = coarse[y1][:, x0], coarse[y1][:, x1]
    labels = a.astype(np.uint8)
    rows, cols = np.nonzero((a != b) | (a != c) | (a != d))
    if rows.size:
        ty, tx = wy[rows], wx[cols]
        mix = (logits[:, y0[rows], x0[cols]] * ((1 - ty) * (1 - tx)) + logits[:, y0[rows], x1[cols]] * ((1 - ty) * tx)
               + logits[:, y1[rows], x0[cols]] * (ty * (1 - tx)) + logits[:, y1[rows], x1[cols]] * (ty * tx))
        labels[rows, cols] = mix.argmax(axis=0)
    return labels


def colorize(labels: np.ndarray) -> np.ndarray:
    """Label map → RGB uint8 image in the shared palette."""
    return np.asarray(PALETTE, dtype=np.uint8)[labels]


def overlay(image: Image.Image, labels: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """Blend the colour mask over ``image``; background (0) stays uncoloured."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    mask = colorize(labels).astype(np.float32)
    alpha = np.where(labels[..., None] > 0, opacity, 0.0).astype(np.float32)
    return Image.fromarray((base * (1 - alpha) + mask * alpha).round().astype(np.uint8))
