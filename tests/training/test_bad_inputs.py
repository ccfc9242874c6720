"""Every case of tests/training/bad_inputs.py: one line naming the problem, the exit code, no traceback, and no
file written or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input import run_cli_case
from tests.training.bad_inputs import BAD_INPUTS, prepare


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("training-bad-inputs"))


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    err = run_cli_case(case, case_folder, monkeypatch, capsys)
    assert err.strip().startswith("error:")
    assert [p.name for p in case_folder.iterdir() if p.name in ("run", "new-faces")] == []
