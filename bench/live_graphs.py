"""The live student's labels graph alone in headless Chromium's ONNX Runtime Web (WASM): q8 recipes and output
sizes compared without the live loop around them (no camera, no drawing, no detector), interleaved round by
round so that a noisy machine hits every variant alike.

    python bench/live_graphs.py                       # mit-b0-d64 at 256 px: q8 all / q8 matmul / fp32, 256² and 480²

Prints, per variant, the median over --rounds of each round's median session.run (ms) and the ratio to the first
variant. The exports are bench/live.py's (kept in --work).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
PAGE = """<!doctype html><script type=module>
window.time = (cfg) => new Promise((resolve) => {
  const worker = new Worker('/bench/graph_timer.mjs', { type: 'module' });
  worker.onmessage = ({ data }) => { worker.terminate(); resolve(data); };
  worker.postMessage(cfg);
});
</script>"""


class _Isolated(http.server.SimpleHTTPRequestHandler):
    """Static files, cross-origin isolated (WASM threads need SharedArrayBuffer)."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


def main() -> int:
    from bench.live import export_student
    from export.spec import Q8_OPS
    from face_studio.training.distil import DEFAULT_STUDENT, STUDENTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--student", default=DEFAULT_STUDENT, choices=STUDENTS)
    p.add_argument("--size", type=int, default=256, help="student input size (px)")
    p.add_argument("--variants", default="q8:all,q8:matmul,fp32:-", help="DTYPE:Q8_OPS, comma-separated")
    p.add_argument("--outputs", default="256,480", help="labels' side (px), comma-separated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15, help="session.run calls a round, after 3 warm-ups")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work", type=Path, default=Path("/tmp/face-studio-bench"))
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    outputs = [int(v) for v in args.outputs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "models").mkdir()
        (site / "vendor").symlink_to(ROOT / "static" / "vendor")
        (site / "bench").mkdir()
        (site / "bench" / "graph_timer.mjs").symlink_to(ROOT / "bench" / "assets" / "graph_timer.mjs")
        (site / "index.html").write_text(PAGE)
        names = {}
        for dtype, ops in variants:
            recipe = ops if ops in Q8_OPS else "matmul"
            export = export_student(args.student, args.size, ["fp32", "q8"], args.work, recipe)
            names[(dtype, ops)] = f"{args.student}-{recipe}"
            link = site / "models" / names[(dtype, ops)]
            if not link.exists():
                link.symlink_to(export)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Isolated, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        results: dict[tuple, list[float]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_load_state("load")
            if not page.evaluate("crossOriginIsolated"):
                raise SystemExit("the page is not cross-origin isolated: WASM would run on one thread")
            version = browser.version
            for r in range(args.rounds):
                for side in outputs:
                    for dtype, ops in variants:
                        cfg = {"model": names[(dtype, ops)], "dtype": dtype, "threads": args.threads,
                               "size": args.size, "height": side, "width": side, "runs": args.runs}
                        out = page.evaluate("(cfg) => time(cfg)", cfg)
                        if "error" in out:
                            raise SystemExit(out["error"])
                        results.setdefault((side, dtype, ops), []).append(out["median"])
                print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)
            browser.close()
        server.shutdown()

    print(f"\nLabels graph of {args.student} at {args.size} px, headless Chromium {version}, WASM, {args.threads} "
          f"threads, session.run only (median of {args.runs} runs a round; the median of {args.rounds} rounds, and "
          f"their spread); {os.cpu_count()} cores.\n")
    print("| labels made at | graph | ms | spread (ms) | ÷ first |")
    print("|---|---|---:|---:|---:|")
    for side in outputs:
        first = None
        for dtype, ops in variants:
            times = results[(side, dtype, ops)]
            ms = statistics.median(times)
            first = first or ms
            label = f"{dtype} ({ops})" if dtype == "q8" else dtype
            print(f"| {side}² | {label} | {ms:.1f} | {min(times):.1f}–{max(times):.1f} | {ms / first:.2f} |")
    print("\nRerun: python bench/live_graphs.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
