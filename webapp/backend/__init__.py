"""The generation backend the views use: :func:`backend_for` picks the local one or the Ray one from the
settings (``--ray``), once per settings object; the views never branch on ``--ray`` themselves.

The interface is :class:`~webapp.backend.base.Backend` (generate, inpaint, restyle, parse, status as data,
LoRA names, the lane to queue on). Views import this module only, never ``webapp.serving`` or
``webapp.generation.service`` (``tests/test_import_graph.py`` holds them to it).
"""

from __future__ import annotations

import logging
import threading

from webapp.backend.base import (
    ENDPOINTS,
    GPU_LANE_IDS,
    Backend,
    BackendStatus,
    ParseReply,
    Slot,
)
from webapp.generation.run import GenerationCancelled
from webapp.settings import ServeSettings

__all__ = ["ENDPOINTS", "GPU_LANE_IDS", "Backend", "BackendStatus", "GenerationCancelled", "ParseReply", "Slot",
           "backend_for", "forget", "register"]

log = logging.getLogger(__name__)

_BACKENDS: dict[int, tuple[ServeSettings, Backend]] = {}
_LOCK = threading.Lock()


def backend_for(settings: ServeSettings) -> Backend:
    """The backend for ``settings``: one per settings object in a process (the Generate, Edit and Parse views
    and ``/status`` share it). ``settings.ray`` set: start or join Ray and deploy the replicas (first call)."""
    with _LOCK:
        entry = _BACKENDS.get(id(settings))
        if entry is None or entry[0] is not settings:
            entry = (settings, _make(settings))
            _BACKENDS[id(settings)] = entry
        return entry[1]


def _make(settings: ServeSettings) -> Backend:
    if settings.ray:
        from webapp.serving.remote import RayBackend

        backend: Backend = RayBackend.start(settings)
        note = backend.status().speed_note
        if note:  # e.g. --speed fp8 on replicas without an fp8 GPU: said once, they run eager
            log.warning("note: the replicas' %s", note)
    else:
        from webapp.backend.local import LocalBackend

        backend = LocalBackend(settings)
    return backend


def register(settings: ServeSettings, backend: Backend) -> None:
    """Use ``backend`` for ``settings`` (the Ray Serve application's front end, which gets its replicas'
    handle from Serve instead of deploying them itself)."""
    with _LOCK:
        _BACKENDS[id(settings)] = (settings, backend)


def forget(settings: ServeSettings) -> None:
    """Drop the backend of ``settings`` (tests, and ``serving.cluster.stop``)."""
    with _LOCK:
        _BACKENDS.pop(id(settings), None)
