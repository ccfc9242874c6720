"""Fixtures for the server-side parsing tests: sample images and a running server on a free port."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.parsing.samples import astronaut, bad_inputs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """{'square': 512×512 astronaut, 'wide': 640×480 astronaut, and the four bad inputs}."""
    folder = tmp_path_factory.mktemp("parse-samples")
    return {
        "square": astronaut(folder, "astronaut.png"),
        "wide": astronaut(folder, "astronaut-wide.png", (640, 480)),
        **bad_inputs(folder / "bad"),
    }


@pytest.fixture(scope="module")
def server(tiny_export_dir):
    """The real app on 127.0.0.1, a free port, parsing with the tiny export."""
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    handle = run_in_thread(ServeSettings(port=0, parser_dir=tiny_export_dir))
    yield handle
    handle.close()
