"""Parse view: face parsing in the browser (static/js/parse-view.js) and the server ``parse`` API.

The page's UI is ours (an ES module mounted into a ``gr.HTML``): it runs the model in a Web Worker with
transformers.js and calls the ``parse`` endpoint below only as a fallback or when the user asks for
the server. The endpoint's components are hidden; ``gradio_client`` and the page call it by name.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import gradio as gr
from PIL import Image

from face_studio.images import MAX_PIXELS, MAX_SIDE, load_image
from face_studio.onnx_files import LABELS_FILES, current_labels_graphs
from face_studio.preprocess import input_size, overlay
from webapp.backend import backend_for
from webapp.errors import user_errors
from webapp.fields import Field, api_description, endpoint_json
from webapp.parsing import (
    DEFAULT_DTYPE,
    DEFAULT_FACES,
    DTYPES,
    FACES_MODES,
    area_summary,
    available_dtypes,
    faces_summary,
    missing_export_message,
)
from webapp.routes import ASSETS_PATH, PARSER_PATH, live_parser_model_id, parser_model_id
from webapp.settings import ServeSettings

CSS_URL = f"{ASSETS_PATH}/css/parse.css"
HEAD = f'<link rel="stylesheet" href="{CSS_URL}">'
MOUNT_JS = f"import('{ASSETS_PATH}/js/parse-view.js').then((m) => m.mount(element));"
OVERLAY_OPACITY = 0.5
PARSE_CONCURRENCY_ID = "parse"  # a queue lane of its own (webapp.app.setup_queue): never behind GPU jobs
# The parse API's parameters (positional order) and their records: the page config and API docs come from them.
PARSE = ("file", "dtype", "faces")
PARSE_FIELDS = {f.name: f for f in (
    Field("file", "file", "Image"),
    Field("dtype", "choice", "ONNX dtype", DEFAULT_DTYPE, choices=tuple(DTYPES)),
    Field("faces", "choice", "Faces", DEFAULT_FACES, choices=tuple(FACES_MODES),
          hint="auto: each face parsed on its own crop (the whole image when none is found); largest; off: the "
               "whole image"))}
PARSE_SUMMARY = ("Face parsing with ONNX Runtime: label map PNG (pixel = class id), overlay, summary "
                 "(the faces found, each parsed on its own crop, are in the summary).")
LIVE_HOW_TO = ("Make a small live parser with `face-studio distil --teacher jonathandinu/face-parsing "
               "--images YOUR_PHOTOS --size 256 --out student`, "
               "`face-studio export --model student --out live --labels-out`, "
               "then start the app with `face-studio serve --live-parser live`.")


def live_config(settings: ServeSettings) -> dict | None:
    """The live parser's part of the page config (same shape as the main parser's), or None without one."""
    live_dir = settings.live_parser_dir
    dtypes = available_dtypes(live_dir) if live_dir is not None else []
    if not dtypes:
        return None
    manifest = Path(live_dir) / "manifest.json"
    current = current_labels_graphs(json.loads(manifest.read_text())) if manifest.is_file() else set()
    return {
        "modelRoot": f"{PARSER_PATH}/",
        "modelId": live_parser_model_id(Path(live_dir)),
        "dtypes": dtypes,
        "inputSize": input_size(live_dir),
        # dtypes with a labels graph (export --labels-out) of this version's head: the worker runs it and only
        # draws its uint8 labels (an older head is left alone: JS post-processing, no flicker filter).
        "labelsGraph": [d for d in dtypes if (Path(live_dir) / LABELS_FILES[d]).is_file() and d in current],
    }


def live_missing_note(settings: ServeSettings, live: dict | None) -> str | None:
    """Why live mode will be slow without a live parser (``live``, from :func:`live_config`), and how to make
    one (None when there is one)."""
    if live is not None:
        return None
    size = input_size(settings.parser_dir)
    return (f"No live parser: live mode runs the main parser ({size}×{size} px), which is built for photos and "
            "is far too big for video — with the usual MiT-B5 parser, a frame every few seconds, not a live picture. "
            + LIVE_HOW_TO)


def page_config(settings: ServeSettings) -> dict:
    """What the browser needs to find the model: URLs, dtypes present, limits, or why there is no model."""
    parser_dir = Path(settings.parser_dir)
    model_id = parser_model_id(parser_dir)
    has_labels = (parser_dir / "labels.json").is_file()
    live = live_config(settings)  # hashes the live export's files: once per page config
    return {
        "modelRoot": f"{PARSER_PATH}/",
        "modelId": model_id,
        "dtypes": available_dtypes(parser_dir),
        "missing": missing_export_message(parser_dir),
        "labelsUrl": f"{PARSER_PATH}/{model_id}/labels.json" if has_labels else f"{ASSETS_PATH}/labels.json",
        "vendorUrl": f"{ASSETS_PATH}/vendor/",
        "workerUrl": f"{ASSETS_PATH}/js/worker.js",
        # The server `parse` API for static/js/api-client.js: its name and parameters, in order.
        "api": {"parse": endpoint_json("parse", PARSE_FIELDS, PARSE)},
        "inputSize": input_size(parser_dir),
        "live": live,
        "liveMissing": live_missing_note(settings, live),
        "maxPixels": MAX_PIXELS,
        "maxSide": MAX_SIDE,
    }


@user_errors
def parse_run(file: str | None, dtype: str, settings: ServeSettings, faces: str | None = DEFAULT_FACES):
    """The ``parse`` API: image file → (label-map PNG, overlay, summary). ``faces``: auto (each face parsed on its
    own crop; the whole image when none), largest, off (the whole image). User errors become ``gr.Error``."""
    # 1. Check inputs: a real, not-too-large image and a known dtype.
    image = load_image(file, what="image")
    # 2. Find the faces (auto/largest/off) and parse each crop (or the whole image), here or on a Ray replica.
    faces = faces or DEFAULT_FACES
    reply = backend_for(settings).parse(image, dtype or DEFAULT_DTYPE, faces)
    # 3. Outputs: the label map (pixel = class id, mode L), the overlay and what it took.
    labels = reply.result.labels
    summary = {
        "width": image.width,
        "height": image.height,
        "backend": f"server · ONNX Runtime ({reply.providers[0].removesuffix('ExecutionProvider')})",
        "dtype": reply.dtype,
        "area_percent": area_summary(labels),
        "timings_ms": {"load": round(reply.load_ms, 2),
                       **{k: round(v, 2) for k, v in reply.result.timings.items()}},
        **faces_summary(reply.result, faces),
    }
    return Image.fromarray(labels), overlay(image, labels, OVERLAY_OPACITY), summary


def _root_html(config: dict) -> str:
    return (f'<div class="fs-parse" data-config="{html.escape(json.dumps(config))}">'
            '<p class="fs-parse-loading">Loading the parser view…</p></div>')


def build(settings: ServeSettings) -> None:
    """Lay out the Parse tab inside the current Blocks."""
    config = page_config(settings)
    if config["missing"]:
        gr.Markdown(f"**No face parser yet:** {config['missing']} Then restart `face-studio serve`.",
                    elem_id="parse-missing")
    gr.HTML(_root_html(config), js_on_load=MOUNT_JS, elem_id="parse-root", apply_default_css=False)

    # The server endpoint (hidden components; the page and gradio_client call it as "parse").
    with gr.Group(visible=False):
        parse_file = gr.File(label=PARSE_FIELDS["file"].label, type="filepath")
        parse_dtype = gr.Dropdown(list(PARSE_FIELDS["dtype"].choices), value=PARSE_FIELDS["dtype"].default,
                                  label=PARSE_FIELDS["dtype"].label)
        parse_faces = gr.Dropdown(list(PARSE_FIELDS["faces"].choices), value=PARSE_FIELDS["faces"].default,
                                  label=PARSE_FIELDS["faces"].label)
        parse_label_map = gr.Image(label="Label map (pixel = class id)", type="pil", format="png")
        parse_overlay = gr.Image(label="Overlay", type="pil", format="png")
        parse_summary = gr.JSON(label="Summary")
        parse_button = gr.Button("Parse on the server")
    parse_button.click(
        lambda file, dtype, faces: parse_run(file, dtype, settings, faces),
        inputs=[parse_file, parse_dtype, parse_faces],
        outputs=[parse_label_map, parse_overlay, parse_summary],
        api_name="parse",
        concurrency_id=PARSE_CONCURRENCY_ID,
        concurrency_limit=settings.parse_workers,
        api_description=api_description(PARSE_SUMMARY, PARSE_FIELDS, PARSE),
    )
