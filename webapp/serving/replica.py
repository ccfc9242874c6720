"""What one Ray Serve replica runs: the single box's :class:`GenerationService` (and server-side parser) on the
replica's GPU — the pipeline calls only. Plain Python (no Ray import), so it is testable without Ray;
``webapp.serving.cluster`` wraps it in a deployment.

Messages are plain data (dicts, numpy arrays), so the front end needs nothing but the handle:

- ``generate(request, lora, lora_scale)`` streams ``{"type": "step", "done", "total"}`` items, then one
  ``{"type": "result", "images": [{"array", "seed", "parameters"}], ...}`` (uint8 RGB arrays: the front end
  writes the PNGs), or ``{"type": "error", "message"}`` for a user error (an unknown LoRA name among them);
- ``run_pipeline(kind, inputs, seeds, steps, loras)`` streams the same way for Edit's inpaint / img2img call
  (images in ``inputs`` arrive as arrays; the mask preparation and the composite stay on the front end);
- ``parse(png, dtype)`` returns the label map and how it ran;
- ``status()`` says what this replica serves (device, speed, why generation is off).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from face_studio.errors import UserError
from webapp.generation.params import GenerationRequest
from webapp.generation.run import ProgressFn
from webapp.generation.service import GenerationService
from webapp.settings import ServeSettings

log = logging.getLogger(__name__)

IMAGE_KEY = "__image__"  # an image in a message: {IMAGE_KEY: uint8 array, "mode": PIL mode}
# bench/serving.py --simulate-gpu-ms MS sets this for the replicas: the diffusers call (only it) becomes a sleep
SIMULATE_ENV = "FACE_STUDIO_SIMULATE_GPU_MS"


class SimulatedPipeline:
    """A SIMULATION for bench/serving.py: stands in for the diffusers pipeline call inside a replica — sleeps
    ``ms`` per call (as a GPU busy for that long would), reports each step, returns grey images of the asked
    size. The front end, queue, Ray handles, retries and PNG writing around it are the real ones."""

    def __init__(self, ms: float) -> None:
        self.ms = ms

    def __call__(self, *, width: int = 64, height: int = 64, num_inference_steps: int = 1, generator=None,
                 callback_on_step_end=None, **_: Any) -> Any:
        import time
        from types import SimpleNamespace

        from PIL import Image

        steps = max(1, int(num_inference_steps))
        for step in range(steps):
            time.sleep(self.ms / 1000 / steps)
            if callback_on_step_end is not None:
                callback_on_step_end(self, step, None, {})
        count = len(generator) if isinstance(generator, list) else 1
        return SimpleNamespace(images=[Image.new("RGB", (int(width), int(height)), (128, 128, 128))] * count)

    def maybe_free_model_hooks(self) -> None:
        pass


def pack_images(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with every PIL image as ``{IMAGE_KEY: array, "mode": mode}`` (plain data for Ray)."""
    from PIL import Image

    return {k: ({IMAGE_KEY: np.asarray(v), "mode": v.mode} if isinstance(v, Image.Image) else v)
            for k, v in inputs.items()}


def unpack_images(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`pack_images`."""
    from PIL import Image

    def image(v: dict[str, Any]) -> Image.Image:
        picture = Image.fromarray(v[IMAGE_KEY])
        return picture if picture.mode == v["mode"] else picture.convert(v["mode"])

    return {k: (image(v) if isinstance(v, dict) and IMAGE_KEY in v else v) for k, v in inputs.items()}


class StudioReplica:
    """One replica: loads the pipeline at start (so a replica is ready when Ray says it is) and serves
    generate / run_pipeline / parse / status."""

    def __init__(self, settings: ServeSettings, cpu_threads: int | None = None) -> None:
        if cpu_threads:
            import torch

            torch.set_num_threads(cpu_threads)  # CPU replicas share the machine's cores between them
        self.settings = replace(settings, ray=None)
        self.service = GenerationService(self.settings)
        simulate_ms = os.environ.get(SIMULATE_ENV)
        if simulate_ms:  # bench/serving.py only: the pipeline call is a sleep (labelled in every status)
            log.warning("SIMULATION: the diffusers call sleeps %s ms instead of running", simulate_ms)
            simulated = SimulatedPipeline(float(simulate_ms))
            self.service.owner.get = lambda: simulated  # type: ignore[method-assign]
        elif self.service.unavailable_reason is None:
            self.service.owner.get()
        self.simulate_ms = float(simulate_ms) if simulate_ms else None

    # -------------------------------------------------------------------------------------------- calls

    def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.service.status(), "simulated_gpu_ms": self.simulate_ms}

    def generate(self, request: dict[str, Any], lora: str | None = None,
                 lora_scale: float | None = None) -> Iterator[dict[str, Any]]:
        """Run one request (a :class:`GenerationRequest` as a dict, seed already fixed) with the LoRA named
        ``lora`` (one of this replica's ``--lora`` / ``--lora-dir``; None: none) through the service's own
        generate path (the batched queue with --max-batch); stream progress, then the images as arrays.
        Closing the stream (the caller cancelled) stops the job at its next step."""

        def work(progress: ProgressFn, cancel: threading.Event) -> dict[str, Any]:
            choice = self.service.choose_loras(lora, lora_scale)
            result = self.service.generate(replace(GenerationRequest(**request), loras=choice), progress=progress,
                                           cancel=cancel)
            images = [{"array": np.asarray(image.image.convert("RGB")), "seed": image.seed,
                       "parameters": asdict(image.parameters)} for image in result.images]
            return {"images": images, "seconds": result.seconds, "loras": [list(pair) for pair in choice]}

        return self._stream(work)

    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], steps: int,
                     loras: list[list[Any]] | None = None) -> Iterator[dict[str, Any]]:
        """One SD run on the pipeline of ``kind`` (Edit's inpaint / img2img call): stream progress, then the
        images as uint8 RGB arrays."""

        def work(progress: ProgressFn, cancel: threading.Event) -> dict[str, Any]:
            out = self.service.run_pipeline(kind, unpack_images(inputs), seeds, steps=steps,
                                            loras=tuple((name, scale) for name, scale in loras or ()),
                                            progress=progress, cancel=cancel)
            return {"images": [np.asarray(image.convert("RGB")) for image in out.images], "seconds": out.seconds}

        return self._stream(work)

    @staticmethod
    def _stream(work: Callable[[ProgressFn, threading.Event], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Run ``work`` on a thread; yield its steps, then its result (or its error) with the replica's pid."""
        items: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def run() -> None:
            try:
                result = work(lambda done, total: items.put({"type": "step", "done": done, "total": total}), cancel)
                items.put({"type": "result", "pid": os.getpid(), **result})
            except UserError as err:
                items.put({"type": "error", "message": str(err), "kind": type(err).__name__})
            except BaseException as err:  # reported to the caller, not lost in a thread
                log.exception("a replica call failed")
                items.put({"type": "failed", "message": f"{type(err).__name__}: {err}"})

        threading.Thread(target=run, name="replica-run", daemon=True).start()
        try:
            while True:
                item = items.get()
                yield item
                if item["type"] != "step":
                    return
        finally:
            cancel.set()  # a closed stream (cancelled request) stops the job; a finished one is unaffected

    def parse(self, png: bytes, dtype: str, provider: str = "auto") -> dict[str, Any]:
        """Parse one image (PNG bytes) with this replica's ONNX Runtime session (CUDA EP on a GPU replica)."""
        import io
        import time

        from PIL import Image

        from webapp.parsing import get_parser

        try:
            parser = get_parser(self.settings.parser_dir, dtype, provider=provider)
            start = time.perf_counter()
            providers = parser.providers  # loads the session on first use
            load_ms = (time.perf_counter() - start) * 1000
            result = parser.parse_batch([Image.open(io.BytesIO(png)).convert("RGB")])[0]
        except UserError as err:
            return {"error": str(err)}
        return {"labels": result.labels, "timings": result.timings, "providers": providers,
                "dtype": parser.dtype, "pid": os.getpid(), "load_ms": load_ms}
