"""Benchmark the face parser on CPU: PyTorch eager vs ONNX Runtime fp32 / fp16 / q8 and graph variants.

The true MiT-B5 architecture of jonathandinu/face-parsing with random weights (speed does not depend
on weight values), one 512×512 frame, batch 1, all in one process so the ratios share one machine state.

    python bench/parser.py                      # MiT-B5, every variant, 5 timed runs each
    python bench/parser.py --preset tiny --runs 3 --threads 1

Prints a Markdown table (size, session load, median latency, ratios, label agreement with PyTorch).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _variants(model, fp32: Path, work: Path, calib: np.ndarray, size: int) -> dict[str, Path]:
    """Each candidate graph, built from our fp32 export (ours are the first three)."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from export.onnx_build import export_fp32, make_fp16, make_q8

    out = {"ort fp32 (export: torch.onnx + onnxslim)": fp32}
    out["ort fp16 (export)"] = make_fp16(fp32, work / "fp16.onnx")
    out["ort q8 (export: dynamic, uint8)"] = make_q8(fp32, work / "q8.onnx")

    prepped = work / "prepped.onnx"
    quant_pre_process(str(fp32), str(prepped))
    quantize_dynamic(str(prepped), str(work / "q8_matmul.onnx"), weight_type=QuantType.QUInt8,
                     op_types_to_quantize=["MatMul"])
    out["ort q8 MatMul-only"] = work / "q8_matmul.onnx"

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"pixel_values": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(prepped), str(work / "qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8)
    out["ort q8 static QDQ (calibrated)"] = work / "qdq.onnx"

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(work / "fp32_ortopt.onnx")
    ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])
    out["ort fp32, ORT-optimised graph saved"] = work / "fp32_ortopt.onnx"

    out["ort fp32, plain torch.onnx (no onnxslim)"] = export_fp32(model, work / "fp32_plain.onnx", size=size,
                                                               slim=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="mit-b5", choices=["mit-b5", "mit-b0", "tiny"])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per variant (median reported)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads for torch and ORT (0 = all cores)")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    from transformers import SegformerForSemanticSegmentation

    from export.onnx_build import export_fp32
    from export.validation import validation_images
    from face_studio.configs import face_parser_config
    from face_studio.preprocess import to_pixel_values

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(face_parser_config(args.preset)).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
    calib = to_pixel_values(validation_images(), args.size)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"building graphs for {args.preset} ({params:.1f} M parameters)…", file=sys.stderr)
        fp32 = export_fp32(model, work / "fp32.onnx", size=args.size)
        variants = _variants(model, fp32, work, calib, args.size)

        # Build every runner first, then time them round-robin (run r of each variant, then run r+1 …):
        # a load change on the machine then hits every variant alike instead of one block of runs.
        runners: dict[str, object] = {}
        info: dict[str, tuple[int, float, float]] = {}  # name → (bytes, session load s, agreement %)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            ref = model(pixel_values=xt).logits.numpy()

        def torch_run() -> None:
            with torch.no_grad():
                model(pixel_values=xt)

        runners["torch eager fp32"] = torch_run
        info["torch eager fp32"] = (sum(p.numel() * p.element_size() for p in model.parameters()), 0.0, 100.0)
        for name, path in variants.items():
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.log_severity_level = 3
            t0 = time.perf_counter()
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            load = time.perf_counter() - t0
            feed = {"pixel_values": x}
            out = sess.run(None, feed)[0]  # also the warm-up
            info[name] = (path.stat().st_size, load, 100.0 * float((out.argmax(1) == ref.argmax(1)).mean()))
            runners[name] = lambda sess=sess, feed=feed: sess.run(None, feed)
        torch_run()  # warm-up
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in range(args.runs):
            for name, fn in runners.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)
            print(f"  round {r + 1}/{args.runs} done", file=sys.stderr)
        rows = [(name, *info[name][:2], statistics.median(times[name]), info[name][2]) for name in runners]

    torch_ms = rows[0][3]
    fp32_ms = rows[1][3]
    print(f"\n{args.preset}, {args.size}×{args.size}, batch 1, {threads} thread(s), median of {args.runs} runs "
          f"(round-robin) after "
          f"1 warm-up; {platform.processor() or platform.machine()}, onnxruntime {ort.__version__}, "
          f"torch {torch.__version__}\n")
    print("| variant | size (MB) | session load (s) | ms / frame | torch eager ÷ this | this ÷ ORT fp32 "
          "| labels = torch (random weights) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, size, load, ms, agree in rows:
        print(f"| {name} | {size / 1e6:.1f} | {load:.2f} | {ms:.0f} | {torch_ms / ms:.2f}× | {ms / fp32_ms:.2f} "
              f"| {agree:.1f} % |")
    print(f"\nrerun: python bench/parser.py --preset {args.preset} --runs {args.runs}"
          + (f" --threads {args.threads}" if args.threads else ""))


if __name__ == "__main__":
    main()
