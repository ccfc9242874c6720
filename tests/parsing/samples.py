"""Test images for the Parse feature: the astronaut portrait and one file per kind of bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image

BOMB_SIDE = 20_000


def astronaut(folder: Path, name: str = "astronaut.png", size: tuple[int, int] | None = None) -> Path:
    """skimage's astronaut as a PNG (optionally resized, to exercise the resize paths)."""
    from skimage import data

    image = Image.fromarray(data.astronaut())
    if size:
        image = image.resize(size, Image.BILINEAR)
    path = folder / name
    image.save(path)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = BOMB_SIDE) -> Path:
    """A valid side×side PNG (1-bit grey, all black) of a few hundred KB: 400 MP once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def bad_inputs(folder: Path) -> dict[str, Path]:
    """{kind: file}: a non-image, a corrupt (truncated) PNG, a decompression bomb, an empty file."""
    folder.mkdir(parents=True, exist_ok=True)
    good = astronaut(folder, "good-source.png").read_bytes()
    (folder / "good-source.png").unlink()
    files = {
        "non-image": folder / "notes.png",
        "corrupt": folder / "corrupt.png",
        "bomb": folder / "bomb.png",
        "empty": folder / "empty.png",
    }
    files["non-image"].write_text("this is a text file, not a photo\n")
    files["corrupt"].write_bytes(good[: len(good) // 2])
    bomb_png(files["bomb"])
    files["empty"].write_bytes(b"")
    return files


# What each bad input's message must say (in the page and from the `parse` API): what was wrong and the fix.
EXPECTED_MESSAGES: dict[str, tuple[str, ...]] = {
    "non-image": ("is not an image we can read", "check the file"),
    "corrupt": ("is corrupt or truncated", "re-save"),
    "bomb": ("40 MP", "downscale"),
    "empty": ("is empty (0 bytes)", "upload a PNG"),
}


def says(message: str, kind: str) -> bool:
    """True when ``message`` explains a ``kind`` bad input the way users are told."""
    return all(part in message for part in EXPECTED_MESSAGES[kind])
