"""``face-studio verify DIR``: check an export against its manifest and run each ONNX graph once."""

from __future__ import annotations

import argparse
import sys

HELP = "Recompute every sha256 of an export against manifest.json and run each ONNX graph once."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="an export folder made by face-studio export")


def run(args: argparse.Namespace) -> int:
    from export.verify import verify

    problems = verify(args.dir)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"OK {args.dir}: every file matches manifest.json and every ONNX graph runs")
    return 0
