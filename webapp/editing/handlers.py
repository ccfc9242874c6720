"""Gradio handlers for the Edit view and its ``inpaint`` / ``restyle`` APIs: thin wrappers over
:mod:`webapp.editing.service`; user errors become ``gr.Error`` and the server keeps serving."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from face_studio.errors import UserError
from face_studio.images import load_image
from webapp.editing.service import EditRequest, edit_image, restyle_image
from webapp.settings import ServeSettings


def _service(settings: ServeSettings):
    from webapp.generation.service import get_service

    return get_service(settings)


def _progress_fn(progress: gr.Progress):
    return lambda done, total: progress((done, total), desc="denoising", unit="steps")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def inpaint_run(settings: ServeSettings, image: str | None, mask: str | None, regions: str | None, prompt: str,
                negative_prompt: str, strength: float, steps: int, guidance: float, seed: int, grow: int,
                feather: int, mask_regions: str | None = "", progress: gr.Progress | None = None):
    """``inpaint`` API: (result PNG path, [before, after], record)."""
    try:
        # 1. Check inputs: the image, then the mask or region names (parsed on the server).
        photo = load_image(image, what="image")
        mask_img = load_image(mask, what="mask") if mask else None
        labels = None
        if _names(regions):
            from webapp.parsing import get_parser

            labels = get_parser(settings.parser_dir).parse(photo)
        req = EditRequest(prompt=prompt, negative_prompt=negative_prompt or "", strength=strength, steps=steps,
                          guidance=guidance, seed=seed, grow=grow, feather=feather)
        # 2. Regenerate inside the mask; composite exactly outside it.
        result = edit_image(_service(settings), photo, req, mask=mask_img, regions=_names(regions),
                            labels=labels, mask_regions=_names(mask_regions),
                            progress=_progress_fn(progress) if progress else None)
    except UserError as err:
        raise gr.Error(str(err), print_exception=False) from None
    return str(result.path), (photo, Image.open(result.path)), result.record


def restyle_run(settings: ServeSettings, image: str | None, prompt: str, negative_prompt: str, strength: float,
                steps: int, guidance: float, seed: int, progress: gr.Progress | None = None):
    """``restyle`` API (Img2Img over the whole image): (result PNG path, [before, after], record)."""
    try:
        photo = load_image(image, what="image")
        req = EditRequest(prompt=prompt, negative_prompt=negative_prompt or "", strength=strength, steps=steps,
                          guidance=guidance, seed=seed)
        result = restyle_image(_service(settings), photo, req,
                               progress=_progress_fn(progress) if progress else None)
    except UserError as err:
        raise gr.Error(str(err), print_exception=False) from None
    return str(result.path), (photo, Image.open(result.path)), result.record
