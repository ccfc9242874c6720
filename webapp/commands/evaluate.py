"""``face-studio evaluate``: pixel accuracy, per-class F1/IoU, mean F1 and mIoU on labelled faces."""

from __future__ import annotations

import argparse
import json
import sys

HELP = ("Score a face parser (train folder, or an export: PyTorch + each ONNX dtype) on labelled faces: "
        "mIoU, mean F1, pixel accuracy, per-class F1 and IoU.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR_OR_EXPORT",
                   help="a save_pretrained folder (face-studio train --out) or an export folder (face-studio export)")
    p.add_argument("--data", required=True, metavar="DIR", help="labelled faces: images/ + masks/, or CelebAMask-HQ")
    p.add_argument("--json", action="store_true", help="print JSON ({model: {miou, mean_f1, …}}) instead of a table")
    p.add_argument("--dtypes", default=None, help="export only: comma-separated subset of fp32,fp16,q8")
    p.add_argument("--size", type=int, default=None, help="input side (default: the model's preprocessor_config)")
    p.add_argument("--batch", type=int, default=4, help="faces per inference batch (default: 4)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N faces")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--teacher", default=None, metavar="DIR_OR_HUB_ID",
                   help="also score agreement with this parser (e.g. a distil student's teacher); --data may then "
                        "be a folder of plain photos, no masks")
    p.add_argument("--teacher-size", type=int, default=None,
                   help="the teacher's input side (default: its preprocessor_config, 512)")


def run(args: argparse.Namespace) -> int:
    from face_studio.errors import UserError
    from face_studio.training.evaluate import check_options, evaluate_path, format_table

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()] if args.dtypes else None
    # One check of the options for both paths, before any model or face is loaded.
    check_options(size=args.size, batch=args.batch, limit=args.limit, teacher_size=args.teacher_size)
    if getattr(args, "teacher", None):
        return _run_against_teacher(args, dtypes)
    try:
        results = evaluate_path(args.model, args.data, dtypes, size=args.size, batch=args.batch, limit=args.limit,
                                progress=not args.quiet)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def _run_against_teacher(args: argparse.Namespace, dtypes: list[str] | None) -> int:
    from face_studio.training.evaluate import evaluate_against_teacher, format_teacher_table

    results = evaluate_against_teacher(args.model, args.teacher, args.data, dtypes, size=args.size,
                                       teacher_size=args.teacher_size, batch=args.batch, limit=args.limit,
                                       progress=not args.quiet)
    print(json.dumps(results, indent=2) if args.json else format_teacher_table(results))
    return 0
