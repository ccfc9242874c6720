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
from face_studio.training.train import MAX_SIZE  # as face-studio train

Predictor = Callable[[np.ndarray], np.ndarray]  # (N, 3, S, S) pixel values → (N, 19, S/4, S/4) logits


def check_options(*, size: int | None = None, batch: int = 4, limit: int | None = None,
                  teacher_size: int | None = None) -> None:
    """Refuse a bad ``--size``, ``--teacher-size``, ``--batch`` or ``--limit`` before any model or face is loaded
    (the one check for plain ``evaluate`` and ``evaluate --teacher``)."""
    for flag, side in (("--size", size), ("--teacher-size", teacher_size)):
        if side is not None and (side < 32 or side % 32 or side > MAX_SIZE):
            raise UserError(f"{flag} must be a multiple of 32 from 32 to {MAX_SIZE} (got {side}): SegFormer "
                            f"downsamples by 32. Leave it out to use the model's own size (preprocessor_config.json).")
    if batch < 1:
        raise UserError(f"--batch must be at least 1 (got {batch}).")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit}): it scores the first N faces; leave it out to "
                        f"score them all.")


def torch_predictor(model_dir: Path) -> Predictor:
    """A SegFormer from a ``save_pretrained`` folder (safetensors only), on the GPU when there is one."""
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
    return module_predictor(model)


def module_predictor(model) -> Predictor:
    """A loaded SegFormer (eval mode) as a :data:`Predictor`, moved to the GPU when there is one."""
    import torch

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


# ---------------------------------------------------------------------------------------------------------------
# Against a teacher: agreement, with or without ground truth

PLAIN_SCORE_SIDE = 512  # plain photos are scored at their own size, shrunk to at most this side


def _scored_inputs(data_dir: str | Path, limit: int | None):
    """``[(image, labels or None, (height, width))]`` loaders: labelled faces (images/ + masks/, CelebAMask-HQ)
    are scored at the mask's size; a folder of plain photos at the photo's size (≤ PLAIN_SCORE_SIDE a side)."""
    from face_studio.images import load_image
    from face_studio.training.distil import find_images

    root = Path(data_dir)
    layouts = (("images", "masks"), (data_io.CELEBA_IMAGES, data_io.CELEBA_MASKS))
    labelled = any((root / a).is_dir() and (root / b).is_dir() for a, b in layouts)
    if labelled:
        samples = data_io.find_samples(root)[:limit]
        return [lambda s=s: (*data_io.load_pair(s), None) for s in samples], True

    def plain(path: Path):
        image = load_image(path, what="photo")
        scale = min(1.0, PLAIN_SCORE_SIDE / max(image.size))
        return image, None, (max(1, round(image.height * scale)), max(1, round(image.width * scale)))

    return [lambda p=p: plain(p) for p in find_images(root, flag="--data")[:limit]], False


def _labels_of(predict: Predictor, pixel_values: np.ndarray, shapes: list) -> list[np.ndarray]:
    logits = predict(pixel_values)
    return [logits_to_labels(lg, h, w) for lg, (h, w) in zip(logits, shapes, strict=True)]


def evaluate_against_teacher(model: str | Path, teacher: str, data_dir: str | Path,
                             dtypes: Sequence[str] | None = None, *, size: int | None = None,
                             teacher_size: int | None = None, revision: str | None = None, batch: int = 4,
                             limit: int | None = None, progress: bool = False) -> dict[str, dict]:
    """Score a model (PyTorch folder, or each dtype of an export) against a teacher's labels.

    ``{name: {"agreement", "miou_vs_teacher", "per_class_vs_teacher", "faces"}}`` — agreement is the share of
    pixels where the model's label equals the teacher's; mIoU treats the teacher's labels as ground truth. When
    ``data_dir`` is labelled, each entry (and a ``"teacher"`` entry) also holds the ground-truth scores
    (``miou``, ``mean_f1``, ``pixel_accuracy``, ``per_class``). Each model runs at its own input size.
    """
    from tqdm.auto import tqdm

    from face_studio.training.distil import load_teacher, teacher_input_size

    check_options(size=size, batch=batch, limit=limit, teacher_size=teacher_size)
    model = Path(model)
    if not model.is_dir():
        raise UserError(f"--model {model}: no such folder (give a `face-studio distil --out`, `train --out` or "
                        f"`export --out` folder).")
    predictors: dict[str, tuple[Predictor, int]] = {}
    model_size = size or input_size(model)
    if (model / "onnx").is_dir():
        present = export_dtypes(model)
        wanted = list(present if dtypes is None else dtypes)
        missing = [d for d in wanted if d not in present]
        if missing:
            raise UserError(f"{model} has no {', '.join(DTYPE_FILES.get(d, d) for d in missing)}: choose from "
                            f"{', '.join(present) or 'none'}.")
        if (model / "model.safetensors").is_file():
            predictors["pytorch"] = (torch_predictor(model), model_size)
        for dtype in wanted:
            predictors[dtype] = (onnx_predictor(model / DTYPE_FILES[dtype]), model_size)
    else:
        if dtypes:
            raise UserError(f"--dtypes needs an export folder (with onnx/); {model} is a PyTorch folder.")
        predictors["pytorch"] = (torch_predictor(model), model_size)
    teacher_predict = module_predictor(load_teacher(teacher, revision))
    t_size = teacher_size or teacher_input_size(teacher, revision)

    loaders, labelled = _scored_inputs(data_dir, limit)
    vs_teacher = {name: ConfusionMatrix() for name in predictors}
    vs_truth = {name: ConfusionMatrix() for name in [*predictors, "teacher"]}
    bar = tqdm(total=len(loaders), desc="evaluating", unit="face", disable=not progress, file=sys.stderr)
    for start in range(0, len(loaders), batch):
        items = [load() for load in loaders[start:start + batch]]
        shapes = [labels.shape if labels is not None else hw for _, labels, hw in items]
        images = [image for image, _, _ in items]
        pixels = {side: to_pixel_values(images, side) for side in {t_size, *(s for _, s in predictors.values())}}

        reference = _labels_of(teacher_predict, pixels[t_size], shapes)
        for name, (predict, side) in predictors.items():
            preds = _labels_of(predict, pixels[side], shapes)
            for pred, ref, (_, truth, _) in zip(preds, reference, items, strict=True):
                vs_teacher[name].update(pred, ref)
                if truth is not None:
                    vs_truth[name].update(pred, truth)
        for ref, (_, truth, _) in zip(reference, items, strict=True):
            if truth is not None:
                vs_truth["teacher"].update(ref, truth)
        bar.update(len(items))
    bar.close()
    results: dict[str, dict] = {}
    for name, cm in vs_teacher.items():
        scores = cm.scores()
        results[name] = {"agreement": scores["pixel_accuracy"], "miou_vs_teacher": scores["miou"],
                         "per_class_vs_teacher": scores["per_class"], "faces": len(loaders)}
        if labelled:
            results[name].update(vs_truth[name].scores())
    if labelled:
        results["teacher"] = {**vs_truth["teacher"].scores(), "faces": len(loaders)}
    return results


def format_teacher_table(results: dict[str, dict]) -> str:
    """A plain-text table of :func:`evaluate_against_teacher`'s results (— where a cell does not apply)."""
    cols = list(results)
    width = max(10, *(len(c) + 1 for c in cols))

    def cell(value, fmt: str) -> str:
        return f"{'—' if value is None else format(value, fmt):>{width}}"

    lines = [f"{'':<26}" + "".join(f"{c:>{width}}" for c in cols)]
    rows = [("agreement", "agreement with teacher", ".2%"), ("miou_vs_teacher", "mIoU vs teacher", ".4f")]
    labelled = "teacher" in results
    if labelled:
        rows += [("miou", "mIoU (ground truth)", ".4f"), ("mean_f1", "mean F1 (ground truth)", ".4f"),
                 ("pixel_accuracy", "pixel acc. (ground truth)", ".4f")]
    for key, title, fmt in rows:
        lines.append(f"{title:<26}" + "".join(cell(results[c].get(key), fmt) for c in cols))
    lines.append("IoU per class vs teacher")
    for name in NAMES:
        values = [results[c].get("per_class_vs_teacher", {}).get(name, {}).get("iou") for c in cols]
        lines.append(f"  {name:<24}" + "".join(cell(v, ".4f") for v in values))
    faces = {results[c].get("faces") for c in cols}
    lines.append(f"({', '.join(str(f) for f in faces)} {'labelled faces' if labelled else 'photos, no labels'})")
    return "\n".join(lines)
