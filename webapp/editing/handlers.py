"""Gradio handlers for the Edit view and its ``inpaint`` / ``restyle`` APIs: thin wrappers over
:mod:`webapp.editing.service`. Every value is checked against :mod:`webapp.editing.fields` first, so a
bad one gets a message naming its field; user errors become ``gr.Error`` and the server keeps serving."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
from PIL import Image

from face_studio.images import load_image
from webapp.backend import backend_for
from webapp.editing import fields as F
from webapp.editing.service import EditRequest
from webapp.errors import user_errors
from webapp.settings import ServeSettings


def _progress_fn(progress: gr.Progress):
    return lambda done, total: progress((done, total), desc="denoising", unit="steps")


def _request(v: dict[str, Any]) -> EditRequest:
    return EditRequest(prompt=v["prompt"], negative_prompt=v["negative"], strength=v["strength"], steps=v["steps"],
                       guidance=v["guidance"], seed=v["seed"], grow=v.get("grow", F.DEFAULT_GROW),
                       feather=v.get("feather", F.DEFAULT_FEATHER))


@user_errors
def inpaint_run(settings: ServeSettings, values: Sequence[Any], progress: gr.Progress | None = None):
    """``inpaint`` API (``values`` in :data:`fields.INPAINT` order): (result PNG path, [before, after], record)."""
    # 1. Check inputs: every field, the image, then the mask or region names (parsed on the server).
    v = F.check(F.INPAINT, values)
    photo = load_image(v["image"], what="image")
    mask_img = load_image(v["mask"], what="mask") if v["mask"] else None
    if v.get("faces"):  # chosen faces, a prompt each (webapp.editing.faces)
        result = backend_for(settings).inpaint_faces(photo, _request(v), v["faces"], regions=v["regions"],
                                                     mask=mask_img, face_map=v["face_map"],
                                                     progress=_progress_fn(progress) if progress else None)
        return str(result.path), (photo, Image.open(result.path)), result.record
    labels = None
    if v["regions"]:
        from webapp.parsing import get_parser

        labels = get_parser(settings.parser_dir, provider=settings.parse_provider, device=settings.device).parse(photo)
    # 2. Regenerate inside the mask (the pipeline call: here or on a Ray replica); composite exactly outside it.
    result = backend_for(settings).inpaint(photo, _request(v), mask=mask_img, regions=v["regions"],
                                           labels=labels, mask_regions=v["mask_regions"],
                                           progress=_progress_fn(progress) if progress else None)
    return str(result.path), (photo, Image.open(result.path)), result.record


@user_errors
def restyle_run(settings: ServeSettings, values: Sequence[Any], progress: gr.Progress | None = None):
    """``restyle`` API (Img2Img over the whole image; ``values`` in :data:`fields.RESTYLE` order)."""
    v = F.check(F.RESTYLE, values)
    photo = load_image(v["image"], what="image")
    result = backend_for(settings).restyle(photo, _request(v), progress=_progress_fn(progress) if progress else None)
    return str(result.path), (photo, Image.open(result.path)), result.record
