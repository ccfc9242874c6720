"""The one owner of the diffusers ``StableDiffusion3Pipeline``: resolves the device, loads the model once
(lazily, on first use) from a hub id or a local diffusers folder, applies the memory mode, and switches on
the allowed LoRAs each call names (see :mod:`webapp.generation.loras`). Every failure a user can fix becomes
a :class:`~face_studio.errors.UserError` that says how.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from face_studio.errors import UserError
from webapp.generation import presets as P
from webapp.generation.loras import HUB_ID_RE, LoraCatalog
from webapp.generation.speed import SpeedPlan, SpeedState, apply_speed, resolve_speed

if TYPE_CHECKING:
    import torch
    from diffusers import StableDiffusion3Pipeline

log = logging.getLogger(__name__)

NO_GPU_MESSAGE = (
    "Generation needs a CUDA GPU, and this server has none. Run `face-studio serve` on a machine with an "
    "NVIDIA GPU, or start it with `--device cpu` to generate on the CPU on purpose (practical only for small "
    "or dev models)."
)
# What to try after a CUDA out-of-memory error in each mode.
OOM_ADVICE: dict[str, str] = {
    "full": "restart with `--memory-mode fp8` (transformer weights in float8) or `--memory-mode offload`",
    "fp8": "restart with `--memory-mode offload` (model CPU offload)",
    "no-t5": "restart with `--memory-mode offload`",
    "offload": "generate fewer images per run or a smaller size, or restart with `--memory-mode no-t5`",
}


class ModelLoadError(UserError, RuntimeError):
    """The model could not be loaded; the message says why and what to do."""


class OutOfMemory(UserError, RuntimeError):
    """CUDA ran out of memory; the message names the memory mode to try."""


def drop_frames(err: BaseException) -> None:
    """Clear the locals of the frames in ``err``'s traceback (the activations of a failed call), so they are
    freed as soon as the ``except`` block is left — call it there, then free memory outside the block."""
    traceback.clear_frames(err.__traceback__)


def compute_dtype(device: str | None, bf16_supported: bool | None = None) -> torch.dtype:
    """The pipeline's dtype on ``device``: bfloat16 on a CUDA GPU that supports it, float16 on one that does not
    (T4, V100: compute capability < 8.0), float32 on the CPU. ``bf16_supported`` None: ask torch."""
    import torch

    if not device or not device.startswith("cuda"):
        return torch.float32
    if bf16_supported is None:
        with torch.cuda.device(torch.device(device)):
            bf16_supported = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if bf16_supported else torch.float16


def resolve_device(device: str | None) -> tuple[str | None, str | None]:
    """``(device, None)`` when generation can run there, else ``(None, reason)``.

    ``None`` means "the CUDA GPU if there is one"; ``"cpu"`` is allowed only when asked for.
    """
    import torch

    if device in (None, "", "auto"):
        return ("cuda", None) if torch.cuda.is_available() else (None, NO_GPU_MESSAGE)
    if device == "cpu":
        return "cpu", None
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            return None, NO_GPU_MESSAGE
        index = int(device.split(":")[1]) if ":" in device else 0
        count = torch.cuda.device_count()
        if index >= count:
            return None, (f"--device {device} asks for GPU {index}, but this server has {count} CUDA GPU(s): "
                          f"use cuda:0 … cuda:{count - 1}.")
        return device, None
    return None, f"unknown device {device!r}: use cuda, cuda:N or cpu."


def gpu_memory_gib(device: str | None) -> float | None:
    """Total memory of the CUDA device, in GiB; None on CPU."""
    if not device or not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**30


def is_local_source(source: str) -> bool:
    """A folder path rather than a hub id: anything that exists on disk or does not look like owner/name."""
    return Path(source).expanduser().exists() or not HUB_ID_RE.match(source)


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def explain_load_error(source: str, err: BaseException,
                       local_hint: str = "pass a local diffusers folder to --sd-model") -> str:
    """A user-facing message for a failed hub download; ``local_hint`` says how to use a local copy instead."""
    import os

    from huggingface_hub.errors import GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError

    token = bool(os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"))
    for e in _chain(err):
        if isinstance(e, GatedRepoError) or "gated" in str(e).lower():
            if token:
                return (f"{source} is a gated model and your HF_TOKEN has no access yet: accept the licence at "
                        f"https://huggingface.co/{source} with the account the token belongs to, then restart.")
            return (f"{source} is a gated model: accept its licence at https://huggingface.co/{source}, create a "
                    "read token at https://huggingface.co/settings/tokens and start the server with HF_TOKEN "
                    "set to it.")
        if isinstance(e, RepositoryNotFoundError):
            return (f"no model {source!r} on the Hugging Face hub (or it is private): check the id, e.g. "
                    f"{P.PRESETS['Medium'].hub_id}; for a private model set HF_TOKEN.")
        if isinstance(e, OfflineModeIsEnabled) or type(e).__name__ in ("ConnectError", "ConnectionError"):
            return (f"could not download {source}: the hub is unreachable (offline, or HF_HUB_OFFLINE is set) "
                    f"and it is not in the local cache. Connect once to download it, or {local_hint}.")
    return f"could not load {source}: {err}"


class PipelineOwner:
    """Loads ``StableDiffusion3Pipeline`` once, on first :meth:`get`, and keeps it.

    Thread-safe: :attr:`lock` serialises loading, generation and LoRA changes (one job at a time per GPU).
    """

    def __init__(self, source: str, *, device: str | None = None, memory_mode: str = "auto",
                 preset: str = "Custom", catalog: LoraCatalog | None = None, speed: str = "eager") -> None:
        self.source = str(source)
        self.preset = preset
        self.device, self.unavailable = resolve_device(device)
        self.requested_memory_mode = memory_mode
        if memory_mode not in P.MEMORY_MODES and self.unavailable is None:
            self.unavailable = (f"unknown memory mode {memory_mode!r}: choose one of "
                                f"{', '.join(P.MEMORY_MODE_NAMES)}.")
        if self.device == "cpu" and memory_mode == "offload" and self.unavailable is None:
            self.unavailable = "memory mode 'offload' moves models to a GPU and needs one: use full or no-t5 on CPU."
        self.catalog = catalog or LoraCatalog()  # the LoRAs requests may name; each loads on first use
        self.requested_speed = speed
        self.speed: SpeedState | None = None  # set when the pipeline loads (webapp.generation.speed)
        self.compile_backend: str | None = None  # None: inductor; "eager" counts graphs without codegen (tests)
        self.lock = threading.RLock()
        self._pipe: StableDiffusion3Pipeline | None = None
        self._loaded_loras: set[str] = set()

    # ------------------------------------------------------------------------------------------- state

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    @property
    def memory_mode(self) -> str:
        """The memory mode in effect ("auto" resolved from the GPU's memory)."""
        if self.requested_memory_mode != "auto" or self.device is None:
            return self.requested_memory_mode
        return P.pick_memory_mode(self.preset, gpu_memory_gib(self.device))

    @property
    def speed_plan(self) -> SpeedPlan:
        """The speed mode that runs (``--speed`` resolved for this device and memory mode)."""
        return self.speed.plan if self.speed else resolve_speed(self.requested_speed, self.device, self.memory_mode)

    @property
    def dtype(self) -> torch.dtype:
        return compute_dtype(self.device)

    def check_available(self) -> None:
        if self.unavailable:
            raise UserError(self.unavailable)

    # ------------------------------------------------------------------------------------------- loading

    def get(self) -> StableDiffusion3Pipeline:
        """The loaded pipeline; loads it on the first call (minutes for a hub model)."""
        self.check_available()
        if self._pipe is None:
            with self.lock:
                if self._pipe is None:
                    self._pipe = self._load()
        return self._pipe

    def _load(self) -> StableDiffusion3Pipeline:
        import torch
        from diffusers import StableDiffusion3Pipeline

        mode = self.memory_mode
        kwargs: dict[str, Any] = {"dtype": self.dtype, "use_safetensors": True}
        if mode == "no-t5":
            kwargs.update(text_encoder_3=None, tokenizer_3=None)
        if is_local_source(self.source):
            folder = Path(self.source).expanduser()
            if not folder.exists():
                raise ModelLoadError(
                    f"model folder {folder} does not exist: pass a diffusers folder (one holding "
                    f"model_index.json) or a hub id such as {P.PRESETS['Medium'].hub_id} to --sd-model.")
            if not (folder / "model_index.json").is_file():
                raise ModelLoadError(
                    f"{folder} is not a diffusers pipeline folder (no model_index.json): point --sd-model at "
                    "the folder made by `save_pretrained` or downloaded from the hub.")
            source = str(folder)
        else:
            source = self.source
        log.info("loading %s (%s, memory mode %s, %s)", source, self.device, mode, kwargs["dtype"])
        oom = False
        try:
            pipe = StableDiffusion3Pipeline.from_pretrained(source, **kwargs)
        except torch.OutOfMemoryError as err:
            drop_frames(err)
            oom = True
        except (OSError, ValueError) as err:
            if is_local_source(self.source):
                raise ModelLoadError(f"could not load the model folder {source}: {err}") from None
            raise ModelLoadError(explain_load_error(source, err)) from None
        if oom:  # outside the except block: the failed call's tensors are gone before the cache is emptied
            raise self._oom(mode)
        try:
            self._place(pipe, mode)
        except torch.OutOfMemoryError as err:
            drop_frames(err)
            oom = True
        if oom:
            del pipe
            raise self._oom(mode)
        # eager / compile / fp8, once; the recompile budget counts each allowed LoRA as a state
        lora_states = 1 + len(self.catalog)
        self.speed = apply_speed(pipe, self.speed_plan, lora_states=lora_states, backend=self.compile_backend)
        if self.speed.compiles:
            self._preload_loras(pipe)
        pipe.set_progress_bar_config(desc="denoising")  # the per-step bar in the server log
        log.info("loaded %s", source)
        return pipe

    def _place(self, pipe: StableDiffusion3Pipeline, mode: str) -> None:
        import torch

        if mode == "fp8":
            pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=self.dtype)
        if mode == "offload":
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)

    def release_memory(self) -> None:
        """Free what a failed call left: unreachable tensors (gc), then CUDA's cached blocks. Call it outside
        the ``except`` block (after :func:`drop_frames`), or the traceback still holds the activations."""
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _oom(self, mode: str, doing: str = "") -> OutOfMemory:
        self.release_memory()
        total = gpu_memory_gib(self.device)
        size = f" ({total:.0f} GiB)" if total else ""
        return OutOfMemory(f"the GPU{size} ran out of memory{doing} in memory mode '{mode}': "
                           f"{OOM_ADVICE.get(mode, OOM_ADVICE['offload'])}.")

    def oom_error(self, doing: str = "") -> OutOfMemory:
        """The error to raise after a CUDA OOM during generation (frees memory first): raise it outside the
        ``except`` block that caught the OOM. ``doing``: e.g. " loading the LoRA 'x'"."""
        return self._oom(self.memory_mode, doing)

    # -------------------------------------------------------------------------------------------- LoRA

    def use_loras(self, loras: tuple[tuple[str, float], ...] | list) -> None:
        """Make exactly ``loras`` (allowed names, with scales) active for the next pipeline call; none →
        every adapter off. Call with :attr:`lock` held, right before the call it is for: the adapters live in
        the shared modules (the Edit pipelines' too), so this per-call switch is what keeps one request's
        LoRA out of every other request's image."""
        pipe = self.get()
        with self.lock:
            for name, _ in loras:
                self._ensure_loaded(pipe, name)
            if not self._loaded_loras:
                return
            if not loras:
                pipe.disable_lora()
                return
            pipe.enable_lora()
            pipe.set_adapters([n for n, _ in loras], adapter_weights=[float(w) for _, w in loras])

    def _preload_loras(self, pipe: StableDiffusion3Pipeline) -> None:
        """Compile modes: load every allowed LoRA before the first compiled call, so the blocks' structure is
        final and each LoRA state compiles once (a later load would re-guard every graph). A LoRA that fails
        is logged and left for the request that names it (which then gets the one-line error)."""
        for name in self.catalog.names:
            try:
                self._ensure_loaded(pipe, name)
            except UserError as err:
                log.warning("LoRA %r not preloaded: %s", name, err)
        if self._loaded_loras:
            pipe.disable_lora()

    def _ensure_loaded(self, pipe: StableDiffusion3Pipeline, name: str) -> None:
        """Load the allowed LoRA ``name`` into the pipeline once (first request that names it)."""
        import torch

        if name in self._loaded_loras:
            return
        lora = self.catalog.get(name)
        oom = False
        try:
            pipe.load_lora_weights(lora.location, weight_name=lora.weight_name, adapter_name=name)
            if self.memory_mode == "fp8":
                self._lora_to_compute_dtype(pipe, name)
                # the first load stored the LoRA in float8 (peft follows the base weight's dtype): load its
                # transformer values again, in place, now that its layers are in the compute dtype. Only the
                # transformer: diffusers cannot hotswap text-encoder LoRAs, and those encoders are not cast.
                state_dict = pipe.lora_state_dict(lora.location, weight_name=lora.weight_name)
                pipe.load_lora_into_transformer(state_dict, transformer=pipe.transformer, adapter_name=name,
                                                _pipeline=pipe, hotswap=True)
        except torch.OutOfMemoryError as err:  # not "could not be loaded": the GPU is full, say so
            drop_frames(err)
            oom = True
        except Exception as err:  # no half-loaded adapter; the visitor sees the name only, the log the cause
            self._drop_adapter(pipe, name)
            log.error("LoRA %r (%s %s) failed to load: %s", name, lora.location, lora.weight_name or "", err)
            raise UserError(f"the LoRA {name!r} could not be loaded on this server (the server log says why); "
                            "choose another, or generate without one.") from None
        if oom:
            self._drop_adapter(pipe, name)
            raise self.oom_error(f" loading the LoRA {name!r}")
        self._loaded_loras.add(name)
        log.info("LoRA %r loaded", name)

    def _lora_to_compute_dtype(self, pipe: StableDiffusion3Pipeline, name: str) -> None:
        """fp8 layerwise casting stores base weights in float8; LoRA layers have no casting hook, so they must
        live in the compute dtype to run."""
        for module in pipe.transformer.modules():
            for attr in ("lora_A", "lora_B"):
                layers = getattr(module, attr, None)
                if layers is not None and name in layers:
                    layers[name].to(self.dtype)

    @staticmethod
    def _drop_adapter(pipe: StableDiffusion3Pipeline | None, name: str) -> None:
        if pipe is None:
            return
        try:
            pipe.delete_adapters(name)
        except Exception:  # nothing was loaded under that name
            pass
