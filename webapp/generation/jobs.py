"""What every generation backend shares with the features built on it: cancel flags of running jobs (one per
browser session), and :class:`PipelineRunner`, the part of a backend that Edit's inpaint and restyle use
(``webapp.editing.service``): the local backend and the Ray one both provide it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from webapp.generation.run import LoraChoice, ProgressFn, RunOutput


class PipelineRunner(Protocol):
    """One SD run on the pipeline of a kind (``"text2img"``, ``"inpaint"``, ``"img2img"``), wherever it runs;
    and what an edit records and where its PNG goes (on the front end)."""

    default_preset: str  # the loaded model's preset: steps and guidance left empty take its values

    @property
    def model(self) -> str: ...  # the model as recorded in PNGs

    def check_available(self) -> None: ...  # UserError when generation cannot run here

    def output_path(self, tag: str) -> Path: ...  # a new PNG path on the front end

    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], *, steps: int,
                     loras: LoraChoice = (), progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> RunOutput: ...


class CancelFlags:
    """``begin_job`` / ``cancel`` / ``end_job`` by session key; a base of the generation backends."""

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
