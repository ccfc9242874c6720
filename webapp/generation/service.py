"""The local SD3 service: one loaded pipeline behind a lock, run for Generate and Edit. No Gradio, no files.

``GenerationService`` validates LoRA choices, runs the shared pipeline one job at a time (or batched), reports
each denoising step, stops at the next step when cancelled, and returns the images in memory with their
parameters. Whoever serves it (``webapp.backend``: the single box's front end, or a Ray Serve replica) names
the files and writes the PNGs, once.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webapp.generation import presets as P
from webapp.generation.batching import BatchCollector, BatchJob, batch_key
from webapp.generation.loras import LoraCatalog
from webapp.generation.params import GenerationRequest, ImageParameters, to_a1111
from webapp.generation.pipeline import PipelineOwner, gpu_memory_gib
from webapp.generation.run import GenerationCancelled, LoraChoice, ProgressFn, RunOutput, run_sd, run_sd_batch
from webapp.generation.speed import COMPILING_STATUS
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# The pipelines a run can use, by kind: text-to-image (the loaded one) and two built on its modules.
PIPELINE_KINDS = ("text2img", "inpaint", "img2img")

__all__ = ["PIPELINE_KINDS", "GenerationCancelled", "GenerationResult", "GenerationService", "ProgressFn",
           "loaded_pipelines"]

_LIVE: weakref.WeakSet[GenerationService] = weakref.WeakSet()


def loaded_pipelines() -> int:
    """How many SD pipelines this process holds loaded (every live :class:`GenerationService`; derived
    inpaint / img2img pipelines share their modules and are not counted)."""
    return sum(1 for service in list(_LIVE) if service.owner.loaded)


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    seed: int
    parameters: ImageParameters
    path: Path | None = None  # set once the front end has saved it


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
    """Owns the :class:`PipelineOwner` (one loaded pipeline, its lock, its LoRAs) and the batched queue."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.default_preset = P.preset_for_model(settings.sd_model)
        catalog = LoraCatalog.from_options(settings.loras, settings.lora_dirs)
        self.owner = PipelineOwner(settings.sd_model, device=settings.device, memory_mode=settings.memory_mode,
                                   preset=self.default_preset, catalog=catalog, speed=settings.speed)
        # --max-batch > 1: concurrent requests that can share a pipeline call run as one (webapp.generation.batching)
        self.batcher = (BatchCollector(self._run_jobs, cancelled=GenerationCancelled, max_batch=settings.max_batch,
                                       max_images=P.MAX_IMAGES) if settings.max_batch > 1 else None)
        self._derived: dict[str, Any] = {}
        _LIVE.add(self)

    # ---------------------------------------------------------------------------------------- status

    @property
    def unavailable_reason(self) -> str | None:
        """Why generation cannot run on this server (no GPU, bad device/memory mode), or None."""
        return self.owner.unavailable

    def check_available(self) -> None:
        self.owner.check_available()

    @property
    def model(self) -> str:
        """The model as recorded in PNGs (hub id or folder)."""
        return self.owner.source

    def status(self) -> dict[str, Any]:
        """What this service serves, as data (the views render it; Ray replicas send it to the front end)."""
        o = self.owner
        plan = o.speed_plan
        notes = [n for n in (plan.note, o.speed.fallback_note() if o.speed else None) if n]
        memory_mode = None if o.unavailable else o.memory_mode
        return {"model": o.source, "loaded": o.loaded, "device": o.device, "gpu_gib": gpu_memory_gib(o.device),
                "memory_mode": memory_mode, "memory_mode_auto": o.requested_memory_mode == "auto",
                "speed": plan.mode, "speed_note": "; ".join(notes) or None, "loras": list(o.catalog.names),
                "unavailable": o.unavailable}

    # ------------------------------------------------------------------------------------ generation

    def run(self, pipe: Any, inputs: dict[str, Any], seeds: list[int], *, steps: int, loras: LoraChoice = (),
            progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> RunOutput:
        """The one SD run (:func:`webapp.generation.run.run_sd`) on this service's pipeline owner."""
        out = run_sd(self.owner, pipe, inputs, seeds, steps=steps, loras=loras, progress=progress, cancel=cancel)
        self._ran(inputs)
        return out

    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], *, steps: int,
                     loras: LoraChoice = (), progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> RunOutput:
        """:meth:`run` on the pipeline of ``kind`` (one of :data:`PIPELINE_KINDS`): what Edit's inpaint and
        restyle call, here or on a Ray replica."""
        return self.run(self.pipeline(kind), inputs, seeds, steps=steps, loras=loras, progress=progress,
                        cancel=cancel)

    def _ran(self, inputs: dict[str, Any]) -> None:
        """Tell the speed mode this size has run (compiled) on the shared transformer."""
        if self.owner.speed is not None and "height" in inputs and "width" in inputs:
            self.owner.speed.ran((inputs["height"], inputs["width"]))

    def choose_loras(self, lora: str | None, lora_scale: float | None) -> tuple[tuple[str, float], ...]:
        """The request's LoRA choice from a name this server allows (None / "" / "(none)": none)."""
        return tuple(self.owner.catalog.choose(lora, lora_scale))

    def generate(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run one validated request; the images come back in memory with their parameters. With batching on
        (``--max-batch`` > 1), concurrent requests that can share a pipeline call run as one."""
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
        return self._results([request], out)[0]

    def _results(self, requests: list[GenerationRequest], out: RunOutput) -> list[GenerationResult]:
        """3. Each image with its own parameters; one result per request, in order."""
        results, images_left = [], iter(out.images)
        for request in requests:
            images = []
            for i in range(request.num_images):
                params = ImageParameters.from_request(request, i, self.owner.source)
                images.append(GeneratedImage(image=next(images_left), seed=params.seed, parameters=params))
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
        return self._results(requests, out)

    @property
    def lora_names(self) -> list[str]:
        """The LoRAs requests may name (``serve --lora`` / ``--lora-dir``)."""
        return self.owner.catalog.names

    @property
    def preset(self) -> P.Preset:
        """The loaded model's preset: the steps and guidance Generate and Edit start from."""
        return P.PRESETS[self.default_preset]

    # ---------------------------------------------------------------------- pipelines on the same modules

    def pipeline(self, kind: str) -> Any:
        """The pipeline of ``kind``: the loaded text-to-image one, or an inpaint / img2img pipeline built once
        on its modules (no second copy in memory; model CPU offload re-applied)."""
        if kind == "text2img":
            return self.owner.get()
        if kind not in PIPELINE_KINDS:
            raise ValueError(f"unknown pipeline kind {kind!r}: one of {', '.join(PIPELINE_KINDS)}")
        from diffusers import StableDiffusion3Img2ImgPipeline, StableDiffusion3InpaintPipeline

        cls = StableDiffusion3InpaintPipeline if kind == "inpaint" else StableDiffusion3Img2ImgPipeline
        with self.owner.lock:
            if kind not in self._derived:
                pipe = cls(**self.owner.get().components)
                if self.owner.memory_mode == "offload":
                    pipe.enable_model_cpu_offload(device=self.owner.device)
                pipe.set_progress_bar_config(desc=kind)
                self._derived[kind] = pipe
            return self._derived[kind]
