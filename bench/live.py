"""Benchmark live camera mode: our page's live loop in headless Chromium with a fake camera (skimage's astronaut,
640×480, as a Y4M clip), WASM, against native ONNX Runtime on the same ONNX file and thread count.

Models (random weights: speed does not depend on weight values), each exported by `face-studio export`:
the MiT-B0 student at 256 / 320 / 384 px input and the MiT-B5 parser (jonathandinu/face-parsing's shape) at
512 px, q8 (its fp32 file is 323 MB; q8 is 83 MB).

    python bench/live.py                                   # B0 at 256,320,384 (q8) + B5 (q8), 1 and 2 threads
    python bench/live.py --sizes 256 --dtypes q8,fp32 --no-b5 --seconds 10

For each: the server runs with `--live-parser` set to that export; the page's Live camera button starts the
loop (one frame in flight, the newest frame next); after a warm-up the bench counts the frames parsed in a
window and reads the loop's sums. Columns:
  FPS            frames parsed per second (what the readout shows);
  ms a frame     round trip page → worker → page (grab 640×480 frame, pre-process, model, post-process to a
                 640×480 label map), mean;
  worker stages  pre / model / post inside the worker, mean;
  native         ONNX Runtime in Python on the same file: model (session.run) and pipeline (+ face_studio
                 pre/post on the same 640×480 frame), median; "browser ÷ native" compares the model stage.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FRAME_SIZE = (640, 480)
B5_SIZE = 512


def export_b0(size: int, dtypes: list[str], work: Path) -> Path:
    """The B0 student (random weights) exported at ``size`` px (kept in ``work`` for later runs)."""
    import json

    from tests.conftest import build_tiny_parser
    from webapp.cli import main

    out = work / f"mit-b0-{size}-export"
    if (out / "manifest.json").is_file():
        return out
    source = work / f"mit-b0-{size}-source"
    shutil.rmtree(source, ignore_errors=True)
    build_tiny_parser(source, preset="mit-b0")
    pre = json.loads((source / "preprocessor_config.json").read_text())
    pre["size"] = {"height": size, "width": size}
    (source / "preprocessor_config.json").write_text(json.dumps(pre))
    print(f"exporting mit-b0 at {size} px → {out}", file=sys.stderr)
    if main(["export", "--model", str(source), "--out", str(out), "--dtypes", ",".join(dtypes), "--quiet"]) != 0:
        raise SystemExit(f"export of mit-b0 at {size} px failed")
    return out


def export_b5(work: Path) -> Path:
    """MiT-B5 (random weights) exported with fp32 and q8: bench/browser.py's export, shared through ``work``."""
    from bench.browser import export_models

    return export_models(["mit-b5"], work)["mit-b5"]


def native_times(export: Path, dtype: str, frames: int, threads: int) -> dict[str, float]:
    """ONNX Runtime in Python on the same file: model and whole pipeline on the 640×480 astronaut, median."""
    from PIL import Image
    from skimage import data

    from bench._compare import native_times as timed
    from face_studio.preprocess import input_size

    image = Image.fromarray(data.astronaut()).resize(FRAME_SIZE, Image.BILINEAR)
    return timed(export, dtype, image, frames, threads, size=input_size(export), log_level=3)


READ_TOTALS = "() => ({ now: performance.now(), ...document.querySelector('.fs-parse').view.live.totals })"


def browser_times(browser, url: str, dtype: str, threads: int, warmup: int, seconds: float, min_frames: int,
                  timeout_s: float) -> dict:
    """Run live mode for ``seconds`` (at least ``min_frames`` frames) after ``warmup`` frames; the loop's means."""
    from bench._compare import open_app_page

    context = browser.new_context()
    context.grant_permissions(["camera"], origin=url.rstrip("/"))
    try:
        page = open_app_page(context, url)
        page.select_option("[data-role=backend]", "wasm")
        page.select_option("[data-role=dtype]", dtype)
        page.evaluate(f"document.querySelector('.fs-parse').view.live.options.numThreads = {threads}")
        page.click("[data-role=camera]")
        timeout = timeout_s * 1000
        page.wait_for_selector("[data-role=live-box][data-live-state=running]", state="attached", timeout=timeout)
        box = "document.querySelector('[data-role=live-box]')"
        page.wait_for_function(f"Number({box}.dataset.frames) >= {warmup}", timeout=timeout)
        start = page.evaluate(READ_TOTALS)
        page.wait_for_timeout(seconds * 1000)
        page.wait_for_function(f"Number({box}.dataset.frames) >= {start['frames'] + min_frames}", timeout=timeout)
        end = page.evaluate(READ_TOTALS)
        info = page.evaluate("document.querySelector('.fs-parse').view.live.parser.info")
        readout = page.locator("[data-role=live-readout]").text_content()
        page.click("[data-role=live-stop]")
    finally:
        context.close()
    n = end["frames"] - start["frames"]
    mean = {k: (end[k] - start[k]) / n for k in ("ms", "preprocess", "model", "postprocess")}
    return {"fps": 1000 * n / (end["now"] - start["now"]), "frames": n, **mean, "info": info, "readout": readout}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,320,384", help="B0 student input sizes (px)")
    parser.add_argument("--dtypes", default="q8", help="B0 dtypes to run (B5 always runs q8)")
    parser.add_argument("--no-b5", action="store_true", help="skip MiT-B5 (its export takes minutes and 400 MB)")
    parser.add_argument("--threads", default="1,2", help="WASM / ORT thread counts")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring window per run, after the warm-up")
    parser.add_argument("--native-frames", type=int, default=10, help="native runs per file (median)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/face-studio-bench"), help="exports are kept here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from bench._compare import print_table
    from tests.browser.fake_camera import astronaut_y4m, camera_args
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    args.work.mkdir(parents=True, exist_ok=True)
    dtypes = args.dtypes.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    runs = [(f"B0 student {s} px", export_b0(int(s), sorted(set(["fp32", *dtypes])), args.work), dtypes)
            for s in args.sizes.split(",") if s]
    if not args.no_b5:
        runs.append((f"B5 {B5_SIZE} px", export_b5(args.work), ["q8"]))
    y4m = astronaut_y4m(args.work / "astronaut-640x480.y4m", FRAME_SIZE)
    load_before = os.getloadavg()

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args(y4m))
        version = browser.version
        for name, export, run_dtypes in runs:
            big = "B5" in name
            settings = ServeSettings(port=0, parser_dir=export, live_parser_dir=export)
            with run_in_thread(settings) as server:
                for dtype in run_dtypes:
                    for n in threads:
                        print(f"{name} {dtype} {n} thread(s)…", file=sys.stderr)
                        web = browser_times(browser, server.url, dtype, n, warmup=1 if big else 5,
                                            seconds=args.seconds, min_frames=2 if big else 10,
                                            timeout_s=600 if big else 180)
                        native = native_times(export, dtype, 3 if big else args.native_frames, n)
                        rows.append((name, dtype, n, web, native))
                        print(f"  {web['readout']}", file=sys.stderr)
        browser.close()
    load_after = os.getloadavg()

    import onnxruntime

    print(f"\nLive mode, headless Chromium {version} (WASM SIMD, cross-origin isolated), fake camera 640×480 "
          f"(astronaut) vs ONNX Runtime {onnxruntime.__version__} CPU in Python · "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, SHARED with other jobs "
          f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after): absolute numbers are "
          "pessimistic; rerun on a quiet machine.\n")
    table = [[name, dtype, str(web["info"]["numThreads"]), f"{web['fps']:.1f}", f"{web['ms']:.0f}",
              f"{web['preprocess']:.0f} / {web['model']:.0f} / {web['postprocess']:.0f}",
              f"{native['model']:.0f} ms", f"{native['pipeline']:.0f} ms", f"{web['model'] / native['model']:.1f}×"]
             for name, dtype, _n, web, native in rows]
    print_table(["model", "dtype", "threads", "FPS", "ms a frame", "worker pre / model / post (ms)", "native model",
                 "native pipeline", "browser ÷ native (model)"], table, right={2, 3, 4, 6, 7, 8},
                script="bench/live.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
