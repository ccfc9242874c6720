"""PyTorch SegFormer → ONNX fp32, then fp16 and q8 variants of that graph."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import onnx
import torch

from export.spec import DYNAMIC_AXES, INPUT_NAME, OPSET, OUTPUT_NAME, Q8_OPS, SLIM

TRACE_EXTRA_WIDTH = 32  # one SegFormer stride: the example stays a valid input at any size train accepts


class _LogitsOnly(torch.nn.Module):
    """Make the graph return ``logits`` only (no ModelOutput, no hidden states)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def export_fp32(model: torch.nn.Module, path: Path, size: int = 512, slim: bool = SLIM) -> Path:
    """Trace ``model`` to ONNX at ``path`` with dynamic batch, height and width (then onnxslim, see spec)."""
    # A batch-2, non-square example keeps every axis symbolic in the traced graph. Wider, not narrower, than
    # the model's input: a parser trained at 32 or 64 px (face-studio train --size) must trace too.
    example = torch.randn(2, 3, size, size + TRACE_EXTRA_WIDTH)
    # The wrapper must be in eval mode too: the exporter restores the wrapper's mode afterwards, and a
    # fresh module's mode is train(), which would leave the caller's model training (BatchNorm, dropout).
    wrapper = _LogitsOnly(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=DYNAMIC_AXES,
            do_constant_folding=True,
        )
    model.eval()
    if slim:
        import onnxslim

        onnx.save(onnxslim.slim(onnx.load(str(path))), str(path))
    onnx.checker.check_model(str(path))
    return path


def make_fp16(src: Path, dst: Path) -> Path:
    """fp16 weights and compute; float32 inputs and outputs so callers need no change."""
    from onnxconverter_common import float16

    with warnings.catch_warnings():  # "number will be truncated to 1e-07": expected for tiny weights
        warnings.simplefilter("ignore", UserWarning)
        model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


def make_q8(src: Path, dst: Path, ops: str = "all") -> Path:
    """Dynamic quantization with uint8 weights after ORT's pre-processing; ``ops``: a recipe of
    ``export.spec.Q8_OPS`` (which op types are quantized).

    uint8, not int8: onnxruntime-web has no kernel for int8 Conv weights (ConvInteger s8).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(src), str(prepped), skip_symbolic_shape=False)
        quantize_dynamic(str(prepped), str(dst), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=list(Q8_OPS[ops]) if Q8_OPS[ops] else None)
    return dst


BUILDERS = {"fp16": make_fp16, "q8": make_q8}
