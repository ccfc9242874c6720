"""Issue #17.5 and #17.10: ``face-studio serve`` refuses, before it starts, a damaged export (checked against its
manifest: every file there, with its size and sha256), a live parser that is not a 19-label face parser, and a
--max-batch beyond its ceiling: one line naming the fix, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export.manifest import file_entries, write
from tests.server.bad_inputs import SERVE_CASES
from webapp.cli import main


def _damage(export: Path, tried: str) -> None:
    q8 = export / "onnx" / "model_quantized.onnx"
    if "cut short" in tried or "a damaged export" in tried:
        q8.write_bytes(q8.read_bytes()[:2048])
    elif "same size" in tried:
        data = bytearray(q8.read_bytes())
        data[len(data) // 2] ^= 0xFF
        q8.write_bytes(bytes(data))
    elif "deleted" in tried:
        (export / "onnx" / "model.onnx").unlink()
    elif "5-label" in tried:
        config = json.loads((export / "config.json").read_text())
        config["id2label"] = {str(i): f"c{i}" for i in range(5)}
        config["label2id"] = {f"c{i}": i for i in range(5)}
        (export / "config.json").write_text(json.dumps(config))
        manifest = json.loads((export / "manifest.json").read_text())
        manifest["files"] = file_entries(export)  # a consistent manifest: only the labels are wrong
        write(export, manifest)


@pytest.mark.parametrize("case", SERVE_CASES, ids=lambda c: c.tried)
def test_serve_refuses_in_one_line_before_starting(case, parser_dir, tmp_path, capsys, monkeypatch) -> None:
    import webapp.server

    def started(settings) -> None:
        raise AssertionError(f"{case.tried}: the server started instead of refusing")

    monkeypatch.setattr(webapp.server, "serve", started)  # a refusal must come before this point
    folders = {"parser": tmp_path / "parser", "live": tmp_path / "live"}
    shutil.copytree(parser_dir, folders["parser"])
    shutil.copytree(parser_dir, folders["live"])
    _damage(folders["live" if "--live-parser" in case.tried else "parser"], case.tried)
    capsys.readouterr()
    assert main([a.format(**folders) for a in case.args]) == case.exit_code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and case.expect in err and "\n" not in err, err
    if "--max-batch" not in case.tried:
        assert "face-studio export" in err


def test_an_intact_export_passes_the_check_and_one_without_manifest_gets_a_note(parser_dir, tmp_path) -> None:
    from webapp.commands.serve import check_export

    assert check_export(parser_dir, "--parser", "face-studio export") is None
    bare = shutil.copytree(parser_dir, tmp_path / "bare")
    (bare / "manifest.json").unlink()
    assert "no readable manifest.json" in check_export(bare, "--parser", "face-studio export --out bare")
