"""One record per bad input the tests try: the docs' bad-input table (docs/bad-inputs.md, made by
``scripts/bad_inputs_table.py``) is generated from these same records, so it can't drift from the tests.

Each test area that checks bad inputs keeps its cases in a module named ``bad_inputs.py`` (e.g.
``tests/training/bad_inputs.py``) as ``BAD_INPUTS: list[BadInput]`` and parametrizes its tests over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
