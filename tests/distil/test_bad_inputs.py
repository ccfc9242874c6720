"""Every bad input in tests/distil/bad_inputs.py: exit 2, one line naming the problem, no output folder left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import build_tiny_parser
from tests.distil.bad_inputs import BAD_INPUTS
from tests.distil.conftest import plain_photos
from webapp.cli import main


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    import torch
    from transformers import SegformerForSemanticSegmentation

    from face_studio.configs import face_parser_config

    root = tmp_path_factory.mktemp("bad-distil")
    photos = plain_photos(root / "photos", 6, 7000)
    broken = plain_photos(root / "broken", 3, 7100)
    (broken / "notes.jpg").write_text("not a picture")
    one = plain_photos(root / "one", 1, 7200)
    (root / "empty").mkdir()
    bert = root / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (bert / "model.safetensors").write_bytes(b"")
    five = root / "five"
    config = face_parser_config("tiny")
    config.num_labels, config.id2label, config.label2id = 5, {i: f"c{i}" for i in range(5)}, {}
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(config).save_pretrained(five)
    return {"teacher": build_tiny_parser(root / "teacher"), "photos": photos, "broken_photos": broken,
            "one_photo": one, "empty": root / "empty", "missing": root / "missing", "bert": bert,
            "five_classes": five}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line_and_leaves_nothing(case, folders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [a.format(out=out, **{k: str(v) for k, v in folders.items()}) for a in case.args]
    capsys.readouterr()
    assert main(argv) == case.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and case.expect in err[-1], err[-3:]
    assert "Traceback" not in "\n".join(err)
    assert not out.exists(), f"{case.id} left {sorted(p.name for p in out.rglob('*'))}"
