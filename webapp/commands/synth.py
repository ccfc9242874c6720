"""``face-studio synth``: stylised synthetic faces with exact 19-class label maps (images/ + masks/)."""

from __future__ import annotations

import argparse

HELP = "Write procedural stylised faces with exact label maps (images/ + masks/) for tests, demos and training."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (gets images/, masks/, faces.jsonl)")
    p.add_argument("-n", type=int, default=100, metavar="N", help="number of faces (default: 100; at most 100000)")
    p.add_argument("--size", type=int, default=512, help="side in pixels (default: 512; 64…2048)")
    p.add_argument("--seed", type=int, default=0, help="first seed; face i uses seed+i (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from face_studio.training.synth import write_dataset

    out = write_dataset(args.out, args.n, args.size, args.seed, progress=not args.quiet)
    print(f"wrote {args.n} faces ({args.size}×{args.size}, seeds {args.seed}…{args.seed + args.n - 1}) to {out}")
    return 0
