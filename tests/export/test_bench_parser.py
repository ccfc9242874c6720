"""bench/parser.py stays runnable: the tiny preset, one round, prints its table and how to rerun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "parser.py"


def test_bench_parser_tiny_runs() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--preset", "tiny", "--runs", "1", "--size", "256"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "ms" not in line]
    names = [row.split("|")[1].strip() for row in rows]
    assert names[:4] == ["torch eager fp32", "ort fp32 (export: torch.onnx + onnxslim)", "ort fp16 (export)",
                         "ort q8 (export: dynamic, uint8)"]
    assert "rerun: python bench/parser.py --preset tiny --runs 1" in proc.stdout
