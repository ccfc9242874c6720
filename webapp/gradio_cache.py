"""Atomic writes into Gradio's result cache, so identical concurrent requests never read a half-written file.

Gradio keeps every result image under ``<cache>/<sha256 of its bytes>/image.png``: identical answers (32 visitors
parsing the same example photo; the same seed asked twice) meet on one path. Gradio 6.31's ``save_pil_to_cache``
and ``save_bytes_to_cache`` write that path in place (``Path.write_bytes``: truncate, then write), so a request
serving the same path meanwhile reads an empty or short file: the client sees "peer closed connection without
sending complete message body (received 0 bytes, expected 4137)" or an image it cannot decode. Uploads (a rename)
and ``save_file_to_cache`` (a staging file and ``os.replace``) are already atomic.

:func:`install_atomic_cache_writes` replaces those two writers in ``gradio.processing_utils`` (where Gradio's
components look them up) with versions that write a staging file beside the target and ``os.replace`` it into
place, and skip the write when the file is already there (its name is its content's hash). Same paths, same
content, same return values. Drop this once Gradio writes its cache atomically (still needed in 6.31.0, the
newest release; tests/server/test_identical_requests.py tells).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils


def _write_once(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` whole: never truncate a file another request may be serving."""
    if path.is_file() and path.stat().st_size == len(data):
        try:
            os.utime(path)  # Gradio's delete_cache ages files by ctime: a reused file counts as new
        except OSError:
            pass
        return
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """``gradio.processing_utils.save_pil_to_cache``, written atomically."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    _write_once(path, data)
    return str(path)


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    """``gradio.processing_utils.save_bytes_to_cache``, written atomically."""
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    if not Path(file_name).suffix:
        file_name += processing_utils.detect_audio_format(data)
    path = folder / Path(file_name).name
    _write_once(path, data)
    return str(path.resolve())


def install_atomic_cache_writes() -> None:
    """Make Gradio's image and bytes cache writes atomic (idempotent; call before serving)."""
    processing_utils.save_pil_to_cache = save_pil_to_cache
    processing_utils.save_bytes_to_cache = save_bytes_to_cache
