"""In-graph post-processing for live exports (``face-studio export --labels-out``).

A labels graph is the logits graph with the page's post-processing appended: bilinear upsample (half-pixel
centres, as ``face_studio.preprocess`` and ``static/js/segment.js``) to a requested size, argmax over the
classes (first maximum), uint8. Inputs ``pixel_values`` (N, 3, S, S) float32, ``output_size`` int64
[height, width], ``previous_labels`` (N, height, width) uint8 and ``hysteresis`` float32 [1]; output ``labels``
(N, height, width) uint8. The worker then only draws: no logits cross from ONNX Runtime to JS and no JS loop
runs per pixel.

Hysteresis (live mode's flicker filter): a pixel keeps its previous label unless the new winner's upsampled
logit beats the previous label's by at least ``hysteresis``. A clear change switches in the same frame (no
lag); a near-tie that camera noise flips back and forth stays put. ``hysteresis`` 0 is the plain argmax
(``previous_labels`` is then ignored), which is what photos and the twin tests use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from face_studio.onnx_files import HYSTERESIS_INPUT, LABELS_FILES, LABELS_OUTPUT, OUTPUT_SIZE_INPUT, PREVIOUS_INPUT


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
    ])
    graph.node.extend([
        helper.make_node("Shape", [logits], ["labels_head_shape"]),
        helper.make_node("Slice", ["labels_head_shape", "labels_head_start", "labels_head_end"], ["labels_head_nc"]),
        helper.make_node("Concat", ["labels_head_nc", OUTPUT_SIZE_INPUT], ["labels_head_sizes"], axis=0),
        helper.make_node("Resize", [logits, "", "", "labels_head_sizes"], ["labels_head_up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("ArgMax", ["labels_head_up"], ["labels_head_index"], axis=1, keepdims=1),
        # Hysteresis: best − (previous label's score) < margin → keep the previous label.
        helper.make_node("GatherElements", ["labels_head_up", "labels_head_index"], ["labels_head_best"], axis=1),
        helper.make_node("Unsqueeze", [PREVIOUS_INPUT, "labels_head_axis"], ["labels_head_prev8"]),
        helper.make_node("Cast", ["labels_head_prev8"], ["labels_head_prev"], to=TensorProto.INT64),
        helper.make_node("GatherElements", ["labels_head_up", "labels_head_prev"], ["labels_head_prev_score"],
                         axis=1),
        helper.make_node("Sub", ["labels_head_best", "labels_head_prev_score"], ["labels_head_lead"]),
        helper.make_node("Less", ["labels_head_lead", HYSTERESIS_INPUT], ["labels_head_keep"]),
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


__all__ = ["LABELS_FILES", "add_labels_head", "labels_agreement", "labels_feed"]
