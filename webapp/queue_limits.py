"""One waiting-room limit per lane (GPU jobs, parses, everything else) instead of Gradio's single global one.

Gradio 6.31's ``demo.queue(max_size=N)`` counts every waiting event of every endpoint together, so a queue
full of slow GPU jobs refused every cheap CPU parse ("Queue is full! Please try again."). Gradio has no
per-event queue size, so :class:`LaneQueue` (a ``gradio.queueing.Queue``) checks, when an event arrives,
how many events of that event's *concurrency id* are waiting and refuses only that lane's overflow.

A refused event is answered like a ``gr.Error`` raised by the handler (the page shows a toast,
``gradio_client`` raises ``AppError``) with a message that says how long the wait is and what to do —
not Gradio's 503, which the page and ``gradio_client`` both turn into their own fixed text.

How long the work ahead takes is estimated per job from what it asks (:func:`gpu_work`: steps × megapixels ×
images), so 4 waiting 28-step 1024² generates are not "under a minute" because one 2-step 64² job ran fast:
once a function has finished jobs, its seconds per unit of work are measured (its average run time over the
average work of the jobs it got); before that, a prior rate per device (``PRIOR_SECONDS_PER_WORK``) is used.
"""

from __future__ import annotations

import inspect
import math
from asyncio import Queue as AsyncQueue
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio import route_utils
from gradio.queueing import Event, Queue
from gradio.server_messages import ProcessCompletedMessage
from gradio.utils import error_payload

FULL_TITLE = "Server busy"
# Seconds per unit of work (one denoising step of one 1-megapixel image) before any job has finished: SD3.5
# Medium/Large in bf16 on an H100-class GPU (~2.2 s floor for Large's 28 steps at 1024², FACTS.md) with margin,
# and on a CPU (tens of seconds a step). Rough on purpose: it only has to tell "a minute" from "ten".
PRIOR_SECONDS_PER_WORK = {"cuda": 0.15, "cpu": 20.0}
WorkOf = Callable[[str | None, Sequence[Any]], float | None]


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number > 0 else default


def gpu_work(api_name: str | None, data: Sequence[Any]) -> float | None:
    """Units of work a GPU request asks for: steps × megapixels × images (None: not a GPU request we know).

    Reads the API's positional inputs: ``generate`` (webapp.generation.params.validate's order; steps left
    empty take the preset's), ``inpaint`` / ``restyle`` (webapp.editing.fields; the photo's size is not known
    before it is read, so 1 MP, the size SD3.5 works at).
    """
    from webapp.editing.fields import ENDPOINTS, edit_fields
    from webapp.generation import params
    from webapp.generation import presets as P

    data = list(data)
    if api_name == "generate":
        names = list(inspect.signature(params.validate).parameters)
        values = dict(zip(names, data, strict=False))
        preset = P.PRESETS.get(str(values.get("preset")), P.PRESETS["Custom"])
        steps = _number(values.get("steps"), preset.steps)
        megapixels = _number(values.get("width"), 1024) * _number(values.get("height"), 1024) / 1e6
        return steps * megapixels * _number(values.get("num_images"), 1)
    if api_name in ENDPOINTS:
        values = dict(zip(ENDPOINTS[api_name], data, strict=False))
        steps = _number(values.get("steps"), edit_fields()["steps"].default)
        strength = min(1.0, _number(values.get("strength"), 1.0))  # img2img runs strength × steps
        return steps * strength
    return None


@dataclass(frozen=True)
class Lane:
    """A queue lane: events with this Gradio ``concurrency_id``, at most ``max_waiting`` of them waiting."""

    name: str  # what the user is told is full: "GPU", "parse"
    max_waiting: int
    advice: str = "try again in a few seconds"  # used when no run time is known yet


def minutes_text(seconds: float) -> str:
    """``about 3 min`` / ``under a minute``: a wait, as a person would say it."""
    return "under a minute" if seconds < 60 else f"about {math.ceil(seconds / 60)} min"


def full_message(lane: Lane, waiting: int, wait_s: float | None) -> str:
    """What a refused user reads: which queue, how many wait, how long that is and what to do."""
    if wait_s is None:
        return f"The {lane.name} queue is full ({waiting} waiting): {lane.advice}."
    when = "a minute" if wait_s < 60 else minutes_text(wait_s)
    return (f"The {lane.name} queue is full ({waiting} waiting, {minutes_text(wait_s)} of work ahead): "
            f"try again in {when}.")


class LaneQueue(Queue):
    """Gradio's queue with a waiting limit per lane; events of other concurrency ids share ``other``
    (applied to each id on its own)."""

    lanes: dict[str, Lane]
    other: Lane

    def configure(self, lanes: dict[str, Lane], other: Lane, work_of: WorkOf | None = None,
                  prior_seconds_per_work: float | None = None) -> None:
        """``work_of(api_name, inputs)``: units of work an event asks for (None: unknown), and
        ``prior_seconds_per_work``, the rate used before any job of a function has finished."""
        self.lanes = dict(lanes)
        self.other = other
        self.work_of = work_of
        self.prior_rate = prior_seconds_per_work
        self.work_seen: defaultdict[Any, list[float]] = defaultdict(lambda: [0.0, 0])  # fn → [sum, count]

    def _work(self, event: Event) -> float | None:
        if self.work_of is None or event.data is None:
            return None
        try:
            return self.work_of(event.fn.api_name, event.data.data)
        except Exception:  # noqa: BLE001 - an odd request only loses its estimate, never its place
            return None

    def _seconds(self, event: Event) -> float | None:
        """This event's expected run time: its work at the function's measured rate (or the prior rate)."""
        timing = self.process_time_per_fn.get(event.fn)
        work = self._work(event)
        seen_sum, seen_count = self.work_seen.get(event.fn, (0.0, 0))
        if work is not None:
            if timing is not None and timing.count and seen_sum > 0:
                return timing.avg_time / (seen_sum / seen_count) * work
            if self.prior_rate is not None:
                return self.prior_rate * work
        return timing.avg_time if timing is not None and timing.count else None

    def waiting(self, concurrency_id: str) -> int:
        event_queue = self.event_queue_per_concurrency_id.get(concurrency_id)
        return len(event_queue.queue) if event_queue else 0

    def wait_estimate(self, concurrency_id: str) -> float | None:
        """Seconds of work ahead in this lane (waiting + running, over its workers): each waiting event's own
        estimate (:meth:`_seconds`), the running ones counted at the waiting ones' average; None when no event
        has an estimate (no work function, no prior, nothing finished)."""
        event_queue = self.event_queue_per_concurrency_id.get(concurrency_id)
        if event_queue is None:
            return None
        known = [t for t in (self._seconds(e) for e in event_queue.queue) if t is not None]
        if not known:
            return None
        ahead = sum(known) * len(event_queue.queue) / len(known)
        ahead += event_queue.current_concurrency * sum(known) / len(known)
        return ahead / max(1, event_queue.concurrency_limit or 1)

    def refusal(self, concurrency_id: str) -> str | None:
        """The message refusing one more event of this lane, or None when it may wait."""
        lane = self.lanes.get(concurrency_id, self.other)
        waiting = self.waiting(concurrency_id)
        if waiting < lane.max_waiting:
            return None
        return full_message(lane, waiting, self.wait_estimate(concurrency_id))

    async def push(self, body, request, username):  # type: ignore[override]
        if body.fn_index is not None:
            fn = route_utils.get_fn(self.blocks, None, body)
            message = self.refusal(fn.concurrency_id)
            if message is not None:
                return await self._refuse(body, fn, request, username, message)
            if self.work_of is not None:  # what this function's jobs ask for on average: its rate's other half
                work = None
                try:
                    work = self.work_of(fn.api_name, body.data)
                except Exception:  # noqa: BLE001
                    pass
                if work is not None:
                    seen = self.work_seen[fn]
                    seen[0] += work
                    seen[1] += 1
        return await super().push(body, request, username)

    async def _refuse(self, body, fn, request, username, message: str):
        """Register the event as Gradio's ``push`` does, then complete it at once with the message as an error
        (the client reads it from the same event stream as any result)."""
        event = Event(body.session_hash, fn, request, username)
        event.data = body
        if body.session_hash is None:
            body.session_hash = event.session_hash
        async with self.pending_message_lock:
            if body.session_hash not in self.pending_messages_per_session:
                self.pending_messages_per_session[body.session_hash] = AsyncQueue()
            self.pending_event_ids_session.setdefault(body.session_hash, set()).add(event._id)
        body.event_id = event._id
        error = gr.Error(message, title=FULL_TITLE, print_exception=False)
        self.send_message(event, ProcessCompletedMessage(output=error_payload(error, True), title=FULL_TITLE,
                                                         success=False))
        return True, event._id, "success"


def install_queue(demo: gr.Blocks, lanes: dict[str, Lane], other: Lane, work_of: WorkOf | None = None,
                  prior_seconds_per_work: float | None = None) -> LaneQueue:
    """``demo.queue()`` with no global size, then Gradio's queue swapped for a :class:`LaneQueue` built with
    the same arguments (``Blocks.queue`` in Gradio 6.31)."""
    demo.queue(max_size=None)
    old = demo._queue
    queue = LaneQueue(live_updates=old.live_updates, concurrency_count=old.max_thread_count,
                      update_intervals=old.update_intervals, max_size=None, blocks=demo,
                      default_concurrency_limit=old.default_concurrency_limit)
    queue.configure(lanes, other, work_of, prior_seconds_per_work)
    demo._queue = queue
    return queue
