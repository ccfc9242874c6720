"""The batched queue: concurrent generate requests that can share one pipeline call run as one batch.

A :class:`BatchCollector` sits in front of the service's run. Each caller's thread submits its request and
waits; the caller of the oldest waiting request leads: it takes its request and every other waiting one with the
same :func:`batch_key` (size, steps, guidance, preset, T5 length, LoRA choice), up to ``max_batch`` requests and
``max_images`` images, and runs them as one pipeline call (:func:`webapp.generation.run.run_sd_batch`) — each
request with its own prompts and one generator per image (its own seeds); a lone request runs as without
batching (:func:`~webapp.generation.run.run_sd`). Results go back to their own callers; progress is forwarded
in each caller's own thread (Gradio's progress lives in the request's context).

Waiting: a request that finds the queue idle and nobody else waiting runs at once; the leader waits up to
:data:`BATCH_WAIT_S` for company only when another request is already waiting beside it (they arrived
together). Out of memory: a batched call of several requests that runs out of GPU memory is retried in two
halves (recursively, down to single requests, which run as without batching), so one too-large batch does not
fail every caller.

Batched math is not bit-identical to a run alone (BLAS blocks a batch of 2 differently from a batch of 1):
on CPU the transformer's outputs differ by ~1e-6, and a saved PNG by at most :data:`BATCH_PIXEL_TOLERANCE`
grey levels, mostly none. ``--max-batch 1`` turns batching off for exact reproduction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webapp.generation.params import GenerationRequest
from webapp.generation.pipeline import OutOfMemory

log = logging.getLogger(__name__)

BATCH_WAIT_S = 0.05  # when others are already waiting, how long the leader waits for more company
POLL_S = 0.1  # how often a waiting caller forwards its progress
BATCH_PIXEL_TOLERANCE = 2  # grey levels (0-255) between a batched image and the same seed run alone

ProgressFn = Callable[[int, int], None]


def batch_key(request: GenerationRequest) -> tuple:
    """Requests with equal keys can share one pipeline call (the pipeline takes one value of each; the LoRAs
    and their scales are switched per call, so requests with different choices never share one)."""
    return (request.width, request.height, request.steps, request.guidance, request.preset,
            request.max_sequence_length, tuple(request.loras))


@dataclass
class BatchJob:
    """One caller's request waiting in (or running in) a batch."""

    request: GenerationRequest
    cancel: threading.Event | None = None
    steps_done: int = 0
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


# run(jobs, on_step, should_stop) → one result per job, or an exception for that job (in order)
BatchRunner = Callable[[list[BatchJob], ProgressFn, Callable[[], bool]], list[Any]]


class BatchCollector:
    """Merges concurrent requests into batches for ``run``; see the module docstring.

    No thread of its own: the caller whose request is oldest while no batch runs becomes the leader, gathers
    the waiting requests that fit, runs them, and hands each result back. A lone request therefore runs in
    its caller's thread exactly as without batching (progress and cancel at each step)."""

    def __init__(self, run: BatchRunner, *, cancelled: Callable[[str], BaseException], max_batch: int = 4,
                 max_images: int = 8, wait_s: float = BATCH_WAIT_S,
                 is_oom: Callable[[BaseException], bool] | None = None) -> None:
        if max_batch < 1 or max_images < 1:
            raise ValueError(f"max_batch and max_images must be at least 1, got {max_batch}, {max_images}")
        self.run = run
        self.cancelled = cancelled  # the error a cancelled caller gets, from a message
        self.max_batch = max_batch
        self.max_images = max_images
        self.wait_s = wait_s
        self.is_oom = is_oom or _is_oom
        self.oom_splits = 0  # batched calls retried in halves after running out of memory
        self.batch_sizes: list[int] = []  # requests per pipeline call, in order (for tests and the bench)
        self._pending: list[BatchJob] = []
        self._running = False
        self._cond = threading.Condition()

    @property
    def calls(self) -> int:
        """Pipeline calls made so far."""
        return len(self.batch_sizes)

    def submit(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> Any:
        """Queue ``request``, wait for its batch to run (leading it when its turn comes), and return its own
        result (or raise its error)."""
        job = BatchJob(request, cancel)
        shown = 0
        with self._cond:
            self._pending.append(job)
            self._cond.notify_all()
            while True:
                if job.done.is_set():
                    break
                if not self._running and self._pending and self._pending[0] is job:
                    batch = self._gather()
                    self._running = True
                    break
                self._cond.wait(timeout=POLL_S)
                if progress is not None and job.steps_done > shown:  # a follower: forward what the leader ran
                    steps, shown = range(shown + 1, job.steps_done + 1), job.steps_done
                    self._cond.release()
                    try:
                        for step in steps:
                            progress(step, request.steps)
                    finally:
                        self._cond.acquire()
        if not job.done.is_set():
            try:
                self._run(batch, job, progress, shown)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
        elif progress is not None and job.error is None:
            for step in range(shown + 1, job.steps_done + 1):
                progress(step, request.steps)
        if job.error is not None:
            raise job.error
        return job.result

    # ---------------------------------------------------------------------------------------- leader

    def _gather(self) -> list[BatchJob]:
        """(Lock held.) When others are already waiting (requests arriving together), wait a moment for more
        company; a lone request does not wait. Then take the head and the waiting jobs that can join it (same
        key, within the limits), first come first served."""
        deadline = time.monotonic() + self.wait_s
        while 1 < len(self._pending) < self.max_batch and time.monotonic() < deadline:
            self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
        head = self._pending[0]
        key, images, batch = batch_key(head.request), 0, []
        limit = max(self.max_images, head.request.num_images)
        for job in list(self._pending):
            if len(batch) == self.max_batch:
                break
            if batch_key(job.request) != key or images + job.request.num_images > limit:
                continue
            batch.append(job)
            images += job.request.num_images
            self._pending.remove(job)
        return batch

    def _run(self, batch: list[BatchJob], me: BatchJob, progress: ProgressFn | None, shown: int) -> None:
        live = [job for job in batch if not job.cancelled]
        for job in batch:
            if job.cancelled:
                job.error = self.cancelled("cancelled before it started.")
                job.done.set()
        if not live:
            return
        self.batch_sizes.append(len(live))
        log.info("batch of %d request(s), %d image(s)", len(live), sum(j.request.num_images for j in live))

        def on_step(done: int, total: int) -> None:
            with self._cond:
                for job in live:
                    job.steps_done = done
                self._cond.notify_all()  # followers forward their progress
            if progress is not None and me in live and done > shown:
                progress(done, total)  # the leader's own, in its own thread, as without batching

        def should_stop() -> bool:
            return all(job.cancelled for job in live)

        outcomes = self._call(live, on_step, should_stop)
        with self._cond:
            for job, outcome in zip(live, outcomes, strict=True):
                if job.cancelled and not isinstance(outcome, BaseException):
                    outcome = self.cancelled(f"cancelled (its batch ran to the end, step {job.steps_done}).")
                if isinstance(outcome, BaseException):
                    job.error = outcome
                else:
                    job.result = outcome
                job.done.set()

    def _call(self, jobs: list[BatchJob], on_step: ProgressFn, should_stop: Callable[[], bool]) -> list[Any]:
        """One pipeline call for ``jobs``; out of memory with several jobs → the two halves, each on its own
        (recursively). Any other failure of the whole call (every user cancelled) goes to each caller."""
        try:
            return self.run(jobs, on_step, should_stop)
        except BaseException as err:
            if len(jobs) < 2 or not self.is_oom(err):
                return [err] * len(jobs)
        half = (len(jobs) + 1) // 2
        self.oom_splits += 1
        log.warning("batch of %d request(s) ran out of memory: retrying as %d + %d", len(jobs), half,
                    len(jobs) - half)
        return (self._call(jobs[:half], on_step, lambda: all(j.cancelled for j in jobs[:half]))
                + self._call(jobs[half:], on_step, lambda: all(j.cancelled for j in jobs[half:])))


def _is_oom(err: BaseException) -> bool:
    """A GPU out-of-memory error, raw (torch) or turned into advice (:class:`OutOfMemory`)."""
    return isinstance(err, OutOfMemory) or type(err).__name__ == "OutOfMemoryError"

