"""The Gradio app shell: one tab per view. Reads top to bottom; each view lives in ``webapp/views/``.

A view module exposes ``build(settings)`` (lays out its components inside the current Blocks) and may
expose ``HEAD`` / ``CSS`` strings, which Gradio 6 takes at ``launch()`` (collected by
:func:`launch_assets`). Views still being written elsewhere (Generate, Edit) are added when their
module exists.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import gradio as gr

from webapp.settings import ServeSettings
from webapp.views import parse as parse_view

TITLE = "face-studio"
# Uploads and API outputs in Gradio's cache: swept hourly, kept an hour (generated images live in output_dir).
DELETE_CACHE = (3600, 3600)
# (tab title, module under webapp.views); a missing optional module leaves its tab out.
OPTIONAL_VIEWS: tuple[tuple[str, str], ...] = (("Generate", "generate"), ("Edit", "edit"))


def _optional_view(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"webapp.views.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"webapp.views.{name}":
            raise  # the view exists but one of its imports is missing: say so loudly
        return None


def views() -> list[tuple[str, ModuleType]]:
    """The views this checkout has, in tab order."""
    found = [("Parse", parse_view)]
    for title, name in OPTIONAL_VIEWS:
        module = _optional_view(name)
        if module is not None:
            found.append((title, module))
    return found


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


def launch_assets(settings: ServeSettings) -> dict:
    """``head`` and ``css`` for ``launch()`` (Gradio 6 takes them there, not in ``Blocks``)."""
    heads = [getattr(module, "HEAD", "") for _, module in views()]
    css = [getattr(module, "CSS", "") for _, module in views()]
    return {"head": "\n".join(h for h in heads if h) or None, "css": "\n".join(c for c in css if c) or None}
