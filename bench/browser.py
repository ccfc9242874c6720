"""Benchmark face parsing in the browser (our page's worker code in headless Chromium, WASM) against native
ONNX Runtime in Python, on the same ONNX file and the same thread count.

Models: the tiny test parser and the true MiT-B5 architecture (jonathandinu/face-parsing's shape) with
random weights — speed does not depend on weight values. Each is exported by `face-studio export`.
One 512×512 frame (skimage's astronaut), batch 1.

    python bench/browser.py                                  # tiny + mit-b5, fp32 + q8, 2 threads
    python bench/browser.py --models tiny --frames 5 --threads 1

Prints a Markdown table per thread count:
  model-only  = the ONNX Runtime session call (browser: inside the worker; native: session.run);
  pipeline    = pre-process + model + post-process to a label map at the image size
                (browser: the worker's three stages; native: face_studio/preprocess.py + session.run);
  JS pre/post = the worker's pre + post-processing as a share of the browser pipeline;
  browser/native ratios for both.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Runs in the app page: our BrowserParser (worker.js + segment.js), the image decoded by our reader.
PAGE_BENCH_JS = """
async ({ png, dtype, frames, numThreads }) => {
  const { BrowserParser } = await import('/studio/js/browser-parser.js');
  const { readImage } = await import('/studio/js/image-input.js');
  const config = JSON.parse(document.querySelector('.fs-parse').dataset.config);
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const image = await readImage(new File([bytes], 'astronaut.png', { type: 'image/png' }), config);
  const parser = new BrowserParser(config);
  const ready = await parser.load({ device: 'wasm', dtype, numThreads });
  const runs = [];
  for (let i = 0; i < frames + 1; i++) {  // the first frame is a warm-up
    const t0 = performance.now();
    const out = await parser.parse(image.rgba, image.width, image.height);
    runs.push({ wall: performance.now() - t0, ...out.timings });
  }
  parser.dispose();
  return { ready, runs: runs.slice(1) };
}
"""


def export_models(models: list[str], work: Path) -> dict[str, Path]:
    """Export each preset once into ``work`` (reused by later runs)."""
    from tests.conftest import build_tiny_parser
    from webapp.cli import main

    exports = {}
    for preset in models:
        out = work / f"{preset}-export"
        if not (out / "manifest.json").is_file():
            source = build_tiny_parser(work / f"{preset}-source", preset=preset)
            print(f"exporting {preset} (random weights) → {out}", file=sys.stderr)
            if main(["export", "--model", str(source), "--out", str(out), "--dtypes", "fp32,q8", "--quiet"]) != 0:
                raise SystemExit(f"export of {preset} failed")
        exports[preset] = out
    return exports


def browser_times(browser, url: str, png: bytes, dtype: str, frames: int, threads: int) -> dict[str, float]:
    from bench._compare import open_app_page

    context = browser.new_context()
    try:
        page = open_app_page(context, url)
        result = page.evaluate(PAGE_BENCH_JS, {"png": base64.b64encode(png).decode(), "dtype": dtype,
                                               "frames": frames, "numThreads": threads})
    finally:
        context.close()
    runs = result["runs"]
    median = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {"model": median("model"), "pipeline": median("preprocess") + median("model") + median("postprocess"),
            "pre": median("preprocess"), "post": median("postprocess"), "wall": median("wall"),
            "threads": result["ready"]["numThreads"], "load": result["ready"]["loadMs"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,mit-b5", help="presets from face_studio/configs.py")
    parser.add_argument("--dtypes", default="fp32,q8")
    parser.add_argument("--frames", type=int, default=3, help="timed frames after one warm-up (median)")
    parser.add_argument("--threads", default=str(os.cpu_count() or 1),
                        help="comma-separated thread counts, same for browser and native (default: all cores)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/face-studio-bench"), help="exports are kept here")
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright
    from skimage import data

    from bench._compare import native_times, print_table
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    args.work.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(data.astronaut())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    exports = export_models(args.models.split(","), args.work)
    threads = [int(t) for t in args.threads.split(",")]

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for preset, export in exports.items():
            with run_in_thread(ServeSettings(port=0, parser_dir=export)) as server:
                for dtype in args.dtypes.split(","):
                    for n in threads:
                        print(f"{preset} {dtype} {n} thread(s)…", file=sys.stderr)
                        web = browser_times(browser, server.url, png, dtype, args.frames, n)
                        native = native_times(export, dtype, image, args.frames, n)
                        rows.append((preset, dtype, n, web, native))
        browser.close()

    version = browser.version if hasattr(browser, "version") else "?"
    print(f"\nChromium {version} (headless, WASM SIMD threaded) vs ONNX Runtime "
          f"{__import__('onnxruntime').__version__} CPU · {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores · 512×512 frame, median of {args.frames} after a warm-up\n")
    table = []
    for preset, dtype, _n, web, native in rows:
        share = 100 * (web["pre"] + web["post"]) / web["pipeline"]
        table.append([preset, dtype, str(web["threads"]), f"{web['model']:.0f} ms", f"{native['model']:.0f} ms",
                      f"{web['model'] / native['model']:.1f}×", f"{web['pipeline']:.0f} ms",
                      f"{native['pipeline']:.0f} ms", f"{web['pipeline'] / native['pipeline']:.1f}×",
                      f"{web['pre']:.0f} + {web['post']:.0f} ms ({share:.1f} %)"])
    print_table(["model", "dtype", "threads", "browser model", "native model", "ratio", "browser pipeline",
                 "native pipeline", "ratio", "JS pre + post"], table, script="bench/browser.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
