"""Which ONNX Runtime execution provider the server parse runs on, with what options, and in which dtype.

- ``auto``: CUDA when this ONNX Runtime has the CUDA execution provider (``onnxruntime-gpu``), else CPU;
  ``cuda`` without it falls back to the CPU with one line saying how to get it; ``cpu``: CPU. CPU is always
  last in the list, as ORT's fallback for ops the CUDA provider lacks.
- CUDA options: the GPU of ``serve --device cuda:N`` (``device_id``; GPU 0 for ``cuda`` / auto) and an arena
  that grows by what is asked for (``kSameAsRequested``), not by powers of two, beside the SD3 pipeline.
- dtype: the q8 export is QUInt8 dynamic quantization (``DynamicQuantizeLinear`` + ``MatMulInteger`` /
  ``ConvInteger``); ORT's CUDA provider has ``MatMulInteger`` for int8 only and no kernel for the other two, so
  q8 on CUDA would run those nodes on the CPU with copies both ways. On CUDA the parse uses fp16 (fp32 when the
  export has no fp16 file) instead; :func:`node_placement` shows where each node of a session ran.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from face_studio.errors import UserError

PROVIDERS: dict[str, str] = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *PROVIDERS)
CUDA_EP_HINT = ("install onnxruntime-gpu in place of onnxruntime (pip uninstall onnxruntime && pip install "
                "onnxruntime-gpu) on a machine with an NVIDIA GPU")
CUDA_DTYPES: tuple[str, ...] = ("fp16", "fp32")  # what the CUDA parse runs, in order of preference

Provider = str | tuple[str, dict[str, Any]]


def device_id(device: str | None) -> int:
    """The CUDA ordinal of ``device`` (``cuda:N`` → N; ``cuda``, ``auto``, None → 0)."""
    match = re.fullmatch(r"cuda:(\d+)", device or "")
    return int(match.group(1)) if match else 0


def cuda_options(device: str | None = None) -> dict[str, Any]:
    """The CUDA execution provider's options for ``device``."""
    return {"device_id": device_id(device), "arena_extend_strategy": "kSameAsRequested"}


def select_providers(requested: str = "auto", device: str | None = None) -> tuple[list[Provider], str | None]:
    """ONNX Runtime execution providers for ``requested`` (auto, cuda, cpu) on ``device`` (``serve --device``),
    and a note when CUDA was asked for but cannot be used (then it falls back to CPU)."""
    import onnxruntime as ort

    if requested not in PROVIDER_CHOICES:
        raise UserError(f"unknown parse provider {requested!r}: choose one of {', '.join(PROVIDER_CHOICES)}.")
    cpu: list[Provider] = [PROVIDERS["cpu"]]
    if requested == "cpu":
        return cpu, None
    if PROVIDERS["cuda"] in ort.get_available_providers():
        return [(PROVIDERS["cuda"], cuda_options(device)), *cpu], None
    if requested == "cuda":
        return cpu, (f"CUDA was asked for the server parse, but this ONNX Runtime ({ort.__version__}) has no "
                     f"CUDAExecutionProvider: parsing on the CPU. For the GPU, {CUDA_EP_HINT}.")
    return cpu, None


def provider_name(provider: Provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


def dtype_for(dtype: str, providers: list[Provider], available: list[str]) -> tuple[str, str | None]:
    """The dtype to load for ``dtype`` on ``providers``: on CUDA, q8 becomes fp16 (or fp32) when the export has
    one, with a note; otherwise ``dtype`` as asked."""
    if dtype != "q8" or not providers or provider_name(providers[0]) != PROVIDERS["cuda"]:
        return dtype, None
    for candidate in CUDA_DTYPES:
        if candidate in available:
            return candidate, (f"parse on CUDA: using the {candidate} export instead of q8 (ORT's CUDA provider has "
                               "no kernels for q8's DynamicQuantizeLinear / uint8 MatMulInteger)")
    return dtype, ("parse on CUDA with q8 only: its quantized nodes run on the CPU; export fp16 "
                   "(face-studio export) for a faster GPU parse")


def node_placement(model_path: str | Path, providers: list[Provider], feeds: dict[str, Any]) -> Counter:
    """Run ``model_path`` once with ORT's profiler on ``providers`` and count its nodes by the provider that ran
    them (e.g. ``{"CUDAExecutionProvider": 310, "CPUExecutionProvider": 12}``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    session = ort.InferenceSession(str(model_path), options, providers=providers)
    session.run(None, feeds)
    profile = Path(session.end_profiling())
    try:
        events = json.loads(profile.read_text())
    finally:
        profile.unlink(missing_ok=True)
    nodes: dict[str, str] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and "provider" in args:
            nodes[event["name"].removesuffix("_kernel_time").removesuffix("_fence_before")
                  .removesuffix("_fence_after")] = args["provider"]
    return Counter(nodes.values())
