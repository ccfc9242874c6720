"""Training augmentation that keeps labels exact: mirror (swapping left/right labels), scale/rotate/shift, colour.

Geometry moves the picture (bilinear) and the label map (nearest) with one affine transform; pixels brought
in from outside the picture are a flat random colour labelled background. Colour changes touch the picture only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

from face_studio.labels import flip_lut

_FLIP_LUT = np.asarray(flip_lut(), dtype=np.uint8)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes; ``AugmentConfig.off()`` disables all of them."""

    flip_p: float = 0.5
    scale: tuple[float, float] = (0.75, 1.3)  # zoom factor
    rotate_deg: float = 15.0
    shift: float = 0.08  # fraction of the side
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.06  # fraction of the colour wheel

    def __post_init__(self) -> None:
        if not 0 <= self.flip_p <= 1:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {self.scale}")

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(flip_p=0.0, scale=(1.0, 1.0), rotate_deg=0.0, shift=0.0, brightness=0.0, contrast=0.0,
                   saturation=0.0, hue=0.0)


def hflip(image: Image.Image, labels: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """Mirror left↔right; ``l_eye``↔``r_eye``, brows and ears swap ids (face_studio.labels.flip_lut)."""
    return image.transpose(Image.FLIP_LEFT_RIGHT), _FLIP_LUT[labels[:, ::-1]]


def affine(image: Image.Image, labels: np.ndarray, scale: float, angle_deg: float, shift: tuple[float, float],
           fill: tuple[int, int, int]) -> tuple[Image.Image, np.ndarray]:
    """Zoom by ``scale`` and rotate by ``angle_deg`` about the centre, then shift by ``shift`` (pixels)."""
    w, h = image.size
    a = math.radians(angle_deg)
    cos, sin = math.cos(a) / scale, math.sin(a) / scale
    cx, cy = w / 2, h / 2
    # PIL wants the inverse map: output (x, y) → input (cos·dx + sin·dy + cx, −sin·dx + cos·dy + cy)
    tx, ty = cx + shift[0], cy + shift[1]
    coeffs = (cos, sin, cx - cos * tx - sin * ty, -sin, cos, cy + sin * tx - cos * ty)
    out = image.transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=fill)
    lab = Image.fromarray(labels).transform((w, h), Image.AFFINE, coeffs, resample=Image.NEAREST, fillcolor=0)
    return out, np.asarray(lab, dtype=np.uint8)


def colour(image: Image.Image, rng: np.random.Generator, cfg: AugmentConfig) -> Image.Image:
    """Random brightness, contrast, saturation and hue."""
    if cfg.brightness:
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(1 - cfg.brightness, 1 + cfg.brightness))
    if cfg.contrast:
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast))
    if cfg.saturation:
        image = ImageEnhance.Color(image).enhance(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation))
    if cfg.hue:
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.uniform(-cfg.hue, cfg.hue) * 255)) % 256
        image = Image.fromarray(hsv, mode="HSV").convert("RGB")
    return image


def augment(image: Image.Image, labels: np.ndarray, rng: np.random.Generator,
            cfg: AugmentConfig | None = None) -> tuple[Image.Image, np.ndarray]:
    """One random draw of every augmentation in ``cfg`` (default ranges when None)."""
    cfg = cfg or AugmentConfig()
    if rng.random() < cfg.flip_p:
        image, labels = hflip(image, labels)
    scale = rng.uniform(*cfg.scale)
    angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg) if cfg.rotate_deg else 0.0
    shift = tuple(rng.uniform(-cfg.shift, cfg.shift, 2) * np.array(image.size)) if cfg.shift else (0.0, 0.0)
    if scale != 1.0 or angle or any(shift):
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        image, labels = affine(image, labels, scale, angle, shift, fill)
    return colour(image, rng, cfg), labels
