"""API parameters described once: :class:`Field` records for every endpoint (Generate, Edit, Parse).

The same records
- check every value the API receives (:meth:`Field.check`: one message naming the parameter, its range and
  why — never Gradio's "Could not preprocess input component at index N" or a Python traceback),
- give the views their components' labels, defaults, steps and order, and the API descriptions
  (:func:`api_description`), and
- reach the page in its config (:func:`endpoint_json`), where ``static/js/api-client.js`` maps a view's named
  payload onto Gradio's positional data and the views take their input limits.

:func:`number` is the one number validator (whole or not, finite, in range) behind every numeric field.
Names are the API's parameter names (what ``gradio_client`` users pass as keywords).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from face_studio.errors import UserError

KINDS = ("file", "text", "names", "int", "float", "choice", "json")
MAX_NAMES_TEXT = 400  # characters of a region list: every label and group name, comma-separated, fits twice


class FieldError(UserError, ValueError):
    """A value of the wrong kind or out of range; the message names the field and what to send."""


def fmt(number: float) -> str:
    """``3`` for 3.0, ``0.05`` for 0.05: numbers in messages as people write them."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is None or maximum is None:
        return ""
    return f" between {fmt(minimum)} and {fmt(maximum)}"


def number(value: Any, name: str, *, whole: bool, minimum: float | None = None, maximum: float | None = None,
           hint: str = "") -> int | float:
    """``value`` (a number, or its text from a page) as an int (``whole``) or float, inside
    [``minimum``, ``maximum``]; else :class:`FieldError` saying what ``name`` must be (and ``hint``: why)."""
    what = "a whole number" if whole else "a number"
    parsed = None
    if not isinstance(value, bool) and isinstance(value, (int, float, str)) and str(value).strip():
        try:
            parsed = float(value)
        except ValueError:
            parsed = None
    if parsed is None or not math.isfinite(parsed) or (whole and parsed != int(parsed)):
        raise FieldError(f"{name} must be {what}{range_text(minimum, maximum)}, got {value!r}.")
    parsed = int(parsed) if whole else parsed
    if (minimum is not None and parsed < minimum) or (maximum is not None and parsed > maximum):
        raise FieldError(f"{name} must be{range_text(minimum, maximum)}, got {fmt(parsed)}"
                         f"{': ' + hint if hint else ''}.")
    return parsed


@dataclass(frozen=True)
class Field:
    """One API parameter: how it is checked (kind, limits, choices), its default, how the page shows it."""

    name: str  # the API parameter (gradio_client keyword) and the page's payload key
    kind: str  # one of KINDS
    label: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # the page's input step
    hint: str = ""  # why the range is what it is; ends the range message
    choices: tuple = ()  # kind "choice": the values allowed
    what: str = ""  # the name messages use when it is not ``name`` (e.g. "images per run")
    # kind "names": splits and checks a comma-separated list (e.g. face regions); not sent to the page
    names: Callable[[str, str], list[str]] | None = field(default=None, compare=False, repr=False)
    # kind "json": parses and checks the value (JSON text or already-parsed data), naming the field in errors
    parse: Callable[[Any, str], Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def called(self) -> str:
        return self.what or self.name

    def check(self, value: Any) -> Any:
        """``value`` as the handler uses it (int, float, str, list of names or a file path), or FieldError."""
        if self.kind == "file":  # a path, or Gradio's FileData (model or dict) as the API received it
            path = getattr(value, "path", None) or (value.get("path") if isinstance(value, dict) else value)
            if path is not None and not isinstance(path, str):
                raise FieldError(f"{self.called} must be an uploaded file, got {type(value).__name__}.")
            return path or None
        if self.kind in ("text", "names"):
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise FieldError(f"{self.called} must be text, got {type(value).__name__}.")
            if self.kind == "names" and len(value) > MAX_NAMES_TEXT:  # refused without echoing it back
                raise FieldError(f"{self.called} is {len(value):,} characters long, over the limit of "
                                 f"{MAX_NAMES_TEXT}: give a few comma-separated region names, e.g. hair,hat.")
            return self.names(value, self.name) if self.kind == "names" and self.names else value
        if self.kind == "json":
            return self.parse(value, self.called) if self.parse else value
        if self.kind == "choice":
            if value in (None, "") and self.default is not None:
                return self.default
            if value not in self.choices:
                raise FieldError(f"{self.called} must be one of {', '.join(map(str, self.choices))}, got {value!r}.")
            return value
        return number(value, self.called, whole=self.kind == "int", minimum=self.minimum, maximum=self.maximum,
                      hint=self.hint)

    def as_json(self) -> dict:
        out = {k: getattr(self, k) for k in ("name", "kind", "label", "default", "minimum", "maximum", "step",
                                              "hint")}
        out = {k: v for k, v in out.items() if v is not None and (v != "" or k == "default")}
        if self.choices:
            out["choices"] = list(self.choices)
        return out


def check(fields: dict[str, Field], names: Iterable[str], values: Iterable[Any]) -> dict[str, Any]:
    """Check positional API ``values`` against ``fields[name]`` for ``names``; a dict of the checked values."""
    return {name: fields[name].check(value) for name, value in zip(names, values, strict=True)}


def endpoint_json(api: str, fields: dict[str, Field], names: Iterable[str]) -> dict:
    """For the page config: an endpoint's API name and its fields, in the API's order."""
    return {"api": api, "fields": [fields[n].as_json() for n in names]}


def api_description(summary: str, fields: dict[str, Field], names: Iterable[str]) -> str:
    """The endpoint's API docs text: the summary, then each parameter with its range and default."""
    parts = []
    for name in names:
        f = fields[name]
        bits = [f.kind]
        if f.minimum is not None and f.maximum is not None:
            bits.append(f"{fmt(f.minimum)}–{fmt(f.maximum)}")
        if f.choices:
            bits.append("one of " + ", ".join(map(str, f.choices)))
        if f.default not in (None, ""):
            bits.append(f"default {f.default}")
        parts.append(f"{name} ({', '.join(bits)})")
    return f"{summary} Parameters: {'; '.join(parts)}."
