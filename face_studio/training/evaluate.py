"""Score a face parser on labelled faces: a PyTorch folder, and each ONNX dtype of an export folder.

    evaluate_path("runs/my-parser", "faces/")           → {"pytorch": scores}
    evaluate_export("static/models/face-parsing", "faces/")  → {"pytorch": …, "fp32": …, "fp16": …, "q8": …}

Every model sees the same pictures through the same Python pre/post-processing (face_studio/preprocess.py: resize,
ImageNet normalisation; bilinear upsample of the logits to the mask's size, argmax), and is scored at the
mask's own resolution. Score definitions: face_studio/training/metrics.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from face_studio.errors import UserError
from face_studio.labels import NAMES, NUM_LABELS
from face_studio.onnx_files import DTYPE_FILES
from face_studio.preprocess import INPUT_SIZE, input_size, logits_to_labels, to_pixel_values
from face_studio.training import data as data_io
from face_studio.training.metrics import ConfusionMatrix

Predictor = Callable[[np.ndarray], np.ndarray]  # (N, 3, S, S) pixel values → (N, 19, S/4, S/4) logits
MAX_SIZE = 2048  # as face-studio train


def check_options(*, size: int | None = None, batch: int = 4, limit: int | None = None) -> None:
    """Refuse a bad ``--size``, ``--batch`` or ``--limit`` before any model or face is loaded."""
    if size is not None and (size < 32 or size % 32 or size > MAX_SIZE):
        raise UserError(f"--size must be a multiple of 32 from 32 to {MAX_SIZE} (got {size}): SegFormer downsamples "
                        f"by 32. Leave it out to use the model's own size (preprocessor_config.json).")
    if batch < 1:
        raise UserError(f"--batch must be at least 1 (got {batch}).")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit}): it scores the first N faces; leave it out to "
                        f"score them all.")


def torch_predictor(model_dir: Path) -> Predictor:
    """A SegFormer from a ``save_pretrained`` folder (safetensors only), on the GPU when there is one."""
    import torch
    from transformers import SegformerForSemanticSegmentation

    if not (model_dir / "model.safetensors").is_file():
        raise UserError(f"{model_dir} has no model.safetensors: give a folder made by `face-studio train` or "
                        f"`face-studio export` (only safetensors weights are loaded).")
    from safetensors import SafetensorError

    try:
        model = SegformerForSemanticSegmentation.from_pretrained(model_dir, use_safetensors=True).eval()
    except SafetensorError as err:
        raise UserError(f"{model_dir / 'model.safetensors'} is corrupt or truncated ({err}): train or export the "
                        f"model again.") from None
    if model.config.num_labels != NUM_LABELS:
        raise UserError(f"{model_dir} predicts {model.config.num_labels} classes, not the {NUM_LABELS} face labels.")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)

    def predict(pixel_values: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(pixel_values=torch.from_numpy(pixel_values).to(device)).logits.float().cpu().numpy()

    return predict


def onnx_predictor(path: Path) -> Predictor:
    """An ONNX Runtime session (CUDA when available) taking ``pixel_values`` and giving ``logits``."""
    import onnxruntime as ort

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=providers)
    name = session.get_inputs()[0].name

    def predict(pixel_values: np.ndarray) -> np.ndarray:
        return session.run(None, {name: pixel_values})[0].astype(np.float32)

    return predict


def evaluate_predictors(predictors: dict[str, Predictor], data_dir: str | Path, *, size: int = INPUT_SIZE,
                        batch: int = 4, limit: int | None = None, progress: bool = False) -> dict[str, dict]:
    """Run every predictor over the faces in ``data_dir`` (read once) and score each one."""
    from tqdm.auto import tqdm

    check_options(size=size, batch=batch, limit=limit)
    samples = data_io.find_samples(data_dir)
    if limit is not None:
        samples = samples[:limit]
    cms = {name: ConfusionMatrix() for name in predictors}
    bar = tqdm(total=len(samples), desc="evaluating", unit="face", disable=not progress, file=sys.stderr)
    for start in range(0, len(samples), batch):
        pairs = [data_io.load_pair(s) for s in samples[start:start + batch]]
        pixel_values = to_pixel_values([image for image, _ in pairs], size)
        for name, predict in predictors.items():
            logits = predict(pixel_values)
            for (_, labels), lg in zip(pairs, logits, strict=True):
                cms[name].update(logits_to_labels(lg, labels.shape[0], labels.shape[1]), labels)
        bar.update(len(pairs))
    bar.close()
    return {name: {**cm.scores(), "faces": len(samples)} for name, cm in cms.items()}


def export_dtypes(export_dir: Path) -> list[str]:
    """The ONNX dtypes present in an export folder, in DTYPE_FILES order."""
    return [d for d, rel in DTYPE_FILES.items() if (export_dir / rel).is_file()]


def evaluate_export(export_dir: Path, data_dir: Path, dtypes: Sequence[str] | None = None, *,
                    size: int | None = None, batch: int = 4, limit: int | None = None,
                    progress: bool = False) -> dict[str, dict]:
    """``{dtype: {"miou", "mean_f1", "pixel_accuracy", "per_class", "faces"}}`` for each ONNX dtype of an export,
    plus ``"pytorch"`` when ``model.safetensors`` is there.

    ``dtypes``: a subset of fp32/fp16/q8 (default: all present). ``size``: the input side (default: the export's
    ``preprocessor_config.json``, 512).
    """
    export_dir = Path(export_dir)
    present = export_dtypes(export_dir)
    wanted = list(present if dtypes is None else dtypes)
    missing = [d for d in wanted if d not in present]
    unknown = [d for d in wanted if d not in DTYPE_FILES]
    if unknown:
        raise UserError(f"unknown dtype(s) {', '.join(unknown)}: choose from {', '.join(DTYPE_FILES)}.")
    if missing:
        raise UserError(f"{export_dir} has no {', '.join(DTYPE_FILES[d] for d in missing)}: "
                        f"re-export with `face-studio export --dtypes {','.join(wanted)}`.")
    if not wanted and not (export_dir / "model.safetensors").is_file():
        raise UserError(f"{export_dir} holds neither ONNX graphs (onnx/model*.onnx) nor model.safetensors.")
    predictors: dict[str, Predictor] = {}
    if (export_dir / "model.safetensors").is_file():
        predictors["pytorch"] = torch_predictor(export_dir)
    for dtype in wanted:
        predictors[dtype] = onnx_predictor(export_dir / DTYPE_FILES[dtype])
    return evaluate_predictors(predictors, data_dir, size=size or input_size(export_dir), batch=batch,
                               limit=limit, progress=progress)


def evaluate_path(model: str | Path, data_dir: str | Path, dtypes: Sequence[str] | None = None, *,
                  size: int | None = None, batch: int = 4, limit: int | None = None,
                  progress: bool = False) -> dict[str, dict]:
    """Evaluate a ``save_pretrained`` folder (PyTorch) or an export folder (PyTorch + ONNX dtypes)."""
    check_options(size=size, batch=batch, limit=limit)
    model = Path(model)
    if not model.is_dir():
        raise UserError(f"--model {model}: no such folder (give a `face-studio train --out` or `export --out` folder).")
    if (model / "onnx").is_dir():
        return evaluate_export(model, Path(data_dir), dtypes, size=size, batch=batch, limit=limit, progress=progress)
    if dtypes:
        raise UserError(f"--dtypes needs an export folder (with onnx/); {model} is a PyTorch folder.")
    return evaluate_predictors({"pytorch": torch_predictor(model)}, data_dir, size=size or input_size(model),
                               batch=batch, limit=limit, progress=progress)


def format_table(results: dict[str, dict]) -> str:
    """A plain-text table: overall scores, then per-class IoU (— where a class has no pixels)."""
    cols = list(results)
    width = max(8, *(len(c) + 1 for c in cols))
    lines = [f"{'':<18}" + "".join(f"{c:>{width}}" for c in cols)]
    for key, title in (("miou", "mIoU"), ("mean_f1", "mean F1"), ("pixel_accuracy", "pixel accuracy")):
        lines.append(f"{title:<18}" + "".join(f"{results[c][key]:>{width}.4f}" for c in cols))
    lines.append(f"{'IoU per class':<18}")
    for name in NAMES:
        row = [results[c]["per_class"][name]["iou"] for c in cols]
        cells = "".join(f"{'—' if v is None else f'{v:.4f}':>{width}}" for v in row)
        lines.append(f"  {name:<16}" + cells)
    faces = {results[c].get("faces") for c in cols}
    lines.append(f"({', '.join(str(f) for f in faces)} faces)")
    return "\n".join(lines)
