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
# q8 recipes (`export --q8-ops`): the op types whose weights become uint8 (dynamic quantization).
#   all     every MatMul and Conv: the smallest file (MiT-B5 83 MB vs 323 MB fp32), the photo parser's default.
#   matmul  MatMuls only; Convs (patch embeddings, attention reductions, Mix-FFN depthwise) stay fp32: ORT Web's
#           ConvInteger path (quantize the input, integer conv, cast back) cost more in WASM than it saved. The
#           live student mit-b0-d64 at 256 px runs 16 % faster in WASM (2 threads) for +2 MB (bench/live.py);
#           MiT-B5's many reduction convs would grow it to 150 MB. The default for live exports (--labels-out).
Q8_OPS = {"all": None, "matmul": ("MatMul",)}
Q8_OPS_DEFAULT, Q8_OPS_LIVE = "all", "matmul"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FidelitySpec:
    """How each dtype is checked against PyTorch; the numbers land in manifest.json."""

    # fp32 graph must match eager PyTorch this closely (max |logit diff|); export fails beyond it.
    fp32_max_abs: float = 1e-3
    # Latency: median over this many runs after one warm-up, one frame at the model's input size.
    latency_runs: int = 5


FIDELITY = FidelitySpec()
