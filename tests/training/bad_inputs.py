"""Bad inputs of ``face-studio synth``, ``train`` and ``evaluate`` (the docs' table is generated from these).

Each case's ``args`` is the argv of ``face-studio``; it runs with a folder made by :func:`prepare` as the working
folder, so the names in it are real: ``faces/`` (4 labelled synthetic faces, 64 px), ``model/`` (a tiny random
face parser, saved with save_pretrained), ``corrupt-model/`` (the same with a truncated model.safetensors) and
``notes.txt`` (a plain file). Every case must change no file there.
"""

from __future__ import annotations

from pathlib import Path

from tests.bad_input import BadInput

SYNTH, TRAIN, EVALUATE = "face-studio synth", "face-studio train", "face-studio evaluate"
SYNTH_ARGS = ("synth", "--out", "new-faces", "--quiet")
TRAIN_ARGS = ("train", "--data", "faces", "--base", "model", "--out", "run", "--quiet")
EVAL_ARGS = ("evaluate", "--model", "model", "--data", "faces", "--quiet")

BAD_INPUTS: list[BadInput] = [
    BadInput(SYNTH, "--size 100000", "--size must be at most 2048 (got 100000)", SYNTH_ARGS + ("--size", "100000")),
    BadInput(SYNTH, "--size 32", "--size must be at least 64 (got 32)", SYNTH_ARGS + ("--size", "32")),
    BadInput(SYNTH, "-n 1000000", "-n must be at most 100000 (got 1000000)", SYNTH_ARGS + ("-n", "1000000")),
    BadInput(SYNTH, "-n 0", "-n must be at least 1 (got 0)", SYNTH_ARGS + ("-n", "0")),
    BadInput(SYNTH, "--seed -5", "--seed must be 0 or more (got -5)", SYNTH_ARGS + ("--seed", "-5")),
    BadInput(SYNTH, "--seed 4294967295 -n 2", "runs past the last seed, 4294967295 (face i uses seed + i): use "
             "--seed 4294967294 or less", SYNTH_ARGS + ("--seed", "4294967295", "-n", "2")),
    BadInput(SYNTH, "--out a file", "--out notes.txt is a file", ("synth", "--out", "notes.txt", "-n", "2")),
    BadInput(TRAIN, "--lr inf", "--lr must be a positive number (got inf)", TRAIN_ARGS + ("--lr", "inf")),
    BadInput(TRAIN, "--lr 0", "--lr must be a positive number (got 0.0)", TRAIN_ARGS + ("--lr", "0")),
    BadInput(TRAIN, "--epochs nan", "--epochs must be a positive number (got nan)", TRAIN_ARGS + ("--epochs", "nan")),
    BadInput(TRAIN, "--seed -5", "--seed must be 0…4294967295 (got -5)", TRAIN_ARGS + ("--seed", "-5")),
    BadInput(TRAIN, "--size 100", "--size must be a multiple of 32", TRAIN_ARGS + ("--size", "100")),
    BadInput(TRAIN, "--size 4096", "--size must be at most 2048 (got 4096)", TRAIN_ARGS + ("--size", "4096")),
    BadInput(TRAIN, "--base with a truncated model.safetensors", "model.safetensors is corrupt or truncated",
             ("train", "--data", "faces", "--base", "corrupt-model", "--out", "run", "--quiet")),
    BadInput(EVALUATE, "--batch 0", "--batch must be at least 1 (got 0)", EVAL_ARGS + ("--batch", "0")),
    BadInput(EVALUATE, "--size 17", "--size must be a multiple of 32 from 32 to 2048 (got 17)",
             EVAL_ARGS + ("--size", "17")),
    BadInput(EVALUATE, "--limit -1", "--limit must be at least 1 (got -1)", EVAL_ARGS + ("--limit", "-1")),
    BadInput(EVALUATE, "--limit 0", "--limit must be at least 1 (got 0)", EVAL_ARGS + ("--limit", "0")),
    BadInput(EVALUATE, "--model with a truncated model.safetensors", "model.safetensors is corrupt or truncated",
             ("evaluate", "--model", "corrupt-model", "--data", "faces", "--quiet")),
]


def prepare(folder: Path) -> Path:
    """Make the files the cases name (see the module's docstring) in ``folder``; return it."""
    from face_studio.training.synth import write_dataset
    from tests.conftest import build_tiny_parser
    from tests.export.bad_inputs import truncate_weights

    write_dataset(folder / "faces", 4, 64, 0, progress=False)
    build_tiny_parser(folder / "model")
    truncate_weights(build_tiny_parser(folder / "corrupt-model"))
    (folder / "notes.txt").write_text("not a folder\n")
    return folder
