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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webapp.generation import presets as P
from webapp.generation.batching import BatchCollector, BatchJob, batch_key
from webapp.generation.jobs import CancelFlags
from webapp.generation.loras import LoraCatalog
from webapp.generation.params import GenerationRequest, ImageParameters, save_png, to_a1111, validate
from webapp.generation.pipeline import PipelineOwner, gpu_memory_gib
from webapp.generation.run import GenerationCancelled, LoraChoice, ProgressFn, RunOutput, run_sd, run_sd_batch
from webapp.generation.speed import COMPILING_STATUS
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline

log = logging.getLogger(__name__)

# Every Gradio event that runs an SD3 pipeline on the GPU (generate, the Edit view's inpaint / restyle)
# uses this concurrency id with concurrency_limit=1: one job at a time per GPU, the rest wait in the queue.
GPU_CONCURRENCY_ID = "gpu"
GENERATE_CONCURRENCY_ID = "generate"  # the batched queue's own slot (a shared id takes the lowest limit)
REPLICAS_CONCURRENCY_ID = "replicas"  # generate with --ray: replicas × max-batch at once (webapp.serving)
# Every lane of GPU work, for the queue's waiting limit (webapp.app.setup_queue).
GPU_LANE_IDS = (GPU_CONCURRENCY_ID, GENERATE_CONCURRENCY_ID, REPLICAS_CONCURRENCY_ID)

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


class GenerationService(CancelFlags):
    """One per server (see :func:`get_service`). Owns the :class:`PipelineOwner`, the output folder and the
    cancel flags of running jobs."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__()
        self.settings = settings
        self.default_preset = P.preset_for_model(settings.sd_model)
        catalog = LoraCatalog.from_options(settings.loras, settings.lora_dirs)
        self.owner = PipelineOwner(settings.sd_model, device=settings.device, memory_mode=settings.memory_mode,
                                   preset=self.default_preset, catalog=catalog, speed=settings.speed)
        # --max-batch > 1: concurrent requests that can share a pipeline call run as one (webapp.generation.batching)
        self.batcher = (BatchCollector(self._run_jobs, cancelled=GenerationCancelled, max_batch=settings.max_batch,
                                       max_images=P.MAX_IMAGES) if settings.max_batch > 1 else None)
        self.output_dir = Path(settings.output_dir)
        self._counter = itertools.count(1)
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
        plan = o.speed_plan
        notes = [n for n in (plan.note, o.speed.fallback_note() if o.speed else None) if n]
        speed = f" · **speed** {plan.mode}" + "".join(f" ({n})" for n in notes)
        return f"**Model** `{o.source}` ({state}) · {where}{speed} · **LoRAs** {loras}"

    # ------------------------------------------------------------------------------------ generation

    def run(self, pipe: Any, inputs: dict[str, Any], seeds: list[int], *, steps: int, loras: LoraChoice = (),
            progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> RunOutput:
        """The one SD run (:func:`webapp.generation.run.run_sd`) on this service's pipeline owner: Generate,
        inpaint and restyle all call this."""
        out = run_sd(self.owner, pipe, inputs, seeds, steps=steps, loras=loras, progress=progress, cancel=cancel)
        self._ran(inputs)
        return out

    def _ran(self, inputs: dict[str, Any]) -> None:
        """Tell the speed mode this size has run (compiled) on the shared transformer."""
        if self.owner.speed is not None and "height" in inputs and "width" in inputs:
            self.owner.speed.ran((inputs["height"], inputs["width"]))

    def output_path(self, tag: str) -> Path:
        """A new file name in ``output_dir``: ``<date-time>-<counter>-<tag>.png`` (never an existing one)."""
        return self.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):04d}-{tag}.png"

    def generate(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run one validated request; images are saved under ``output_dir`` with their parameters. With
        batching on (``--max-batch`` > 1), concurrent requests that can share a pipeline call run as one."""
        # 1. Refuse early: no GPU, bad device, a LoRA name this server does not allow, a job cancelled while
        #    it waited.
        self.owner.check_available()
        request = request.with_seed()
        for name, _ in request.loras:
            self.owner.catalog.get(name)
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("cancelled before it started.")
        if self.batcher is not None:
            return self.batcher.submit(request, progress=progress, cancel=cancel)
        return self._generate_one(request, progress=progress, cancel=cancel)

    @staticmethod
    def _inputs(request: GenerationRequest) -> dict[str, Any]:
        """The pipeline inputs of one image of ``request`` (prompts apart, shared by its batch)."""
        return dict(prompt=request.prompt, negative_prompt=request.negative_prompt,
                    num_inference_steps=request.steps, guidance_scale=request.guidance, width=request.width,
                    height=request.height, max_sequence_length=request.max_sequence_length,
                    skip_guidance_layers=list(request.skip_guidance_layers) or None)

    def _generate_one(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None) -> GenerationResult:
        """One request through :func:`run_sd`: one pipeline call per image, each bit-identical to its seed
        run alone."""
        # 2. Denoise, one job at a time; image i ← its own generator seeded seed + i, on the CPU, so a PNG's
        #    seed alone makes that image again, on any device.
        pipe = self.owner.get()
        log.info("generating %d × %dx%d, %s, %d steps, guidance %g, seed %d, LoRA %s", request.num_images,
                 request.width, request.height, request.preset, request.steps, request.guidance, request.seed,
                 request.loras or "none")
        seeds = [request.image_seed(i) for i in range(request.num_images)]
        out = self.run(pipe, self._inputs(request), seeds, steps=request.steps, loras=request.loras,
                       progress=progress, cancel=cancel)
        return self._save([request], out)[0]

    def _save(self, requests: list[GenerationRequest], out: RunOutput) -> list[GenerationResult]:
        """3. Save each image with its own parameters; one result per request, in order."""
        results, images_left = [], iter(out.images)
        for request in requests:
            images = []
            for i in range(request.num_images):
                params = ImageParameters.from_request(request, i, self.owner.source)
                path = save_png(next(images_left), self.output_path(str(params.seed)), params)
                images.append(GeneratedImage(path=path, seed=params.seed, parameters=params))
            results.append(GenerationResult(images=images, request=request, seconds=out.seconds))
        return results

    def _run_jobs(self, jobs: list[BatchJob], on_step: ProgressFn, should_stop: Callable[[], bool]) -> list:
        if len(jobs) == 1:  # a lone request runs as without batching: bit-identical, cancel at each step
            job = jobs[0]
            return [self._generate_one(job.request, progress=on_step, cancel=job.cancel)]
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
        """The batched form of :meth:`generate`: requests with concrete seeds that share
        :func:`batching.batch_key` (LoRA choice included) run as ONE pipeline call through
        :func:`run.run_sd_batch` (the same GPU lock, LoRA switch, OOM advice), each with its own prompts and
        one CPU generator per image; one result per request, in order."""
        first = requests[0]
        if any(batch_key(r) != batch_key(first) for r in requests):
            raise ValueError("run_batch needs requests with the same size, steps, guidance, preset, T5 length "
                             "and LoRA choice")
        pipe = self.owner.get()
        inputs = self._inputs(first)
        inputs["prompt"] = [r.prompt for r in requests for _ in range(r.num_images)]
        inputs["negative_prompt"] = [r.negative_prompt for r in requests for _ in range(r.num_images)]
        seeds = [r.image_seed(i) for r in requests for i in range(r.num_images)]
        log.info("generating %d × %dx%d (%d requests, one call), %s, %d steps, guidance %g, seeds %s, LoRA %s",
                 len(seeds), first.width, first.height, len(requests), first.preset, first.steps, first.guidance,
                 ", ".join(str(r.seed) for r in requests), first.loras or "none")
        out = run_sd_batch(self.owner, pipe, inputs, seeds, steps=first.steps, loras=first.loras,
                           progress=progress, should_stop=should_stop)
        self._ran(inputs)
        return self._save(requests, out)

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
           tuple(map(str, settings.lora_dirs)), str(settings.output_dir), settings.speed, settings.max_batch)
    with _SERVICES_LOCK:
        if key not in _SERVICES:
            _SERVICES[key] = GenerationService(settings)
        return _SERVICES[key]
