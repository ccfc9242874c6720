"""Scores on hand-built label maps whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from face_studio.labels import LABEL2ID, NAMES
from face_studio.training.metrics import ConfusionMatrix, segmentation_scores

BG, SKIN, NOSE, HAIR, HAT = (LABEL2ID[n] for n in ("background", "skin", "nose", "hair", "hat"))


def _label_map() -> np.ndarray:
    """10×10: 50 background, 30 skin, 12 hair, 8 nose pixels."""
    lab = np.zeros((10, 10), dtype=np.uint8)
    lab.flat[50:80] = SKIN
    lab.flat[80:92] = HAIR
    lab.flat[92:100] = NOSE
    return lab


def test_prediction_equal_to_label_scores_one():
    lab = _label_map()
    s = segmentation_scores([lab, lab[::-1]], [lab, lab[::-1]])
    assert s["pixel_accuracy"] == 1.0
    assert s["mean_f1"] == 1.0
    assert s["miou"] == 1.0
    for name in ("background", "skin", "hair", "nose"):
        assert s["per_class"][name]["f1"] == 1.0 and s["per_class"][name]["iou"] == 1.0
    assert s["per_class"]["hat"] == {"f1": None, "iou": None, "pixels": 0}


def test_one_class_swapped_gives_the_exact_f1():
    lab = _label_map()
    pred = lab.copy()
    pred[lab == NOSE] = SKIN  # every nose pixel called skin
    s = segmentation_scores(pred, lab)
    # skin: tp 30, fp 8, fn 0 → F1 60/68, IoU 30/38; nose: F1 0, IoU 0; hair, background: 1
    assert s["per_class"]["skin"]["f1"] == pytest.approx(60 / 68, rel=1e-12)
    assert s["per_class"]["skin"]["iou"] == pytest.approx(30 / 38, rel=1e-12)
    assert s["per_class"]["nose"]["f1"] == 0.0 and s["per_class"]["nose"]["iou"] == 0.0
    # mean F1: classes present in the labels, background excluded (CelebAMask-HQ convention)
    assert s["mean_f1"] == pytest.approx((60 / 68 + 0.0 + 1.0) / 3, rel=1e-12)
    # mIoU: classes present in labels or prediction, background included
    assert s["miou"] == pytest.approx((1.0 + 30 / 38 + 0.0 + 1.0) / 4, rel=1e-12)
    assert s["pixel_accuracy"] == pytest.approx(92 / 100, rel=1e-12)


def test_a_class_predicted_but_absent_counts_in_miou_not_in_mean_f1():
    lab = _label_map()
    pred = lab.copy()
    pred[lab == HAIR] = HAT  # hat is not in the labels
    s = segmentation_scores(pred, lab)
    assert s["per_class"]["hat"]["iou"] == 0.0 and s["per_class"]["hat"]["pixels"] == 0
    assert s["mean_f1"] == pytest.approx((1.0 + 0.0 + 1.0) / 3, rel=1e-12)  # skin, hair (0), nose
    assert s["miou"] == pytest.approx((1 + 1 + 0 + 1 + 0) / 5, rel=1e-12)  # bg, skin, hair, nose, hat


def test_confusion_matrix_accumulates_and_ignores_255():
    lab = _label_map()
    cm = ConfusionMatrix()
    cm.update(lab, lab)
    ignored = lab.copy()
    ignored[:5] = 255
    cm.update(np.full_like(lab, HAT), ignored)  # only the 50 non-ignored pixels (skin, hair, nose) count
    assert cm.counts.sum() == 150
    assert cm.counts[SKIN, HAT] == 30 and cm.counts[HAIR, HAT] == 12 and cm.counts[NOSE, HAT] == 8
    assert cm.scores()["pixel_accuracy"] == pytest.approx(100 / 150)


def test_bad_ids_and_shapes_are_refused():
    lab = _label_map()
    with pytest.raises(ValueError, match="label ids"):
        ConfusionMatrix().update(lab, np.full_like(lab, len(NAMES)))
    with pytest.raises(ValueError, match="shape"):
        ConfusionMatrix().update(lab[:5], lab)
