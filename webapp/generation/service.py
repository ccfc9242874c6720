"""What the Generate view's handlers (and the CLI, and the Edit feature) call: one service per server.

``GenerationService`` validates, runs the shared pipeline one job at a time, reports each denoising step,
stops at the next step when cancelled, and saves every image as a PNG carrying its parameters.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from face_studio.errors import UserError
from webapp.generation import presets as P
from webapp.generation.params import GenerationRequest, ImageParameters, save_png, to_a1111, validate
from webapp.generation.pipeline import LoadedLora, PipelineOwner, gpu_memory_gib
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline

log = logging.getLogger(__name__)

# Every Gradio event that runs an SD3 pipeline on the GPU (generate, LoRA changes, the Edit view's inpaint)
# uses this concurrency id with concurrency_limit=1: one job at a time per GPU, the rest wait in the queue.
GPU_CONCURRENCY_ID = "gpu"

ProgressFn = Callable[[int, int], None]  # (steps done, total steps)


class GenerationCancelled(UserError):
    """The user pressed Cancel; the job stopped at the next denoising step."""


@dataclass(frozen=True)
class GeneratedImage:
    path: Path
    seed: int
    parameters: ImageParameters


@dataclass(frozen=True)
class GenerationResult:
    images: list[GeneratedImage]
    request: GenerationRequest  # with the seed actually used
    seconds: float

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def parameters_text(self) -> str:
        return to_a1111(self.images[0].parameters) if self.images else ""


class GenerationService:
    """One per server (see :func:`get_service`). Owns the :class:`PipelineOwner`, the output folder and the
    cancel flags of running jobs."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.default_preset = P.preset_for_model(settings.sd_model)
        self.owner = PipelineOwner(settings.sd_model, device=settings.device, memory_mode=settings.memory_mode,
                                   preset=self.default_preset, loras=settings.loras)
        self.output_dir = Path(settings.output_dir)
        self._counter = itertools.count(1)
        self._cancel: dict[str, threading.Event] = {}
        self._derived: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------------- status

    @property
    def unavailable_reason(self) -> str | None:
        """Why generation cannot run on this server (no GPU, bad device/memory mode), or None."""
        return self.owner.unavailable

    def status_markdown(self) -> str:
        """One line for the page: model, device, memory mode, LoRAs."""
        o = self.owner
        if o.unavailable:
            return f"**Model** `{o.source}` · not loaded: generation is off on this server (why: above)."
        state = "loaded" if o.loaded else "loads on first use"
        loras = ", ".join(f"{lo.name} ×{lo.scale:g}" for lo in o.loras) or "none"
        mem = gpu_memory_gib(o.device)
        if mem is None:
            where = "**device** cpu (float32, chosen with --device cpu)"
            if o.memory_mode == "no-t5":
                where += " · **memory mode** no-t5"
        else:
            mode = o.memory_mode + (" (auto)" if o.requested_memory_mode == "auto" else "")
            where = (f"**device** {o.device} ({mem:.0f} GiB) · **memory mode** {mode} — "
                     f"{P.MEMORY_MODES.get(o.memory_mode, '')}")
        return f"**Model** `{o.source}` ({state}) · {where} · **LoRA** {loras}"

    # ------------------------------------------------------------------------------------ generation

    def begin_job(self, key: str) -> threading.Event:
        """A fresh cancel flag for the job of ``key`` (a browser session)."""
        event = threading.Event()
        self._cancel[key] = event
        return event

    def cancel(self, key: str) -> bool:
        """Ask the job of ``key`` to stop at its next step; False when it has none running."""
        event = self._cancel.get(key)
        if event is None:
            return False
        event.set()
        return True

    def end_job(self, key: str, event: threading.Event) -> None:
        if self._cancel.get(key) is event:
            del self._cancel[key]

    def generate(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run one validated request; images are saved under ``output_dir`` with their parameters."""
        import torch

        # 1. Refuse early: no GPU, bad device, a job cancelled while it waited.
        self.owner.check_available()
        request = request.with_seed()
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("cancelled before it started.")
        # 2. The pipeline (loads on first use) and one CPU generator per image: image i ← seed + i, the same
        #    on any device, so a PNG's seed alone makes that image again.
        pipe = self.owner.get()
        generators = [torch.Generator("cpu").manual_seed(request.image_seed(i)) for i in range(request.num_images)]

        def on_step(_pipe, step: int, _t, _tensors: dict) -> dict:
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled(f"cancelled after step {step + 1} of {request.steps}.")
            if progress is not None:
                progress(step + 1, request.steps)
            return {}

        # 3. Denoise, one job at a time.
        log.info("generating %d × %dx%d, %s, %d steps, guidance %g, seed %d", request.num_images, request.width,
                 request.height, request.preset, request.steps, request.guidance, request.seed)
        start = time.perf_counter()
        with self.owner.lock:
            try:
                output = pipe(
                    prompt=request.prompt,
                    negative_prompt=request.negative_prompt,
                    num_inference_steps=request.steps,
                    guidance_scale=request.guidance,
                    width=request.width,
                    height=request.height,
                    num_images_per_prompt=request.num_images,
                    generator=generators,
                    max_sequence_length=request.max_sequence_length,
                    skip_guidance_layers=list(request.skip_guidance_layers) or None,
                    callback_on_step_end=on_step,
                    output_type="pil",
                )
            except torch.OutOfMemoryError:
                raise self.owner.oom_error() from None
            finally:
                pipe.maybe_free_model_hooks()  # offload mode: put models back even after an error
        seconds = time.perf_counter() - start
        # 4. Save each image with its own parameters.
        loras = [(lo.name, lo.scale) for lo in self.owner.loras]
        images = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i, image in enumerate(output.images):
            params = ImageParameters.from_request(request, i, self.owner.source, loras)
            path = self.output_dir / f"{stamp}-{next(self._counter):04d}-{params.seed}.png"
            images.append(GeneratedImage(path=save_png(image, path, params), seed=params.seed, parameters=params))
        log.info("generated %d image(s) in %.1f s", len(images), seconds)
        return GenerationResult(images=images, request=request, seconds=seconds)

    def generate_from_inputs(self, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                             **inputs: Any) -> GenerationResult:
        """Validate raw inputs (as the API receives them) and generate; see :func:`params.validate`."""
        self.owner.check_available()
        return self.generate(validate(**inputs), progress=progress, cancel=cancel)

    # ------------------------------------------------------------------------------------------- LoRA

    def load_lora(self, spec: str, scale: float = 1.0) -> LoadedLora:
        self.owner.check_available()
        return self.owner.load_lora(spec, scale)

    def unload_lora(self, name: str | None = None) -> list[LoadedLora]:
        return self.owner.unload_lora(name)

    @property
    def loras(self) -> list[LoadedLora]:
        return self.owner.loras

    # ---------------------------------------------------------------------- sharing with other features

    def components(self) -> dict[str, Any]:
        """The loaded pipeline's modules (transformer, VAE, text encoders, tokenizers, scheduler), loading
        it if needed. Build another SD3 pipeline on the same weights — no second copy in memory::

            from diffusers import StableDiffusion3InpaintPipeline
            inpaint = StableDiffusion3InpaintPipeline(**service.components())

        Prefer :meth:`inpaint_pipeline` / :meth:`img2img_pipeline`, which also re-apply model CPU offload.
        Loaded LoRAs live in the shared transformer, so they apply to those pipelines too. Run them inside
        ``with service.owner.lock:`` (and with ``concurrency_id=GPU_CONCURRENCY_ID`` on the Gradio event),
        so they never run at the same time as a generation.
        """
        return dict(self.owner.get().components)

    def inpaint_pipeline(self) -> StableDiffusion3InpaintPipeline:
        """A ``StableDiffusion3InpaintPipeline`` sharing the loaded modules (built once)."""
        from diffusers import StableDiffusion3InpaintPipeline

        return self._derived_pipeline("inpaint", StableDiffusion3InpaintPipeline)

    def img2img_pipeline(self) -> StableDiffusion3Img2ImgPipeline:
        """A ``StableDiffusion3Img2ImgPipeline`` sharing the loaded modules (built once)."""
        from diffusers import StableDiffusion3Img2ImgPipeline

        return self._derived_pipeline("img2img", StableDiffusion3Img2ImgPipeline)

    def _derived_pipeline(self, kind: str, cls: type) -> Any:
        with self.owner.lock:
            if kind not in self._derived:
                pipe = cls(**self.components())
                if self.owner.memory_mode == "offload":
                    pipe.enable_model_cpu_offload(device=self.owner.device)
                pipe.set_progress_bar_config(desc=kind)
                self._derived[kind] = pipe
            return self._derived[kind]


_SERVICES: dict[tuple, GenerationService] = {}
_SERVICES_LOCK = threading.Lock()


def get_service(settings: ServeSettings) -> GenerationService:
    """The service for these settings (one per model/device/memory mode/LoRAs/output folder in a process),
    so the Generate and Edit views share one loaded pipeline."""
    key = (settings.sd_model, settings.device, settings.memory_mode, tuple(settings.loras),
           str(settings.output_dir))
    with _SERVICES_LOCK:
        if key not in _SERVICES:
            _SERVICES[key] = GenerationService(settings)
        return _SERVICES[key]
