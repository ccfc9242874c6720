"""Bad inputs of ``face-studio parse`` (the docs' table is generated from these).

Each case's ``args`` is the argv of ``face-studio``; it runs with a folder made by :func:`prepare` as the working
folder: ``parser/`` (a tiny face parser exported by ``face-studio export --dtypes fp32``), ``photo.png`` (a
good image), ``corrupt.png`` (a PNG cut in half), ``empty/`` (a folder with no images) and ``notes.txt`` (a plain
file), ``no-detector/`` (an empty folder) and ``damaged-detector/`` (the set-up's detector with its ONNX file cut
short). Every case must change no file there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.bad_input import BadInput

PARSE = "face-studio parse"
WITH_PARSER = ("--parser", "parser", "--dtype", "fp32")

BAD_INPUTS: list[BadInput] = [
    BadInput(PARSE, "--out a file", "--out notes.txt is a file: give a folder",
             ("parse", "photo.png", "--out", "notes.txt") + WITH_PARSER),
    BadInput(PARSE, "--batch 0", "--batch must be at least 1 (got 0)",
             ("parse", "photo.png", "--out", "out", "--batch", "0") + WITH_PARSER),
    BadInput(PARSE, "a folder with no images", "no images found in the given inputs",
             ("parse", "empty", "--out", "out") + WITH_PARSER),
    BadInput(PARSE, "--parser a folder with no export", "face-studio export",
             ("parse", "photo.png", "--out", "out", "--parser", "missing-export")),
    BadInput(PARSE, "a corrupt image (the others are still parsed)", "corrupt.png: image 'corrupt.png' looks like a "
             "PNG file but is corrupt or truncated", ("parse", "corrupt.png", "--out", "out") + WITH_PARSER,
             exit_code=1),
    BadInput(PARSE, "the face detector missing (faces auto)", "run the set-up again (`make run`, or `bash "
             "scripts/setup.sh`)", ("parse", "photo.png", "--out", "out", "--detector", "no-detector") + WITH_PARSER),
    BadInput(PARSE, "the face detector damaged (faces auto)", "is damaged (its sha256 is not the one set-up recorded)",
             ("parse", "photo.png", "--out", "out", "--detector", "damaged-detector") + WITH_PARSER),
]


def prepare(folder: Path) -> Path:
    """Make the files the cases name (see the module's docstring) in ``folder``; return it."""
    from face_studio.faces.spec import DETECTOR, DETECTORS
    from tests.conftest import build_tiny_parser
    from tests.faces.conftest import DETECTOR_DIR
    from tests.parsing.samples import astronaut
    from webapp.cli import main

    model = build_tiny_parser(folder / ".build" / "model")
    assert main(["export", "--model", str(model), "--out", str(folder / "parser"), "--dtypes", "fp32",
                 "--quiet"]) == 0
    astronaut(folder, "photo.png", (96, 80))
    good = (folder / "photo.png").read_bytes()
    (folder / "corrupt.png").write_bytes(good[: len(good) // 2])
    (folder / "empty").mkdir()
    (folder / "notes.txt").write_text("not a folder\n")
    (folder / "no-detector").mkdir()
    damaged = folder / "damaged-detector"
    shutil.copytree(DETECTOR_DIR, damaged)
    onnx = damaged / DETECTORS[DETECTOR].onnx
    onnx.write_bytes(onnx.read_bytes()[:4096])
    return folder
