"""Anchors, decoding and weighted NMS against hand-made raw outputs (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from face_studio.faces.anchors import Detections, anchors, decode, iou, weighted_nms
from face_studio.faces.spec import DETECTORS


def test_anchor_layouts_match_the_models_outputs() -> None:
    short, full = anchors("short"), anchors("full")
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short: 16×16 cells × 2, then 8×8 × 6; the anchors of a cell share its centre
    assert short[0].tolist() == short[1].tolist() == [0.5 / 16, 0.5 / 16]
    assert short[2].tolist() == [1.5 / 16, 0.5 / 16]
    assert short[512].tolist() == [0.5 / 8, 0.5 / 8] and short[517].tolist() == [0.5 / 8, 0.5 / 8]
    assert short[-1].tolist() == [7.5 / 8, 7.5 / 8]
    np.testing.assert_allclose(full[48], [0.5 / 48, 1.5 / 48])


@pytest.mark.parametrize("name", ["short", "full"])
def test_decode_places_box_and_keypoints_around_the_anchor(name: str) -> None:
    spec = DETECTORS[name]
    size, n = spec.input_size, spec.num_anchors
    reg = np.zeros((1, n, 16), np.float32)
    cls = np.full((1, n, 1), -10.0, np.float32)
    i = n // 3
    reg[0, i, :4] = [size * 0.05, -size * 0.02, size * 0.2, size * 0.3]
    reg[0, i, 4:] = np.arange(12) * 0.5
    cls[0, i, 0] = 2.0
    found = decode(reg, cls, spec, 0.5)
    ax, ay = anchors(spec)[i]
    assert len(found) == 1 and found.scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    np.testing.assert_allclose(found.boxes[0], [ax + 0.05 - 0.1, ay - 0.02 - 0.15, ax + 0.05 + 0.1,
                                                ay - 0.02 + 0.15], atol=1e-6)
    np.testing.assert_allclose(found.keypoints[0], [[ax + 2 * k * 0.5 / size, ay + (2 * k + 1) * 0.5 / size]
                                                    for k in range(6)], atol=1e-6)
    assert len(decode(reg, cls, spec, 0.9)) == 0  # under the threshold


def test_weighted_nms_blends_overlaps_by_score_and_keeps_separate_faces() -> None:
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    keypoints = np.repeat(boxes[:, None, :2], 6, axis=1)
    merged = weighted_nms(Detections(boxes, scores, keypoints), 0.3)
    assert len(merged) == 2 and merged.scores.tolist() == pytest.approx([0.9, 0.7])
    np.testing.assert_allclose(merged.boxes[0], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5, atol=1e-6)
    np.testing.assert_allclose(merged.boxes[1], boxes[2])
    assert len(weighted_nms(Detections.empty())) == 0


def test_iou() -> None:
    box = np.array([0, 0, 2, 2], np.float32)
    others = np.array([[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(iou(box, others), [1 / 3, 0, 0])
