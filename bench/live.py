"""Benchmark live camera mode: our page's live loop in headless Chromium with a fake camera (skimage's astronaut,
640×480, as a Y4M clip), WASM, against native ONNX Runtime on the same ONNX file and thread count.

Models (random weights: speed does not depend on weight values), each exported by `face-studio export
--labels-out` (post-processing in the graph): distil's default student (--student, default
`face_studio.training.distil.DEFAULT_STUDENT`) at --sizes px, and with --b5 the MiT-B5 parser
(jonathandinu/face-parsing's shape) at 512 px, q8 (its fp32 file is 323 MB; q8 is 83 MB).

    python bench/live.py                                   # default student at 256 px, q8, 2 threads, filter on/off
    python bench/live.py --student mit-b0 --sizes 192,256 --dtypes q8,fp32 --threads 1,2 --seconds 10

The fake camera plays a still scene with sensor noise (σ --noise grey levels, a new draw every frame), so the
"flicker" column (share of pixels whose label changes between consecutive frames, live.js's metric) is what
a still face on a real camera shows; each run is made with live mode's flicker filter off (hysteresis 0) and
on (--hysteresis), with live mode's face crops on (the default: the detector finds the astronaut's face each
frame and the student parses its crop) and, with --faces both, off (the whole frame). Every run prints the page's
readout line.

For each: the server runs with `--live-parser` set to that export; the page's Live camera button starts the
loop (one frame in flight, the newest frame next); after a warm-up the bench counts the frames parsed in a
window and reads the loop's sums. Columns:
  FPS            frames parsed per second (what the readout shows);
  ms a frame     round trip page → worker → page (grab 640×480 frame, pre-process, model, post-process to a
                 640×480 label map), mean;
  worker stages  pre / model / post inside the worker, mean;
  faces          detect (letterbox + detector + decode; the detector model's own share in brackets) and
                 crop + paste inside the worker, mean ms a frame, and their share of the frame's round trip
                 (the issue's budget: ≤ 15 %);
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


def export_student(preset: str, size: int, dtypes: list[str], work: Path) -> Path:
    """The ``preset`` student (random weights) exported at ``size`` px with labels graphs (kept in ``work``)."""
    import json

    from face_studio.onnx_files import current_labels_graphs
    from tests.conftest import build_tiny_parser
    from webapp.cli import main

    out = work / f"{preset}-{size}-labels-export"
    if (out / "manifest.json").is_file() and set(dtypes) <= current_labels_graphs(json.loads(
            (out / "manifest.json").read_text())):
        return out  # made before, with this version's labels head
    source = work / f"{preset}-{size}-source"
    shutil.rmtree(source, ignore_errors=True)
    build_tiny_parser(source, preset=preset)
    pre = json.loads((source / "preprocessor_config.json").read_text())
    pre["size"] = {"height": size, "width": size}
    (source / "preprocessor_config.json").write_text(json.dumps(pre))
    print(f"exporting {preset} at {size} px → {out}", file=sys.stderr)
    if main(["export", "--model", str(source), "--out", str(out), "--dtypes", ",".join(dtypes), "--labels-out",
             "--quiet"]) != 0:
        raise SystemExit(f"export of {preset} at {size} px failed")
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


def live_js_hysteresis() -> float:
    """Live mode's default flicker filter, read from static/js/live.js (one source)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "static/js/live.js").read_text()
    return float(re.search(r"export const HYSTERESIS = ([0-9.]+);", text)[1])


READ_TOTALS = "() => ({ now: performance.now(), ...document.querySelector('.fs-parse').view.live.totals })"


def browser_times(browser, url: str, dtype: str, threads: int, warmup: int, seconds: float, min_frames: int,
                  timeout_s: float, hysteresis: float = 0.0, faces: bool = True) -> dict:
    """Run live mode for ``seconds`` (at least ``min_frames`` frames) after ``warmup`` frames; the loop's means."""
    from bench._compare import open_app_page

    context = browser.new_context()
    context.grant_permissions(["camera"], origin=url.rstrip("/"))
    try:
        page = open_app_page(context, url)
        page.select_option("[data-role=backend]", "wasm")
        page.select_option("[data-role=dtype]", dtype)
        page.evaluate(f"document.querySelector('.fs-parse').view.live.options.numThreads = {threads}")
        page.evaluate(f"document.querySelector('.fs-parse').view.live.options.hysteresis = {hysteresis}")
        page.evaluate(f"document.querySelector('[data-role=live-faces]').checked = {str(faces).lower()}")
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
    mean = {k: (end[k] - start[k]) / n for k in ("ms", "preprocess", "model", "postprocess", "detect",
                                                 "detector model", "crop", "paste", "faced")}
    compared = end["compared"] - start["compared"]
    flicker = (end["changed"] - start["changed"]) / compared if compared else float("nan")
    return {"fps": 1000 * n / (end["now"] - start["now"]), "frames": n, **mean, "info": info, "readout": readout,
            "flicker": flicker}


def face_cell(faces: bool, web: dict) -> str:
    """'on (100 %)': face crops on, and the share of frames that found a face and were parsed on its crop."""
    return f"on ({100 * web['faced']:.0f} %)" if faces else "off"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from face_studio.training.distil import DEFAULT_STUDENT, STUDENTS
    HYSTERESIS = live_js_hysteresis()

    parser.add_argument("--student", default=DEFAULT_STUDENT, choices=STUDENTS,
                        help=f"student preset (default: distil's default, {DEFAULT_STUDENT})")
    parser.add_argument("--sizes", default="256", help="student input sizes (px)")
    parser.add_argument("--dtypes", default="q8", help="student dtypes to run (B5 always runs q8)")
    parser.add_argument("--b5", action="store_true", help="also MiT-B5 (its export takes minutes and 400 MB)")
    parser.add_argument("--threads", default="2", help="WASM / ORT thread counts")
    parser.add_argument("--hysteresis", type=float, default=HYSTERESIS,
                        help=f"live mode's flicker filter for the 'on' runs (default: live.js's {HYSTERESIS})")
    parser.add_argument("--faces", choices=["on", "off", "both"], default="on",
                        help="live mode's face crops (default on, as in the page)")
    parser.add_argument("--noise", type=float, default=3.0, help="fake camera sensor noise, grey levels (σ)")
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
    runs = [(f"{args.student} {s} px", export_student(args.student, int(s), sorted(set(["fp32", *dtypes])), args.work),
             dtypes) for s in args.sizes.split(",") if s]
    if args.b5:
        runs.append((f"B5 {B5_SIZE} px", export_b5(args.work), ["q8"]))
    y4m = astronaut_y4m(args.work / f"astronaut-640x480-noise{args.noise:g}.y4m", FRAME_SIZE, frames=30,
                        noise=args.noise)
    face_modes = {"on": [True], "off": [False], "both": [True, False]}[args.faces]
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
                        native = native_times(export, dtype, 3 if big else args.native_frames, n)
                        for faces in face_modes:
                            for hysteresis in (0.0, args.hysteresis):
                                print(f"{name} {dtype} {n} thread(s), faces {'on' if faces else 'off'}, "
                                      f"hysteresis {hysteresis:g}…", file=sys.stderr)
                                web = browser_times(browser, server.url, dtype, n, warmup=1 if big else 5,
                                                    seconds=args.seconds, min_frames=2 if big else 10,
                                                    timeout_s=600 if big else 180, hysteresis=hysteresis,
                                                    faces=faces)
                                rows.append((name, dtype, n, hysteresis, faces, web, native))
                                print(f"readout: {web['readout']}")
        browser.close()
    load_after = os.getloadavg()

    import onnxruntime

    print(f"\nLive mode, headless Chromium {version} (WASM SIMD, cross-origin isolated), fake camera 640×480 "
          f"(astronaut, still, noise σ {args.noise:g}), labels graphs, vs ONNX Runtime {onnxruntime.__version__} "
          "CPU in Python · "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, SHARED with other jobs "
          f"(load average {load_before[0]:.1f} before, {load_after[0]:.1f} after): absolute numbers are "
          "pessimistic; rerun on a quiet machine.\n")
    table = [[name, dtype, str(web["info"]["numThreads"]), face_cell(faces, web), f"{hysteresis:g}",
              f"{web['fps']:.1f}", f"{web['ms']:.0f}",
              f"{web['preprocess']:.0f} / {web['model']:.0f} / {web['postprocess']:.0f}",
              f"{web['detect']:.1f} ({web['detector model']:.1f}) / {web['crop'] + web['paste']:.1f} "
              f"({100 * (web['detect'] + web['crop'] + web['paste']) / web['ms']:.0f} %)",
              f"{native['model']:.0f} ms", f"{native['pipeline']:.0f} ms", f"{web['model'] / native['model']:.1f}×",
              f"{100 * web['flicker']:.2f} %"]
             for name, dtype, _n, hysteresis, faces, web, native in rows]
    print_table(["model", "dtype", "threads", "face crop", "hysteresis", "FPS", "ms a frame",
                 "worker pre / model+post / copy (ms)", "detect (its model) / crop+paste (ms, % of frame)",
                 "native model", "native pipeline", "browser ÷ native (model)", "flicker"], table,
                right={2, 4, 5, 6, 9, 10, 11, 12}, script="bench/live.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
