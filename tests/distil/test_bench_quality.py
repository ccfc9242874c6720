"""bench/distil_quality.py stays runnable: a few 64-px faces, a few steps each, prints its five rows, the share of
the teacher kept by both students, the --compare student's cost, and how to rerun it. The numbers are not checked
(a benchmark, not a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "distil_quality.py"


def test_bench_distil_quality_small_runs(tmp_path: Path) -> None:
    args = ["--work", str(tmp_path / "w"), "--size", "64", "--faces", "12", "--pictures", "24", "--heldout", "4",
            "--teacher", "tiny", "--teacher-epochs", "1", "--steps", "4", "--student", "tiny", "--compare",
            "mit-b0-d64", "--batch", "4"]
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "model", "teacher (`tiny`)", "student (`tiny`), distilled", "student (`tiny`), on the labels",
        "student (`mit-b0-d64`), distilled", "student (`tiny`), untrained"]
    assert "student / teacher mIoU: distilled " in proc.stdout and ", trained on the labels " in proc.stdout
    assert "the same number of steps" in proc.stdout
    assert "`tiny` − `mit-b0-d64`, both distilled" in proc.stdout
    assert "validation curves, one value an epoch" in proc.stdout
    assert "rerun: .venv/bin/python bench/distil_quality.py " + " ".join(args) in proc.stdout
    # The students were distilled on pictures whose masks are gone (twice as many as the labelled faces), for as
    # many steps as the label-trained one, though that one saw fewer faces per epoch.
    assert not (tmp_path / "w" / "pictures" / "masks").exists()
    runs = {name: json.loads((tmp_path / "w" / name / "training.json").read_text())
            for name in ("student", "direct", "student-mit-b0-d64")}
    assert runs["student"]["steps"] == runs["direct"]["steps"] == runs["student-mit-b0-d64"]["steps"] == 4
    assert runs["student"]["train_photos"] > runs["direct"]["train_faces"]
    # The --compare student read the same teacher targets instead of running the teacher again.
    assert not runs["student"]["cache_reused"] and runs["student-mit-b0-d64"]["cache_reused"]
