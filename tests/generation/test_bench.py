"""bench/generation.py in its CPU mode (what CI runs, so the GPU benchmark stays runnable)."""

from __future__ import annotations

import json
import subprocess
import sys

from webapp.settings import REPO_ROOT


def test_bench_runs_the_tiny_config_on_cpu_and_builds_the_real_architectures(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "generation.py"), "--tiny", "--no-compile",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The true SD3.5 Large / Medium transformers are built (on the meta device) and run shape-for-shape.
    assert "large (meta device): 8.06 B parameters" in proc.stdout
    assert "medium (meta device): 2.24 B parameters" in proc.stdout
    report = json.loads(out.read_text())
    modes = {r["mode"]: r for r in report["results"]}
    assert set(modes) == {"eager", "fp8"}
    # fp8 is torchao's, as the server runs it: on CPU it is refused with the server's own reason
    assert modes["fp8"]["error"].startswith("skipped: --speed fp8 needs a CUDA GPU with compute capability")
    r = modes["eager"]
    assert r["error"] is None
    assert r["s_per_step"] > 0 and r["tflop_per_step"] > 0
    assert abs(r["s_per_image"] - 28 * r["s_per_step"]) < 1e-9
    assert "| tiny | eager |" in proc.stdout  # the table is printed
    # the end-to-end served rows: the server's GenerationService on the tiny pipeline, per speed mode
    served = {r["mode"]: r for r in report["served"]}
    assert set(served) == {"eager", "fp8"}
    assert served["eager"]["error"] is None and served["eager"]["s_per_image"] > 0
    assert served["fp8"]["error"].startswith("skipped: --speed fp8 needs")
    assert "served end to end (text encoders + transformer + VAE decode + PNG)" in proc.stdout
