"""Every case of tests/training/bad_inputs.py: one line naming the problem, the exit code, no traceback, and no
file written or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.bad_inputs import BAD_INPUTS, prepare
from webapp.cli import main


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime) by relative path."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("training-bad-inputs"))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(case_folder)
    before = snapshot(case_folder)
    assert main(list(case.args)) == case.exit_code
    err = capsys.readouterr().err
    assert case.expect in err
    assert "Traceback" not in err and err.strip().startswith("error:")
    assert snapshot(case_folder) == before
    assert [p.name for p in case_folder.iterdir() if p.name in ("run", "new-faces")] == []
