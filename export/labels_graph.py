"""In-graph post-processing for live exports (``face-studio export --labels-out``).

A labels graph is the logits graph with the page's post-processing appended: bilinear upsample (half-pixel
centres, as ``face_studio.preprocess`` and ``static/js/segment.js``) to a requested size, argmax over the
classes (first maximum), uint8. Inputs ``pixel_values`` (N, 3, S, S) float32, ``output_size`` int64
[height, width], ``previous_labels`` (N, height, width) uint8 and ``hysteresis`` float32 [1]; output ``labels``
(N, height, width) uint8. The worker then only draws: no logits cross from ONNX Runtime to JS and no JS loop
runs per pixel.

Hysteresis (live mode's flicker filter): a pixel keeps its previous label unless the new winner's upsampled
logit beats the previous label's by at least ``hysteresis`` × this frame's mean top-1 − top-2 logit gap (over
the low-resolution logits). Relative, so the margin means the same on a model whose logits are a fraction of a
logit apart (random weights) and on one whose are several apart (trained): multiplying every logit by a
constant changes nothing. A clear change switches in the same frame (no lag); a near-tie that camera noise
flips back and forth stays put. A previous label of ``NO_PREVIOUS`` (255) holds nothing: the page marks so the
pixels whose colour changed since the last frame (motion, a cut), so an old label never lingers where the
picture moved. ``hysteresis`` 0 is the plain argmax (``previous_labels`` is then ignored), which is what photos
and the twin tests use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from face_studio.onnx_files import HYSTERESIS_INPUT, LABELS_FILES, LABELS_OUTPUT, OUTPUT_SIZE_INPUT, PREVIOUS_INPUT

NO_PREVIOUS = 255  # a previous_labels value that holds nothing (that pixel takes the plain argmax)


def add_labels_head(src: Path, dst: Path) -> Path:
    """Write ``src`` (a logits graph, any dtype) with upsample + argmax + uint8 appended, to ``dst``."""
    model = onnx.load(str(src))
    graph = model.graph
    logits = next(o for o in graph.output if o.name == "logits").name
    graph.input.extend([
        helper.make_tensor_value_info(OUTPUT_SIZE_INPUT, TensorProto.INT64, [2]),
        helper.make_tensor_value_info(PREVIOUS_INPUT, TensorProto.UINT8, ["batch", "out_height", "out_width"]),
        helper.make_tensor_value_info(HYSTERESIS_INPUT, TensorProto.FLOAT, [1]),
    ])
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], dtype=np.int64), "labels_head_start"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "labels_head_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "labels_head_axis"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "labels_head_k"),
        numpy_helper.from_array(np.array(NO_PREVIOUS, dtype=np.uint8), "labels_head_none"),
    ])
    graph.node.extend([
        helper.make_node("Shape", [logits], ["labels_head_shape"]),
        helper.make_node("Slice", ["labels_head_shape", "labels_head_start", "labels_head_end"], ["labels_head_nc"]),
        helper.make_node("Concat", ["labels_head_nc", OUTPUT_SIZE_INPUT], ["labels_head_sizes"], axis=0),
        helper.make_node("Resize", [logits, "", "", "labels_head_sizes"], ["labels_head_up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("ArgMax", ["labels_head_up"], ["labels_head_index"], axis=1, keepdims=1),
        # Hysteresis: best − (previous label's score) < margin → keep the previous label, where there is one.
        # margin = hysteresis × the frame's mean top-1 − top-2 gap of the low-resolution logits (scale-free).
        helper.make_node("TopK", [logits, "labels_head_k"], ["labels_head_top", "labels_head_top_index"], axis=1),
        helper.make_node("ReduceMax", ["labels_head_top"], ["labels_head_top1"], axes=[1], keepdims=1),
        helper.make_node("ReduceMin", ["labels_head_top"], ["labels_head_top2"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["labels_head_top1", "labels_head_top2"], ["labels_head_gap"]),
        helper.make_node("ReduceMean", ["labels_head_gap"], ["labels_head_mean_gap"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", [HYSTERESIS_INPUT, "labels_head_mean_gap"], ["labels_head_margin"]),
        helper.make_node("GatherElements", ["labels_head_up", "labels_head_index"], ["labels_head_best"], axis=1),
        helper.make_node("Unsqueeze", [PREVIOUS_INPUT, "labels_head_axis"], ["labels_head_prev8"]),
        helper.make_node("Equal", ["labels_head_prev8", "labels_head_none"], ["labels_head_no_prev"]),
        helper.make_node("Cast", ["labels_head_prev8"], ["labels_head_prev_raw"], to=TensorProto.INT64),
        helper.make_node("Where", ["labels_head_no_prev", "labels_head_index", "labels_head_prev_raw"],
                         ["labels_head_prev"]),
        helper.make_node("GatherElements", ["labels_head_up", "labels_head_prev"], ["labels_head_prev_score"],
                         axis=1),
        helper.make_node("Sub", ["labels_head_best", "labels_head_prev_score"], ["labels_head_lead"]),
        helper.make_node("Less", ["labels_head_lead", "labels_head_margin"], ["labels_head_close"]),
        helper.make_node("Not", ["labels_head_no_prev"], ["labels_head_has_prev"]),
        helper.make_node("And", ["labels_head_close", "labels_head_has_prev"], ["labels_head_keep"]),
        helper.make_node("Where", ["labels_head_keep", "labels_head_prev", "labels_head_index"], ["labels_head_pick"]),
        helper.make_node("Squeeze", ["labels_head_pick", "labels_head_axis"], ["labels_head_label"]),
        helper.make_node("Cast", ["labels_head_label"], [LABELS_OUTPUT], to=TensorProto.UINT8),
    ])
    while graph.output:
        graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(LABELS_OUTPUT, TensorProto.UINT8,
                                                      ["batch", "out_height", "out_width"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def labels_feed(pixel_values: np.ndarray, height: int, width: int, previous: np.ndarray | None = None,
                hysteresis: float = 0.0) -> dict[str, np.ndarray]:
    """The labels graph's inputs; no ``previous`` (or ``hysteresis`` 0): the plain argmax."""
    if previous is None:
        previous = np.zeros((pixel_values.shape[0], height, width), dtype=np.uint8)
    return {"pixel_values": pixel_values, OUTPUT_SIZE_INPUT: np.array([height, width], dtype=np.int64),
            PREVIOUS_INPUT: previous, HYSTERESIS_INPUT: np.array([hysteresis], dtype=np.float32)}


def labels_agreement(labels_session, logits_session, pixel_values: np.ndarray, height: int, width: int) -> float:
    """% of pixels where the labels graph equals ``logits_to_labels`` of the logits graph (same dtype)."""
    from face_studio.preprocess import logits_to_labels

    got = labels_session.run(None, labels_feed(pixel_values, height, width))[0][0]
    logits = logits_session.run(None, {"pixel_values": pixel_values})[0][0]
    return 100.0 * float((got == logits_to_labels(logits, height, width)).mean())


def mean_gap(logits: np.ndarray) -> float:
    """The frame's mean top-1 − top-2 gap of (C, h, w) logits: the unit of the hysteresis margin."""
    top = np.sort(logits, axis=0)[-2:]
    return float((top[1] - top[0]).mean())


def hysteresis_labels(up: np.ndarray, gap: float, previous: np.ndarray | None, hysteresis: float) -> np.ndarray:
    """The labels graph's output from upsampled (C, H, W) logits, in numpy (its twin, for tests and benches)."""
    best = up.argmax(0)
    if previous is None or hysteresis == 0:
        return best.astype(np.uint8)
    none = previous == NO_PREVIOUS
    prev = np.where(none, best, previous).astype(np.int64)
    lead = up.max(0) - np.take_along_axis(up, prev[None], 0)[0]
    keep = (lead < np.float32(hysteresis) * np.float32(gap)) & ~none
    return np.where(keep, prev, best).astype(np.uint8)


__all__ = ["LABELS_FILES", "NO_PREVIOUS", "add_labels_head", "hysteresis_labels", "labels_agreement", "labels_feed",
           "mean_gap"]
