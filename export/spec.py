"""What an export is: file layout, dtypes, graph settings and fidelity checks, as data."""

from __future__ import annotations

from dataclasses import dataclass

from face_studio.onnx_files import (  # noqa: F401 (re-exported)
    DTYPE_FILES,
    DTYPES,
    INPUT_NAME,
    LABELS_FILES,
    MANIFEST,
    OUTPUT_NAME,
)

OPSET = 17  # opset 17: LayerNormalization is a single op; supported by ORT web and native
DYNAMIC_AXES = {
    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
    OUTPUT_NAME: {0: "batch", 2: "logits_height", 3: "logits_width"},
}
# onnxslim folds the tracer's shape arithmetic (tiny graph: 917 → 424 nodes; identical outputs, dynamic axes
# kept): MiT-B5 ORT fp32 on 2 CPU cores 1674 → 1447 ms a frame in bench/parser.py. Saving ORT's own optimised
# graph was slower (1529 ms) and may hold CPU-only fused ops that onnxruntime-web lacks, so we don't.
SLIM = True
DEFAULT_SOURCE = "jonathandinu/face-parsing"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FidelitySpec:
    """How each dtype is checked against PyTorch; the numbers land in manifest.json."""

    # fp32 graph must match eager PyTorch this closely (max |logit diff|); export fails beyond it.
    fp32_max_abs: float = 1e-3
    # Latency: median over this many runs after one warm-up, one frame at the model's input size.
    latency_runs: int = 5


FIDELITY = FidelitySpec()
