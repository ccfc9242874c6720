"""The served pipeline's speed mode, chosen in one place and applied once when the pipeline loads.

Modes (``face-studio serve --speed``):

- ``eager``: the pipeline as diffusers runs it. Always available.
- ``compile``: regional ``torch.compile`` of the transformer blocks (every ``JointTransformerBlock`` compiled
  on its own; the same code for every layer, so it compiles in a fraction of a whole-model compile and keeps
  its speed). Compiled on the first request ("compiling (one time)…"). Shapes: **dynamic from the first
  call** (``dynamic=True``: batch and token counts symbolic, weights static), so one graph per block variant
  serves every size, batch ≥ 2 and T5 length; batch 1 (skip-layer guidance's extra pass, guidance ≤ 1) gets
  its own graph (torch specialises size 1). Every regional compile of ``JointTransformerBlock.forward`` shares
  ONE dynamo cache and one ``recompile_limit``: :func:`recompile_budget` sizes it from what the server can be
  asked (block variants × batch shapes × LoRA states, with room for re-guards). A shape that still finds the
  budget spent runs that block eagerly, and the status says so (:meth:`SpeedState.fallback_note`).
- ``fp8``: the transformer's token-wise block linears in float8 through torchao
  (``Float8DynamicActivationFloat8WeightConfig``, **per-row** scales: one scale per weight row, one per
  activation token, computed each call), plus the regional compile (inductor fuses torchao's scaling).
  Needs a CUDA GPU with compute capability ≥ 8.9 (Ada, Hopper, Blackwell) and ``pip install
  face-studio[gpu]``; elsewhere it refuses in one line and runs eager. Layers are quantized one by one with
  their bf16 weights kept aside until all are done: a failure partway puts every layer back (rollback) and
  the status says eager. It changes the numbers (float8 weights), so images differ slightly from the other
  modes. torchao also sets inductor's global tuning flags (``set_inductor_config``), so run other compile
  measurements in their own process (``bench/generation.py`` does).
- ``auto`` (default): ``compile`` on CUDA when the memory mode keeps the transformer whole in bf16 (``full``,
  ``no-t5``) — the fastest mode; ``eager`` on CPU and with the ``fp8`` / ``offload`` memory modes (their
  per-layer casting hooks and whole-model moves are not compile targets: layerwise casting calls
  ``module.to()`` every forward, a graph break each time). ``--speed compile`` / ``fp8`` with those memory
  modes is refused in one line and runs eager.

``bench/generation.py`` imports :func:`compile_regions` and :func:`quantize_fp8` from here, so the benchmark
measures the code the server runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SPEED_MODES: tuple[str, ...] = ("auto", "eager", "compile", "fp8")
COMPILING_STATUS = "compiling (one time)…"
# The recompile budget (see recompile_budget): graphs per block variant and LoRA state — one with batch and
# tokens dynamic, one for batch 1 (torch specialises size 1) — times room for re-guards (grad mode, a LoRA's
# first load); never below torch's own default of 8.
BATCH_SHAPES = 2
REGUARD_MARGIN = 2
RECOMPILE_LIMIT = 8  # the floor (torch's default)
COMPILE_DYNAMIC = True  # batch and token dims symbolic from the first call (one graph serves every size)
COMPILE_BACKEND = "inductor"  # tests and `bench/gpu_smoke.py --device cpu` pass "eager" to count graphs fast
FALLBACK_STATUS = "this shape runs eager (compile budget spent)"
# Same seed, compile vs eager (and a size before vs after another was compiled): inductor fuses ops without the
# rounding between them, so images may differ by a few grey levels (0-255) — measured by bench/gpu_smoke.py
# (docs/serving.md has the numbers); not bit for bit.
COMPILE_PIXEL_TOLERANCE = 2
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
    if requested in ("compile", "fp8") and memory_mode in ("fp8", "offload"):
        why = {"fp8": "its layerwise float8 casting calls module.to() in every forward (a graph break each time)",
               "offload": "it moves whole models between CPU and GPU around every call"}[memory_mode]
        if requested == "fp8" and memory_mode == "fp8":
            why = "both store the transformer in float8"
        return SpeedPlan(requested, "eager", f"--speed {requested} does not combine with --memory-mode "
                                             f"{memory_mode} ({why}): use --memory-mode full or no-t5 for "
                                             f"--speed {requested}; running eager instead.")
    if requested == "auto":
        if cuda and memory_mode in AUTO_COMPILE_MEMORY_MODES:
            return SpeedPlan(requested, "compile")
        return SpeedPlan(requested, "eager")
    if requested == "fp8":
        reason = fp8_unavailable_reason(device)
        if reason:
            return SpeedPlan(requested, "eager", f"{reason}; running eager instead.")
    return SpeedPlan(requested, requested)


# ------------------------------------------------------------------------------------------- transforms


def block_variants(model: torch.nn.Module) -> int:
    """How many distinct code paths ``model.transformer_blocks`` take through the one shared
    ``JointTransformerBlock.forward`` (dual attention or not, context pre-only or not): each needs its own
    graphs. SD3.5 Large: 2; Medium (dual attention in blocks 0-12): 3."""
    kinds = set()
    for block in getattr(model, "transformer_blocks", []):
        kinds.add((type(block).__name__, getattr(block, "attn2", None) is not None,
                   bool(getattr(block, "context_pre_only", False)), getattr(block, "use_dual_attention", None)))
    return max(1, len(kinds))


def recompile_budget(variants: int, lora_states: int = 1) -> int:
    """The dynamo recompile limit for a regionally compiled transformer with ``variants`` block variants
    (:func:`block_variants`) serving ``lora_states`` LoRA states (1 without LoRAs; else 1 + the allowed
    LoRAs: all off, or one of them on). Sizes, batches ≥ 2 and T5 lengths share a graph (dynamic shapes);
    batch 1 has its own. All blocks share one cache, so the limit counts every variant's graphs."""
    return max(RECOMPILE_LIMIT, variants * BATCH_SHAPES * max(1, lora_states) * REGUARD_MARGIN)


def set_recompile_limit(limit: int) -> int:
    """Raise dynamo's per-code-object recompile limit to ``limit`` (``recompile_limit`` from torch 2.7,
    ``cache_size_limit`` before), and the accumulated limit with it. Returns the limit in force."""
    import torch._dynamo.config as dynamo_config

    name = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"
    value = max(getattr(dynamo_config, name), limit)
    setattr(dynamo_config, name, value)
    for acc in ("accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(dynamo_config, acc):
            setattr(dynamo_config, acc, max(getattr(dynamo_config, acc), 4 * value))
            break
    return value


def compile_regions(model: torch.nn.Module, *, lora_states: int = 1, backend: str | None = None,
                    dynamic: bool | None = None) -> int:
    """Regional compile: ``torch.compile`` each block of ``model.transformer_blocks`` in place (compiled on
    its first call), with the recompile limit sized by :func:`recompile_budget` for ``lora_states``.
    ``backend``: inductor (default) or "eager" (dynamo only: counts graphs without code generation).
    Returns how many blocks."""
    import torch
    import torch.fx.experimental._config as fx_config

    set_recompile_limit(recompile_budget(block_variants(model), lora_states))
    torch._dynamo.config.automatic_dynamic_shapes = True
    fx_config.use_duck_shape = False  # image and text token counts that happen to match stay separate symbols
    blocks = list(model.transformer_blocks)
    for block in blocks:
        block.compile(backend=backend or COMPILE_BACKEND, dynamic=COMPILE_DYNAMIC if dynamic is None else dynamic)
    return len(blocks)


def is_compiled(model: torch.nn.Module) -> bool:
    """True when every transformer block is wrapped by :func:`compile_regions`."""
    blocks = list(getattr(model, "transformer_blocks", []))
    return bool(blocks) and all(getattr(b, "_compiled_call_impl", None) is not None for b in blocks)


def compiled_graphs(model: torch.nn.Module) -> int:
    """Dynamo cache entries of the blocks' shared ``forward`` (every variant, shape and LoRA state)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    codes = {type(b).forward.__code__ for b in getattr(model, "transformer_blocks", [])}
    return sum(len(_debug_get_cache_entry_list(code)) for code in codes)


class RecompileLimitWatch(logging.Filter):
    """Counts torch's "hit config.recompile_limit" warnings (the moment a shape starts running eagerly)."""

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if "hit config." in message and ("recompile_limit" in str(record.args) or "cache_size" in str(record.args)):
            self.hits += 1
        return True


_WATCH: RecompileLimitWatch | None = None


def recompile_limit_watch() -> RecompileLimitWatch:
    """The process's one watch on dynamo's limit warning (installed on first use)."""
    global _WATCH
    if _WATCH is None:
        _WATCH = RecompileLimitWatch()
        logging.getLogger("torch._dynamo.convert_frame").addFilter(_WATCH)
    return _WATCH


def _fp8_filter(module: Any, fqn: str) -> bool:
    """The token-wise linears of the blocks (attention, MLP) with float8-friendly sizes (multiples of 16);
    the adaLN linears see one pooled vector per image and stay in bf16, as do the embedders and the head."""
    import torch

    return (isinstance(module, torch.nn.Linear) and fqn.startswith("transformer_blocks.")
            and (".attn" in fqn or ".ff" in fqn) and module.in_features % 16 == 0 and module.out_features % 16 == 0)


QuantizeLayer = Callable[[Any], None]


def _torchao_fp8_layer() -> QuantizeLayer:
    """torchao float8 for one ``nn.Linear``: per-row scales for the weight (once) and the activations (per call)."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
    return lambda linear: quantize_(linear, config, filter_fn=lambda m, _fqn: m is linear)


def quantize_fp8(model: torch.nn.Module, quantize_layer: QuantizeLayer | None = None) -> int:
    """Quantize ``model``'s token-wise block linears to float8 (torchao, per-row scales), in place, one layer
    at a time. All or nothing: each layer's original weight and bias are kept until every layer is done,
    and a failure partway puts the quantized ones back before re-raising, so the model is exactly as it was.
    ``quantize_layer``: the per-layer transform (torchao's by default). Returns how many linears were
    quantized. Check :func:`fp8_unavailable_reason` first."""
    quantize_layer = quantize_layer or _torchao_fp8_layer()
    targets = [(name, m) for name, m in model.named_modules() if _fp8_filter(m, name)]
    saved: list[tuple[Any, Any, Any]] = []
    try:
        for _name, linear in targets:
            saved.append((linear, linear.weight, linear.bias))
            quantize_layer(linear)
    except BaseException:
        for linear, weight, bias in saved:  # roll back: the original Parameters, untouched
            linear.weight = weight
            linear.bias = bias
        raise
    return len(targets)


@contextmanager
def isolated_inductor_config() -> Iterator[None]:
    """Restore inductor's global config on exit: torchao's float8 quantization sets its recommended tuning
    flags process-wide (``set_inductor_config``), which would change every later compile. Benchmarks wrap
    each mode in this so a compile row measured after an fp8 row measures plain compile."""
    import torch._inductor.config as inductor_config

    saved = inductor_config.get_config_copy()
    try:
        yield
    finally:
        inductor_config.load_config(saved)


# ---------------------------------------------------------------------------------------------- state


@dataclass
class SpeedState:
    """The applied mode of one loaded pipeline: which input sizes have run compiled, and whether the recompile
    budget is spent (then sizes, batch shapes or LoRA states not compiled before run eagerly: the status says
    so). Spent = dynamo logged its limit warning (once per process: it then runs new states eagerly without
    a word) or the blocks' graphs reached the limit."""

    plan: SpeedPlan
    details: str = ""
    recompile_limit: int | None = None
    transformer: Any = None
    _shapes: set = field(default_factory=set)
    _fallbacks: list = field(default_factory=list)
    _spent: bool = False
    _hits_at_start: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.compiles:
            self._hits_at_start = recompile_limit_watch().hits

    @property
    def mode(self) -> str:
        return self.plan.mode

    @property
    def compiles(self) -> bool:
        return self.mode in ("compile", "fp8")

    @property
    def budget_spent(self) -> bool:
        return self._spent

    def compile_status(self, shape: tuple) -> str | None:
        """The status to show before running ``shape`` ((height, width)): a compile is coming, this shape runs
        eager (budget spent), or None."""
        if not self.compiles:
            return None
        with self._lock:
            if self._spent and shape not in self._shapes:
                return FALLBACK_STATUS
            if not self._shapes:
                return COMPILING_STATUS
        return None

    def _limit_state(self) -> tuple[bool, bool]:
        """(limit hit during the last run: it ran eagerly, graphs reached the limit: the next new state will)."""
        if recompile_limit_watch().hits > self._hits_at_start:
            return True, True
        if self.transformer is None:
            return False, False
        import torch._dynamo.config as dynamo_config

        limit = getattr(dynamo_config, "recompile_limit", None) or getattr(dynamo_config, "cache_size_limit", 8)
        return False, compiled_graphs(self.transformer) >= limit

    def ran(self, shape: tuple) -> None:
        """Record a finished run of ``shape`` ((height, width)); if the budget ran out during it, that shape
        (and every later new one) runs eagerly: remember it for the status."""
        if not self.compiles:
            return
        hit, full = self._limit_state() if not self._spent else (False, True)
        with self._lock:
            if not self._spent and full:
                self._spent = True
                log.warning("speed: the recompile budget (%s graphs) is spent: sizes, batches and LoRA states not "
                            "compiled so far run eagerly; restart the server to compile them", self.recompile_limit)
                if not hit:  # this run still compiled; the next new state will not
                    self._shapes.add(shape)
                    return
            if self._spent:
                if shape not in self._fallbacks and (hit or shape not in self._shapes):
                    self._fallbacks.append(shape)
            else:
                self._shapes.add(shape)

    @property
    def fallbacks(self) -> list[tuple]:
        with self._lock:
            return list(self._fallbacks)

    def fallback_note(self) -> str | None:
        """One line for the status when the budget is spent, else None."""
        if not self._spent:
            return None
        shapes = self.fallbacks
        listed = ", ".join(f"{w}×{h}" for h, w in shapes[:4]) + (" …" if len(shapes) > 4 else "")
        return (f"recompile budget ({self.recompile_limit} graphs) spent: new sizes, batches and LoRA states run "
                f"eager{' (' + listed + ')' if listed else ''}; restart the server to compile them")


def apply_speed(pipe: Any, plan: SpeedPlan, *, lora_states: int = 1, backend: str | None = None) -> SpeedState:
    """Apply ``plan`` to a loaded, placed pipeline's transformer (once, at load). ``lora_states``: 1 + the
    allowed LoRAs (sizes the recompile budget). fp8 that fails to apply is rolled back and falls back to eager
    with a logged line; the pipeline keeps working."""
    if plan.note:
        log.warning("speed: %s", plan.note)
    if plan.mode == "eager":
        return SpeedState(plan)
    transformer = pipe.transformer
    recompile_limit_watch()
    limit = recompile_budget(block_variants(transformer), lora_states)
    if plan.mode == "fp8":
        try:
            n = quantize_fp8(transformer)
        except Exception as err:  # torchao refuses this card or build: rolled back; say so, keep serving eager
            fallback = SpeedPlan(plan.requested, "eager", f"torchao float8 failed ({err}); running eager instead.")
            log.warning("speed: %s", fallback.note)
            return SpeedState(fallback)
        blocks = compile_regions(transformer, lora_states=lora_states, backend=backend)
        return SpeedState(plan, f"{n} linears in float8 (torchao), {blocks} blocks compiled", limit, transformer)
    blocks = compile_regions(transformer, lora_states=lora_states, backend=backend)
    return SpeedState(plan, f"{blocks} transformer blocks compiled (regional)", limit, transformer)
