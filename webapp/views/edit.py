"""Edit view: parse in the browser, pick regions, paint, grow/feather, then regenerate only those on the server.

The page's UI is ours (``static/js/edit-view.js``, mounted into a ``gr.HTML``): it parses the photo in
the browser with the same worker as the Parse view, builds the mask, and uploads image + mask once, after
the user confirms. The ``inpaint`` and ``restyle`` endpoints below (hidden components) are what it and
``gradio_client`` call; both queue on the backend's GPU lane (``webapp.backend``), with ``generate``. Their
parameters — order, defaults, limits — come from :mod:`webapp.editing.fields`, which the page gets too.
"""

from __future__ import annotations

import html
import inspect
import json
from collections.abc import Callable
from functools import partial

import gradio as gr

from webapp.backend import backend_for
from webapp.editing import fields as F
from webapp.editing import handlers
from webapp.editing.masks import MAX_COVERAGE
from webapp.fields import api_description
from webapp.routes import ASSETS_PATH
from webapp.settings import ServeSettings
from webapp.views.parse import page_config

HEAD = f'<link rel="stylesheet" href="{ASSETS_PATH}/css/edit.css">'
MOUNT_JS = f"import('{ASSETS_PATH}/js/edit-view.js').then((m) => m.mount(element));"


def _component(field: F.Field) -> gr.components.Component:
    if field.kind == "file":
        return gr.File(label=field.label, type="filepath")
    if field.kind in ("text", "names"):
        return gr.Textbox(label=field.label)
    # Plain numbers: ranges are checked by the fields, whose errors say what to use instead.
    return gr.Number(value=field.default, label=field.label, precision=0 if field.kind == "int" else None)


def _endpoint(names: tuple[str, ...], run: Callable) -> Callable:
    """A Gradio function whose parameters are ``names`` (the API's parameter names for gradio_client),
    then ``progress``, which Gradio passes positionally after them."""
    def fn(*args):
        return run(args[:len(names)], progress=args[len(names)] if len(args) > len(names) else None)

    # Every parameter after the image may be left out by gradio_client callers (its component's value or None
    # is sent): a parameter added later (faces, face_map) does not break a call written before it.
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=inspect.Parameter.empty if i == 0 else None) for i, n in enumerate(names)]
    params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return fn


def edit_config(settings: ServeSettings) -> dict:
    """The Parse view's model config plus the edit endpoints' fields (defaults for the loaded model)."""
    backend = backend_for(settings)
    config = page_config(settings)
    return {**config, "api": {**config["api"], **F.endpoints(backend.default_preset)}, "maxCoverage": MAX_COVERAGE,
            "generationUnavailable": backend.unavailable_reason}


def build(settings: ServeSettings) -> None:
    """Lay out the Edit tab inside the current Blocks."""
    config = edit_config(settings)
    if config["generationUnavailable"]:
        gr.Markdown(f"**Editing needs the generation model:** {config['generationUnavailable']}",
                    elem_id="edit-unavailable")
    gr.HTML(f'<div class="fs-edit" data-config="{html.escape(json.dumps(config))}">'
            '<p>Loading the editor…</p></div>', js_on_load=MOUNT_JS, elem_id="edit-root",
            apply_default_css=False)

    # The server endpoints (hidden components; the page and gradio_client call them by name). preprocess=False:
    # every value reaches webapp.editing.fields as sent, so NaN, None or text get a message naming the field
    # instead of Gradio's "Could not preprocess input component at index N".
    backend = backend_for(settings)
    fields = F.edit_fields(backend.default_preset)
    with gr.Group(visible=False):
        inputs = {name: _component(field) for name, field in fields.items()}
        result = gr.File(label="Result PNG (with parameters)")
        compare = gr.ImageSlider(label="Before / after", type="pil")
        record = gr.JSON(label="Edit record")
        inpaint_button = gr.Button("Inpaint")
        restyle_button = gr.Button("Restyle")

    # The two GPU endpoints, as data: (button, API name, parameter names, handler, description).
    endpoints = (
        (inpaint_button, "inpaint", F.INPAINT, handlers.inpaint_run,
         "Regenerate the masked regions (mask PNG and/or class names); pixels outside the feathered mask are kept "
         "bit-exact. Returns the PNG, before/after and the edit record."),
        (restyle_button, "restyle", F.RESTYLE, handlers.restyle_run,
         "Img2Img over the whole image with a strength (0 keeps it, 1 replaces it), at the photo's aspect."),
    )
    for button, api_name, names, handler, description in endpoints:
        button.click(
            _endpoint(names, partial(handler, settings)),
            inputs=[inputs[n] for n in names],
            outputs=[result, compare, record], api_name=api_name, preprocess=False,
            concurrency_id=backend.lane(api_name).concurrency_id, concurrency_limit=backend.lane(api_name).limit,
            api_description=api_description(description, fields, names),
        )
