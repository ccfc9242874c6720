"""One record per bad input the tests try: the docs' bad-input table (docs/bad-inputs.md, made by
``scripts/bad_inputs_table.py``) is generated from these same records, so it can't drift from the tests.

Each test area that checks bad inputs keeps its cases in a module named ``bad_inputs.py`` (e.g.
``tests/training/bad_inputs.py``) as ``BAD_INPUTS: list[BadInput]`` and parametrizes its tests over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BadInput:
    surface: str  # where the user meets it: "face-studio train", "API inpaint", "Parse view", …
    tried: str  # what was tried, in the user's words: "--lr inf", "grow = None"
    expect: str  # a fragment of the message the user sees (the test asserts it; the table prints it)
    args: tuple[Any, ...] = ()  # what the test passes: argv for a CLI case, positional values for an API case
    kwargs: dict[str, Any] = field(default_factory=dict)  # keyword values for an API/function case
    exit_code: int | None = 2  # CLI cases: the expected exit code (None where it is not a CLI)

    @property
    def id(self) -> str:
        return f"{self.surface}: {self.tried}"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: (size, mtime) by relative path."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def run_cli_case(case: BadInput, folder: Path, monkeypatch, capsys) -> str:
    """Run the CLI case ``case`` in ``folder`` and return its stderr, having checked the exit code, the message,
    no traceback, and that no file under ``folder`` was written or changed."""
    from webapp.cli import main

    monkeypatch.chdir(folder)
    before = snapshot(folder)
    assert main(list(case.args)) == case.exit_code
    err = capsys.readouterr().err
    assert case.expect in err and "Traceback" not in err
    assert snapshot(folder) == before
    return err
