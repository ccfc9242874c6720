"""`face-studio parse`: a folder with one bad file → good outputs written, bad one reported, exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.preprocess import colorize
from tests.bad_input import run_cli_case
from tests.parsing.bad_inputs import BAD_INPUTS, prepare
from webapp.cli import main
from webapp.parsing import FaceParser


def test_folder_with_one_bad_file(tiny_export_dir: Path, samples, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples["square"], folder / "a.png")
    Image.open(samples["wide"]).convert("RGB").save(folder / "b.jpg", quality=95)
    Image.open(samples["wide"]).convert("RGB").resize((300, 200)).save(folder / "c.webp")
    shutil.copy(samples["corrupt"], folder / "broken.png")
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"

    rc = main(["parse", str(folder), "--out", str(out), "--batch", "2", "--dtype", "q8",
               "--parser", str(tiny_export_dir), "--faces", "off"])
    captured = capsys.readouterr()

    assert rc == 1
    assert "broken.png" in captured.err and "corrupt or truncated" in captured.err
    assert "ignored 1 file(s) without an image extension: notes.txt" in captured.err
    assert "parsed 3 of 4 image(s)" in captured.out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}{suffix}" for stem in "abc" for suffix in (".labels.png", ".mask.png", ".json"))

    parser = FaceParser(tiny_export_dir, "q8")
    for stem, source in (("a", folder / "a.png"), ("b", folder / "b.jpg"), ("c", folder / "c.webp")):
        image = Image.open(source).convert("RGB")
        labels = np.asarray(Image.open(out / f"{stem}.labels.png"))
        assert labels.shape == (image.height, image.width)
        assert (labels == parser.parse(image)).mean() >= 0.999
        mask = np.asarray(Image.open(out / f"{stem}.mask.png").convert("RGB"))
        assert np.array_equal(mask, colorize(labels))
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["source"] == str(source) and summary["dtype"] == "q8"
        assert abs(sum(summary["area_percent"].values()) - 100) < 1e-2
        counts = np.bincount(labels.ravel(), minlength=19)
        assert summary["area_percent"]["skin"] == round(100 * counts[1] / labels.size, 4)


def test_all_good_exits_zero_and_missing_parser_exits_two(tiny_export_dir: Path, samples, tmp_path: Path,
                                                         capsys) -> None:
    assert main(["parse", str(samples["square"]), "--out", str(tmp_path / "ok"),
                 "--parser", str(tiny_export_dir)]) == 0
    assert (tmp_path / "ok" / "astronaut.labels.png").is_file()
    assert main(["parse", str(samples["square"]), "--out", str(tmp_path / "none"),
                 "--parser", str(tmp_path / "no-export")]) == 2
    assert "face-studio export" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_same_names_in_different_folders_are_all_kept(tiny_export_dir: Path, samples, tmp_path: Path,
                                                      capsys) -> None:
    """#11.9: ``parse a/x.png b/x.png`` wrote both to x.*, b over a, and said "parsed 3 of 3"."""
    sizes = {"a/x.png": (120, 90), "b/x.png": (90, 120), "c/x-1.png": (100, 100), "d/X.png": (80, 60)}
    for rel, size in sizes.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        Image.open(samples["square"]).convert("RGB").resize(size).save(tmp_path / rel)
    out = tmp_path / "out"
    assert main(["parse", *(str(tmp_path / rel) for rel in sizes), "--out", str(out),
                 "--parser", str(tiny_export_dir), "--faces", "off"]) == 0
    captured = capsys.readouterr()
    expected = {"a/x.png": "x", "b/x.png": "x-2", "c/x-1.png": "x-1", "d/X.png": "X-3"}
    assert len(list(out.iterdir())) == 3 * len(sizes)
    for rel, stem in expected.items():
        summary = json.loads((out / f"{stem}.json").read_text())
        assert summary["source"] == str(tmp_path / rel)
        assert Image.open(out / f"{stem}.labels.png").size == sizes[rel]
    assert f"note: {tmp_path / 'b/x.png'} is written as x-2.* (x.* is another input's)" in captured.err
    assert f"note: {tmp_path / 'd/X.png'} is written as X-3.*" in captured.err
    assert "parsed 4 of 4" in captured.out and "2 input(s) shared a name" in captured.out


def test_rerun_into_the_same_folder_says_it_replaced_outputs(tiny_export_dir: Path, samples, tmp_path: Path,
                                                             capsys) -> None:
    args = ["parse", str(samples["square"]), "--out", str(tmp_path / "out"), "--parser", str(tiny_export_dir),
            "--faces", "off"]
    assert main(args) == 0
    assert "replaced" not in capsys.readouterr().err
    assert main(args) == 0
    assert "note: replaced 3 output file(s) of an earlier run" in capsys.readouterr().err


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("parse-bad-inputs"))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    """Every case of tests/parsing/bad_inputs.py: the message, the exit code, no traceback, no file written."""
    run_cli_case(case, case_folder, monkeypatch, capsys)
