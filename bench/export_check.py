"""What checking an export against its manifest costs when ``face-studio serve`` starts.

Random files the size of MiT-B5's q8 (83 MB), fp16 (163 MB) and fp32 (323 MB) graphs: the sha256 of each, read
cold-ish (first read after writing, usually still in the page cache) and warm, against the size-only check.

    python bench/export_check.py                 # the three B5 sizes, 3 runs each
    python bench/export_check.py --sizes-mb 15 4 --runs 5   # MiT-B0 fp32, q8

Prints one Markdown row per file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> None:
    from face_studio.hashing import sha256

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[83, 163, 323])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# export check at serve start: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"# rerun: python bench/export_check.py --sizes-mb {' '.join(f'{s:g}' for s in args.sizes_mb)} "
          f"--runs {args.runs}")
    print("| file | size + presence | sha256, first | sha256, median of rest | MB/s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.sizes_mb:
            path = Path(tmp) / f"model-{mb:g}MB.onnx"
            with path.open("wb") as f:
                left = int(mb * 1e6)
                while left:
                    block = min(left, 1 << 24)
                    f.write(os.urandom(block))
                    left -= block
            start = time.perf_counter()
            for _ in range(1000):
                path.is_file() and path.stat().st_size  # noqa: B015 - timing the check
            stat_us = (time.perf_counter() - start) / 1000 * 1e6
            times = []
            for _ in range(max(2, args.runs)):
                start = time.perf_counter()
                sha256(path)
                times.append(time.perf_counter() - start)
            rest = statistics.median(times[1:])
            print(f"| {mb:g} MB | {stat_us:.0f} µs | {times[0]:.2f} s | {rest:.2f} s | {mb / rest:.0f} |")
            path.unlink()


if __name__ == "__main__":
    main()
