"""Benchmark the Edit view's mask preparation (grow + feather) on a large photo: at full size, as before
webapp.editing.masks.prepare, against prepare() at SD3's working size (what edit_image runs now).

    python bench/edit_mask.py                          # 12 MP, grow 64, feather 32
    python bench/edit_mask.py --megapixels 36 --grow 128 --feather 64   # the probe's case (slow full-size side)

Prints the seconds of each and their ratio; nothing here is a test.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webapp.editing.masks import feather, grow, prepare  # noqa: E402
from webapp.editing.service import working_size  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--grow", type=int, default=64)
    parser.add_argument("--feather", type=int, default=32)
    args = parser.parse_args()
    w = int(math.sqrt(args.megapixels * 1e6 * 4 / 3))
    h = int(w * 3 / 4)
    selected = np.zeros((h, w), dtype=bool)
    selected[h // 4: h // 2, w // 3: 2 * w // 3] = True  # a hair-sized block
    work = working_size(w, h)

    start = time.perf_counter()
    feather(grow(selected, args.grow), args.feather)
    full = time.perf_counter() - start
    start = time.perf_counter()
    prepare(selected, args.grow, args.feather, work)
    bounded = time.perf_counter() - start

    print(f"mask {w}×{h} ({w * h / 1e6:.1f} MP), grow {args.grow}, feather {args.feather}; working size "
          f"{work[0]}×{work[1]}; {platform.processor() or platform.machine()}")
    print("| path | seconds |\n|---|---|")
    print(f"| full size (before) | {full:.2f} |\n| prepare() at the working size | {bounded:.2f} |")
    print(f"ratio: {full / bounded:.1f}× faster. Rerun: python bench/edit_mask.py --megapixels {args.megapixels:g} "
          f"--grow {args.grow} --feather {args.feather}")


if __name__ == "__main__":
    main()
