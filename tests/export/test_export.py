"""`face-studio export` and `verify` on a tiny SegFormer built here: layout, parity, errors, atomicity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SegformerForSemanticSegmentation

from export import build
from export.manifest import sha256
from export.validation import ort_session
from face_studio.labels import ID2LABEL, NAMES
from face_studio.preprocess import logits_to_labels, to_pixel_values
from tests.conftest import build_tiny_parser
from webapp.cli import main

LAYOUT = ["config.json", "preprocessor_config.json", "labels.json", "model.safetensors", "manifest.json",
          "onnx/model.onnx", "onnx/model_fp16.onnx", "onnx/model_quantized.onnx"]


def test_layout_and_config(tiny_export_dir: Path) -> None:
    for rel in LAYOUT:
        assert (tiny_export_dir / rel).is_file(), rel
    config = json.loads((tiny_export_dir / "config.json").read_text())
    assert config["architectures"] == ["SegformerForSemanticSegmentation"]
    assert [config["id2label"][str(i)] for i in range(19)] == list(NAMES)
    pre = json.loads((tiny_export_dir / "preprocessor_config.json").read_text())
    assert pre["size"] == {"height": 512, "width": 512}
    assert [p.name for p in tiny_export_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_manifest_hashes_and_fidelity(tiny_export_dir: Path, tiny_parser_dir: Path) -> None:
    manifest = json.loads((tiny_export_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == set(LAYOUT) - {"manifest.json"}
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(tiny_export_dir / rel), rel
        assert entry["bytes"] == (tiny_export_dir / rel).stat().st_size, rel
    assert manifest["source"]["model"] == str(tiny_parser_dir.resolve())
    assert manifest["source"]["revision"].startswith("sha256:")
    assert manifest["labels"] == list(NAMES)
    for dtype in ("fp32", "fp16", "q8"):
        stats = manifest["dtypes"][dtype]
        assert stats["cpu_latency_ms"] > 0
        assert 0 <= stats["label_agreement_pct"] <= 100
    assert manifest["dtypes"]["fp32"]["max_abs_logit_diff"] < 1e-4
    assert manifest["dtypes"]["fp32"]["label_agreement_pct"] == 100.0


def _non_square_batch() -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, (300, 460, 3), dtype=np.uint8)),
            Image.fromarray(rng.integers(0, 256, (520, 250, 3), dtype=np.uint8))]


def test_fp32_matches_pytorch_on_non_square_batch(tiny_export_dir: Path, tiny_parser_dir: Path) -> None:
    model = SegformerForSemanticSegmentation.from_pretrained(tiny_parser_dir).eval()
    images = _non_square_batch()
    # The graph's height/width axes are dynamic: feed each image at its own (multiple-of-4) size.
    x = np.stack([np.asarray(im.resize((448, 320)), dtype=np.float32).transpose(2, 0, 1) / 255 for im in images])
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(x)).logits.numpy()
    got = ort_session(tiny_export_dir / "onnx/model.onnx").run(None, {"pixel_values": x})[0]
    assert got.shape == ref.shape == (2, 19, 80, 112)
    assert np.abs(got - ref).max() < 1e-4


def test_fp16_and_q8_label_agreement(tiny_export_dir: Path) -> None:
    images = _non_square_batch()
    x = to_pixel_values(images)
    outputs = {d: ort_session(tiny_export_dir / f).run(None, {"pixel_values": x})[0]
               for d, f in build.DTYPE_FILES.items()}
    for i, im in enumerate(images):
        ref = logits_to_labels(outputs["fp32"][i], im.height, im.width)
        for dtype, floor in (("fp16", 0.99), ("q8", 0.90)):
            agree = (logits_to_labels(outputs[dtype][i], im.height, im.width) == ref).mean()
            # Random tiny weights have logit margins of ~1e-3, the size of q8's error, so q8 flips a few
            # % of pixels here (measured 96-97 %); a trained parser's margins are far larger. A broken
            # conversion gives ~1/19.
            assert agree >= floor, f"{dtype} agrees with fp32 on {agree:.1%} of pixels of image {i}"


def test_verify_accepts_then_catches_one_flipped_byte(tiny_export_dir: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(tiny_export_dir), str(copy)], check=True)
    assert main(["verify", str(copy)]) == 0
    target = copy / "onnx" / "model_quantized.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert main(["verify", str(copy)]) == 1
    assert "onnx/model_quantized.onnx: sha256 mismatch" in capsys.readouterr().err


def test_second_export_is_noop_and_force_rebuilds(tiny_parser_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "exp"
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32"]) == 0
    first = (out / "manifest.json").read_text()
    assert sorted(json.loads(first)["dtypes"]) == ["fp32"]
    assert not (out / "onnx" / "model_quantized.onnx").exists()
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert (out / "manifest.json").read_text() == first
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--dtypes", "fp32,q8",
                 "--force", "--quiet"]) == 0
    assert sorted(json.loads((out / "manifest.json").read_text())["dtypes"]) == ["fp32", "q8"]
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]


def test_failure_mid_export_leaves_nothing(tiny_parser_dir: Path, tmp_path: Path, monkeypatch) -> None:
    def broken_quantizer(src: Path, dst: Path, **_options) -> Path:
        dst.write_bytes(b"half a file")
        raise RuntimeError("disk full (injected)")

    monkeypatch.setitem(build.onnx_build.BUILDERS, "q8", broken_quantizer)
    out = tmp_path / "exp"
    with pytest.raises(RuntimeError, match="injected"):
        build.export_model(str(tiny_parser_dir), out, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_export_intact(tiny_export_dir: Path, tiny_parser_dir: Path, tmp_path: Path,
                                              monkeypatch) -> None:
    out = tmp_path / "exp"
    subprocess.run(["cp", "-r", str(tiny_export_dir), str(out)], check=True)
    before = (out / "manifest.json").read_text()
    monkeypatch.setattr(build.validation, "latency_ms", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        build.export_model(str(tiny_parser_dir), out, force=True, progress=False)
    assert (out / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]
    assert main(["verify", str(out)]) == 0


# --- bad inputs: tests/export/bad_inputs.py (test_bad_inputs.py runs them; docs/bad-inputs.md lists them) ---

@pytest.fixture(scope="module")
def wrong_labels(tmp_path_factory) -> Path:
    folder = build_tiny_parser(tmp_path_factory.mktemp("wrong") / "m")
    config = json.loads((folder / "config.json").read_text())
    names = list(NAMES)
    names[4], names[5] = names[5], names[4]  # an older label order: eyes swapped
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_real_process_prints_one_line_for_a_bad_model(tmp_path: Path) -> None:
    """In a real process (no pytest capture): exit 2, one error line, no traceback."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "webapp", "export", "--model", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: --model" in proc.stderr and "no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_labels_ok_accepts_other_labels(wrong_labels: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["export", "--model", str(wrong_labels), "--out", str(out), "--dtypes", "fp32", "--labels-ok",
                 "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["labels"][4] == "r_eye"


def test_verify_on_missing_folder(tmp_path: Path, capsys) -> None:
    assert main(["verify", str(tmp_path / "none")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_id2label_table_is_celebamask_order() -> None:
    assert ID2LABEL[0] == "background" and ID2LABEL[13] == "hair" and ID2LABEL[18] == "cloth"


def test_eval_data_records_task_metrics(tiny_parser_dir: Path, tmp_path: Path) -> None:
    from face_studio.training.synth import write_dataset

    data = write_dataset(tmp_path / "faces", n=3, size=128, seed=5, progress=False)
    out = tmp_path / "exp"
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(out), "--eval-data", str(data),
                 "--quiet"]) == 0
    evaluation = json.loads((out / "manifest.json").read_text())["evaluation"]
    assert evaluation["data"] == str(data.resolve())
    metrics = evaluation["metrics"]
    assert set(metrics) == {"pytorch", "fp32", "fp16", "q8"}
    for scores in metrics.values():
        assert 0.0 <= scores["miou"] <= 1.0 and 0.0 <= scores["pixel_accuracy"] <= 1.0
    assert abs(metrics["fp32"]["miou"] - metrics["pytorch"]["miou"]) < 1e-6
    assert main(["export", "--model", str(tiny_parser_dir), "--out", str(tmp_path / "x"), "--eval-data",
                 str(tmp_path / "missing")]) == 2


def test_export_keeps_the_model_input_size(tmp_path: Path) -> None:
    """A parser trained at 128 px (face-studio train --size 128) is exported, served and parsed at 128."""
    from webapp.parsing import FaceParser
    from webapp.settings import ServeSettings
    from webapp.views.parse import page_config

    model = build_tiny_parser(tmp_path / "m128")
    pre = json.loads((model / "preprocessor_config.json").read_text())
    pre["size"] = {"height": 128, "width": 128}
    (model / "preprocessor_config.json").write_text(json.dumps(pre))
    out = tmp_path / "exp"
    assert main(["export", "--model", str(model), "--out", str(out), "--dtypes", "fp32", "--quiet"]) == 0
    assert json.loads((out / "preprocessor_config.json").read_text())["size"] == {"height": 128, "width": 128}
    assert json.loads((out / "manifest.json").read_text())["input"]["size"] == 128
    parser = FaceParser(out, "fp32")
    assert parser.input_size == 128
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (90, 70, 3), dtype=np.uint8))
    assert parser.parse(image).shape == (90, 70)
    torch_model = SegformerForSemanticSegmentation.from_pretrained(model).eval()
    with torch.no_grad():
        ref = torch_model(pixel_values=torch.from_numpy(to_pixel_values([image], 128))).logits.numpy()[0]
    assert np.array_equal(parser.parse(image), logits_to_labels(ref, 90, 70))
    assert page_config(ServeSettings(parser_dir=out))["inputSize"] == 128
