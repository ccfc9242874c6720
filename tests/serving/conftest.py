"""Fixtures for the serving tests: the tiny SD3 pipeline folder (shared with tests/generation) and helpers to
compare images pixel by pixel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.generation.conftest import tiny_sd3_dir  # noqa: F401 - the session fixture, reused here

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def pixels(image: str | Path | Image.Image) -> np.ndarray:
    """RGB pixels of a PNG path or an image in memory (a service's result)."""
    picture = image if isinstance(image, Image.Image) else Image.open(image)
    return np.asarray(picture.convert("RGB")).astype(np.int16)


def max_diff(a: str | Path | Image.Image, b: str | Path | Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


@pytest.fixture()
def settings_for(tiny_sd3_dir, tmp_path):  # noqa: F811
    """ServeSettings for the tiny model on CPU, with overrides."""
    from webapp.settings import ServeSettings

    def make(**overrides):
        base = dict(sd_model=str(tiny_sd3_dir), device="cpu", parser_dir=tmp_path / "no-parser",
                    output_dir=tmp_path / "out", port=0)
        return ServeSettings(**{**base, **overrides})

    return make
