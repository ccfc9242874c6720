"""The Gradio app shell: one tab per view. Reads top to bottom; each view lives in ``webapp/views/``.

A view module exposes ``build(settings)`` (lays out its components inside the current Blocks) and may
expose ``HEAD`` / ``CSS`` strings, which Gradio 6 takes at ``launch()`` (collected by
:func:`launch_assets`).
"""

from __future__ import annotations

from types import ModuleType

import gradio as gr

from webapp.backend import GPU_LANE_IDS
from webapp.queue_limits import PRIOR_SECONDS_PER_WORK, Lane, LaneQueue, gpu_work, install_queue
from webapp.settings import ServeSettings
from webapp.views import edit as edit_view
from webapp.views import generate as generate_view
from webapp.views import parse as parse_view

TITLE = "face-studio"
# Uploads and API outputs in Gradio's cache: swept hourly, kept an hour (generated images live in output_dir).
DELETE_CACHE = (3600, 3600)
OTHER_QUEUE = 64  # waiting events allowed per other endpoint (page helpers: read a PNG's parameters, …)


def views() -> list[tuple[str, ModuleType]]:
    """The views, in tab order."""
    return [("Parse", parse_view), ("Generate", generate_view), ("Edit", edit_view)]


def build_app(settings: ServeSettings) -> gr.Blocks:
    """The whole page: a header and one tab per view."""
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\nFace parsing in your browser · SD 3.5 generation and face-aware editing "
                    "on the server.")
        with gr.Tabs():
            for title, module in views():
                with gr.Tab(title, id=title.lower()):
                    module.build(settings)
    return demo


def setup_queue(demo: gr.Blocks, settings: ServeSettings) -> LaneQueue:
    """One waiting limit per lane: GPU jobs (generate, inpaint, restyle, LoRA changes) and server parses each
    have their own, so a full GPU queue never refuses a parse; any other event may have 64 waiting."""
    gpu = Lane("GPU", settings.max_queue, "try again in a minute")
    lanes = {
        **{lane_id: gpu for lane_id in GPU_LANE_IDS},  # the GPU slot, the batched queue's, the Ray replicas'
        parse_view.PARSE_CONCURRENCY_ID: Lane("parse", settings.parse_queue,
                                              "try again in a few seconds, or parse in the browser"),
    }
    import torch

    device = (settings.device or ("cuda" if torch.cuda.is_available() else "cpu")).split(":")[0]
    prior = PRIOR_SECONDS_PER_WORK.get(device, PRIOR_SECONDS_PER_WORK["cpu"])  # until a job has finished
    return install_queue(demo, lanes, other=Lane("request", OTHER_QUEUE), work_of=gpu_work,
                         prior_seconds_per_work=prior)


def launch_assets(settings: ServeSettings) -> dict:
    """``head`` and ``css`` for ``launch()`` (Gradio 6 takes them there, not in ``Blocks``)."""
    heads = [getattr(module, "HEAD", "") for _, module in views()]
    css = [getattr(module, "CSS", "") for _, module in views()]
    return {"head": "\n".join(h for h in heads if h) or None, "css": "\n".join(c for c in css if c) or None}
