"""Re-running ``face-studio export``: a damaged export is rebuilt, not called "nothing to do" (#11.12), and
temp folders of killed exports are cleaned up — never a live export's (#11.13)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from export.build import remove_stale_partials
from webapp.cli import main


def _copy(export_dir: Path, dst: Path) -> Path:
    shutil.copytree(export_dir, dst)
    return dst


def test_rerun_on_a_corrupted_export_rebuilds_it(tiny_export_dir: Path, tiny_parser_dir: Path, tmp_path: Path,
                                                 capsys) -> None:
    out = _copy(tiny_export_dir, tmp_path / "exp")
    target = out / "onnx" / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert main(["verify", str(out)]) == 1
    capsys.readouterr()

    # fp32 only: a quicker rebuild (the copy holds all three dtypes, so fp32 alone is "the same export")
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "nothing to do" not in err
    assert "no longer matches its manifest.json (onnx/model.onnx: sha256 mismatch" in err and "rebuilding" in err
    assert main(["verify", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_rerun_on_an_export_missing_a_file_rebuilds_it(tiny_export_dir: Path, tiny_parser_dir: Path,
                                                       tmp_path: Path, capsys) -> None:
    out = _copy(tiny_export_dir, tmp_path / "exp")
    (out / "labels.json").unlink()
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32", "--quiet"]) == 0
    assert "labels.json: missing" in capsys.readouterr().err
    assert main(["verify", str(out)]) == 0


def test_intact_export_is_still_nothing_to_do(tiny_export_dir: Path, tiny_parser_dir: Path, tmp_path: Path,
                                              capsys) -> None:
    out = _copy(tiny_export_dir, tmp_path / "exp")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: its pid names no process now
    return proc.pid


def _partial(folder: Path, name: str) -> Path:
    path = folder / name
    (path / "onnx").mkdir(parents=True)
    (path / "onnx" / "model.onnx").write_bytes(b"half a graph")
    return path


def test_stale_partials_of_dead_exports_are_removed_live_ones_kept(tiny_export_dir: Path, tiny_parser_dir: Path,
                                                                   tmp_path: Path, capsys) -> None:
    out = _copy(tiny_export_dir, tmp_path / "exp")
    dead = _dead_pid()
    live = subprocess.Popen(["sleep", "120"])
    try:
        stale = _partial(tmp_path, f".exp.partial-{dead}")
        stale_old = _partial(tmp_path, f".exp.old-{dead}")
        running = _partial(tmp_path, f".exp.partial-{live.pid}")
        other = _partial(tmp_path, f".other.partial-{dead}")  # another export's folder: not ours to judge
        assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert not stale.exists() and not stale_old.exists()
        assert running.is_dir() and (running / "onnx" / "model.onnx").read_bytes() == b"half a graph"
        assert other.is_dir()
        assert f"removed .exp.partial-{dead}, left by an export (process {dead}) that was stopped" in err
        assert "nothing to do" in err
    finally:
        live.kill()
        live.wait()


def test_old_folder_is_kept_when_the_export_itself_is_missing(tmp_path: Path) -> None:
    """Killed between its two renames, an export leaves only ``.NAME.old-PID``: that is the last good export."""
    kept = _partial(tmp_path, f".exp.old-{_dead_pid()}")
    assert remove_stale_partials(tmp_path / "exp") == []
    assert kept.is_dir()
