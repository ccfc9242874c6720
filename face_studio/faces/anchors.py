"""SSD anchors, box decoding and weighted non-maximum suppression for BlazeFace. Pure numpy (no ONNX Runtime).

The JS twin is ``static/js/faces.js`` (tests/faces compare both on the same raw outputs). All coordinates here
are normalised to the detector's square input (0..1 across the letterbox).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face_studio.faces.spec import DETECTORS, NMS_IOU, DetectorSpec


@dataclass
class Detections:
    """``n`` detections: ``boxes`` (n, 4) as [x0, y0, x1, y1], ``scores`` (n,), ``keypoints`` (n, 6, 2) [x, y]."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 6, 2), np.float32))

    def take(self, index: np.ndarray | list[int]) -> Detections:
        index = np.asarray(index, dtype=np.int64)
        return Detections(self.boxes[index], self.scores[index], self.keypoints[index])

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.keypoints for p in parts]))


def anchors(spec: DetectorSpec | str) -> np.ndarray:
    """``(num_anchors, 2)`` float32 anchor centres [x, y]: layer by layer, row by row, cell by cell, then the
    ``per_cell`` anchors of a cell (MediaPipe's order), centre of cell (x, y) = ((x + 0.5) / grid, (y + 0.5) / grid)."""
    spec = DETECTORS[spec] if isinstance(spec, str) else spec
    out = []
    for layer in spec.layers:
        centres = (np.arange(layer.grid, dtype=np.float32) + 0.5) / layer.grid
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, layer.per_cell, axis=0))
    result = np.concatenate(out).astype(np.float32)
    assert result.shape[0] == spec.num_anchors
    return result


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """MediaPipe's score: sigmoid of the logit clipped to [-100, 100]."""
    return (1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))).astype(np.float32)


def decode(regressors: np.ndarray, classificators: np.ndarray, spec: DetectorSpec | str,
           threshold: float) -> Detections:
    """Raw outputs ``(1, N, 16)`` / ``(1, N, 1)`` (or without the batch axis) → detections scoring ≥ ``threshold``,
    in anchor order. Box centre = anchor + reg[0:2] / size; box size = reg[2:4] / size; keypoint k = anchor +
    reg[4 + 2k : 6 + 2k] / size."""
    spec = DETECTORS[spec] if isinstance(spec, str) else spec
    reg = np.asarray(regressors, dtype=np.float32).reshape(spec.num_anchors, 16)
    scores = sigmoid(np.asarray(classificators).reshape(spec.num_anchors))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return Detections.empty()
    reg, scores = reg[keep] / np.float32(spec.input_size), scores[keep]
    anchor = anchors(spec)[keep]
    centre = anchor + reg[:, 0:2]
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = anchor[:, None, :] + reg[:, 4:16].reshape(-1, 6, 2)
    return Detections(boxes.astype(np.float32), scores, keypoints.astype(np.float32))


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one [x0, y0, x1, y1] box with each of ``boxes`` (0 where both are empty)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


def weighted_nms(dets: Detections, iou_threshold: float = NMS_IOU) -> Detections:
    """MediaPipe's weighted NMS: take the best remaining detection (score descending, ties by index), gather
    every remaining one overlapping it by IoU > ``iou_threshold`` (itself included), output their score-weighted
    mean box and keypoints with the best one's score, drop them; repeat."""
    if len(dets) == 0:
        return Detections.empty()
    order = list(np.argsort(-dets.scores, kind="stable"))
    boxes, scores, kps = [], [], []
    while order:
        rest = np.asarray(order)
        overlap = iou(dets.boxes[rest[0]], dets.boxes[rest])
        group = rest[overlap > iou_threshold]
        if group.size == 0 or group[0] != rest[0]:  # an empty best box overlaps nothing, not even itself
            group = np.concatenate([[rest[0]], group[group != rest[0]]]).astype(np.int64)
        w = dets.scores[group].astype(np.float64)
        total = w.sum()
        boxes.append((dets.boxes[group].astype(np.float64) * w[:, None]).sum(0) / total)
        kps.append((dets.keypoints[group].astype(np.float64) * w[:, None, None]).sum(0) / total)
        scores.append(dets.scores[rest[0]])
        grouped = set(group.tolist())
        order = [i for i in order if i not in grouped]
    return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(kps, np.float32))
