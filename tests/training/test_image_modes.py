"""``load_image`` turns every Pillow mode into the 8-bit RGB picture it shows (face_studio/images.py's docstring):
16-bit scaled, not clipped; floats as 0..1; transparency over black; palettes, CMYK and bilevel as Pillow draws
them. Each case is built with Pillow, saved where the format allows it, and compared pixel for pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from face_studio.images import ImageInputError, load_image

RAMP16 = (np.arange(64 * 32, dtype=np.int64).reshape(32, 64) * 32).astype(np.uint16)  # 0 … 65504
RAMP8 = np.arange(256, dtype=np.uint8).reshape(16, 16)


def _grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def _png(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def _tiff(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="TIFF")
    return buf.getvalue()


def _expect16(values: np.ndarray) -> np.ndarray:
    return _grey(np.rint(values.astype(np.float64) / 257))


def test_16bit_grey_png_is_scaled_not_clipped() -> None:
    """The probe's case: a 16-bit grey ramp became 99.6 % white."""
    got = np.asarray(load_image(_png(Image.fromarray(RAMP16))))
    assert np.array_equal(got, _expect16(RAMP16))
    assert (got == 255).mean() < 0.01


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16B", ">u2"), ("I;16L", "<u2")])
def test_16bit_modes(mode: str, dtype: str) -> None:
    image = Image.frombytes(mode, (RAMP16.shape[1], RAMP16.shape[0]), RAMP16.astype(dtype).tobytes())
    assert image.mode == mode
    assert np.array_equal(np.asarray(load_image(image)), _expect16(RAMP16))


def test_16bit_tiff_and_full_scale() -> None:
    values = np.array([[0, 257, 32767, 65535]], dtype=np.uint16)
    got = np.asarray(load_image(_tiff(Image.fromarray(values))))
    assert got[0, :, 0].tolist() == [0, 1, 127, 255]


def test_mode_I_is_the_16bit_range_clipped() -> None:
    values = np.array([[-5, 0, 257, 65535, 70000, 2**31 - 1]], dtype=np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    assert np.asarray(load_image(image))[0, :, 0].tolist() == [0, 0, 1, 255, 255, 255]
    assert np.array_equal(np.asarray(load_image(_tiff(Image.fromarray(RAMP16.astype(np.int32))))),
                          _expect16(RAMP16))


def test_mode_F_is_zero_to_one() -> None:
    values = np.array([[0.0, 0.5, 1.0, -0.2, 3.0, np.nan]], dtype=np.float32)
    image = Image.fromarray(values)
    assert image.mode == "F"
    assert np.asarray(load_image(image))[0, :, 0].tolist() == [0, 128, 255, 0, 255, 0]
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    assert np.array_equal(np.asarray(load_image(_tiff(Image.fromarray(ramp)))), _grey(RAMP8))


def _alpha() -> np.ndarray:
    return np.tile(np.array([0, 64, 128, 255], dtype=np.uint8), (4, 4))  # 4×16


def _over_black(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.rint(rgb.astype(np.float64) * alpha[..., None] / 255).astype(np.uint8)


def test_rgba_and_la_are_composited_over_black() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (4, 16, 3), dtype=np.uint8)
    alpha = _alpha()
    rgba = Image.fromarray(np.dstack([rgb, alpha]))
    got = np.asarray(load_image(_png(rgba))).astype(int)
    assert np.abs(got - _over_black(rgb, alpha)).max() <= 1  # Pillow's compositing rounds its own way
    assert np.array_equal(got[:, 0::4], np.zeros_like(got[:, 0::4]))  # transparent: black, not the hidden colour
    assert np.array_equal(got[:, 3::4], rgb[:, 3::4])  # opaque: exact
    grey = rng.integers(0, 256, (4, 16), dtype=np.uint8)
    la = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(alpha)])
    got = np.asarray(load_image(_png(la))).astype(int)
    assert np.abs(got - _grey(_over_black(np.dstack([grey] * 3), alpha)[..., 0])).max() <= 1


def _palette(transparent: int | None) -> Image.Image:
    image = Image.new("P", (4, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 200, 200] + [0] * 756)
    image.putdata([0, 1, 2, 3])
    if transparent is not None:
        image.info["transparency"] = transparent
    return image


def test_palette_with_transparency_and_pa() -> None:
    shown = [[255, 0, 0], [0, 0, 0], [0, 0, 255], [200, 200, 200]]  # green is the transparent index
    assert np.asarray(load_image(_png(_palette(1), transparency=1)))[0].tolist() == shown
    pa = _palette(1).convert("PA")
    assert pa.mode == "PA"
    assert np.asarray(load_image(pa))[0].tolist() == shown
    assert np.asarray(load_image(_png(_palette(None))))[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255],
                                                                       [200, 200, 200]]


def test_cmyk_bilevel_and_grey() -> None:
    cmyk = Image.new("CMYK", (4, 1))
    cmyk.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (0, 128, 255, 0)])
    buf = io.BytesIO()
    cmyk.save(buf, format="JPEG", quality=100)  # a CMYK JPEG, as print workflows export them
    assert np.asarray(load_image(cmyk))[0].tolist() == [[255, 255, 255], [0, 255, 255], [0, 0, 0],
                                                       [255, 127, 0]]
    jpeg = np.asarray(load_image(buf.getvalue())).astype(int)
    assert np.abs(jpeg - np.asarray(load_image(cmyk)).astype(int)).max() <= 8  # JPEG is lossy
    bilevel = Image.fromarray(np.array([[0, 255, 0, 255]], dtype=np.uint8)).convert("1")
    assert np.asarray(load_image(_png(bilevel)))[0, :, 0].tolist() == [0, 255, 0, 255]
    assert np.array_equal(np.asarray(load_image(_png(Image.fromarray(RAMP8)))), _grey(RAMP8))


def test_rgb_stays_exact() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(load_image(_png(Image.fromarray(rgb)))), rgb)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK",
                                  "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"])
def test_every_mode_gives_rgb_or_a_clear_error(mode: str) -> None:
    try:
        image = load_image(Image.new(mode, (3, 2)))
    except ImageInputError as err:
        assert f"colour mode {mode}" in str(err)
    else:
        assert image.mode == "RGB" and image.size == (3, 2)
