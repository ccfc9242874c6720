"""Build step: a SegFormer face parser → safetensors + ONNX fp32 / fp16 / q8 in transformers.js layout."""
