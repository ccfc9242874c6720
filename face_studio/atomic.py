"""One way to write a file so that no reader ever sees it half-written: a hidden temp name in the same folder
(``.NAME.<random>.part``), then ``os.replace``. A crash leaves at most a ``.part`` file, never a torn ``NAME``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".part"


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, or a function that writes to an open binary file) to ``path`` atomically.

    The folder is created if needed. On any error the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_image(image, path: str | Path, **save_kwargs) -> Path:  # image: PIL.Image.Image
    """``image.save`` through :func:`atomic_write`; the format comes from ``save_kwargs`` or the suffix."""
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or path.suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"
    return atomic_write(path, lambda handle: image.save(handle, format=fmt, **save_kwargs))
