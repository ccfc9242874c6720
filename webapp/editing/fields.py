"""The ``inpaint`` / ``restyle`` parameters, defined once: name, kind, default and limits
(:class:`webapp.fields.Field`, the records every endpoint's parameters use).

The same records
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

from typing import Any

from webapp.editing.faces import MAX_EDIT_FACES, parse_faces
from webapp.editing.masks import MAX_FEATHER, MAX_GROW, region_names
from webapp.fields import Field, FieldError, endpoint_json
from webapp.fields import check as check_fields
from webapp.generation import presets as P

DEFAULT_STRENGTH = 0.85  # inpainting keeps a little of the original's layout inside the mask
MIN_STRENGTH = 0.05  # below this the few denoising steps left change almost nothing
DEFAULT_GROW = 4
DEFAULT_FEATHER = 8
__all__ = ["ENDPOINTS", "INPAINT", "RESTYLE", "Field", "FieldError", "check", "edit_fields", "endpoints"]


def edit_fields(preset: str = "Custom") -> dict[str, Field]:
    """Every edit parameter, by name; steps and guidance default to ``preset``'s values."""
    spec = P.PRESETS.get(preset, P.PRESETS["Custom"])
    fields = (
        # gr.File, not gr.Image, on the server: Gradio would decode images before our checks.
        Field("image", "file", "Image"),
        Field("mask", "file", "Mask PNG (white = regenerate)"),
        Field("regions", "names", "Regions to regenerate (parsed on the server), e.g. hair,hat", "",
              names=region_names),
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
        Field("mask_regions", "names", "Classes the mask was made from (recorded only)", "", names=region_names),
        Field("faces", "json", 'Faces to edit (JSON), e.g. [{"face": 2, "regions": "hair", "prompt": "red hair"}]',
              "", 1, MAX_EDIT_FACES, hint="each face is one SD run",
              parse=lambda value, what: parse_faces(value, maximum=MAX_EDIT_FACES, what=what)),
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
    return check_fields(edit_fields(preset), names, values)


def endpoints(preset: str = "Custom") -> dict[str, dict]:
    """For the page config: each endpoint's API name and its fields, in the API's order."""
    fields = edit_fields(preset)
    return {api: endpoint_json(api, fields, names) for api, names in ENDPOINTS.items()}
