"""transformers.js (Node, onnxruntime-node) loads our export folder and segments with every dtype."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from export.validation import ort_session
from face_studio.labels import NAMES
from face_studio.preprocess import logits_to_labels, to_pixel_values

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("tjs_segment.mjs")


@pytest.fixture(scope="module")
def portrait(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)  # 512×512: no resize, so pre-processing is exact
    return path


def test_transformersjs_runs_every_dtype(tiny_export_dir: Path, portrait: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs it with WITH_TEST=1)"
    assert (REPO / "node_modules/@huggingface/transformers").is_dir(), "run scripts/setup.sh (npm ci)"
    script = REPO / "tests" / "export" / SCRIPT.name  # resolved inside the repo so node finds node_modules
    proc = subprocess.run([node, str(script), str(tiny_export_dir), str(portrait), "fp32,fp16,q8"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)

    image = Image.open(portrait).convert("RGB")
    session = ort_session(tiny_export_dir / "onnx" / "model.onnx")
    logits = session.run(None, {"pixel_values": to_pixel_values([image])})[0][0]
    python_labels = logits_to_labels(logits, image.height, image.width)

    for dtype in ("fp32", "fp16", "q8"):
        got = result[dtype]
        assert (got["width"], got["height"]) == image.size, dtype
        assert set(got["labels"]) <= set(NAMES), dtype
        label_map = np.frombuffer(base64.b64decode(got["labelMap"]), dtype=np.uint8).reshape(image.height,
                                                                                           image.width)
        assert (label_map < len(NAMES)).all(), f"{dtype}: some pixels are in no mask"
        agreement = (label_map == python_labels).mean()
        # The image is 512×512, so neither side resizes it: fp32 must match Python (measured 100 %).
        # Random tiny weights leave small logit margins, so fp16 (99.9 %) and q8 (97.3 %) flip some
        # pixels; a broken layout, wrong file or wrong post-processing gives ~1/19.
        floor = {"fp32": 0.999, "fp16": 0.99, "q8": 0.93}[dtype]
        assert agreement >= floor, f"{dtype}: transformers.js agrees with Python on {agreement:.1%} of pixels"
