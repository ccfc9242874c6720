"""The ONNX export's file layout, shared by the exporter, the server's engine and evaluation."""

from __future__ import annotations

# transformers.js v4 file names per dtype (it picks `onnx/model{suffix}.onnx` from `dtype`).
DTYPE_FILES: dict[str, str] = {
    "fp32": "onnx/model.onnx",
    "fp16": "onnx/model_fp16.onnx",
    "q8": "onnx/model_quantized.onnx",
}
DTYPES: tuple[str, ...] = tuple(DTYPE_FILES)
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"
MANIFEST = "manifest.json"

# In-graph post-processing (``face-studio export --labels-out``): the same graph per dtype with upsample +
# argmax appended; transformers.js loads them with ``model_file_name: "labels"``.
LABELS_FILES: dict[str, str] = {
    "fp32": "onnx/labels.onnx",
    "fp16": "onnx/labels_fp16.onnx",
    "q8": "onnx/labels_quantized.onnx",
}
OUTPUT_SIZE_INPUT = "output_size"
PREVIOUS_INPUT = "previous_labels"  # live hysteresis: last frame's labels (N, height, width) uint8
HYSTERESIS_INPUT = "hysteresis"  # float32 [1]: margin a new label must win by, × the frame's mean top-1 − top-2
# logit gap (0: plain argmax); previous label 255: none (export.labels_graph)
# The labels head's version, in the manifest (labels_graph[dtype].head): 2 = relative margin + "no previous" (255).
# Version 1 (a margin in logits) fails on 255; the page uses only graphs of this version, `export` rebuilds others.
LABELS_HEAD_VERSION = 2


def current_labels_graphs(manifest: dict) -> set[str]:
    """The dtypes of an export's ``manifest`` whose labels graph has this version's head (older heads are rebuilt
    by ``export --labels-out`` and not used by live mode)."""
    return {d for d, entry in (manifest.get("labels_graph") or {}).items() if entry.get("head") == LABELS_HEAD_VERSION}
LABELS_OUTPUT = "labels"
