"""bench/distil_quality.py stays runnable: a few 64-px faces, one epoch each, prints its four rows, the share of
the teacher kept by both students, and how to rerun it. The numbers are not checked (a benchmark, not a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "distil_quality.py"


def test_bench_distil_quality_small_runs(tmp_path: Path) -> None:
    args = ["--work", str(tmp_path / "w"), "--size", "64", "--faces", "12", "--heldout", "4", "--teacher-epochs",
            "1", "--epochs", "1", "--student", "tiny", "--batch", "4"]
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "model", "teacher (`tiny`)", "student (`tiny`), distilled", "student (`tiny`), on the labels",
        "student (`tiny`), untrained"]
    assert "student / teacher mIoU: distilled " in proc.stdout and ", trained on the labels " in proc.stdout
    assert "rerun: .venv/bin/python bench/distil_quality.py " + " ".join(args) in proc.stdout
    # The student was distilled on pictures whose masks are gone, for as many steps as the label-trained one.
    assert not (tmp_path / "w" / "pictures" / "masks").exists()
    steps = {name: json.loads((tmp_path / "w" / name / "training.json").read_text())["steps"]
             for name in ("student", "direct")}
    assert steps["student"] == steps["direct"] > 0
