"""URLs the server mounts and the views link to, and the parser's model id: one small module that both
``webapp.server`` and ``webapp.views`` import, so neither imports the other."""

from __future__ import annotations

import hashlib
from pathlib import Path

ASSETS_PATH = "/studio"  # not /static nor /assets: Gradio serves its own fonts, scripts and bundle there
PARSER_PATH = "/parser"  # transformers.js env.localModelPath; the model id follows


def parser_model_id(parser_dir: Path) -> str:
    """``face-parsing-<hash>`` of the export's files: a re-export gets a new URL, so no browser cache
    ever serves a stale model."""
    digest = hashlib.sha256()
    for path in sorted(parser_dir.rglob("*")) if parser_dir.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(parser_dir)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"face-parsing-{digest.hexdigest()[:10]}"


def live_parser_model_id(live_dir: Path) -> str:
    """The live parser's id: its own prefix, so it never shares a URL (or a cache entry) with the main one."""
    return "live-" + parser_model_id(live_dir)
