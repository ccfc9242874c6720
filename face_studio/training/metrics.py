"""Segmentation scores from a confusion matrix: pixel accuracy, per-class F1 and IoU, mean F1, mIoU.

Conventions (written once here, used by training, ``face-studio evaluate`` and the export manifest):

- ``mean_f1``: CelebAMask-HQ's — the mean of per-class F1 over the classes **present in the ground truth**,
  background excluded.
- ``miou``: the mean IoU over the classes present in the ground truth **or** the prediction (a class with an
  empty union has no IoU), background included — so predicting a class that isn't there costs an IoU of 0.
- Per-class values are ``None`` for a class with no pixels in either label or prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from face_studio.labels import NAMES, NUM_LABELS

IGNORE_INDEX = 255  # label value that is not scored (padding after augmentation)


@dataclass
class ConfusionMatrix:
    """Running ``(num_classes, num_classes)`` pixel counts: rows = ground truth, columns = prediction."""

    num_classes: int = NUM_LABELS
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, label: np.ndarray) -> ConfusionMatrix:
        """Add one or more label maps (same shape; ``label == 255`` is ignored)."""
        pred = np.asarray(pred)
        label = np.asarray(label)
        if pred.shape != label.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
        keep = label != IGNORE_INDEX
        p = pred[keep].astype(np.int64)
        t = label[keep].astype(np.int64)
        if t.size and (t.max() >= self.num_classes or t.min() < 0):
            raise ValueError(f"label ids must be in 0..{self.num_classes - 1} (or {IGNORE_INDEX} = ignore), "
                             f"found {int(t.max())}")
        if p.size and (p.max() >= self.num_classes or p.min() < 0):
            raise ValueError(f"predicted ids must be in 0..{self.num_classes - 1}, found {int(p.max())}")
        self.counts += np.bincount(t * self.num_classes + p, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)
        return self

    def scores(self) -> dict:
        """Scores as plain Python numbers (JSON-ready); see the module docstring for the conventions."""
        return scores_from_confusion(self.counts)


def scores_from_confusion(counts: np.ndarray) -> dict:
    """``{"pixel_accuracy", "mean_f1", "miou", "per_class": {name: {"f1", "iou", "pixels"}}}``."""
    counts = np.asarray(counts, dtype=np.int64)
    tp = np.diag(counts).astype(np.float64)
    gt = counts.sum(axis=1).astype(np.float64)
    pr = counts.sum(axis=0).astype(np.float64)
    fp, fn = pr - tp, gt - tp
    union = tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    total = counts.sum()
    present = gt > 0
    present_fg = present.copy()
    present_fg[0] = False
    names = NAMES if len(counts) == len(NAMES) else tuple(str(i) for i in range(len(counts)))
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_f1": float(f1[present_fg].mean()) if present_fg.any() else float("nan"),
        "miou": float(np.nanmean(iou)) if (union > 0).any() else float("nan"),
        "per_class": {
            name: {"f1": None if np.isnan(f1[i]) else float(f1[i]),
                   "iou": None if np.isnan(iou[i]) else float(iou[i]),
                   "pixels": int(gt[i])}
            for i, name in enumerate(names)
        },
    }


def segmentation_scores(preds: list[np.ndarray] | np.ndarray, labels: list[np.ndarray] | np.ndarray,
                        num_classes: int = NUM_LABELS) -> dict:
    """Scores of label maps ``preds`` against ``labels`` (pairs of equal shape)."""
    cm = ConfusionMatrix(num_classes)
    if isinstance(preds, np.ndarray) and isinstance(labels, np.ndarray):
        cm.update(preds, labels)
    else:
        if len(preds) != len(labels):
            raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
        for p, t in zip(preds, labels, strict=True):
            cm.update(p, t)
    return cm.scores()
