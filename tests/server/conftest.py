"""Fixtures for the server's reliability and security tests: the tiny parser export (a private copy, with a
secret file beside it that no route may serve) and the tiny SD3 pipeline, served by the real app on
127.0.0.1 and a free port."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.generation.tiny_sd3 import build_tiny_sd3

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SECRET = "face-studio test secret: no route may serve this"


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory) -> Path:
    return build_tiny_sd3(tmp_path_factory.mktemp("tiny-sd3") / "model")


@pytest.fixture(scope="session")
def parser_dir(tiny_export_dir, tmp_path_factory) -> Path:
    """A copy of the tiny export at ``<tmp>/exports/face-parsing``, with ``<tmp>/exports/secret.txt`` and
    ``<tmp>/secret.txt`` beside it: targets for path traversal out of the ``/parser/`` mount."""
    root = tmp_path_factory.mktemp("server-files")
    folder = root / "exports" / "face-parsing"
    shutil.copytree(tiny_export_dir, folder)
    (root / "exports" / "secret.txt").write_text(SECRET)
    (root / "secret.txt").write_text(SECRET)
    return folder


def start_server(**overrides):
    """The real app (``webapp.server.run_in_thread``) with these ServeSettings overrides."""
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    return run_in_thread(ServeSettings(port=0, **overrides))
