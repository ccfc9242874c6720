"""``bench/gpu_smoke.py --device cpu`` (what CI can run of the GPU smoke check): every check passes or is
skipped as GPU-only, one line each, and the timing table follows."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from webapp.settings import REPO_ROOT

GPU_ONLY = {"dynamic-cost", "fp8-compile-lora", "cuda-parse"}


@pytest.mark.slow
def test_gpu_smoke_passes_on_cpu_with_the_eager_backend():
    proc = subprocess.run([sys.executable, "bench/gpu_smoke.py", "--device", "cpu"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=840)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = {name: status for status, name in re.findall(r"^(PASS|FAIL|SKIP) ([\w-]+): ", proc.stdout, re.M)}
    assert set(lines) >= {"recompile-budget", "fp8-memory-te-lora", "compile-refused", "same-seed", "oom-recovery",
                          "batch-oom-halves"} | GPU_ONLY, proc.stdout
    assert all(lines[name] == "SKIP" for name in GPU_ONLY), proc.stdout
    assert all(status == "PASS" for name, status in lines.items() if name not in GPU_ONLY), proc.stdout
    assert "| check | result | seconds |" in proc.stdout and "Rerun: python bench/gpu_smoke.py" in proc.stdout


def test_gpu_smoke_refuses_an_unknown_check_in_one_line():
    proc = subprocess.run([sys.executable, "bench/gpu_smoke.py", "--device", "cpu", "--only", "warp-drive"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown check(s) ['warp-drive']" in proc.stderr
