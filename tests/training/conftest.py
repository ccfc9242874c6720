"""Session fixtures for the fine-tuning tests: synthetic faces, one tiny SegFormer trained on them (in two runs,
the second resuming the first), and its export. Everything goes through the CLI a user runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import build_tiny_parser, run_then_resume

# The training recipe the tests assert on (measured numbers: docs/finetune.md).
TRAIN_SEED = 0  # synth seeds 0..319, the split, head init and shuffling
N_FACES = 320  # 288 train + 32 val
SIZE = 128
BATCH = 16  # 18 steps an epoch
EPOCHS = 12  # 11 in the first run, 1 more after --resume: 216 steps
LR = "5e-3"  # from-scratch rate for the tiny preset
HELDOUT_SEED = 100_000  # held-out faces, never trained on
N_HELDOUT = 48


@pytest.fixture(scope="session")
def synth_faces(tmp_path_factory) -> Path:
    from face_studio.training.synth import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth") / "train", N_FACES, SIZE, TRAIN_SEED, progress=False)


@pytest.fixture(scope="session")
def heldout_faces(tmp_path_factory) -> Path:
    from face_studio.training.synth import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth") / "heldout", N_HELDOUT, SIZE, HELDOUT_SEED, progress=False)


@pytest.fixture(scope="session")
def random_base(tmp_path_factory) -> Path:
    """The tiny preset with random weights, saved like any base model a user points --base at."""
    return build_tiny_parser(tmp_path_factory.mktemp("base") / "tiny", seed=TRAIN_SEED)


def train_args(data: Path, base: Path, out: Path, epochs: int) -> list[str]:
    return ["train", "--data", str(data), "--base", str(base), "--out", str(out), "--epochs", str(epochs),
            "--lr", LR, "--batch", str(BATCH), "--size", str(SIZE), "--seed", str(TRAIN_SEED), "--no-augment",
            "--quiet"]


@pytest.fixture(scope="session")
def trained_run(synth_faces, random_base, tmp_path_factory) -> dict:
    """``face-studio train`` for EPOCHS-1 epochs, then ``--resume`` for one more: both summaries and the folder."""
    out = tmp_path_factory.mktemp("run") / "parser"
    return run_then_resume(lambda epochs: train_args(synth_faces, random_base, out, epochs), out, EPOCHS)


@pytest.fixture(scope="session")
def trained_export(trained_run, tmp_path_factory) -> Path:
    """The trained parser through ``face-studio export`` (fp32, fp16, q8)."""
    from webapp.cli import main

    out = tmp_path_factory.mktemp("export") / "face-parsing"
    assert main(["export", "--model", str(trained_run["out"]), "--out", str(out), "--quiet"]) == 0
    return out
