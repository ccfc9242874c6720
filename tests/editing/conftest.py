"""Edit-test fixtures: the tiny SD3 pipeline (built by tests/generation/tiny_sd3.py) behind a real
GenerationService on the CPU, and a portrait with its parse from the tiny exported parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.generation.tiny_sd3 import build_tiny_sd3
from webapp.settings import ServeSettings


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory) -> Path:
    return build_tiny_sd3(tmp_path_factory.mktemp("tiny-sd3") / "sd3")


@pytest.fixture(scope="session")
def edit_settings(tiny_sd3_dir: Path, tiny_export_dir: Path, tmp_path_factory) -> ServeSettings:
    return ServeSettings(sd_model=str(tiny_sd3_dir), device="cpu", parser_dir=tiny_export_dir,
                         output_dir=tmp_path_factory.mktemp("edit-out"))


@pytest.fixture(scope="session")
def edit_service(edit_settings: ServeSettings):
    from webapp.backend import backend_for

    return backend_for(edit_settings)  # the single box's backend: what edit_image runs on


@pytest.fixture(scope="session")
def portrait() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((200, 152))


@pytest.fixture(scope="session")
def hair_labels(portrait: Image.Image) -> np.ndarray:
    """A hand-made label map for the portrait: hair on top, skin in the middle, background elsewhere."""
    labels = np.zeros((portrait.height, portrait.width), dtype=np.uint8)
    labels[20:60, 60:140] = 13  # hair
    labels[60:110, 70:130] = 1  # skin
    labels[80:88, 85:95] = 4  # left eye
    return labels


@pytest.fixture(scope="session")
def edit_server(edit_settings: ServeSettings):
    """The whole app on 127.0.0.1 (free port) with the tiny parser and tiny SD3 on the CPU."""
    from dataclasses import replace

    from webapp.server import run_in_thread

    handle = run_in_thread(replace(edit_settings, port=0))
    yield handle
    handle.close()
