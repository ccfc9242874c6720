"""Session fixtures for distillation: a tiny teacher briefly trained by ``face-studio train`` on synthetic faces,
folders of synthetic photos with no masks, and a student distilled from the teacher (two runs, the second
resuming the first) — all through the CLI a user runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_then_resume

SIZE = 64  # small and fast; export and evaluate take it like any size
TEACHER_FACES = 128  # labelled, seeds 0..127
TEACHER_EPOCHS = 8
PHOTOS = 64  # unlabelled, seeds 5000..5063 (never seen by the teacher)
HELDOUT = 16  # unlabelled, seeds 100000..100015, never distilled on
EPOCHS = 8  # 7 in the first run, 1 more after --resume
BATCH = 16


def plain_photos(folder: Path, n: int, seed: int) -> Path:
    """``n`` synthetic faces as a folder of JPEGs only (the masks are thrown away)."""
    from face_studio.training.synth import write_dataset

    labelled = write_dataset(folder.parent / f".{folder.name}-labelled", n, SIZE, seed, progress=False)
    folder.mkdir(parents=True)
    for image in (labelled / "images").iterdir():
        shutil.copy(image, folder / image.name)
    shutil.rmtree(labelled)
    return folder


@pytest.fixture(scope="session")
def teacher(tmp_path_factory) -> Path:
    """The tiny preset trained for a few epochs on labelled synthetic faces by ``face-studio train``."""
    from face_studio.training.synth import write_dataset
    from webapp.cli import main

    root = tmp_path_factory.mktemp("teacher")
    faces = write_dataset(root / "faces", TEACHER_FACES, SIZE, 0, progress=False)
    out = root / "parser"
    assert main(["train", "--data", str(faces), "--base", "scratch:tiny", "--out", str(out), "--epochs",
                 str(TEACHER_EPOCHS), "--lr", "5e-3", "--batch", str(BATCH), "--size", str(SIZE), "--no-augment",
                 "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    return plain_photos(tmp_path_factory.mktemp("photos") / "photos", PHOTOS, 5000)


@pytest.fixture(scope="session")
def heldout_photos(tmp_path_factory) -> Path:
    return plain_photos(tmp_path_factory.mktemp("heldout") / "photos", HELDOUT, 100_000)


def distil_args(teacher: Path, photos: Path, out: Path, epochs: int) -> list[str]:
    return ["distil", "--teacher", str(teacher), "--images", str(photos), "--student", "tiny", "--size", str(SIZE),
            "--out", str(out), "--epochs", str(epochs), "--batch", str(BATCH), "--quiet"]


@pytest.fixture(scope="session")
def distilled(teacher, photos, tmp_path_factory) -> dict:
    """``face-studio distil`` for EPOCHS-1 epochs, then ``--resume`` for one more: both summaries and the folder."""
    out = tmp_path_factory.mktemp("student") / "live"
    return run_then_resume(lambda epochs: distil_args(teacher, photos, out, epochs), out, EPOCHS)
