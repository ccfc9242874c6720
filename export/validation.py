"""A fixed set of validation images, and the fidelity of each ONNX dtype against PyTorch."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from face_studio.preprocess import INPUT_SIZE, logits_to_labels, to_pixel_values

# Non-square sizes on purpose: the label agreement is measured at each image's own size.
VALIDATION_SIZES = ((512, 512), (640, 480), (384, 576), (500, 333))


def validation_images(seed: int = 1234) -> list[Image.Image]:
    """Deterministic portrait-like test cards (skin ellipse, hair, eyes, lips on a textured backdrop).

    They are not real faces: they make every dtype see colour edges, flat regions and texture, so a
    broken conversion shows up as label disagreement. Real-face accuracy needs ``--eval-data``.
    """
    rng = np.random.default_rng(seed)
    images = []
    for w, h in VALIDATION_SIZES:
        noise = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(noise).resize((w, h), Image.BICUBIC).filter(ImageFilter.GaussianBlur(3))
        d = ImageDraw.Draw(img)
        cx, cy, rx, ry = w / 2 + rng.normal(0, w / 20), h / 2, w * rng.uniform(0.2, 0.3), h * 0.33
        d.ellipse([cx - rx * 1.15, cy - ry * 1.2, cx + rx * 1.15, cy + ry * 0.6], fill=tuple(rng.integers(0, 90, 3)))
        d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=tuple(int(v) for v in rng.integers(150, 240, 3)))
        for sx in (-1, 1):
            d.ellipse([cx + sx * rx * 0.4 - rx * 0.15, cy - ry * 0.2, cx + sx * rx * 0.4 + rx * 0.15,
                       cy - ry * 0.1], fill=(30, 30, 40))
        d.ellipse([cx - rx * 0.35, cy + ry * 0.4, cx + rx * 0.35, cy + ry * 0.55], fill=(170, 40, 60))
        images.append(img)
    return images


def torch_logits(model, pixel_values: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()


def ort_session(path: Path, threads: int | None = None):
    """A CPU ONNX Runtime session for ``path`` (fidelity and latency are measured on the CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def fidelity(session, images: list[Image.Image], reference: list[np.ndarray], size: int = INPUT_SIZE) -> dict:
    """Max |logit − reference| and % of pixels whose label equals the reference's, over ``images``."""
    max_abs, same, total = 0.0, 0, 0
    for image, ref in zip(images, reference, strict=True):
        logits = session.run(None, {session.get_inputs()[0].name: to_pixel_values([image], size)})[0][0]
        max_abs = max(max_abs, float(np.abs(logits - ref).max()))
        w, h = image.size
        same += int((logits_to_labels(logits, h, w) == logits_to_labels(ref, h, w)).sum())
        total += w * h
    return {"max_abs_logit_diff": max_abs, "label_agreement_pct": 100.0 * same / total}


def run_times_ms(session, feed: dict, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` ``session.run`` calls on ``feed``, after one warm-up run."""
    session.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def latency_ms(session, size: int = 512, runs: int = 5) -> float:
    """Median milliseconds for one ``size``×``size`` frame after one warm-up run."""
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    return statistics.median(run_times_ms(session, {session.get_inputs()[0].name: x}, runs))
