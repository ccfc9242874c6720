"""What the Generate view's handlers (and the CLI, and the Edit feature) call: one service per server.

``GenerationService`` validates, runs the shared pipeline one job at a time, reports each denoising step,
stops at the next step when cancelled, and saves every image as a PNG carrying its parameters.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webapp.generation import presets as P
from webapp.generation.loras import LoraCatalog
from webapp.generation.params import GenerationRequest, ImageParameters, save_png, to_a1111, validate
from webapp.generation.pipeline import PipelineOwner, gpu_memory_gib
from webapp.generation.run import GenerationCancelled, LoraChoice, ProgressFn, RunOutput, run_sd
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline

log = logging.getLogger(__name__)

# Every Gradio event that runs an SD3 pipeline on the GPU (generate, the Edit view's inpaint / restyle)
# uses this concurrency id with concurrency_limit=1: one job at a time per GPU, the rest wait in the queue.
GPU_CONCURRENCY_ID = "gpu"

__all__ = ["GPU_CONCURRENCY_ID", "GenerationCancelled", "GenerationResult", "GenerationService", "ProgressFn",
           "get_service"]

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
        catalog = LoraCatalog.from_options(settings.loras, settings.lora_dirs)
        self.owner = PipelineOwner(settings.sd_model, device=settings.device, memory_mode=settings.memory_mode,
                                   preset=self.default_preset, catalog=catalog)
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
        loras = ", ".join(o.catalog.names) or "none allowed"
        mem = gpu_memory_gib(o.device)
        if mem is None:
            where = "**device** cpu (float32, chosen with --device cpu)"
            if o.memory_mode == "no-t5":
                where += " · **memory mode** no-t5"
        else:
            mode = o.memory_mode + (" (auto)" if o.requested_memory_mode == "auto" else "")
            where = (f"**device** {o.device} ({mem:.0f} GiB) · **memory mode** {mode} — "
                     f"{P.MEMORY_MODES.get(o.memory_mode, '')}")
        return f"**Model** `{o.source}` ({state}) · {where} · **LoRAs** {loras}"

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

    def run(self, pipe: Any, inputs: dict[str, Any], seeds: list[int], *, steps: int, loras: LoraChoice = (),
            progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> RunOutput:
        """The one SD run (:func:`webapp.generation.run.run_sd`) on this service's pipeline owner: Generate,
        inpaint and restyle all call this."""
        return run_sd(self.owner, pipe, inputs, seeds, steps=steps, loras=loras, progress=progress, cancel=cancel)

    def output_path(self, tag: str) -> Path:
        """A new file name in ``output_dir``: ``<date-time>-<counter>-<tag>.png`` (never an existing one)."""
        return self.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):04d}-{tag}.png"

    def generate(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run one validated request; images are saved under ``output_dir`` with their parameters."""
        # 1. Refuse early: no GPU, bad device, a LoRA name this server does not allow.
        self.owner.check_available()
        request = request.with_seed()
        for name, _ in request.loras:
            self.owner.catalog.get(name)
        # 2. Denoise, one job at a time; image i ← its own generator seeded seed + i, on the CPU, so a PNG's
        #    seed alone makes that image again, on any device.
        pipe = self.owner.get()
        log.info("generating %d × %dx%d, %s, %d steps, guidance %g, seed %d, LoRA %s", request.num_images,
                 request.width, request.height, request.preset, request.steps, request.guidance, request.seed,
                 request.loras or "none")
        inputs = dict(prompt=request.prompt, negative_prompt=request.negative_prompt,
                      num_inference_steps=request.steps, guidance_scale=request.guidance, width=request.width,
                      height=request.height, max_sequence_length=request.max_sequence_length,
                      skip_guidance_layers=list(request.skip_guidance_layers) or None)
        seeds = [request.image_seed(i) for i in range(request.num_images)]
        out = self.run(pipe, inputs, seeds, steps=request.steps, loras=request.loras, progress=progress,
                       cancel=cancel)
        # 3. Save each image with its own parameters.
        images = []
        for i, image in enumerate(out.images):
            params = ImageParameters.from_request(request, i, self.owner.source)
            path = save_png(image, self.output_path(str(params.seed)), params)
            images.append(GeneratedImage(path=path, seed=params.seed, parameters=params))
        return GenerationResult(images=images, request=request, seconds=out.seconds)

    def generate_from_inputs(self, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                             lora: str | None = None, lora_scale: float | None = None,
                             **inputs: Any) -> GenerationResult:
        """Validate raw inputs (as the API receives them) and generate; see :func:`params.validate`.
        ``lora``: the name of an allowed LoRA (None / "" / "(none)": none); ``lora_scale``: None = its
        operator-set scale."""
        self.owner.check_available()
        request = validate(**inputs)
        request = replace(request, loras=self.owner.catalog.choose(lora, lora_scale))
        return self.generate(request, progress=progress, cancel=cancel)

    @property
    def lora_names(self) -> list[str]:
        """The LoRAs requests may name (``serve --lora`` / ``--lora-dir``)."""
        return self.owner.catalog.names

    @property
    def preset(self) -> P.Preset:
        """The loaded model's preset: the steps and guidance Generate and Edit start from."""
        return P.PRESETS[self.default_preset]

    # ---------------------------------------------------------------------- sharing with other features

    def components(self) -> dict[str, Any]:
        """The loaded pipeline's modules (transformer, VAE, text encoders, tokenizers, scheduler), loading
        it if needed. Build another SD3 pipeline on the same weights — no second copy in memory::

            from diffusers import StableDiffusion3InpaintPipeline
            inpaint = StableDiffusion3InpaintPipeline(**service.components())

        Prefer :meth:`inpaint_pipeline` / :meth:`img2img_pipeline`, which also re-apply model CPU offload.
        Run them through :meth:`run` (the lock, the request's LoRAs, progress, cancel, OOM), with
        ``concurrency_id=GPU_CONCURRENCY_ID`` on the Gradio event.
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
           tuple(map(str, settings.lora_dirs)), str(settings.output_dir))
    with _SERVICES_LOCK:
        if key not in _SERVICES:
            _SERVICES[key] = GenerationService(settings)
        return _SERVICES[key]
