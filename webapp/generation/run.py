"""The one SD run: every pipeline call of Generate and Edit (text-to-image, inpaint, img2img) goes through
:func:`run_sd` — one job at a time on the GPU lock, the request's LoRAs switched on for its calls only, a
progress report and a cancel check after every denoising step, CUDA out-of-memory turned into advice.

Wrap this function (a speed mode, a batched queue, a Ray Serve replica) rather than writing another run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from face_studio.errors import UserError

if TYPE_CHECKING:
    from PIL import Image

    from webapp.generation.pipeline import PipelineOwner

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (steps done, total steps) over the whole run
LoraChoice = Sequence[tuple[str, float]]  # ((allowed LoRA name, scale), ...); empty = none
# Keys run_sd sets itself; a caller passing them in ``inputs`` is a bug.
RESERVED_INPUTS = frozenset({"generator", "num_images_per_prompt", "callback_on_step_end", "output_type"})


class GenerationCancelled(UserError):
    """The user pressed Cancel; the job stopped at the next denoising step."""


@dataclass(frozen=True)
class RunOutput:
    images: list[Image.Image]  # one per seed, in the seeds' order
    seconds: float  # time on the GPU lock


def _check_inputs(inputs: Mapping[str, Any], caller: str) -> None:
    if RESERVED_INPUTS & set(inputs):
        raise ValueError(f"{caller} sets {sorted(RESERVED_INPUTS & set(inputs))} itself")


@contextmanager
def _on_gpu(owner: PipelineOwner, pipe: Any, loras: LoraChoice) -> Iterator[Callable[[], float]]:
    """The part every run shares: the GPU lock, the request's LoRAs switched on, the offload hooks released
    even after an error. Yields a clock: seconds since the lock was taken. CUDA OOM is turned into advice by
    :func:`_oom_as_advice` around it (outside, so the failed call's tensors are freed first)."""
    with owner.lock:
        start = time.perf_counter()
        try:
            owner.use_loras(tuple(loras))
            yield lambda: time.perf_counter() - start
        finally:
            pipe.maybe_free_model_hooks()  # offload mode: put models back even after an error


def _oom_as_advice(owner: PipelineOwner, work: Callable[[], RunOutput]) -> RunOutput:
    """Run ``work``; a CUDA out-of-memory error becomes :class:`~webapp.generation.pipeline.OutOfMemory` with
    the memory mode to try. The cache is emptied only after the ``except`` block is left and the traceback's
    frames are cleared: inside it, the traceback still holds the failed call's activations."""
    import torch

    from webapp.generation.pipeline import drop_frames

    try:
        return work()
    except torch.OutOfMemoryError as err:
        drop_frames(err)
    raise owner.oom_error()  # only reached after an OOM, with the except block (and its traceback) left


def run_sd(owner: PipelineOwner, pipe: Any, inputs: Mapping[str, Any], seeds: Sequence[int], *, steps: int,
           loras: LoraChoice = (), progress: ProgressFn | None = None,
           cancel: threading.Event | None = None) -> RunOutput:
    """Make one image per seed with ``pipe(**inputs)``.

    - ``owner``: the :class:`~webapp.generation.pipeline.PipelineOwner` whose lock, LoRAs and memory mode
      apply; ``pipe``: its pipeline or one built on its modules (``service.inpaint_pipeline()``, …).
    - ``inputs``: the pipeline's keyword arguments for ONE image (prompt, size, num_inference_steps,
      guidance_scale, strength, image, …), without those in :data:`RESERVED_INPUTS`.
    - ``seeds``: image *i* comes from its own call with ``torch.Generator("cpu").manual_seed(seeds[i])``,
      so it is bit-identical to a run of that seed alone (a batched call differs in the last bit).
    - ``steps``: the denoising steps one call runs (img2img / inpaint: fewer than num_inference_steps).
    - ``loras``: allowed names with scales, active for these calls only; every other call runs without them.
    - ``progress(done, total)``: after each step, ``total = steps × len(seeds)``.
    - ``cancel``: when set, :class:`GenerationCancelled` at the next step; nothing is returned.

    Raises :class:`GenerationCancelled`, :class:`~webapp.generation.pipeline.OutOfMemory` (with the memory
    mode to try) or a ``UserError`` (an unknown or unloadable LoRA).
    """
    import torch

    _check_inputs(inputs, "run_sd")
    total = steps * len(seeds)
    done = 0

    def check_cancel(where: str) -> None:
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled(f"cancelled {where}.")

    def on_step(_pipe: Any, step: int, _t: Any, _tensors: dict) -> dict:
        nonlocal done
        done += 1
        check_cancel(f"after step {done} of {total}")
        if progress is not None:
            progress(done, total)
        return {}

    check_cancel("before it started")

    def work() -> RunOutput:
        images = []
        with _on_gpu(owner, pipe, loras) as elapsed:
            for seed in seeds:
                check_cancel(f"after step {done} of {total}")
                output = pipe(**inputs, num_images_per_prompt=1,
                              generator=torch.Generator("cpu").manual_seed(int(seed)),
                              callback_on_step_end=on_step, output_type="pil")
                images.append(output.images[0])
        return RunOutput(images=images, seconds=elapsed())  # the lock time, the hooks' release included

    out = _oom_as_advice(owner, work)
    log.info("made %d image(s) in %.1f s", len(out.images), out.seconds)
    return out


def run_sd_batch(owner: PipelineOwner, pipe: Any, inputs: Mapping[str, Any], seeds: Sequence[int], *, steps: int,
                 loras: LoraChoice = (), progress: ProgressFn | None = None,
                 should_stop: Callable[[], bool] | None = None) -> RunOutput:
    """The batched form of :func:`run_sd` (``serve --max-batch``): ONE pipeline call makes ``len(seeds)``
    images, for throughput; the same GPU lock, LoRA switch, out-of-memory advice and model-hook release.

    - ``inputs``: as for :func:`run_sd`, except that ``prompt`` and ``negative_prompt`` are lists, one entry
      per seed (several requests' prompts side by side); every other input is shared by the whole batch.
    - ``seeds``: image *i* gets its own ``torch.Generator("cpu").manual_seed(seeds[i])``; batched math differs
      from a lone run of that seed in the last bits (see :mod:`webapp.generation.batching`).
    - ``loras``: one choice for the whole batch (the batch key keeps different choices apart).
    - ``progress(done, steps)``: after each step of the one call.
    - ``should_stop()``: True → :class:`GenerationCancelled` at the next step (the batch's callers all cancelled).
    """
    import torch

    _check_inputs(inputs, "run_sd_batch")
    for key in ("prompt", "negative_prompt"):
        if not isinstance(inputs.get(key), list) or len(inputs[key]) != len(seeds):
            raise ValueError(f"run_sd_batch needs {key!r} as a list of one entry per seed ({len(seeds)})")

    def on_step(_pipe: Any, step: int, _t: Any, _tensors: dict) -> dict:
        if should_stop is not None and should_stop():
            raise GenerationCancelled(f"cancelled after step {step + 1} of {steps}.")
        if progress is not None:
            progress(step + 1, steps)
        return {}

    if should_stop is not None and should_stop():
        raise GenerationCancelled("cancelled before it started.")

    def work() -> RunOutput:
        with _on_gpu(owner, pipe, loras) as elapsed:
            output = pipe(**inputs, num_images_per_prompt=1,
                          generator=[torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds],
                          callback_on_step_end=on_step, output_type="pil")
        return RunOutput(images=list(output.images), seconds=elapsed())

    out = _oom_as_advice(owner, work)
    log.info("made %d image(s) in one batched call in %.1f s", len(out.images), out.seconds)
    return out
