"""Pixels of the face pipeline, pure numpy/PIL (the browser's twin is ``static/js/faces.js``):

- :func:`letterbox`: the detector's input (aspect kept, Pillow BILINEAR, centred on black, [-1, 1], NCHW);
- :func:`crop_box`: the square crop a face is parsed on, framed like CelebAMask-HQ (may reach outside the image);
- :func:`crop_image`: that crop, black where it is outside the image (``PIL.Image.crop``);
- :func:`paste`: a crop's label map into the full-size label and owner maps (earlier faces keep their pixels);
- :func:`tiles`: the overlapping squares a big image is also searched in for small faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from face_studio.faces.spec import CROP_SCALE, CROP_SHIFT, TILE_LEVELS, TILE_OVERLAP


def round_half_up(value: float) -> int:
    """floor(value + 0.5): the one rounding both languages use (JS ``Math.floor(v + 0.5)``)."""
    return int(math.floor(value + 0.5))


@dataclass(frozen=True)
class Letterbox:
    """Where the image sits in the detector's ``size``² input: resized to ``width``×``height``, placed at
    (``left``, ``top``)."""

    size: int
    left: int
    top: int
    width: int
    height: int
    image_width: int
    image_height: int

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Normalised input coordinates (…, 2) [x, y] → the original image's pixels."""
        points = np.asarray(points, dtype=np.float64)
        x = (points[..., 0] * self.size - self.left) * (self.image_width / self.width)
        y = (points[..., 1] * self.size - self.top) * (self.image_height / self.height)
        return np.stack([x, y], axis=-1)


def letterbox_geometry(width: int, height: int, size: int) -> Letterbox:
    scale = size / max(width, height)
    new_w = min(size, max(1, round_half_up(width * scale)))
    new_h = min(size, max(1, round_half_up(height * scale)))
    return Letterbox(size, (size - new_w) // 2, (size - new_h) // 2, new_w, new_h, width, height)


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, Letterbox]:
    """The detector input for ``image``: ``(1, 3, size, size)`` float32 in [-1, 1], and where the image went."""
    box = letterbox_geometry(image.width, image.height, size)
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    canvas.paste(image.convert("RGB").resize((box.width, box.height), Image.BILINEAR), (box.left, box.top))
    pixels = np.asarray(canvas, dtype=np.float32) / 127.5 - 1.0
    return pixels.transpose(2, 0, 1)[None].copy(), box


def crop_box(box: list[float] | np.ndarray, image_width: int, image_height: int) -> list[int]:
    """The square crop [x0, y0, x1, y1] (integers, image px, side = x1 − x0 = y1 − y0 ≥ 1) for a detection ``box``
    [x0, y0, x1, y1]: side = CROP_SCALE × max(w, h), but at most the image's longer side (a face that fills the
    picture is parsed on a square of the picture's size, which bounds the work on huge images), centred on the box
    moved by CROP_SHIFT × h. It may reach outside the ``image_width``×``image_height`` image (that part is parsed
    as black)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
    side = max(1, min(round_half_up(CROP_SCALE * max(w, h)), max(int(image_width), int(image_height))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + CROP_SHIFT * h
    left, top = round_half_up(cx - side / 2), round_half_up(cy - side / 2)
    return [left, top, left + side, top + side]


def crop_image(image: Image.Image, crop: list[int]) -> Image.Image:
    """The ``crop`` of ``image``; parts outside the image are black (what ``PIL.Image.crop`` pads with)."""
    return image.convert("RGB").crop(tuple(int(v) for v in crop))


def paste(labels: np.ndarray, owner: np.ndarray, crop_labels: np.ndarray, crop: list[int], number: int) -> int:
    """Write face ``number``'s ``crop_labels`` (side × side, the crop's own label map) into the full-size ``labels``
    and ``owner`` maps (uint8, in place), clipped to the image. A pixel already claimed (non-background) by an
    earlier face is kept; background pixels take this face's label, and the owner map its number where that label
    is not background. Returns how many pixels this face claimed."""
    x0, y0, x1, y1 = (int(v) for v in crop)
    if crop_labels.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"crop labels are {crop_labels.shape}, the crop is {(y1 - y0, x1 - x0)}")
    height, width = labels.shape
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return 0
    source = crop_labels[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    target = labels[iy0:iy1, ix0:ix1]
    write = (target == 0) & (source != 0)
    target[write] = source[write]
    owner[iy0:iy1, ix0:ix1][write] = number
    return int(write.sum())


def tiles(width: int, height: int, min_side: int) -> list[list[int]]:
    """Overlapping square tiles [x0, y0, x1, y1] of a ``width``×``height`` image, searched for faces too small for
    the whole-image letterbox: for each fraction in TILE_LEVELS, tiles of side round(fraction × longer side),
    clipped to the shorter side, neighbours sharing TILE_OVERLAP of a tile, the last of a row or column ending at
    the image's edge. A level whose side is under ``min_side`` (the detector's input) or not smaller than the
    image's longer side is skipped. Order: level, then row, then column."""
    out: list[list[int]] = []
    longer = max(width, height)
    for fraction in TILE_LEVELS:
        side = min(round_half_up(fraction * longer), width, height)
        if side < min_side or side >= longer:
            continue
        step = max(1, round_half_up(side * (1 - TILE_OVERLAP)))

        def starts(extent: int, side: int = side, step: int = step) -> list[int]:
            found = list(range(0, extent - side + 1, step))
            if found[-1] + side < extent:
                found.append(extent - side)
            return found

        out.extend([x, y, x + side, y + side] for y in starts(height) for x in starts(width))
    return out
