"""In-graph post-processing for live exports (``face-studio export --labels-out``).

A labels graph is the logits graph with the page's post-processing appended: bilinear upsample (half-pixel
centres, as ``face_studio.preprocess`` and ``static/js/segment.js``) to a requested size, argmax over the
classes (first maximum), uint8. Inputs ``pixel_values`` (N, 3, S, S) float32 and ``output_size`` int64
[height, width]; output ``labels`` (N, height, width) uint8. The worker then only draws: no logits cross
from ONNX Runtime to JS and no JS loop runs per pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from face_studio.onnx_files import LABELS_FILES, LABELS_OUTPUT, OUTPUT_SIZE_INPUT


def add_labels_head(src: Path, dst: Path) -> Path:
    """Write ``src`` (a logits graph, any dtype) with upsample + argmax + uint8 appended, to ``dst``."""
    model = onnx.load(str(src))
    graph = model.graph
    logits = next(o for o in graph.output if o.name == "logits").name
    graph.input.append(helper.make_tensor_value_info(OUTPUT_SIZE_INPUT, TensorProto.INT64, [2]))
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0], dtype=np.int64), "labels_head_start"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "labels_head_end"),
    ])
    graph.node.extend([
        helper.make_node("Shape", [logits], ["labels_head_shape"]),
        helper.make_node("Slice", ["labels_head_shape", "labels_head_start", "labels_head_end"], ["labels_head_nc"]),
        helper.make_node("Concat", ["labels_head_nc", OUTPUT_SIZE_INPUT], ["labels_head_sizes"], axis=0),
        helper.make_node("Resize", [logits, "", "", "labels_head_sizes"], ["labels_head_up"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("ArgMax", ["labels_head_up"], ["labels_head_index"], axis=1, keepdims=0),
        helper.make_node("Cast", ["labels_head_index"], [LABELS_OUTPUT], to=TensorProto.UINT8),
    ])
    while graph.output:
        graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(LABELS_OUTPUT, TensorProto.UINT8,
                                                      ["batch", "out_height", "out_width"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def labels_agreement(labels_session, logits_session, pixel_values: np.ndarray, height: int, width: int) -> float:
    """% of pixels where the labels graph equals ``logits_to_labels`` of the logits graph (same dtype)."""
    from face_studio.preprocess import logits_to_labels

    size = np.array([height, width], dtype=np.int64)
    got = labels_session.run(None, {"pixel_values": pixel_values, OUTPUT_SIZE_INPUT: size})[0][0]
    logits = logits_session.run(None, {"pixel_values": pixel_values})[0][0]
    return 100.0 * float((got == logits_to_labels(logits, height, width)).mean())


__all__ = ["LABELS_FILES", "add_labels_head", "labels_agreement"]
