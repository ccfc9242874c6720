"""The ``inpaint`` / ``restyle`` parameters, defined once: name, kind, default and limits.

The same :class:`Field` records
- check every value the API receives (:func:`check`: one message naming the field, never Gradio's
  "Could not preprocess input component at index N" or a Python traceback),
- lay out the endpoints' hidden components and their order (``webapp/views/edit.py``), and
- reach the page in its config (:func:`endpoints`), where ``static/js/api-client.js`` maps the Edit view's
  named payload ``{prompt, grow, feather, …}`` onto Gradio's positional data and ``edit-view.js`` takes
  its input limits — so adding a field is one edit here and one in the page that sets it.

Names are the API's parameter names (what ``gradio_client`` users pass as keywords); the order is the
API's positional order. Steps and guidance default to the loaded model's preset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from face_studio.errors import UserError
from webapp.editing.faces import MAX_EDIT_FACES, parse_faces
from webapp.editing.masks import MAX_FEATHER, MAX_GROW, region_names
from webapp.generation import presets as P

DEFAULT_STRENGTH = 0.85  # inpainting keeps a little of the original's layout inside the mask
MIN_STRENGTH = 0.05  # below this the few denoising steps left change almost nothing
DEFAULT_GROW = 4
DEFAULT_FEATHER = 8
KINDS = ("file", "text", "names", "int", "float", "faces")
MAX_NAMES_TEXT = 400  # characters of a region list: every label and group name, comma-separated, fits twice


class FieldError(UserError, ValueError):
    """A value of the wrong kind or out of range; the message names the field and what to send."""


@dataclass(frozen=True)
class Field:
    """One API parameter: how it is checked (kind, limits), its default, and how the page shows it."""

    name: str  # the API parameter (gradio_client keyword) and the page's payload key
    kind: str  # one of KINDS
    label: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None  # the page's input step
    hint: str = ""  # why the range is what it is; ends the range message

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    def check(self, value: Any) -> Any:
        """``value`` as the handler uses it (int, float, str, list of names or a file path), or FieldError."""
        if self.kind == "file":  # a path, or Gradio's FileData (model or dict) as the API received it
            path = getattr(value, "path", None) or (value.get("path") if isinstance(value, dict) else value)
            if path is not None and not isinstance(path, str):
                raise FieldError(f"{self.name} must be an uploaded file, got {type(value).__name__}.")
            return path or None
        if self.kind == "faces":  # a JSON list of {face, prompt, regions}; maximum = how many in one request
            return parse_faces(value, maximum=int(self.maximum or MAX_EDIT_FACES), what=self.name)
        if self.kind in ("text", "names"):
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise FieldError(f"{self.name} must be text, got {type(value).__name__}.")
            if self.kind == "names" and len(value) > MAX_NAMES_TEXT:  # refused without echoing it back
                raise FieldError(f"{self.name} is {len(value):,} characters long, over the limit of "
                                 f"{MAX_NAMES_TEXT}: give a few comma-separated region names, e.g. hair,hat.")
            return region_names(value, self.name) if self.kind == "names" else value
        return self._number(value)

    def _number(self, value: Any) -> int | float:
        whole = self.kind == "int"
        what = "a whole number" if whole else "a number"
        number = None
        if not isinstance(value, bool) and isinstance(value, (int, float, str)) and str(value).strip():
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number) or (whole and number != int(number)):
            raise FieldError(f"{self.name} must be {what}{self._range_text()}, got {value!r}.")
        number = int(number) if whole else number
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None
                                                                    and number > self.maximum):
            raise FieldError(f"{self.name} must be{self._range_text()}, got {_fmt(number)}"
                             f"{': ' + self.hint if self.hint else ''}.")
        return number

    def _range_text(self) -> str:
        if self.minimum is None or self.maximum is None:
            return ""
        return f" between {_fmt(self.minimum)} and {_fmt(self.maximum)}"

    def as_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and (v != "" or k == "default")}


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def edit_fields(preset: str = "Custom") -> dict[str, Field]:
    """Every edit parameter, by name; steps and guidance default to ``preset``'s values."""
    spec = P.PRESETS.get(preset, P.PRESETS["Custom"])
    fields = (
        # gr.File, not gr.Image, on the server: Gradio would decode images before our checks.
        Field("image", "file", "Image"),
        Field("mask", "file", "Mask PNG (white = regenerate)"),
        Field("regions", "names", "Regions to regenerate (parsed on the server), e.g. hair,hat", ""),
        Field("prompt", "text", "Prompt", ""),
        Field("negative", "text", "Negative prompt", ""),
        Field("strength", "float", f"Strength ({MIN_STRENGTH:g}–1)", DEFAULT_STRENGTH, MIN_STRENGTH, 1.0, 0.05,
              "1 ignores what was there, lower keeps more of it"),
        Field("steps", "int", "Steps", spec.steps, P.MIN_STEPS, P.MAX_STEPS, 1),
        Field("guidance", "float", "Guidance", spec.guidance, P.MIN_GUIDANCE, P.MAX_GUIDANCE, 0.5),
        Field("seed", "int", "Seed (-1 = random)", -1, -1, P.MAX_SEED, 1, "-1 picks a random seed"),
        Field("grow", "int", f"Grow (px, ±{MAX_GROW}; negative shrinks)", DEFAULT_GROW, -MAX_GROW, MAX_GROW, 1,
              "beyond that, paint the mask instead"),
        Field("feather", "int", f"Feather (px, 0–{MAX_FEATHER})", DEFAULT_FEATHER, 0, MAX_FEATHER, 1),
        Field("mask_regions", "names", "Classes the mask was made from (recorded only)", ""),
        Field("faces", "faces", 'Faces to edit (JSON), e.g. [{"face": 2, "regions": "hair", "prompt": "red hair"}]',
              "", 1, MAX_EDIT_FACES, hint="each face is one SD run"),
        Field("face_map", "file", "Face map PNG (pixel value = face number; the page's face parse)"),
    )
    return {f.name: f for f in fields}


# The APIs' parameters, in their positional order.
INPAINT = ("image", "mask", "regions", "prompt", "negative", "strength", "steps", "guidance", "seed", "grow",
           "feather", "mask_regions", "faces", "face_map")
RESTYLE = ("image", "prompt", "negative", "strength", "steps", "guidance", "seed")
ENDPOINTS: dict[str, tuple[str, ...]] = {"inpaint": INPAINT, "restyle": RESTYLE}


def check(names: tuple[str, ...], values: tuple[Any, ...] | list[Any], preset: str = "Custom") -> dict[str, Any]:
    """Check positional API ``values`` against the fields ``names``; a dict of the checked values."""
    fields = edit_fields(preset)
    return {name: fields[name].check(value) for name, value in zip(names, values, strict=True)}


def endpoints(preset: str = "Custom") -> dict[str, dict]:
    """For the page config: each endpoint's API name and its fields, in the API's order."""
    fields = edit_fields(preset)
    return {api: {"api": api, "fields": [fields[n].as_json() for n in names]} for api, names in ENDPOINTS.items()}
