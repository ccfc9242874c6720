"""Cancel flags of running jobs, one per browser session: the Stop button sets the flag, the run checks it after
every step. Shared by the local :class:`~webapp.generation.service.GenerationService` and the Ray Serve one."""

from __future__ import annotations

import threading


class CancelFlags:
    """``begin_job`` / ``cancel`` / ``end_job`` by session key; a base of the generation services."""

    def __init__(self) -> None:
        self._cancel: dict[str, threading.Event] = {}

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
        """Drop the flag of ``key`` if it is still ``event`` (a newer job of the same session keeps its own)."""
        if self._cancel.get(key) is event:
            del self._cancel[key]
