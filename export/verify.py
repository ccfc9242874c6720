"""``face-studio verify DIR``: every file's sha256 against the manifest, and each ONNX graph run once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.manifest import check_files, read
from export.spec import DTYPE_FILES, MANIFEST
from face_studio.labels import NUM_LABELS


def verify(folder: str | Path) -> list[str]:
    """Return a list of problems (empty when the export is intact), each naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    manifest = read(folder)
    if manifest is None:
        return [f"{folder / MANIFEST}: missing or not valid JSON — re-run face-studio export"]
    problems = check_files(folder, manifest)
    for dtype in manifest.get("dtypes", {}):
        rel = DTYPE_FILES.get(dtype)
        if rel and (folder / rel).is_file() and not any(rel in p for p in problems):
            problem = _run_once(folder / rel)
            if problem:
                problems.append(f"{rel}: {problem}")
    return problems


def _run_once(path: Path) -> str | None:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1, 3, 64, 96)).astype(np.float32)
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as err:  # any ORT failure is a finding, not a crash
        return f"ONNX Runtime could not run it ({type(err).__name__}: {str(err)[:200]})"
    if out.shape != (1, NUM_LABELS, 16, 24):
        return f"unexpected output shape {out.shape}, expected (1, {NUM_LABELS}, 16, 24)"
    if not np.isfinite(out).all():
        return "output has NaN or Inf"
    return None
