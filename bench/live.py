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

from export.spec import Q8_OPS, Q8_OPS_LIVE  # noqa: E402

FRAME_SIZE = (640, 480)
B5_SIZE = 512


def export_student(preset: str, size: int, dtypes: list[str], work: Path, q8_ops: str = Q8_OPS_LIVE) -> Path:
    """The ``preset`` student (random weights) exported at ``size`` px with labels graphs and the ``q8_ops`` q8
    recipe (kept in ``work``)."""
    import json

    from face_studio.onnx_files import current_labels_graphs
    from tests.conftest import build_tiny_parser
    from webapp.cli import main

    out = work / (f"{preset}-{size}-labels-export" + ("" if q8_ops == Q8_OPS_LIVE else f"-q8-{q8_ops}"))
    if (out / "manifest.json").is_file():
        made = json.loads((out / "manifest.json").read_text())
        if (set(dtypes) <= current_labels_graphs(made)
                and made["dtypes"].get("q8", {}).get("q8_ops", "all") == q8_ops):
            return out  # made before, with this version's labels head and q8 recipe
    source = work / f"{preset}-{size}-source"
    shutil.rmtree(source, ignore_errors=True)
    build_tiny_parser(source, preset=preset)
    pre = json.loads((source / "preprocessor_config.json").read_text())
    pre["size"] = {"height": size, "width": size}
    (source / "preprocessor_config.json").write_text(json.dumps(pre))
    print(f"exporting {preset} at {size} px → {out}", file=sys.stderr)
    if main(["export", "--model", str(source), "--out", str(out), "--dtypes", ",".join(dtypes), "--labels-out",
             "--q8-ops", q8_ops, "--force", "--quiet"]) != 0:
        raise SystemExit(f"export of {preset} at {size} px failed")
    return out


def export_b5(work: Path) -> Path:
    """MiT-B5 (random weights) exported with fp32 and q8: bench/browser.py's export, shared through ``work``."""
    from bench.browser import export_models

    return export_models(["mit-b5"], work)["mit-b5"]


def native_times(export: Path, dtype: str, frames: int, threads: int, labels_hw: tuple[int, int]) -> dict[str, float]:
    """ONNX Runtime in Python on the same files: the logits graph (model) and the whole pipeline on the 640×480
    astronaut, and the labels graph at ``labels_hw`` (the work the page's "model+post" stage does), median."""
    import statistics

    import onnxruntime as ort
    from PIL import Image
    from skimage import data

    from bench._compare import native_times as timed
    from export.labels_graph import labels_feed
    from export.validation import run_times_ms
    from face_studio.onnx_files import LABELS_FILES
    from face_studio.preprocess import input_size, to_pixel_values

    image = Image.fromarray(data.astronaut()).resize(FRAME_SIZE, Image.BILINEAR)
    size = input_size(export)
    out = timed(export, dtype, image, frames, threads, size=size, log_level=3)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
    if not (export / LABELS_FILES[dtype]).is_file():  # an export without --labels-out (B5 here)
        return {**out, "labels": None}
    session = ort.InferenceSession(str(export / LABELS_FILES[dtype]), options, providers=["CPUExecutionProvider"])
    times = run_times_ms(session, labels_feed(to_pixel_values([image], size), *labels_hw), frames)
    return {**out, "labels": statistics.median(times)}


def busy_cores(seconds: float = 2.0) -> float:
    """Cores busy over the next ``seconds`` (from /proc/stat; nan elsewhere): is the machine quiet?"""
    import time

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return float("nan")
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(1, total1 - total0))


def labels_size(export: Path, labels_max: int | None, faces: bool) -> tuple[int, int]:
    """The labels' size the page asks the graph for: worker.js's ``labelsGrid`` of a face crop (its side is
    ~2.4 × the face: here ~480 px, more than any input size) or of the 640×480 frame."""
    from face_studio.preprocess import input_size

    most = input_size(export) if labels_max is None else labels_max
    width, height = (480, 480) if faces else FRAME_SIZE
    scale = min(1.0, most / max(width, height)) if most else 1.0
    return max(1, round(height * scale)), max(1, round(width * scale))


def live_js_hysteresis() -> float:
    """Live mode's default flicker filter, read from static/js/live.js (one source)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "static/js/live.js").read_text()
    return float(re.search(r"export const HYSTERESIS = ([0-9.]+);", text)[1])


READ_TOTALS = "() => ({ now: performance.now(), ...document.querySelector('.fs-parse').view.live.totals })"


def browser_times(browser, url: str, dtype: str, threads: int, warmup: int, seconds: float, min_frames: int,
                  timeout_s: float, hysteresis: float = 0.0, faces: bool = True,
                  labels_max: int | None = None) -> dict:
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
        page.evaluate("document.querySelector('.fs-parse').view.live.options.labelsMax = "
                      f"{'null' if labels_max is None else labels_max}")
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
    parser.add_argument("--labels-max", default="input",
                        help="live labels' largest side, comma-separated: input (the parser's input size, live "
                             "mode's default) or px; 0 = full size (the crop's or the frame's own pixels)")
    parser.add_argument("--q8-ops", default=Q8_OPS_LIVE,
                        help=f"q8 recipes to export and compare, comma-separated ({', '.join(Q8_OPS)}; "
                             f"default {Q8_OPS_LIVE}, as export --labels-out)")
    parser.add_argument("--clip", choices=["still", "moving"], default="still",
                        help="the fake camera: the astronaut still with sensor noise (default), or a synthetic face "
                             "moving across the frame and back (the detector then runs on the frames it moved)")
    parser.add_argument("--noise", type=float, default=3.0, help="fake camera sensor noise, grey levels (σ)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring window per run, after the warm-up")
    parser.add_argument("--native-frames", type=int, default=10, help="native runs per file (median)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/face-studio-bench"), help="exports are kept here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from bench._compare import print_table
    from tests.browser.fake_camera import astronaut_y4m, camera_args, moving_face_y4m
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from webapp.server import run_in_thread
    from webapp.settings import ServeSettings

    args.work.mkdir(parents=True, exist_ok=True)
    dtypes = args.dtypes.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    runs = [(f"{args.student} {s} px" + ("" if ops == Q8_OPS_LIVE else f" (q8 {ops})"),
             export_student(args.student, int(s), sorted(set(["fp32", *dtypes])), args.work, ops), dtypes)
            for s in args.sizes.split(",") if s for ops in args.q8_ops.split(",")]
    limits = [None if v.strip() == "input" else int(v) for v in args.labels_max.split(",")]
    if args.b5:
        runs.append((f"B5 {B5_SIZE} px", export_b5(args.work), ["q8"]))
    if args.clip == "still":
        y4m = astronaut_y4m(args.work / f"astronaut-640x480-noise{args.noise:g}.y4m", FRAME_SIZE, frames=30,
                            noise=args.noise)
    else:
        y4m, _squares = moving_face_y4m(args.work / "moving-face-640x480.y4m", FRAME_SIZE)
    face_modes = {"on": [True], "off": [False], "both": [True, False]}[args.faces]
    busy_before = busy_cores()

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
                        for faces in face_modes:
                            for labels_max in limits:
                                hw = labels_size(export, labels_max, faces)
                                native = native_times(export, dtype, 3 if big else args.native_frames, n, hw)
                                for hysteresis in (0.0, args.hysteresis):
                                    print(f"{name} {dtype} {n} thread(s), faces {'on' if faces else 'off'}, labels "
                                          f"{hw[1]}×{hw[0]}, hysteresis {hysteresis:g}…", file=sys.stderr)
                                    web = browser_times(browser, server.url, dtype, n, warmup=1 if big else 5,
                                                        seconds=args.seconds, min_frames=2 if big else 10,
                                                        timeout_s=600 if big else 180, hysteresis=hysteresis,
                                                        faces=faces, labels_max=labels_max)
                                    rows.append((name, dtype, n, hysteresis, faces, hw, web, native))
                                    print(f"readout: {web['readout']}")
        browser.close()
    load_after = os.getloadavg()

    import onnxruntime  # noqa: F401 (its version, below)

    quiet = busy_before < 0.25
    print(f"\nLive mode, headless Chromium {version} (WASM SIMD, cross-origin isolated), fake camera 640×480 "
          + (f"(astronaut, still, noise σ {args.noise:g})" if args.clip == "still" else
             "(a synthetic face moving across and back, 300 px/s)")
          + f", labels graphs, vs ONNX Runtime {onnxruntime.__version__} CPU in Python · "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          + (f"quiet ({busy_before:.2f} cores busy just before the run)" if quiet else
             f"SHARED with other jobs ({busy_before:.2f} cores busy just before the run, load average "
             f"{load_after[0]:.1f} after): absolute numbers are pessimistic; rerun on a quiet machine") + ".\n")
    table = [[name, dtype, str(web["info"]["numThreads"]), face_cell(faces, web), f"{hw[1]}×{hw[0]}",
              f"{hysteresis:g}", f"{web['fps']:.1f}", f"{web['ms']:.0f}",
              f"{web['preprocess']:.0f} / {web['model']:.0f} / {web['postprocess']:.0f}",
              f"{web['detect']:.1f} ({web['detector model']:.1f}) / {web['crop'] + web['paste']:.1f} "
              f"({100 * (web['detect'] + web['crop'] + web['paste']) / web['ms']:.0f} %)",
              f"{native['model']:.0f} ms", f"{native['labels']:.0f} ms" if native["labels"] else "—",
              f"{web['model'] / (native['labels'] or native['model']):.1f}×",
              f"{100 * web['flicker']:.2f} %"]
             for name, dtype, _n, hysteresis, faces, hw, web, native in rows]
    print_table(["model", "dtype", "threads", "face crop", "labels made at", "hysteresis", "FPS", "ms a frame",
                 "worker pre / model+post / copy (ms)", "detect (its model) / crop+paste (ms, % of frame)",
                 "native model (logits)", "native model+post (labels graph)", "browser ÷ native (model+post)",
                 "flicker"], table, right={2, 5, 6, 7, 10, 11, 12, 13}, script="bench/live.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
