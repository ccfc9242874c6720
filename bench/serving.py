"""Benchmark the serving layer: requests per minute and p50 / p95 latency of concurrent generate requests.

Two comparisons, on the tiny SD3 pipeline by default (CPU; ``--model DIR`` for a real SD3 folder):

- the **batched queue** on one box: ``--max-batch`` 1, 2, 4 (the server's ``GenerationService``);
- **Ray Serve scale-out**: 1 vs 2 replicas (``face-studio serve --ray auto --replicas N``'s own code:
  ``webapp.serving``), one CPU thread per replica on CPU, batching off so the replicas are what is measured.

Each configuration gets ``--requests`` requests from ``--clients`` concurrent callers (distinct seeds, the same
size and steps), after a warm-up. Latency is from a caller's send to its images saved.

Run:  python bench/serving.py                   # tiny pipeline on CPU, every configuration (a few minutes)
      python bench/serving.py --no-ray          # the batched queue only
      python bench/serving.py --requests 48 --steps 8 --size 128
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: python bench/serving.py


@dataclass
class Row:
    config: str
    requests: int
    seconds: float
    latencies: list[float]
    pipeline_calls: int | None = None

    @property
    def rpm(self) -> float:
        return 60.0 * self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def drive(service, requests: list, clients: int) -> tuple[float, list[float]]:
    """Send ``requests`` from ``clients`` threads; returns (wall seconds, per-request latencies)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = list(requests)

    def client() -> None:
        while True:
            with lock:
                if not todo:
                    return
                request = todo.pop(0)
            t0 = time.perf_counter()
            try:
                service.generate(request)
            except BaseException as err:  # counted and reported: a lost request fails the bench
                errors.append(err)
                return
            with lock:
                latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed: {errors[0]!r}")
    return time.perf_counter() - start, latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="SD3 diffusers folder (default: the tiny one)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--requests", type=int, default=24, help="timed requests per configuration (default 24)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers (default 8)")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps per request (default 8)")
    parser.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    parser.add_argument("--batches", default="1,2,4", help="--max-batch values for the batched queue")
    parser.add_argument("--replicas", default="1,2", help="Ray replica counts")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args(argv)
    rerun = "python bench/serving.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from diffusers.utils import logging as dlog

    from webapp.generation.params import validate
    from webapp.generation.service import GenerationService
    from webapp.settings import ServeSettings

    dlog.disable_progress_bar()
    start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {msg}", flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="bench-serving-")
    folder = args.model
    if folder is None:
        from tests.generation.tiny_sd3 import build_tiny_sd3

        folder = build_tiny_sd3(Path(tmp.name) / "tiny-sd3")
    out = Path(tmp.name) / "out"

    def workload(n: int, offset: int) -> list:
        return [validate(prompt=f"a portrait photo, request {i}", steps=args.steps, width=args.size,
                         height=args.size, seed=offset + i, max_sequence_length=77) for i in range(n)]

    def settings(**kw) -> ServeSettings:
        return ServeSettings(sd_model=str(folder), device=args.device, speed="eager", output_dir=out, **kw)

    rows: list[Row] = []
    log(f"{args.requests} requests × {args.size}² × {args.steps} steps, {args.clients} clients, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    # 1. The batched queue on one box.
    for b in [int(x) for x in args.batches.split(",") if x]:
        service = GenerationService(settings(max_batch=b))
        drive(service, workload(4, 10_000), args.clients)  # warm-up: load, first calls
        calls0 = service.batcher.calls if service.batcher else 0
        seconds, lat = drive(service, workload(args.requests, 0), args.clients)
        calls = (service.batcher.calls - calls0) if service.batcher else args.requests
        rows.append(Row(f"one box, --max-batch {b}", args.requests, seconds, lat, calls))
        log(f"  {rows[-1].config}: {rows[-1].rpm:.0f} req/min, {calls} pipeline calls")
        del service
    # 2. Ray Serve replicas (batching off: the replicas are what is compared).
    if not args.no_ray:
        from webapp.serving import cluster
        from webapp.serving.remote import RemoteGenerationService

        try:
            for n in [int(x) for x in args.replicas.split(",") if x]:
                s = settings(max_batch=1, ray="auto", replicas=n)
                t0 = time.perf_counter()
                service = RemoteGenerationService(s, cluster.start(s))
                log(f"  {n} replica(s) deployed in {time.perf_counter() - t0:.0f} s")
                drive(service, workload(2 * n, 10_000), args.clients)  # warm-up on every replica
                seconds, lat = drive(service, workload(args.requests, 0), args.clients)
                rows.append(Row(f"Ray Serve, {n} replica(s) × 1 CPU thread", args.requests, seconds, lat))
                log(f"  {rows[-1].config}: {rows[-1].rpm:.0f} req/min")
        finally:
            cluster.stop()
    tmp.cleanup()

    print(f"\nServing, {args.device}, {os.cpu_count()} CPUs: {args.requests} requests of {args.size}², "
          f"{args.steps} steps, {args.clients} concurrent clients")
    print("| configuration | req/min | p50 s | p95 s | pipeline calls |")
    print("|---|---|---|---|---|")
    for r in rows:
        calls = r.pipeline_calls if r.pipeline_calls is not None else "–"
        print(f"| {r.config} | {r.rpm:.1f} | {statistics.median(r.latencies):.2f} | {r.pct(0.95):.2f} | {calls} |")
    by = {r.config: r for r in rows}
    b1, b4 = by.get("one box, --max-batch 1"), by.get("one box, --max-batch 4")
    if b1 and b4:
        print(f"batch 4 vs 1: {b4.rpm / b1.rpm:.2f}× requests per minute")
    r1 = next((r for r in rows if r.config.startswith("Ray Serve, 1 ")), None)
    r2 = next((r for r in rows if r.config.startswith("Ray Serve, 2 ")), None)
    if r1 and r2:
        print(f"2 replicas vs 1: {r2.rpm / r1.rpm:.2f}× requests per minute (aim ≥ 1.6×)")
    print(f"rerun: {rerun}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
