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
from webapp.generation.batching import BatchCollector, BatchJob, batch_key
from webapp.generation.params import GenerationRequest, ImageParameters, save_png, to_a1111, validate
from webapp.generation.pipeline import LoadedLora, PipelineOwner, gpu_memory_gib
from webapp.generation.speed import COMPILING_STATUS
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline

log = logging.getLogger(__name__)

# Every Gradio event that runs an SD3 pipeline on the GPU (generate, LoRA changes, the Edit view's inpaint)
# uses this concurrency id with concurrency_limit=1: one job at a time per GPU, the rest wait in the queue.
GPU_CONCURRENCY_ID = "gpu"
GENERATE_CONCURRENCY_ID = "generate"  # the batched queue's own slot (a shared id takes the lowest limit)
REPLICAS_CONCURRENCY_ID = "replicas"  # generate with --ray: replicas × max-batch at once (webapp.serving)
# Every lane of GPU work, for the queue's waiting limit (webapp.app.setup_queue).
GPU_LANE_IDS = (GPU_CONCURRENCY_ID, GENERATE_CONCURRENCY_ID, REPLICAS_CONCURRENCY_ID)

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
                                   preset=self.default_preset, loras=settings.loras, speed=settings.speed)
        # --max-batch > 1: concurrent requests that can share a pipeline call run as one (webapp.generation.batching)
        self.batcher = (BatchCollector(self._run_jobs, cancelled=GenerationCancelled, max_batch=settings.max_batch,
                                       max_images=P.MAX_IMAGES) if settings.max_batch > 1 else None)
        self.output_dir = Path(settings.output_dir)
        self._counter = itertools.count(1)
        self._cancel: dict[str, threading.Event] = {}
        self._derived: dict[str, Any] = {}

    # ---------------------------------------------------------------------------------------- status

    @property
    def generate_concurrency(self) -> tuple[str, int]:
        """(Gradio concurrency id, limit) for the generate event: the shared GPU slot (1) without batching;
        with it, its own id and room for a full batch (the GPU lock still runs one pipeline call at a time)."""
        if self.batcher is None:
            return GPU_CONCURRENCY_ID, 1
        return GENERATE_CONCURRENCY_ID, self.batcher.max_batch

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
        plan = o.speed_plan
        speed = f" · **speed** {plan.mode}" + (f" ({plan.note})" if plan.note else "")
        return f"**Model** `{o.source}` ({state}) · {where}{speed} · **LoRA** {loras}"

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
        """Run one validated request; images are saved under ``output_dir`` with their parameters. With
        batching on (``--max-batch`` > 1), concurrent requests that can share a pipeline call run as one."""
        # 1. Refuse early: no GPU, bad device, a job cancelled while it waited.
        self.owner.check_available()
        request = request.with_seed()
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("cancelled before it started.")
        if self.batcher is not None:
            return self.batcher.submit(request, progress=progress, cancel=cancel)
        return self.run_batch([request], progress=progress,
                              should_stop=(lambda: cancel.is_set()) if cancel is not None else None)[0]

    def _run_jobs(self, jobs: list[BatchJob], on_step: ProgressFn, should_stop: Callable[[], bool]) -> list:
        return self.run_batch([job.request for job in jobs], progress=on_step, should_stop=should_stop)

    def speed_status(self, width: Any, height: Any) -> str | None:
        """"compiling (one time)…" when the next run at this size will compile (compile / fp8 modes), else None."""
        speed = self.owner.speed
        if speed is None:
            return None if self.owner.speed_plan.mode == "eager" else COMPILING_STATUS
        try:
            return speed.compile_status((int(height), int(width)))
        except (TypeError, ValueError):
            return None

    def run_batch(self, requests: list[GenerationRequest], *, progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None) -> list[GenerationResult]:
        """Run requests with concrete seeds that share :func:`batching.batch_key` as ONE pipeline call: each
        with its own prompts and one CPU generator per image; one result per request, in order."""
        import torch

        first = requests[0]
        if any(batch_key(r) != batch_key(first) for r in requests):
            raise ValueError("run_batch needs requests with the same size, steps, guidance, preset and T5 length")
        # 2. The pipeline (loads on first use) and one CPU generator per image: image i ← seed + i, the same
        #    on any device, so a PNG's seed alone makes that image again.
        pipe = self.owner.get()
        prompts, negatives, generators = [], [], []
        for r in requests:
            for i in range(r.num_images):
                prompts.append(r.prompt)
                negatives.append(r.negative_prompt)
                generators.append(torch.Generator("cpu").manual_seed(r.image_seed(i)))

        def on_step(_pipe, step: int, _t, _tensors: dict) -> dict:
            if should_stop is not None and should_stop():
                raise GenerationCancelled(f"cancelled after step {step + 1} of {first.steps}.")
            if progress is not None:
                progress(step + 1, first.steps)
            return {}

        # 3. Denoise, one job at a time.
        log.info("generating %d × %dx%d (%d request(s)), %s, %d steps, guidance %g, seeds %s", len(prompts),
                 first.width, first.height, len(requests), first.preset, first.steps, first.guidance,
                 ", ".join(str(r.seed) for r in requests))
        start = time.perf_counter()
        with self.owner.lock:
            try:
                output = pipe(
                    prompt=prompts,
                    negative_prompt=negatives,
                    num_inference_steps=first.steps,
                    guidance_scale=first.guidance,
                    width=first.width,
                    height=first.height,
                    num_images_per_prompt=1,
                    generator=generators,
                    max_sequence_length=first.max_sequence_length,
                    skip_guidance_layers=list(first.skip_guidance_layers) or None,
                    callback_on_step_end=on_step,
                    output_type="pil",
                )
            except torch.OutOfMemoryError:
                raise self.owner.oom_error() from None
            finally:
                pipe.maybe_free_model_hooks()  # offload mode: put models back even after an error
            if self.owner.speed is not None:
                self.owner.speed.ran((first.height, first.width))
        seconds = time.perf_counter() - start
        # 4. Save each image with its own parameters.
        loras = [(lo.name, lo.scale) for lo in self.owner.loras]
        results, images_left = [], iter(output.images)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for request in requests:
            images = []
            for i in range(request.num_images):
                params = ImageParameters.from_request(request, i, self.owner.source, loras)
                path = self.output_dir / f"{stamp}-{next(self._counter):04d}-{params.seed}.png"
                images.append(GeneratedImage(path=save_png(next(images_left), path, params), seed=params.seed,
                                             parameters=params))
            results.append(GenerationResult(images=images, request=request, seconds=seconds))
        log.info("generated %d image(s) in %.1f s", len(prompts), seconds)
        return results

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
           str(settings.output_dir), settings.speed, settings.max_batch)
    with _SERVICES_LOCK:
        if key not in _SERVICES:
            _SERVICES[key] = GenerationService(settings)
        return _SERVICES[key]
