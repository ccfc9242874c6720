"""``face-studio export``: a SegFormer face parser → safetensors + ONNX fp32/fp16/q8 for transformers.js."""

from __future__ import annotations

import argparse

from export.spec import DEFAULT_SOURCE, DTYPES, Q8_OPS
from webapp.settings import DEFAULT_PARSER_DIR

HELP = "Export a SegFormer face parser (hub id or folder) to ONNX fp32/fp16/q8 in transformers.js layout."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_SOURCE, metavar="SRC",
                   help=f"hub id or local save_pretrained folder (default: {DEFAULT_SOURCE})")
    p.add_argument("--revision", default=None, metavar="REV", help="hub revision (branch, tag or commit)")
    p.add_argument("--out", default=str(DEFAULT_PARSER_DIR), metavar="DIR",
                   help=f"output folder (default: {DEFAULT_PARSER_DIR})")
    p.add_argument("--dtypes", default=",".join(DTYPES), help=f"comma-separated subset of {','.join(DTYPES)}")
    p.add_argument("--force", action="store_true", help="rebuild even if DIR already holds this export")
    p.add_argument("--labels-ok", action="store_true",
                   help="accept a model whose id2label is not the 19 CelebAMask-HQ labels in order")
    p.add_argument("--eval-data", default=None, metavar="DIR",
                   help="labelled faces (images/ + masks/): record mIoU/F1 per dtype in manifest.json")
    p.add_argument("--labels-out", action="store_true",
                   help="also write labels graphs (onnx/labels*.onnx: upsample + argmax in the graph, uint8 labels "
                        "out) for live mode; use it for a --live-parser export")
    p.add_argument("--q8-ops", choices=list(Q8_OPS), default=None,
                   help="what q8 quantizes: all (MatMuls and Convs: smallest file) or matmul (Convs stay fp32: "
                        "faster in WASM for small live students). Default: matmul with --labels-out, else all")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from export.build import export_model

    export_model(args.model, args.out, revision=args.revision, dtypes=args.dtypes, force=args.force,
                 labels_ok=args.labels_ok, eval_data=args.eval_data, labels_out=args.labels_out,
                 q8_ops=args.q8_ops, progress=not args.quiet)
    return 0
