"""One waiting-room limit per lane (GPU jobs, parses, everything else) instead of Gradio's single global one.

Gradio 6.31's ``demo.queue(max_size=N)`` counts every waiting event of every endpoint together, so a queue
full of slow GPU jobs refused every cheap CPU parse ("Queue is full! Please try again."). Gradio has no
per-event queue size, so :class:`LaneQueue` (a ``gradio.queueing.Queue``) checks, when an event arrives,
how many events of that event's *concurrency id* are waiting and refuses only that lane's overflow.

A refused event is answered like a ``gr.Error`` raised by the handler (the page shows a toast,
``gradio_client`` raises ``AppError``) with a message that says how long the wait is and what to do —
not Gradio's 503, which the page and ``gradio_client`` both turn into their own fixed text.
"""

from __future__ import annotations

import math
from asyncio import Queue as AsyncQueue
from dataclasses import dataclass

import gradio as gr
from gradio import route_utils
from gradio.queueing import Event, Queue
from gradio.server_messages import ProcessCompletedMessage
from gradio.utils import error_payload

FULL_TITLE = "Server busy"


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

    def configure(self, lanes: dict[str, Lane], other: Lane) -> None:
        self.lanes = dict(lanes)
        self.other = other

    def waiting(self, concurrency_id: str) -> int:
        event_queue = self.event_queue_per_concurrency_id.get(concurrency_id)
        return len(event_queue.queue) if event_queue else 0

    def wait_estimate(self, concurrency_id: str) -> float | None:
        """Seconds of work ahead in this lane (waiting + running, over its workers) from the average run time
        of each waiting event's function so far; None before any of them has finished once."""
        event_queue = self.event_queue_per_concurrency_id.get(concurrency_id)
        if event_queue is None:
            return None
        known = [self.process_time_per_fn[e.fn].avg_time for e in event_queue.queue if e.fn in self.process_time_per_fn]
        if not known:
            return None
        per_job = sum(known) / len(known)
        jobs = len(event_queue.queue) + event_queue.current_concurrency
        return per_job * jobs / max(1, event_queue.concurrency_limit or 1)

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


def install_queue(demo: gr.Blocks, lanes: dict[str, Lane], other: Lane) -> LaneQueue:
    """``demo.queue()`` with no global size, then Gradio's queue swapped for a :class:`LaneQueue` built with
    the same arguments (``Blocks.queue`` in Gradio 6.31)."""
    demo.queue(max_size=None)
    old = demo._queue
    queue = LaneQueue(live_updates=old.live_updates, concurrency_count=old.max_thread_count,
                      update_intervals=old.update_intervals, max_size=None, blocks=demo,
                      default_concurrency_limit=old.default_concurrency_limit)
    queue.configure(lanes, other)
    demo._queue = queue
    return queue
