"""Every case of tests/export/bad_inputs.py: one line naming the problem, the exit code, no traceback, and no
file written or changed (no export folder, no temp folder left)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input import run_cli_case
from tests.export.bad_inputs import BAD_INPUTS, prepare


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("export-bad-inputs"))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    names = sorted(p.name for p in case_folder.iterdir())
    run_cli_case(case, case_folder, monkeypatch, capsys)
    assert sorted(p.name for p in case_folder.iterdir()) == names
