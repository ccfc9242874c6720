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
HYSTERESIS_INPUT = "hysteresis"  # float32 [1]: logit margin a new label must win by (0: plain argmax)
LABELS_OUTPUT = "labels"
