"""The Gradio front end's side of Ray Serve: :class:`RayBackend`, the :class:`~webapp.backend.base.Backend`
whose pipeline calls run on the replicas, through a deployment handle.

Everything else stays on the front end, as on the single box: requests are checked here (the user's error
comes back at once) and sent with their seed fixed; Edit's mask is prepared and its result composited here
(bit-exact outside the mask); replicas send images back as arrays and the PNGs are written once, here, to
the front end's ``--output-dir``. A call whose replica dies (killed, node lost) is sent again, up to
:data:`RETRIES` times: Serve routes it to a live replica and restarts the dead one.
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from face_studio.errors import UserError
from webapp.backend.base import REPLICAS_LANE, Backend, ParseReply, Slot
from webapp.generation.params import GenerationRequest, ImageParameters
from webapp.generation.run import GenerationCancelled, LoraChoice, ProgressFn, RunOutput
from webapp.generation.service import GeneratedImage, GenerationResult
from webapp.parsing import ParseResult
from webapp.serving import cluster
from webapp.serving.replica import pack_images
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

RETRIES = 3  # sends of one request to another replica after its replica died
STATUS_TIMEOUT_S = 60.0


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


def _image(array: np.ndarray) -> Image.Image:
    from PIL import Image

    return Image.fromarray(np.asarray(array, dtype=np.uint8))


class RayBackend(Backend):
    """Generate, Edit's pipeline call and the server parse on Ray Serve replicas."""

    kind = "ray"

    def __init__(self, settings: ServeSettings, deployment: cluster.Deployment) -> None:
        super().__init__(settings)
        self.deployment = deployment
        self.handle = deployment.handle
        self.retries = 0  # calls re-sent after a replica was lost (for tests and the log)
        self._replica_status = wait_for(self.handle.status.remote(), timeout_s=STATUS_TIMEOUT_S)

    @classmethod
    def start(cls, settings: ServeSettings) -> RayBackend:
        """Start or join Ray, deploy the replicas (blocks until each has loaded its pipeline)."""
        return cls(settings, cluster.start(settings))

    # ---------------------------------------------------------------------------------------- status

    @property
    def unavailable_reason(self) -> str | None:
        return self._replica_status["unavailable"]

    @property
    def lora_names(self) -> list[str]:
        """The LoRAs requests may name: the replicas' (the same --lora / --lora-dir on each)."""
        return list(self._replica_status.get("loras", []))

    @property
    def model(self) -> str:
        return self._replica_status["model"]

    def lane(self, endpoint: str) -> Slot:
        """Every replica busy with a full batch: the front end's queue no longer serialises across replicas
        (edits, one per replica at a time, share the lane)."""
        return Slot(REPLICAS_LANE, self.deployment.replicas * max(1, self.settings.max_batch))

    def _status(self) -> dict[str, Any]:
        low, high = cluster.replica_bounds(self.settings)
        fields = {k: v for k, v in self._replica_status.items() if k not in ("pid", "simulated_gpu_ms")}
        return {**fields, "loaded": True, "replicas": self.deployment.replicas,
                "replica_range": str(low) if low == high else f"{low}–{high}",
                "gpus_per_replica": self.deployment.gpus_per_replica}

    # ------------------------------------------------------------------------------- pipeline calls

    def _retried(self, err: BaseException, attempt: int) -> None:
        self.retries += 1
        log.warning("replica lost during a request (%s); sending it again (%d of %d)", type(err).__name__,
                    attempt, RETRIES)

    def _call(self, method: str, args: tuple, progress: ProgressFn | None,
              cancel: threading.Event | None) -> dict[str, Any]:
        """Stream ``method(*args)`` from a replica (again from another if it dies): forward its steps to
        ``progress``, stop it when ``cancel`` is set, return its result message."""

        def send() -> dict[str, Any]:
            stream = getattr(self.handle.options(stream=True), method).remote(*args)
            for item in stream:
                if cancel is not None and cancel.is_set():
                    stream.cancel()
                    raise GenerationCancelled("cancelled.")
                kind = item["type"]
                if kind == "step":
                    if progress is not None:
                        progress(item["done"], item["total"])
                elif kind == "error":
                    raise (GenerationCancelled if item["kind"] == "GenerationCancelled" else UserError)(
                        item["message"])
                elif kind == "failed":
                    raise RuntimeError(f"the replica failed: {item['message']}")
                else:
                    return item
            raise RuntimeError("the replica closed the stream without a result")

        return with_retries(send, self._retried)

    def _generate(self, request: GenerationRequest, *, lora: str | None, lora_scale: float | None,
                  progress: ProgressFn | None, cancel: threading.Event | None) -> GenerationResult:
        """The replica picks the LoRA from its catalog (an unknown name: its message)."""
        reply = self._call("generate", (asdict(request), lora, lora_scale), progress, cancel)
        request = replace(request, loras=tuple((name, scale) for name, scale in reply.get("loras", [])))
        images = [GeneratedImage(image=_image(image["array"]), seed=image["seed"],
                                 parameters=ImageParameters(**image["parameters"])) for image in reply["images"]]
        return GenerationResult(images=images, request=request, seconds=reply["seconds"])

    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], *, steps: int,
                     loras: LoraChoice = (), progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> RunOutput:
        reply = self._call("run_pipeline", (kind, pack_images(dict(inputs)), list(seeds), steps,
                                            [list(pair) for pair in loras]), progress, cancel)
        return RunOutput(images=[_image(array) for array in reply["images"]], seconds=reply["seconds"])

    def _parse(self, image: Image.Image, dtype: str, faces: str) -> ParseReply:
        from webapp.parsing import parse_image

        parser = RemoteParser(self.handle, dtype, self.settings.parse_provider)
        result = parse_image(parser, image, faces)  # faces found here; each crop parsed on a replica
        last = parser.last_reply or {"providers": ["?"], "dtype": dtype, "load_ms": 0.0}
        return ParseReply(result, list(last["providers"]), last["dtype"], float(last["load_ms"]))


@dataclass
class RemoteParser:
    """The server parse on a replica (its GPU's CUDA EP when it has one)."""

    handle: Any
    dtype: str
    provider: str = "auto"
    last_reply: dict[str, Any] | None = None

    @property
    def requested_provider(self) -> str:
        """The provider asked for (the front end's face detector follows it, like a local parser's)."""
        return self.provider

    def parse_batch(self, images: list[Image.Image]) -> list[ParseResult]:
        """Each image parsed on a replica, one call each (what :func:`webapp.parsing.parse_image` needs)."""
        results = []
        for image in images:
            self.last_reply = self.parse_reply(image)
            results.append(ParseResult(np.asarray(self.last_reply["labels"]), self.last_reply["timings"]))
        return results

    def parse_reply(self, image: Image.Image) -> dict[str, Any]:
        """The replica's reply for one image (labels, timings, providers, pid), or its message as a UserError."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
        reply = with_retries(lambda: wait_for(self.handle.parse.remote(png, self.dtype, self.provider)))
        if "error" in reply:
            raise UserError(reply["error"])
        return reply
