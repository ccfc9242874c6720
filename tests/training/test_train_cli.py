"""``face-studio train``'s surface: progress bar with loss and val mIoU, augmentation on, argument errors."""

from __future__ import annotations

import json

from face_studio.training.synth import write_dataset
from webapp.cli import main


def test_progress_bar_shows_loss_and_val_miou(tmp_path, capsys):
    data = write_dataset(tmp_path / "faces", n=9, size=64, seed=21, progress=False)
    out = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--base", "scratch:tiny", "--out", str(out), "--epochs", "1",
               "--batch", "4", "--size", "64", "--lr", "1e-3"])  # augmentation on (the default)
    assert rc == 0
    captured = capsys.readouterr()
    assert "fine-tuning" in captured.err and "loss=" in captured.err and "val_mIoU=" in captured.err
    assert "epoch 1: val mIoU" in captured.err
    assert "best val mIoU" in captured.out
    summary = json.loads((out / "training.json").read_text())
    assert summary["train_faces"] == 8 and summary["val_faces"] == 1 and summary["steps"] == 2
    assert summary["config"]["augment"] is True and len(summary["history"]) == 1


def test_argument_errors_are_clear(tmp_path, capsys):
    data = write_dataset(tmp_path / "faces", n=2, size=64, seed=1, progress=False)
    base = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet"]
    assert main(base + ["--base", "scratch:huge"]) == 2
    assert "unknown preset; choose scratch:mit-b5, scratch:mit-b0, scratch:tiny" in capsys.readouterr().err
    assert main(base + ["--base", "scratch:tiny", "--size", "100"]) == 2
    assert "--size must be a multiple of 32" in capsys.readouterr().err
    assert main(base + ["--base", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(base + ["--base", "scratch:tiny", "--val-fraction", "1.5"]) == 2
    assert "--val-fraction must be between 0 and 1" in capsys.readouterr().err
