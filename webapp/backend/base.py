"""The one interface the views use for SD work: :class:`Backend`. ``LocalBackend`` (``webapp.backend.local``)
runs the pipeline in this process; ``RayBackend`` (``webapp.serving.remote``) sends only the pipeline call to
a Ray Serve replica. Everything else happens here, on the front end, the same for both: parameter checks,
the seed, Edit's mask preparation and exact composite (``webapp.editing.service``), PNG names and writing,
the count of jobs served.

::

    views (Generate · Edit · Parse) ─► backend_for(settings) ─► LocalBackend | RayBackend
    front end keeps: checks, mask prep, exact composite, PNG writing, Gradio lanes
    replica keeps:   the diffusers call (and the server parse)
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from face_studio.errors import UserError
from webapp.editing import service as editing
from webapp.generation import presets as P
from webapp.generation.jobs import CancelFlags
from webapp.generation.params import GenerationRequest, save_png, validate
from webapp.generation.run import LoraChoice, ProgressFn, RunOutput
from webapp.generation.service import GenerationResult, loaded_pipelines
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from face_studio.faces.parse import FaceParse
    from webapp.editing.faces import FaceEdit

# Gradio concurrency ids of the lanes that run SD work (webapp.app.setup_queue bounds them together).
GPU_LANE = "gpu"  # one job at a time per GPU: generate without batching, inpaint, restyle
GENERATE_LANE = "generate"  # the batched queue's own slot (a shared id takes the lowest limit)
REPLICAS_LANE = "replicas"  # --ray: replicas × max-batch at once
GPU_LANE_IDS = (GPU_LANE, GENERATE_LANE, REPLICAS_LANE)
ENDPOINTS = ("generate", "inpaint", "restyle", "parse")  # what /status counts


class Slot(NamedTuple):
    """Where a Gradio event queues: its ``concurrency_id`` and ``concurrency_limit``."""

    concurrency_id: str
    limit: int


@dataclass(frozen=True)
class BackendStatus:
    """What the backend serves, as data: the Generate view renders it, ``GET /status`` returns it."""

    backend: str  # "local" or "ray"
    replicas: int  # 1 on the single box; the replica count (autoscaling: its maximum) under Ray
    replica_range: str  # "2", or "1–4" when autoscaling
    gpus_per_replica: float
    front_end_pipelines: int  # SD pipelines loaded in this (front-end) process
    model: str
    loaded: bool
    device: str | None
    gpu_gib: float | None
    memory_mode: str | None
    memory_mode_auto: bool
    speed: str
    speed_note: str | None
    loras: list[str]
    unavailable: str | None
    served: dict[str, int] = field(default_factory=dict)  # jobs finished per endpoint


@dataclass(frozen=True)
class ParseReply:
    """One server parse: the result (labels, faces, owner map, timings) and how it ran."""

    result: FaceParse
    providers: list[str]
    dtype: str
    load_ms: float


class Backend(CancelFlags, ABC):
    """Generate, inpaint, restyle and parse, wherever the pipeline runs. Subclasses provide the pipeline calls
    (:meth:`run_pipeline`, :meth:`_generate`), the parser, their status and their lanes."""

    kind: str = ""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__()
        self.settings = settings
        self.output_dir = Path(settings.output_dir)
        self.default_preset = P.preset_for_model(settings.sd_model)
        self._counter = itertools.count(1)
        self._served: Counter[str] = Counter()
        self._served_lock = threading.Lock()

    # ------------------------------------------------------------------------- what subclasses provide

    @property
    @abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why generation cannot run (no GPU, bad device / memory mode), or None."""

    @property
    @abstractmethod
    def lora_names(self) -> list[str]:
        """The LoRAs requests may name (never their paths)."""

    @property
    @abstractmethod
    def model(self) -> str:
        """The model as recorded in PNGs."""

    @abstractmethod
    def lane(self, endpoint: str) -> Slot:
        """The Gradio lane ``endpoint`` ("generate", "inpaint", "restyle") queues on."""

    @abstractmethod
    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], *, steps: int,
                     loras: LoraChoice = (), progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> RunOutput:
        """One SD run on the pipeline of ``kind`` ("text2img", "inpaint", "img2img"); images in memory."""

    @abstractmethod
    def _generate(self, request: GenerationRequest, *, lora: str | None, lora_scale: float | None,
                  progress: ProgressFn | None, cancel: threading.Event | None) -> GenerationResult:
        """Run a validated request with a concrete seed; images in memory."""

    @abstractmethod
    def _parse(self, image: Image.Image, dtype: str, faces: str) -> ParseReply:
        """Parse one image on the server (``faces``: auto | largest | off, as :func:`webapp.parsing.parse_image`)."""

    @abstractmethod
    def _status(self) -> dict[str, Any]:
        """The pipeline side's status fields (model, device, speed, …) and the replica fields."""

    def first_use_note(self, width: Any, height: Any) -> str | None:
        """What to show before a run that will be slow once: loading the model, compiling for a size."""
        return None

    # ---------------------------------------------------------------------------------- the same for all

    def check_available(self) -> None:
        if self.unavailable_reason:
            raise UserError(self.unavailable_reason)

    @property
    def preset(self) -> P.Preset:
        """The loaded model's preset: the steps and guidance Generate and Edit start from."""
        return P.PRESETS[self.default_preset]

    def output_path(self, tag: str) -> Path:
        """A new file name in ``output_dir``: ``<date-time>-<counter>-<tag>.png`` (never an existing one)."""
        return self.output_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._counter):04d}-{tag}.png"

    def _served_one(self, endpoint: str) -> None:
        with self._served_lock:
            self._served[endpoint] += 1

    def generate(self, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 lora: str | None = None, lora_scale: float | None = None, **inputs: Any) -> GenerationResult:
        """Check raw inputs (as the API receives them: :func:`params.validate`), fix the seed here (a retry on
        another replica makes the same images), run, and save each image as a PNG carrying its parameters.
        ``lora``: the name of an allowed LoRA (None / "" / "(none)": none); ``lora_scale``: None = its
        operator-set scale."""
        self.check_available()
        request = validate(**inputs).with_seed()
        result = self._generate(request, lora=lora, lora_scale=lora_scale, progress=progress, cancel=cancel)
        images = [replace(image, path=save_png(image.image, self.output_path(str(image.seed)), image.parameters))
                  for image in result.images]
        self._served_one("generate")
        return replace(result, images=images)

    def inpaint(self, image: Image.Image, request: editing.EditRequest, *, mask: Image.Image | np.ndarray | None = None,
                regions: str | list[str] | None = None, labels: np.ndarray | None = None,
                mask_regions: list[str] | None = None, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None) -> editing.EditResult:
        """Regenerate the masked part of ``image`` (:func:`webapp.editing.service.edit_image`): the mask is
        prepared and the result composited here, bit-exact outside the mask; only the pipeline call runs on
        the backend."""
        result = editing.edit_image(self, image, request, mask=mask, regions=regions, labels=labels,
                                    mask_regions=mask_regions, progress=progress, cancel=cancel)
        self._served_one("inpaint")
        return result

    def inpaint_faces(self, image: Image.Image, request: editing.EditRequest, faces: list[FaceEdit], *,
                      regions: list[str] | None = None, mask: Image.Image | np.ndarray | None = None,
                      face_map: str | Path | Image.Image | None = None, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None) -> editing.EditResult:
        """Regenerate chosen faces, a prompt each (:func:`webapp.editing.service.edit_chosen_faces`): faces are
        found, masks prepared and every result composited here; only each face's pipeline call runs on the
        backend."""
        result = editing.edit_chosen_faces(self, self.settings.parser_dir, image, request, faces, regions=regions,
                                           mask=mask, face_map=face_map, progress=progress, cancel=cancel)
        self._served_one("inpaint")
        return result

    def restyle(self, image: Image.Image, request: editing.EditRequest, *, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None) -> editing.EditResult:
        """Img2Img over the whole image (:func:`webapp.editing.service.restyle_image`)."""
        result = editing.restyle_image(self, image, request, progress=progress, cancel=cancel)
        self._served_one("restyle")
        return result

    def parse(self, image: Image.Image, dtype: str, faces: str = "auto") -> ParseReply:
        """The server parse (here, or on a replica's ONNX Runtime session under Ray). Faces are found on the front
        end; each face's crop (or the whole image) is parsed where the parser runs."""
        reply = self._parse(image, dtype, faces)
        self._served_one("parse")
        return reply

    def status(self) -> BackendStatus:
        with self._served_lock:
            served = {endpoint: self._served[endpoint] for endpoint in ENDPOINTS}
        return BackendStatus(backend=self.kind, front_end_pipelines=loaded_pipelines(), served=served,
                             **self._status())
