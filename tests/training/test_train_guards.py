"""A run that diverges stops with one clear line and saves nothing (#11.7: ``--lr inf`` used to train to NaN
weights, save them and exit 0); ``synth`` refuses a run the disk can't hold before drawing (#11.6)."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from face_studio.training import synth
from face_studio.training.synth import write_dataset
from webapp.cli import main


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("guard") / "faces", n=4, size=64, seed=0, progress=False)


def _train(data: Path, out: Path, batch: int, lr: str) -> list[str]:
    return ["train", "--data", str(data), "--base", "scratch:tiny", "--out", str(out), "--epochs", "2",
            "--batch", str(batch), "--size", "64", "--lr", lr, "--no-augment", "--quiet"]


def test_nan_loss_stops_the_run_and_saves_nothing(faces: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_train(faces, out, batch=2, lr="1e10")) == 2  # 3 train faces: 2 steps an epoch
    err = capsys.readouterr().err
    assert "error: the training loss became nan at step 2" in err and "no model was saved" in err
    assert "Lower --lr (it was 1e+10)" in err and "Traceback" not in err
    assert not out.exists()


def test_diverged_weights_are_not_checkpointed(faces: Path, tmp_path: Path, capsys) -> None:
    """One step an epoch: the step that breaks the weights is the epoch's last, so the guard at the checkpoint
    (validation loss) catches it before anything is saved; a folder that was there before is kept, empty."""
    out = tmp_path / "run"
    out.mkdir()
    assert main(_train(faces, out, batch=4, lr="1e30")) == 2
    err = capsys.readouterr().err
    assert "error: the validation loss became nan at epoch 1.00" in err and "no model was saved" in err
    assert [p.name for p in out.rglob("*") if p.is_file()] == []


def test_synth_refuses_a_run_the_disk_cannot_hold(tmp_path: Path, monkeypatch, capsys) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(synth.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 200 * 2**20, 200 * 2**20))
    assert main(["synth", "--out", str(tmp_path / "faces"), "-n", "1000", "--size", "512", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1000 faces of 512×512 px need about 0.4 GB, but only 0.2 GB is free" in err
    assert not (tmp_path / "faces").exists()
    assert main(["synth", "--out", str(tmp_path / "faces"), "-n", "2", "--size", "64", "--quiet"]) == 0


def test_render_refuses_sizes_over_the_bound() -> None:
    with pytest.raises(ValueError, match="size must be 64…2048 px"):
        synth.render_face(0, 4096)
