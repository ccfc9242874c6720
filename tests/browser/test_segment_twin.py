"""static/js/segment.js is the twin of face_studio/preprocess.py: same pixel values, same label map."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face_studio.preprocess import logits_to_labels, to_pixel_values
from webapp.parsing import FaceParser

SCRIPT = Path(__file__).with_name("segment_twin.mjs")


@pytest.mark.parametrize("size", [(700, 433), (512, 512), (300, 200)])  # shrink, same size, enlarge
def test_js_pre_and_post_processing_match_python(tiny_export_dir: Path, tmp_path: Path, size) -> None:
    from skimage import data

    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/setup.sh installs it with WITH_TEST=1)"
    image = Image.fromarray(data.astronaut()).resize(size, Image.BICUBIC)
    width, height = image.size
    (tmp_path / "image.rgba").write_bytes(np.asarray(image.convert("RGBA")).tobytes())
    pixels = to_pixel_values([image])
    logits = FaceParser(tiny_export_dir, "fp32").logits(pixels)[0]
    (tmp_path / "logits.f32").write_bytes(np.ascontiguousarray(logits, dtype=np.float32).tobytes())

    subprocess.run([node, str(SCRIPT), str(tmp_path / "image.rgba"), str(width), str(height),
                    str(tmp_path / "logits.f32"), *map(str, logits.shape), str(tmp_path / "pixels.f32"),
                    str(tmp_path / "labels.u8")], check=True, timeout=120)

    js_pixels = np.fromfile(tmp_path / "pixels.f32", dtype=np.float32).reshape(pixels.shape)
    assert np.abs(js_pixels - pixels).max() < 1e-5  # Pillow's resize reproduced, not approximated
    js_labels = np.fromfile(tmp_path / "labels.u8", dtype=np.uint8).reshape(height, width)
    python_labels = logits_to_labels(logits, height, width)
    # Only exact float ties could differ; random weights put class boundaries almost everywhere.
    assert (js_labels == python_labels).mean() >= 0.9999
