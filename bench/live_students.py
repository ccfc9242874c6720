"""Choose the live student by measurement: MiT-B0's encoder with decoders of several widths, at 224 and 256 px.

For each candidate (random weights: speed does not depend on weight values): GFLOP a frame (PyTorch's flop
counter, encoder vs decoder: load-independent), parameters, and native ONNX Runtime time of the exported graph
(fp32 and q8, --threads threads, median and best of --runs after a warm-up). The browser's model stage is a
multiple of native (docs/live.md); bench/live.py measures the chosen one in Chromium.

    .venv/bin/python bench/live_students.py                      # decoders 256 (= mit-b0), 128, 64, 32
    .venv/bin/python bench/live_students.py --decoders 256,64 --sizes 256 --runs 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def flops(model, size: int) -> tuple[float, float]:
    """(total, encoder) GFLOP for one size×size frame."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model.segformer(x)
        encoder = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            model(pixel_values=x)
        total = counter.get_total_flops()
    return total / 1e9, encoder / 1e9


def ort_ms(path: Path, size: int, threads: int, runs: int) -> tuple[float, float]:
    """(median, best) milliseconds of one size×size frame."""
    import numpy as np

    from export.validation import ort_session, run_times_ms

    session = ort_session(path, threads=threads)
    feed = {"pixel_values": np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)}
    times = run_times_ms(session, feed, runs)
    return statistics.median(times), min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--decoders", default="256,128,64,32", help="decoder_hidden_size values (256 = mit-b0)")
    p.add_argument("--sizes", default="224,256", help="input sides (px)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()

    import onnxruntime
    import torch
    from transformers import SegformerForSemanticSegmentation

    from bench._compare import print_table
    from export import onnx_build
    from face_studio.configs import face_parser_config

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in [int(d) for d in args.decoders.split(",")]:
            config = face_parser_config("mit-b0")
            config.decoder_hidden_size = width
            torch.manual_seed(0)
            model = SegformerForSemanticSegmentation(config).eval()
            params = sum(t.numel() for t in model.parameters()) / 1e6
            fp32 = onnx_build.export_fp32(model, Path(tmp) / f"d{width}.onnx", size=256)
            q8 = onnx_build.make_q8(fp32, Path(tmp) / f"d{width}_q8.onnx")
            for size in [int(s) for s in args.sizes.split(",")]:
                total, encoder = flops(model, size)
                (f_med, f_best), (q_med, q_best) = (ort_ms(f, size, args.threads, args.runs) for f in (fp32, q8))
                name = {256: "mit-b0", 64: "mit-b0-d64 (live default)"}.get(width, f"B0, decoder {width}")
                rows.append([name, str(width), f"{size}", f"{params:.2f} M", f"{total:.2f}", f"{total - encoder:.2f}",
                             f"{f_med:.0f} / {f_best:.0f}", f"{q_med:.0f} / {q_best:.0f}"])
                print(" · ".join(rows[-1]), file=sys.stderr)
    load_after = os.getloadavg()
    print(f"\nLive student candidates · ONNX Runtime {onnxruntime.__version__} CPU, {args.threads} threads · "
          f"{os.cpu_count()} cores, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          "(times scale with load; GFLOP do not)\n")
    print_table(["student", "decoder width", "px", "parameters", "GFLOP a frame", "of it decoder",
                 "native fp32 ms (median / best)", "native q8 ms (median / best)"], rows,
                right={1, 2, 3, 4, 5, 6, 7}, script="bench/live_students.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
