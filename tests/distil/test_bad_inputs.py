"""Every bad input in tests/distil/bad_inputs.py: exit 2, one line naming the problem, no output folder left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.bad_input import snapshot
from tests.conftest import build_tiny_parser
from tests.distil.bad_inputs import BAD_INPUTS, distil
from tests.distil.conftest import plain_photos
from webapp.cli import main

RESUME_CASES = [c for c in BAD_INPUTS if "{run}" in c.args]
FRESH_CASES = [c for c in BAD_INPUTS if "{run}" not in c.args]


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
            "five_classes": five, "other_photos": plain_photos(root / "other", 6, 7300)}


def _argv(case_args, folders: dict[str, Path], **paths: Path) -> list[str]:
    return [a.format(**paths, **{k: str(v) for k, v in folders.items()}) for a in case_args]


@pytest.fixture(scope="module")
def finished_run(folders, tmp_path_factory) -> Path:
    """A finished two-epoch distil run (checkpoint-2 and checkpoint-4), for the --resume cases to copy."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(_argv(distil(out=str(run)), folders)) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    return run


@pytest.mark.parametrize("case", FRESH_CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line_and_leaves_nothing(case, folders, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _argv(case.args, folders, out=out)
    capsys.readouterr()
    assert main(argv) == case.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and case.expect in err[-1], err[-3:]
    assert "Traceback" not in "\n".join(err)
    assert not out.exists(), f"{case.id} left {sorted(p.name for p in out.rglob('*'))}"


@pytest.mark.parametrize("case", RESUME_CASES, ids=lambda c: c.id)
def test_resume_refuses_another_run_and_changes_nothing(case, folders, finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    capsys.readouterr()
    assert main(_argv(case.args, folders, run=run)) == case.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and case.expect in err[-1], err[-3:]
    assert "Traceback" not in "\n".join(err)
    assert snapshot(run) == before


def test_resume_from_a_truncated_checkpoint_falls_back_to_the_one_before(folders, finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    weights = run / "checkpoints" / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    capsys.readouterr()
    argv = _argv(distil(out=str(run)), folders)
    argv[argv.index("--epochs") + 1] = "3"
    assert main([*argv, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "checkpoint-4 can't be resumed from: model.safetensors is truncated" in err, err
    assert "set aside as damaged-checkpoint-4" in err
    summary = json.loads((run / "training.json").read_text())
    assert summary["resumed_from"] == "checkpoint-2" and summary["epochs"] == 3
    assert (run / "checkpoints" / "damaged-checkpoint-4").is_dir()


def test_resume_with_the_same_photos_in_a_moved_folder_continues(folders, finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    moved = shutil.copytree(folders["photos"], tmp_path / "moved-photos")
    argv = _argv(distil(out=str(run), images=str(moved)), folders)
    argv[argv.index("--epochs") + 1] = "3"
    assert main([*argv, "--resume"]) == 0
    assert json.loads((run / "training.json").read_text())["resumed_from"] == "checkpoint-4"


def test_a_teacher_cache_too_big_for_memory_is_refused_before_any_work(tmp_path):
    from face_studio.errors import UserError
    from face_studio.training.distil import check_resources

    with pytest.raises(UserError, match="of memory for the teacher's targets"):
        check_resources(tmp_path, 10**6, 2048)
    check_resources(tmp_path, 64, 256)  # 64 photos at 256: ~22 MB
    assert list(tmp_path.iterdir()) == []
