"""Session fixtures shared by every test area: a tiny face parser built locally and its export.

Models are built here with random weights (or trained a few steps elsewhere), saved to a temp folder
and loaded back through the same public path a user's model takes (``from_pretrained(folder)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub here: anything that tries to reach it fails loudly
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_parser(folder: Path, seed: int = 0, preset: str = "tiny") -> Path:
    """Save a randomly initialised 19-label SegFormer (and its image processor) to ``folder``."""
    import torch
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    from face_studio.configs import face_parser_config
    from face_studio.preprocess import preprocessor_config

    torch.manual_seed(seed)
    model = SegformerForSemanticSegmentation(face_parser_config(preset)).eval()
    model.save_pretrained(folder)
    cfg = preprocessor_config()
    cfg.pop("image_processor_type")
    SegformerImageProcessor(**cfg).save_pretrained(folder)
    return folder


def train_tiny_parser(folder: Path, preset: str = "tiny", size: int = 64, faces: int = 128, epochs: int = 16,
                      batch: int = 16) -> Path:
    """``preset`` trained from scratch by ``face-studio train`` on ``faces`` synthetic faces at ``size`` px (seconds
    for the tiny preset): logits that mean something — background, skin, hair, neck, clothes on a synthetic face —
    where a random parser's are near-ties. Returns the trained folder (``folder/parser``)."""
    from face_studio.training.synth import write_dataset
    from webapp.cli import main

    data = write_dataset(folder / "faces", faces, size, 0, progress=False)
    out = folder / "parser"
    assert main(["train", "--data", str(data), "--base", f"scratch:{preset}", "--out", str(out),
                 "--epochs", str(epochs), "--lr", "5e-3", "--batch", str(batch), "--size", str(size),
                 "--no-augment", "--quiet"]) == 0
    return out


def run_then_resume(argv: Callable[[int], list[str]], out: Path, epochs: int) -> dict:
    """The CLI run ``argv(epochs - 1)`` (a train or distil into ``out``), then ``argv(epochs) + --resume``: the
    folder and both of its training.json summaries."""
    from webapp.cli import main

    assert main(argv(epochs - 1)) == 0
    first = json.loads((out / "training.json").read_text())
    assert main(argv(epochs) + ["--resume"]) == 0
    final = json.loads((out / "training.json").read_text())
    return {"out": out, "first": first, "final": final}


@pytest.fixture(scope="session")
def tiny_parser_dir(tmp_path_factory) -> Path:
    """A tiny random SegFormer face parser saved with ``save_pretrained``."""
    return build_tiny_parser(tmp_path_factory.mktemp("tiny-parser") / "model")


@pytest.fixture(scope="session")
def tiny_export_dir(tiny_parser_dir, tmp_path_factory) -> Path:
    """``tiny_parser_dir`` exported by ``face-studio export`` (fp32, fp16, q8) — the layout the browser reads."""
    from webapp.cli import main

    out = tmp_path_factory.mktemp("tiny-export") / "face-parsing"
    rc = main(["export", "--model", str(tiny_parser_dir), "--out", str(out)])
    assert rc == 0, "face-studio export failed on the tiny parser"
    return out


@pytest.fixture(scope="session")
def browser():
    """Debian Chromium through Playwright, one per test session: Playwright's sync API runs an event loop,
    so a second ``sync_playwright()`` while one is open fails; every browser test uses this one."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is needed (scripts/setup.sh with WITH_TEST=1)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
