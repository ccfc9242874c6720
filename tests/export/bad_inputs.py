"""Bad inputs of ``face-studio export`` and ``verify`` (the docs' table is generated from these).

Each case's ``args`` is the argv of ``face-studio``; it runs with a folder made by :func:`prepare` as the working
folder: ``model/`` (a tiny random face parser), ``corrupt-model/`` (its model.safetensors cut in half),
``vit/`` (a tiny image classifier, not a SegFormer), ``wrong-labels/`` (a parser whose id2label swaps the eyes)
and ``notes.txt`` (a plain file). Every case must change no file there. The hub is offline in the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.bad_input import BadInput

EXPORT, VERIFY = "face-studio export", "face-studio verify"

BAD_INPUTS: list[BadInput] = [
    BadInput(EXPORT, "--model with a truncated model.safetensors", "weights are corrupt or truncated",
             ("export", "--model", "corrupt-model", "--out", "exp", "--quiet")),
    BadInput(EXPORT, "--model that is not a SegFormer", "ViTForImageClassification, not a "
             "SegformerForSemanticSegmentation", ("export", "--model", "vit", "--out", "exp", "--quiet")),
    BadInput(EXPORT, "--model with the labels in another order", "4: r_eye (expected l_eye)",
             ("export", "--model", "wrong-labels", "--out", "exp", "--quiet")),
    BadInput(EXPORT, "--model a folder that does not exist", "no such folder",
             ("export", "--model", "./missing", "--out", "exp", "--quiet")),
    BadInput(EXPORT, "--model a hub id while offline", "give a local folder",
             ("export", "--model", "someone/face-parser", "--out", "exp", "--quiet")),
    BadInput(EXPORT, "--dtypes fp32,int4", "unknown dtype(s) int4",
             ("export", "--model", "model", "--out", "exp", "--dtypes", "fp32,int4", "--quiet")),
    BadInput(EXPORT, "--out inside a file", "notes.txt is a file, not a folder",
             ("export", "--model", "model", "--out", "notes.txt/exp", "--quiet")),
    BadInput(EXPORT, "--out a file", "is a file: give a folder path",
             ("export", "--model", "model", "--out", "notes.txt", "--quiet")),
    BadInput(EXPORT, "--eval-data a folder that does not exist", "--eval-data missing: no such folder",
             ("export", "--model", "model", "--out", "exp", "--eval-data", "missing", "--quiet")),
    BadInput(VERIFY, "a folder that does not exist", "missing: no such folder", ("verify", "missing"), exit_code=1),
    BadInput(VERIFY, "a folder without manifest.json", "manifest.json: missing or not valid JSON",
             ("verify", "model"), exit_code=1),
]


def truncate_weights(model_dir: Path) -> Path:
    """Cut ``model_dir/model.safetensors`` in half, as an interrupted download or copy leaves it."""
    weights = model_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return model_dir


def prepare(folder: Path) -> Path:
    """Make the files the cases name (see the module's docstring) in ``folder``; return it."""
    from transformers import ViTConfig, ViTForImageClassification

    from face_studio.labels import NAMES
    from tests.conftest import build_tiny_parser

    build_tiny_parser(folder / "model")
    truncate_weights(build_tiny_parser(folder / "corrupt-model"))
    cfg = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                    image_size=32, patch_size=16)
    ViTForImageClassification(cfg).save_pretrained(folder / "vit")
    wrong = build_tiny_parser(folder / "wrong-labels")
    config = json.loads((wrong / "config.json").read_text())
    names = list(NAMES)
    names[4], names[5] = names[5], names[4]  # an older label order: eyes swapped
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (wrong / "config.json").write_text(json.dumps(config))
    (folder / "notes.txt").write_text("not a folder\n")
    return folder
