"""Python pre/post-processing and safe image loading (shared by server, CLI, export and tests)."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from face_studio.images import ImageInputError, load_image
from face_studio.preprocess import logits_to_labels, to_pixel_values, upsample_logits


@pytest.mark.parametrize("smooth", [True, False])
@pytest.mark.parametrize("size", [(512, 512), (333, 517), (1024, 768)])
def test_fast_argmax_equals_upsample_then_argmax(smooth: bool, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((19, 32, 24)).astype(np.float32)
    if smooth:  # regions like a trained parser's, so most pixels take the shortcut
        logits = upsample_logits(rng.standard_normal((19, 6, 5)).astype(np.float32) * 4, 128, 96)
    h, w = size
    expected = upsample_logits(logits, h, w).argmax(axis=0)
    got = logits_to_labels(logits, h, w)
    assert got.dtype == np.uint8 and got.shape == (h, w)
    assert np.array_equal(got, expected)


def test_pixel_values_are_imagenet_normalised() -> None:
    x = to_pixel_values([Image.new("RGB", (40, 30), (124, 116, 104))], size=64)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    assert np.abs(x).max() < 0.01  # ImageNet mean colour → ~0


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (enough for the size check; never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, expected", [
    (b"", "is empty (0 bytes)"),
    (b"hello, not an image", "is not an image we can read"),
    (_png_header_only(20000, 20000), "is too large (400 MP), over the limit of 40 MP"),
    (_png_header_only(9000, 6000), "is 9000×6000 (54 MP), over the limit of 40 MP"),
])
def test_bad_images_get_clear_errors(data: bytes, expected: str) -> None:
    with pytest.raises(ImageInputError) as info:
        load_image(data)
    assert expected in str(info.value)


def test_truncated_png_is_refused() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        load_image(buf.getvalue()[: len(buf.getvalue()) // 2])
