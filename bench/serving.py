"""Benchmark the serving layer: requests per minute and p50 / p95 latency of concurrent generate requests.

Three comparisons, through the server's own backends (``webapp.backend``: checks, seed, PNG written on the front
end), on the tiny SD3 pipeline by default (CPU; ``--model DIR`` for a real SD3 folder):

- the **batched queue** on one box: ``--max-batch`` 1, 2, 4 (``LocalBackend``);
- **Ray Serve scale-out**, real pipeline: 1 vs 2 replicas (``face-studio serve --ray auto --replicas N``'s own
  code: ``RayBackend``), one CPU thread per replica, batching off so the replicas are what is measured;
- **Ray Serve scale-out, SIMULATED GPU** (``--simulate-gpu-ms MS``): the same front end, queue, Ray handles,
  retries and PNG path, but inside each replica the diffusers call is a sleep of MS per request
  (``webapp.serving.replica.SimulatedPipeline``), so replica counts past this machine's cores can be measured:
  ``--replicas 1,2,4,8`` → ``N replicas vs 1: X×`` (ideal: N×).

Each configuration gets ``--requests`` requests from ``--clients`` concurrent callers (distinct seeds, the same
size and steps), after a warm-up. Latency is from a caller's send to its PNGs saved.

Run:  python bench/serving.py                               # tiny pipeline on CPU, every real configuration
      python bench/serving.py --no-ray                      # the batched queue only
      python bench/serving.py --simulate-gpu-ms 500 --replicas 1,2,4,8   # + the simulated-GPU replica rows
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


def drive(backend, requests: list[dict], clients: int) -> tuple[float, list[float]]:
    """Send ``requests`` (generate inputs) from ``clients`` threads; returns (wall seconds, latencies)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = list(requests)

    def client() -> None:
        while True:
            with lock:
                if not todo:
                    return
                inputs = todo.pop(0)
            t0 = time.perf_counter()
            try:
                backend.generate(**inputs)
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


def ray_rows(counts: list[int], settings, workload, requests: int, clients: int, label: str, log,
             simulate_ms: float | None = None) -> list[Row]:
    """Deploy ``n`` replicas for each count, warm every replica, time ``requests`` requests."""
    import os

    from webapp.serving.remote import RayBackend
    from webapp.serving.replica import SIMULATE_ENV

    rows = []
    if simulate_ms:
        os.environ[SIMULATE_ENV] = str(simulate_ms)  # read when the replicas deploy (cluster.deployment_options)
    try:
        for n in counts:
            s = settings(max_batch=1, ray="auto", replicas=n)
            t0 = time.perf_counter()
            backend = RayBackend.start(s)  # replaces the previous configuration's application
            log(f"  {n} replica(s) deployed in {time.perf_counter() - t0:.0f} s")
            drive(backend, workload(2 * n, 10_000), clients)  # warm-up on every replica
            seconds, lat = drive(backend, workload(requests, 0), clients)
            rows.append(Row(f"{label}, {n} replica(s)", requests, seconds, lat))
            log(f"  {rows[-1].config}: {rows[-1].rpm:.0f} req/min")
    finally:
        os.environ.pop(SIMULATE_ENV, None)
    return rows


def speedups(rows: list[Row], label: str) -> list[str]:
    """``N replicas vs 1: X×`` for each row of ``label`` against its 1-replica row."""
    mine = [r for r in rows if r.config.startswith(label + ",")]
    one = next((r for r in mine if r.config.endswith(" 1 replica(s)")), None)
    if one is None:
        return []
    lines = []
    for r in mine:
        n = int(r.config.rsplit(" ", 2)[-2])
        if n > 1:
            lines.append(f"{label}: {n} replicas vs 1: {r.rpm / one.rpm:.2f}× requests per minute "
                         f"(ideal {n}×, {r.rpm / one.rpm / n:.0%} of it)")
    return lines


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
    parser.add_argument("--replicas", default="1,2,4,8", help="simulated-GPU replica counts (default 1,2,4,8)")
    parser.add_argument("--real-replicas", default="1,2", help="real-pipeline Ray replica counts (default 1,2)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    parser.add_argument("--simulate-gpu-ms", type=float, default=None, metavar="MS",
                        help="add SIMULATED-GPU replica rows: each replica's diffusers call sleeps MS per request")
    parser.add_argument("--sim-requests", type=int, default=32, help="timed requests per simulated row (default 32)")
    parser.add_argument("--no-real-ray", action="store_true", help="skip the real-pipeline Ray rows")
    args = parser.parse_args(argv)
    rerun = "python bench/serving.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from diffusers.utils import logging as dlog

    from webapp.backend.local import LocalBackend
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

    def workload(n: int, offset: int) -> list[dict]:
        return [dict(prompt=f"a portrait photo, request {i}", steps=args.steps, width=args.size, height=args.size,
                     seed=offset + i, max_sequence_length=77) for i in range(n)]

    def settings(**kw) -> ServeSettings:
        return ServeSettings(sd_model=str(folder), device=args.device, speed="eager", output_dir=out, **kw)

    rows: list[Row] = []
    log(f"{args.requests} requests × {args.size}² × {args.steps} steps, {args.clients} clients, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    # 1. The batched queue on one box.
    for b in [int(x) for x in args.batches.split(",") if x]:
        backend = LocalBackend(settings(max_batch=b))
        batcher = backend.service.batcher
        drive(backend, workload(4, 10_000), args.clients)  # warm-up: load, first calls
        calls0 = batcher.calls if batcher else 0
        seconds, lat = drive(backend, workload(args.requests, 0), args.clients)
        calls = (batcher.calls - calls0) if batcher else args.requests
        rows.append(Row(f"one box, --max-batch {b}", args.requests, seconds, lat, calls))
        log(f"  {rows[-1].config}: {rows[-1].rpm:.0f} req/min, {calls} pipeline calls")
        del backend
    # 2. Ray Serve replicas, the real tiny pipeline (batching off: the replicas are what is compared).
    real_counts = [int(x) for x in args.real_replicas.split(",") if x]
    sim_counts = [int(x) for x in args.replicas.split(",") if x]
    ray_wanted = not args.no_ray and (not args.no_real_ray or args.simulate_gpu_ms)
    if ray_wanted:  # one local Ray instance for every Ray row (restarting Ray in a process is slow and fragile)
        import ray

        from webapp.serving import cluster

        # replicas that sleep need no cores: declare enough logical CPUs for the largest simulated count
        cpus = max([*real_counts, *(sim_counts if args.simulate_gpu_ms else [])]) + 1
        ray.init(num_cpus=max(cpus, os.cpu_count() or 1), namespace=cluster.NAMESPACE, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, runtime_env=cluster._runtime_env())
    if not args.no_ray and not args.no_real_ray:
        rows += ray_rows(real_counts, settings, workload, args.requests, args.clients,
                         "Ray Serve, tiny pipeline, 1 CPU thread each", log)
    # 3. Ray Serve replicas, SIMULATED GPU: the diffusers call inside each replica is a sleep.
    if not args.no_ray and args.simulate_gpu_ms:
        rows += ray_rows(sim_counts, settings, workload, args.sim_requests, max(args.clients, 2 * max(sim_counts)),
                         f"SIMULATED GPU ({args.simulate_gpu_ms:g} ms a request), Ray Serve", log,
                         simulate_ms=args.simulate_gpu_ms)
    if ray_wanted:
        cluster.stop()
    tmp.cleanup()

    print(f"\nServing, {args.device}, {os.cpu_count()} CPUs: requests of {args.size}², {args.steps} steps; "
          f"{args.clients} concurrent clients ({max(args.clients, 2 * max(sim_counts))} for simulated rows)")
    print("| configuration | requests | req/min | p50 s | p95 s | pipeline calls |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        calls = r.pipeline_calls if r.pipeline_calls is not None else "–"
        print(f"| {r.config} | {r.requests} | {r.rpm:.1f} | {statistics.median(r.latencies):.2f} | {r.pct(0.95):.2f} "
              f"| {calls} |")
    by = {r.config: r for r in rows}
    b1, b4 = by.get("one box, --max-batch 1"), by.get("one box, --max-batch 4")
    if b1 and b4:
        print(f"batch 4 vs 1: {b4.rpm / b1.rpm:.2f}× requests per minute")
    for label in sorted({r.config.rsplit(",", 1)[0] for r in rows if "replica" in r.config}):
        for line in speedups(rows, label):
            print(line)
    print(f"rerun: {rerun}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
