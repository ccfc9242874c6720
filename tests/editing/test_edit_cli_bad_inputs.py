"""The ``face-studio edit`` cases of tests/editing/bad_inputs.py: one line naming the problem, exit 2, no
traceback, nothing written — each fails before a model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input import run_cli_case
from tests.editing.bad_inputs import BAD_INPUTS, prepare


@pytest.fixture(scope="module")
def case_folder(tmp_path_factory) -> Path:
    return prepare(tmp_path_factory.mktemp("edit-bad-inputs"))


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c.surface.startswith("face-studio ")],
                         ids=lambda case: case.id)
def test_bad_input(case, case_folder: Path, monkeypatch, capsys) -> None:
    run_cli_case(case, case_folder, monkeypatch, capsys)
