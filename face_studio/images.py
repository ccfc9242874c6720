"""Safe image loading: every bad file becomes an :class:`ImageInputError` that says what to do."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from face_studio.errors import UserError

# Decompression-bomb guard: a 40 MP photo is larger than any camera portrait we expect;
# 20000×20000 (400 MP) would take 1.2 GB as RGB before the model sees it.
MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384


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
        return ImageOps.exif_transpose(image).convert("RGB")
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
    return ImageOps.exif_transpose(image).convert("RGB")


def _check_size(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageInputError(f"{name} has no pixels ({w}×{h}).")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageInputError(
            f"{name} is {w}×{h} ({w * h / 1e6:.0f} MP), over the limit of {MAX_PIXELS / 1e6:.0f} MP "
            f"and {MAX_SIDE} px a side: downscale it first."
        )
