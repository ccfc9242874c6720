"""Safe image loading: every bad file becomes an :class:`ImageInputError` that says what to do.

Every Pillow mode becomes the 8-bit RGB picture it shows (:func:`to_rgb`):

- 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and 32-bit integer grey (``I``): the 16-bit range
  0..65535 scales to 0..255 (v / 257, rounded), as 16-bit PNG and TIFF files mean it. Pillow opens 16-bit PNGs as
  ``I;16`` or ``I``; a plain ``convert("RGB")`` clips them instead, making nearly every pixel white. ``I`` values
  outside 0..65535 are clipped.
- 32-bit float grey (``F``): 0.0..1.0 is black..white (the convention of float TIFF/EXR exports and of numpy
  pipelines); values outside are clipped and NaN becomes black.
- Transparency (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, ``P`` or ``L``/``RGB`` with a transparency key):
  composited over black, which is what the browser's canvas gives the in-page parser for transparent pixels, so
  both paths see the same picture.
- ``CMYK``, ``YCbCr``, ``HSV``, ``1``, ``L``, ``P``: Pillow's own conversion (CMYK without an ICC profile).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face_studio.errors import UserError

# Decompression-bomb guard: a 40 MP photo is larger than any camera portrait we expect;
# 20000×20000 (400 MP) would take 1.2 GB as RGB before the model sees it.
MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # scaled from 0..65535
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
ALPHA_BACKGROUND = (0, 0, 0)  # what the browser's canvas shows under a transparent pixel


class ImageInputError(UserError, ValueError):
    """A user-supplied image could not be used; the message says why and what to do."""


def load_image(source: str | Path | bytes | Image.Image | None, *, what: str = "image") -> Image.Image:
    """Open ``source`` (path, bytes or PIL image) as RGB, applying EXIF orientation.

    Refuses empty input, non-images, corrupt files and images over :data:`MAX_PIXELS`.
    """
    if source is None:
        raise ImageInputError(f"no {what} was given: upload a PNG, JPEG or WebP file.")
    if isinstance(source, Image.Image):
        image = source
        _check_size(image.size, what)
        return to_rgb(ImageOps.exif_transpose(image), what)
    name = what
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = f"{what} '{path.name}'"
        if not path.exists():
            raise ImageInputError(f"{name} does not exist: {path}")
        if path.is_dir():
            raise ImageInputError(f"{name} is a folder, not an image file: {path}")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if not data:
        raise ImageInputError(f"{name} is empty (0 bytes): upload a PNG, JPEG or WebP file.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            _check_size(probe.size, name)
            fmt = probe.format
    except UnidentifiedImageError:
        raise ImageInputError(
            f"{name} is not an image we can read (PNG, JPEG, WebP, BMP, TIFF): check the file."
        ) from None
    except Image.DecompressionBombError as err:
        # Pillow refuses far-too-large images from the header alone, before our own check runs.
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f" ({int(found.group(1)) / 1e6:.0f} MP)" if found else ""
        raise ImageInputError(f"{name} is too large{size}, over the limit of {MAX_PIXELS / 1e6:.0f} MP and "
                              f"{MAX_SIDE} px a side: downscale it first.") from None
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageInputError(
            f"{name} looks like a {fmt or 'image'} file but is corrupt or truncated ({err}): re-save or re-export it."
        ) from None
    return to_rgb(ImageOps.exif_transpose(image), name)


def to_rgb(image: Image.Image, what: str = "image") -> Image.Image:
    """The 8-bit RGB picture ``image`` shows, whatever its mode (see the module's docstring for each mode).

    An RGB image without a transparency key is returned as it is.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        grey = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ALPHA_MODES or "transparency" in image.info:
        try:
            rgba = image.convert("RGBA")
        except ValueError as err:
            raise ImageInputError(f"{what} has transparency in colour mode {mode} that can't be read ({err}): "
                                  "re-save it as an 8-bit RGB or RGBA PNG.") from None
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as err:
        raise ImageInputError(f"{what} uses colour mode {mode}, which can't be turned into RGB ({err}): "
                              "re-save it as an 8-bit RGB PNG or JPEG.") from None


def _check_size(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageInputError(f"{name} has no pixels ({w}×{h}).")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageInputError(
            f"{name} is {w}×{h} ({w * h / 1e6:.0f} MP), over the limit of {MAX_PIXELS / 1e6:.0f} MP "
            f"and {MAX_SIDE} px a side: downscale it first."
        )
