"""Edit view: parse in the browser, pick regions, paint, grow/feather, then regenerate only those on the server.

The page's UI is ours (``static/js/edit-view.js``, mounted into a ``gr.HTML``): it parses the photo in
the browser with the same worker as the Parse view, builds the mask, and uploads image + mask once, after
the user confirms. The ``inpaint`` and ``restyle`` endpoints below (hidden components) are what it and
``gradio_client`` call; both run in the GPU queue shared with ``generate`` (one job at a time).
"""

from __future__ import annotations

import html
import json

import gradio as gr

from webapp.editing import handlers
from webapp.editing.masks import MAX_FEATHER, MAX_GROW
from webapp.editing.service import DEFAULT_FEATHER, DEFAULT_GROW, DEFAULT_STRENGTH
from webapp.generation.service import GPU_CONCURRENCY_ID  # one SD3 job at a time per GPU, with generate
from webapp.routes import ASSETS_PATH
from webapp.settings import ServeSettings
from webapp.views.parse import page_config

HEAD = f'<link rel="stylesheet" href="{ASSETS_PATH}/css/edit.css">'
MOUNT_JS = f"import('{ASSETS_PATH}/js/edit-view.js').then((m) => m.mount(element));"


def edit_config(settings: ServeSettings) -> dict:
    """The Parse view's model config plus what the Edit page needs to call the server."""
    from webapp.generation.service import get_service

    unavailable = get_service(settings).unavailable_reason
    return {**page_config(settings), "inpaintApi": "inpaint", "restyleApi": "restyle",
            "generationUnavailable": unavailable,
            "defaults": {"strength": DEFAULT_STRENGTH, "grow": DEFAULT_GROW, "feather": DEFAULT_FEATHER,
                         "maxGrow": MAX_GROW, "maxFeather": MAX_FEATHER, "steps": 28, "guidance": 4.5}}


def build(settings: ServeSettings) -> None:
    """Lay out the Edit tab inside the current Blocks."""
    config = edit_config(settings)
    if config["generationUnavailable"]:
        gr.Markdown(f"**Editing needs the generation model:** {config['generationUnavailable']}",
                    elem_id="edit-unavailable")
    gr.HTML(f'<div class="fs-edit" data-config="{html.escape(json.dumps(config))}">'
            '<p>Loading the editor…</p></div>', js_on_load=MOUNT_JS, elem_id="edit-root",
            apply_default_css=False)

    # The server endpoints (hidden components; the page and gradio_client call them by name).
    with gr.Group(visible=False):
        # gr.File, not gr.Image: Gradio would decode images before our checks (clear errors, pixel limit).
        image = gr.File(label="Image", type="filepath")
        mask = gr.File(label="Mask PNG (white = regenerate)", type="filepath")
        regions = gr.Textbox(label="Regions to regenerate (parsed on the server), e.g. hair,hat")
        prompt = gr.Textbox(label="Prompt")
        negative = gr.Textbox(label="Negative prompt")
        # Plain numbers: ranges are checked by the service, whose errors say what to use instead.
        strength = gr.Number(value=DEFAULT_STRENGTH, label="Strength (0.05–1)")
        steps = gr.Number(value=28, precision=0, label="Steps")
        guidance = gr.Number(value=4.5, label="Guidance")
        seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
        grow = gr.Number(value=DEFAULT_GROW, precision=0, label=f"Grow (px, ±{MAX_GROW}; negative shrinks)")
        feather = gr.Number(value=DEFAULT_FEATHER, precision=0, label=f"Feather (px, 0–{MAX_FEATHER})")
        mask_regions = gr.Textbox(label="Classes the mask was made from (recorded only)")
        result = gr.File(label="Result PNG (with parameters)")
        compare = gr.ImageSlider(label="Before / after", type="pil")
        record = gr.JSON(label="Edit record")
        inpaint_button = gr.Button("Inpaint")
        restyle_button = gr.Button("Restyle")

    def edit_inpaint(image, mask, regions, prompt, negative, strength, steps, guidance, seed, grow, feather,
                     mask_regions, progress=gr.Progress()):
        return handlers.inpaint_run(settings, image, mask, regions, prompt, negative, strength, steps, guidance,
                                    seed, grow, feather, mask_regions, progress=progress)

    def edit_restyle(image, prompt, negative, strength, steps, guidance, seed, progress=gr.Progress()):
        return handlers.restyle_run(settings, image, prompt, negative, strength, steps, guidance, seed,
                                    progress=progress)

    inpaint_button.click(
        edit_inpaint,
        inputs=[image, mask, regions, prompt, negative, strength, steps, guidance, seed, grow, feather, mask_regions],
        outputs=[result, compare, record], api_name="inpaint", concurrency_id=GPU_CONCURRENCY_ID, concurrency_limit=1,
        api_description="Regenerate the masked regions (mask PNG and/or class names); pixels outside the "
                        "feathered mask are kept bit-exact. Returns the PNG, before/after and the edit record.",
    )
    restyle_button.click(
        edit_restyle,
        inputs=[image, prompt, negative, strength, steps, guidance, seed],
        outputs=[result, compare, record], api_name="restyle", concurrency_id=GPU_CONCURRENCY_ID, concurrency_limit=1,
        api_description="Img2Img over the whole image with a strength (0 keeps it, 1 replaces it).",
    )
