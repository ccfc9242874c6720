"""Every case of tests/export/bad_inputs.py: one line naming the problem, the exit code, no traceback, and no
file written or changed (no export folder, no temp folder left)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.bad_inputs import BAD_INPUTS, prepare
from tests.training.test_bad_inputs import snapshot
from webapp.cli import main


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("export-bad-inputs"))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(case_folder)
    before = snapshot(case_folder)
    names = sorted(p.name for p in case_folder.iterdir())
    assert main(list(case.args)) == case.exit_code
    err = capsys.readouterr().err
    assert case.expect in err and "Traceback" not in err
    assert snapshot(case_folder) == before
    assert sorted(p.name for p in case_folder.iterdir()) == names
