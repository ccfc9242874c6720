"""Composite the generated pixels into the original through the feathered alpha, exactly.

Integer arithmetic: ``(orig·(255 − a) + gen·a + 127) // 255``. Where ``a == 0`` this is ``orig``
bit for bit, so everything outside the feathered mask is an exact copy of the input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def composite(original: Image.Image, generated: Image.Image, alpha: np.ndarray) -> Image.Image:
    """Blend ``generated`` (resized to ``original``'s size if needed) over ``original`` by ``alpha``."""
    if generated.size != original.size:
        generated = generated.resize(original.size, Image.LANCZOS)
    orig = np.asarray(original.convert("RGB"), dtype=np.uint32)
    gen = np.asarray(generated.convert("RGB"), dtype=np.uint32)
    a = alpha.astype(np.uint32)[..., None]
    out = (orig * (255 - a) + gen * a + 127) // 255
    return Image.fromarray(out.astype(np.uint8))
