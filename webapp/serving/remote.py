"""The Gradio front end's side of Ray Serve: the same methods the Generate and Parse views call on the
single-box service and parser, answered by the replicas through a deployment handle.

Requests are validated here (the user's error comes back at once), sent with their seed fixed, and their
PNGs written to the front end's ``--output-dir``. A request whose replica dies (killed, node lost) is sent
again, up to :data:`RETRIES` times: Serve routes it to a live replica and restarts the dead one.
"""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from face_studio.atomic import atomic_write
from face_studio.errors import UserError
from webapp.generation import presets as P
from webapp.generation.jobs import CancelFlags
from webapp.generation.params import GenerationRequest, ImageParameters, validate
from webapp.generation.service import (
    REPLICAS_CONCURRENCY_ID,
    GeneratedImage,
    GenerationCancelled,
    GenerationResult,
)
from webapp.parsing import ParseResult
from webapp.serving import cluster
from webapp.settings import ServeSettings

log = logging.getLogger(__name__)

RETRIES = 3  # sends of one request to another replica after its replica died
STATUS_TIMEOUT_S = 60.0
ProgressFn = Callable[[int, int], None]


def _replica_lost(err: BaseException) -> bool:
    """A failure of the replica (process gone, actor dead or unreachable), not of the request."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    return isinstance(err, (RayActorError, ActorDiedError, ActorUnavailableError))


def with_retries(send: Callable[[], Any], on_retry: Callable[[BaseException, int], None] | None = None) -> Any:
    """``send()``, again (up to :data:`RETRIES` times) while the replica it reached was lost; Serve routes
    the next try to a live replica. Any other error is the request's own and is raised at once."""
    for attempt in range(RETRIES + 1):
        try:
            return send()
        except Exception as err:
            if not _replica_lost(err) or attempt == RETRIES:
                raise
            if on_retry is not None:
                on_retry(err, attempt + 1)
    raise AssertionError("unreachable")


def wait_for(response, timeout_s: float | None = None):
    """``response.result()`` from any thread. Ray refuses a blocking wait on a thread whose asyncio loop is
    running (e.g. a caller that is itself inside an event loop, such as a script or test driving Playwright's
    sync API); there the wait happens on a short-lived helper thread instead."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop on this thread: wait here
        return response.result(timeout_s=timeout_s)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(response.result, timeout_s=timeout_s).result()


class _Owner:
    """The bit of :class:`PipelineOwner` the Generate view reads: replicas load their pipeline at start."""

    loaded = True


class RemoteGenerationService(CancelFlags):
    """Generation on Ray Serve replicas, with the interface of :class:`GenerationService` that the views use."""

    def __init__(self, settings: ServeSettings, deployment: cluster.Deployment) -> None:
        super().__init__()
        self.settings = settings
        self.deployment = deployment
        self.handle = deployment.handle
        self.output_dir = Path(settings.output_dir)
        self.default_preset = P.preset_for_model(settings.sd_model)
        self.owner = _Owner()
        self.retries = 0  # requests re-sent after a replica was lost (for tests and the log)
        self._counter = itertools.count(1)
        self._status = wait_for(self.handle.status.remote(), timeout_s=STATUS_TIMEOUT_S)

    # ---------------------------------------------------------------------------------------- status

    @property
    def unavailable_reason(self) -> str | None:
        return self._status["unavailable"]

    @property
    def speed_note(self) -> str | None:
        return self._status["speed_note"]

    def status_markdown(self) -> str:
        low, high = cluster.replica_bounds(self.settings)
        count = str(low) if low == high else f"{low}–{high} (autoscaling)"
        gpus = "1 GPU each" if self.deployment.gpus_per_replica else "CPU"
        return f"{self._status['status']} · **Ray Serve** {count} replica(s), {gpus}"

    @property
    def generate_concurrency(self) -> tuple[str, int]:
        """Every replica busy with a full batch: the front end's queue no longer serialises across replicas."""
        return REPLICAS_CONCURRENCY_ID, self.deployment.replicas * max(1, self.settings.max_batch)

    @property
    def lora_names(self) -> list[str]:
        """The LoRAs requests may name: the replicas' (the same --lora / --lora-dir on each)."""
        return list(self._status.get("loras", []))

    @property
    def preset(self) -> P.Preset:
        return P.PRESETS[self.default_preset]

    def speed_status(self, width: Any, height: Any) -> str | None:
        return None  # each replica compiles on its own first request; its progress stream says so

    # ------------------------------------------------------------------------------------ generation

    def generate_from_inputs(self, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                             lora: str | None = None, lora_scale: float | None = None,
                             **inputs: Any) -> GenerationResult:
        if self.unavailable_reason:
            raise UserError(self.unavailable_reason)
        return self.generate(validate(**inputs), progress=progress, cancel=cancel, lora=lora, lora_scale=lora_scale)

    def generate(self, request: GenerationRequest, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None, lora: str | None = None,
                 lora_scale: float | None = None) -> GenerationResult:
        """Send ``request`` with its LoRA name to a replica (again to another if it dies), stream its
        progress, keep its PNGs. The replica picks the LoRA from its catalog (an unknown name: its message)."""
        request = request.with_seed()  # fixed here, so a retry on another replica makes the same images

        def retried(err: BaseException, attempt: int) -> None:
            self.retries += 1
            log.warning("replica lost during a request (%s); sending it again (%d of %d)",
                        type(err).__name__, attempt, RETRIES)

        return with_retries(lambda: self._send(request, progress, cancel, lora, lora_scale), retried)

    def _send(self, request: GenerationRequest, progress: ProgressFn | None, cancel: threading.Event | None,
              lora: str | None, lora_scale: float | None) -> GenerationResult:
        stream = self.handle.options(stream=True).generate.remote(asdict(request), lora, lora_scale)
        for item in stream:
            if cancel is not None and cancel.is_set():
                stream.cancel()
                raise GenerationCancelled("cancelled.")
            kind = item["type"]
            if kind == "step":
                if progress is not None:
                    progress(item["done"], item["total"])
            elif kind == "error":
                raise (GenerationCancelled if item["kind"] == "GenerationCancelled" else UserError)(item["message"])
            elif kind == "failed":
                raise RuntimeError(f"the replica failed: {item['message']}")
            else:
                return self._keep(request, item)
        raise RuntimeError("the replica closed the stream without a result")

    def _keep(self, request: GenerationRequest, reply: dict[str, Any]) -> GenerationResult:
        request = replace(request, loras=tuple((name, scale) for name, scale in reply.get("loras", [])))
        images = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for image in reply["images"]:
            params = ImageParameters(**image["parameters"])
            path = self.output_dir / f"{stamp}-r{next(self._counter):04d}-{image['seed']}.png"
            atomic_write(path, image["png"])
            images.append(GeneratedImage(path=path, seed=image["seed"], parameters=params))
        return GenerationResult(images=images, request=request, seconds=reply["seconds"])


class RemoteParser:
    """The server parse on a replica (its GPU's CUDA EP when it has one), with :class:`FaceParser`'s face."""

    def __init__(self, handle: Any, dtype: str, provider: str = "auto") -> None:
        self.handle = handle
        self.dtype = dtype
        self.provider = provider
        self.providers: list[str] = []
        self.last_pid: int | None = None  # the replica process that answered last

    def parse_batch(self, images: list) -> list[ParseResult]:
        results = []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            png = buffer.getvalue()
            reply = with_retries(lambda png=png: wait_for(self.handle.parse.remote(png, self.dtype, self.provider)))
            if "error" in reply:
                raise UserError(reply["error"])
            self.providers[:] = reply["providers"]  # in place: the view holds this list
            self.last_pid = reply["pid"]
            results.append(ParseResult(np.asarray(reply["labels"]), reply["timings"]))
        return results

    def parse(self, image) -> np.ndarray:
        return self.parse_batch([image])[0].labels


# ------------------------------------------------------------------------------------------- registry

_SERVICES: dict[int, RemoteGenerationService] = {}
_LOCK = threading.Lock()


def remote_service(settings: ServeSettings) -> RemoteGenerationService:
    """The front end's service for ``settings`` (with ``settings.ray`` set): starts / joins Ray and deploys
    the replicas on first use, once per process."""
    with _LOCK:
        if id(settings) not in _SERVICES:
            service = RemoteGenerationService(settings, cluster.start(settings))
            if service.speed_note:  # e.g. --speed fp8 on replicas without an fp8 GPU: said once, runs eager
                log.warning("note: the replicas' %s", service.speed_note)
            _SERVICES[id(settings)] = service
        return _SERVICES[id(settings)]


def remote_parser(settings: ServeSettings, dtype: str) -> RemoteParser:
    return RemoteParser(remote_service(settings).handle, dtype, settings.parse_provider)
