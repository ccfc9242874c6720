"""Any input size ``face-studio train`` accepts (multiples of 32 from 32) exports and verifies (#11.5: the trace
example used to be ``size - 64`` wide, 0 px for a parser trained at 64)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from face_studio.training.synth import write_dataset
from tests.conftest import build_tiny_parser
from webapp.cli import main


def _export_and_verify(model: Path, out: Path, size: int) -> None:
    assert main(["export", "--model", str(model), "--out", str(out), "--dtypes", "fp32,q8", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["input"]["size"] == size
    assert main(["verify", str(out)]) == 0


@pytest.mark.parametrize("size", [32, 64])
def test_parser_made_for_a_small_size_exports(size: int, tmp_path: Path) -> None:
    model = build_tiny_parser(tmp_path / f"m{size}")
    pre = json.loads((model / "preprocessor_config.json").read_text())
    pre["size"] = {"height": size, "width": size}
    (model / "preprocessor_config.json").write_text(json.dumps(pre))
    _export_and_verify(model, tmp_path / "exp", size)


def test_train_at_64_then_export(tmp_path: Path) -> None:
    """The probe's sequence: ``train --size 64``, then ``export`` of what it saved."""
    data = write_dataset(tmp_path / "faces", n=4, size=64, seed=3, progress=False)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--base", "scratch:tiny", "--out", str(run), "--epochs", "1",
                 "--batch", "2", "--size", "64", "--lr", "1e-3", "--no-augment", "--quiet"]) == 0
    _export_and_verify(run, tmp_path / "exp", 64)
