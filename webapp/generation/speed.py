"""The served pipeline's speed mode, chosen in one place and applied once when the pipeline loads.

Modes (``face-studio serve --speed``):

- ``eager``: the pipeline as diffusers runs it. Always available.
- ``compile``: regional ``torch.compile`` of the transformer blocks (every ``JointTransformerBlock`` compiled
  on its own; the same code for every layer, so it compiles in a fraction of a whole-model compile and keeps
  its speed). Compiled on the first request ("compiling (one time)…"). Shapes: **dynamic after the first
  size** — the first size (and batch) compiles a static graph, the first *different* size recompiles once with
  the changing dimensions marked dynamic (torch's automatic dynamic shapes), and every later size reuses that
  graph. :data:`RECOMPILE_LIMIT` bounds recompiles per block; past it torch runs that block eagerly.
- ``fp8``: the transformer's linears in float8 through torchao (``Float8DynamicActivationFloat8WeightConfig``,
  per-row scales: weights quantized once, activations per call), plus the regional compile (torchao's fp8
  matmuls are fused by inductor). Needs a CUDA GPU with compute capability ≥ 8.9 (Ada, Hopper, Blackwell)
  and ``pip install face-studio[gpu]``; elsewhere it refuses in one line and runs eager. It changes the
  numbers (float8 weights), so images differ slightly from the other modes.
- ``auto`` (default): ``compile`` on CUDA when the memory mode keeps the transformer whole in bf16 (``full``,
  ``no-t5``) — the fastest mode that leaves the model's numbers as they are; ``eager`` on CPU and with the
  ``fp8`` / ``offload`` memory modes (their per-layer hooks and whole-model moves are not compile targets).

``bench/generation.py`` imports :func:`compile_regions` and :func:`quantize_fp8` from here, so the benchmark
measures the code the server runs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SPEED_MODES: tuple[str, ...] = ("auto", "eager", "compile", "fp8")
COMPILING_STATUS = "compiling (one time)…"
RECOMPILE_STATUS = "compiling for a new size (one time)…"
# Per compiled block: one static graph, one dynamic graph, a few re-guards (dtype, grad mode); past this torch
# runs the block eagerly instead of compiling again, so a stream of odd sizes never recompiles without end.
RECOMPILE_LIMIT = 8
FP8_MIN_CAPABILITY = (8, 9)  # float8 tensor cores: Ada (8.9), Hopper (9.0) and later
FP8_INSTALL_HINT = "pip install 'face-studio[gpu]'  (torchao)"
# auto: memory modes whose transformer is plain bf16 modules on the GPU (compile-friendly)
AUTO_COMPILE_MEMORY_MODES = ("full", "no-t5")


@dataclass(frozen=True)
class SpeedPlan:
    """What ``--speed`` resolved to: the mode that will run and, when it differs from the request, why."""

    requested: str
    mode: str
    note: str | None = None  # one line for the log, the CLI and the Generate view's status


def fp8_unavailable_reason(device: str | None) -> str | None:
    """Why torchao float8 cannot run on ``device`` (no CUDA, compute capability < 8.9, no torchao), or None."""
    import importlib.util

    import torch

    if not device or not device.startswith("cuda") or not torch.cuda.is_available():
        return (f"--speed fp8 needs a CUDA GPU with compute capability ≥ {FP8_MIN_CAPABILITY[0]}."
                f"{FP8_MIN_CAPABILITY[1]} (Ada, Hopper); this server generates on {device or 'no device'}")
    capability = torch.cuda.get_device_capability(torch.device(device))
    if tuple(capability) < FP8_MIN_CAPABILITY:
        name = torch.cuda.get_device_name(torch.device(device))
        return (f"--speed fp8 needs compute capability ≥ {FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]} (float8 "
                f"tensor cores); {name} has {capability[0]}.{capability[1]}")
    if importlib.util.find_spec("torchao") is None:
        return f"--speed fp8 uses torchao, which is not installed: {FP8_INSTALL_HINT}"
    return None


def resolve_speed(requested: str, device: str | None, memory_mode: str) -> SpeedPlan:
    """The mode that will run for ``requested`` on ``device`` in ``memory_mode``, with a note on any fallback."""
    if requested not in SPEED_MODES:
        return SpeedPlan(requested, "eager", f"unknown speed mode {requested!r}: choose one of "
                                             f"{', '.join(SPEED_MODES)}; running eager.")
    cuda = bool(device and device.startswith("cuda"))
    if requested == "auto":
        if cuda and memory_mode in AUTO_COMPILE_MEMORY_MODES:
            return SpeedPlan(requested, "compile")
        return SpeedPlan(requested, "eager")
    if requested == "fp8":
        reason = fp8_unavailable_reason(device)
        if reason is None and memory_mode == "fp8":
            reason = ("--speed fp8 and --memory-mode fp8 both store the transformer in float8: use --memory-mode "
                      "full (or no-t5) with --speed fp8")
        if reason is None and memory_mode == "offload":
            reason = "--speed fp8 keeps the transformer on the GPU: it does not combine with --memory-mode offload"
        if reason:
            return SpeedPlan(requested, "eager", f"{reason}; running eager instead.")
    return SpeedPlan(requested, requested)


# ------------------------------------------------------------------------------------------- transforms


def compile_regions(model: torch.nn.Module) -> int:
    """Regional compile: ``torch.compile`` each block of ``model.transformer_blocks`` in place (compiled on
    its first call). Raises the recompile limit to :data:`RECOMPILE_LIMIT`. Returns how many blocks."""
    import torch

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    torch._dynamo.config.automatic_dynamic_shapes = True  # a second size → one dynamic graph, not one per size
    blocks = list(model.transformer_blocks)
    for block in blocks:
        block.compile()
    return len(blocks)


def is_compiled(model: torch.nn.Module) -> bool:
    """True when every transformer block is wrapped by :func:`compile_regions`."""
    blocks = list(getattr(model, "transformer_blocks", []))
    return bool(blocks) and all(getattr(b, "_compiled_call_impl", None) is not None for b in blocks)


def _fp8_filter(module: Any, fqn: str) -> bool:
    """The token-wise linears of the blocks (attention, MLP) with float8-friendly sizes (multiples of 16);
    the adaLN linears see one pooled vector per image and stay in bf16, as do the embedders and the head."""
    import torch

    return (isinstance(module, torch.nn.Linear) and fqn.startswith("transformer_blocks.")
            and (".attn" in fqn or ".ff" in fqn) and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def quantize_fp8(model: torch.nn.Module) -> int:
    """Quantize ``model``'s token-wise block linears to float8 with torchao (per-row dynamic activations and
    weights), in place. Returns how many linears were quantized. Check :func:`fp8_unavailable_reason` first."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    count = sum(1 for name, m in model.named_modules() if _fp8_filter(m, name))
    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=_fp8_filter)
    return count


# ---------------------------------------------------------------------------------------------- state


@dataclass
class SpeedState:
    """The applied mode of one loaded pipeline, and which input shapes have been compiled (for the status)."""

    plan: SpeedPlan
    details: str = ""
    _shapes: set = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mode(self) -> str:
        return self.plan.mode

    def compile_status(self, shape: tuple) -> str | None:
        """The status to show before running ``shape`` ((height, width)): a compile is coming, or None."""
        if self.mode not in ("compile", "fp8"):
            return None
        with self._lock:
            if not self._shapes:
                return COMPILING_STATUS
            if len(self._shapes) == 1 and shape not in self._shapes:
                return RECOMPILE_STATUS  # the one recompile that makes the graph dynamic
        return None

    def ran(self, shape: tuple) -> None:
        with self._lock:
            self._shapes.add(shape)


def apply_speed(pipe: Any, plan: SpeedPlan) -> SpeedState:
    """Apply ``plan`` to a loaded, placed pipeline's transformer (once, at load). fp8 that fails to apply
    falls back to eager with a logged line; the pipeline keeps working."""
    if plan.note:
        log.warning("speed: %s", plan.note)
    if plan.mode == "eager":
        return SpeedState(plan)
    transformer = pipe.transformer
    if plan.mode == "fp8":
        try:
            n = quantize_fp8(transformer)
        except Exception as err:  # torchao refuses this card or build: say so, keep serving eager
            fallback = SpeedPlan(plan.requested, "eager", f"torchao float8 failed ({err}); running eager instead.")
            log.warning("speed: %s", fallback.note)
            return SpeedState(fallback)
        blocks = compile_regions(transformer)
        return SpeedState(plan, f"{n} linears in float8 (torchao), {blocks} blocks compiled")
    blocks = compile_regions(transformer)
    return SpeedState(plan, f"{blocks} transformer blocks compiled (regional)")
