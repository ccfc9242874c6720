"""docs/bad-inputs.md is what scripts/bad_inputs_table.py makes from the tests' bad-input records today: a case
added, changed or removed (or a message reworded) without regenerating the page fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("bad_inputs_table", ROOT / "scripts" / "bad_inputs_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_table_is_up_to_date() -> None:
    script = _script()
    page = script.render()
    assert "## face-studio train" in page and "--lr inf" in page
    assert (ROOT / "docs" / "bad-inputs.md").read_text() == page, (
        "docs/bad-inputs.md is out of date: run `python scripts/bad_inputs_table.py` and commit it")


def test_every_record_module_is_collected() -> None:
    found = {m.__name__ for m in _script().modules()}
    assert {"tests.training.bad_inputs", "tests.export.bad_inputs", "tests.parsing.bad_inputs"} <= found
