"""What bench/browser.py and bench/live.py share: native ONNX Runtime timings on the same file, opening our page
in Chromium (cross-origin isolated, or WASM runs on one thread), and printing the Markdown table with the command
to rerun."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path


def native_times(export: Path, dtype: str, image, frames: int, threads: int, size: int | None = None,
                 log_level: int = 2) -> dict[str, float]:
    """ONNX Runtime in Python on ``export``'s ``dtype`` file: model (session.run) and whole pipeline (face_studio
    pre-process at ``size``, 512 by default, + model + post-process to ``image``'s size), median of ``frames``
    after one warm-up. ``log_level``: ORT's (2 warnings, its default; 3 errors only)."""
    import onnxruntime as ort

    from face_studio.onnx_files import DTYPE_FILES
    from face_studio.preprocess import INPUT_SIZE, logits_to_labels, to_pixel_values

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = log_level
    session = ort.InferenceSession(str(export / DTYPE_FILES[dtype]), options, providers=["CPUExecutionProvider"])
    model, pipeline = [], []
    for i in range(frames + 1):
        t0 = time.perf_counter()
        pixels = to_pixel_values([image], size or INPUT_SIZE)
        t1 = time.perf_counter()
        logits = session.run(["logits"], {"pixel_values": pixels})[0]
        t2 = time.perf_counter()
        logits_to_labels(logits[0], image.height, image.width)
        t3 = time.perf_counter()
        if i:  # the first run is a warm-up
            model.append((t2 - t1) * 1000)
            pipeline.append((t3 - t0) * 1000)
    return {"model": statistics.median(model), "pipeline": statistics.median(pipeline)}


def open_app_page(context, url: str):
    """A new page of ``context`` on the app at ``url``, its Parse view attached; exits unless cross-origin
    isolated (WASM would run on one thread)."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(".fs-parse[data-state]", state="attached", timeout=60_000)
    if not page.evaluate("crossOriginIsolated"):
        raise SystemExit("the page is not cross-origin isolated: WASM would run on one thread")
    return page


def print_table(columns: list[str], rows: list[list[str]], right: set[int] = frozenset(), *, script: str) -> None:
    """A Markdown table (``right``: the columns aligned right), then the command that reruns ``script``."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---:" if i in right else "---" for i in range(len(columns))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nRerun: python {script} " + " ".join(sys.argv[1:]))
