"""The single box: the pipeline in this process (:class:`~webapp.generation.service.GenerationService`)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from webapp.backend.base import GENERATE_LANE, GPU_LANE, Backend, ParseReply, Slot
from webapp.generation.params import GenerationRequest
from webapp.generation.run import LoraChoice, ProgressFn, RunOutput
from webapp.generation.service import GenerationResult, GenerationService
from webapp.settings import ServeSettings

if TYPE_CHECKING:
    from PIL import Image


class LocalBackend(Backend):
    """Generate, Edit and the server parse on this machine's GPU (or CPU, when asked)."""

    kind = "local"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self.service = GenerationService(settings)

    @property
    def unavailable_reason(self) -> str | None:
        return self.service.unavailable_reason

    @property
    def lora_names(self) -> list[str]:
        return self.service.lora_names

    @property
    def model(self) -> str:
        return self.service.model

    def lane(self, endpoint: str) -> Slot:
        """One SD job at a time on the GPU lock; the batched queue's generate lane holds a whole batch (the
        lock still runs one pipeline call at a time)."""
        if endpoint == "generate" and self.service.batcher is not None:
            return Slot(GENERATE_LANE, self.service.batcher.max_batch)
        return Slot(GPU_LANE, 1)

    def run_pipeline(self, kind: str, inputs: dict[str, Any], seeds: list[int], *, steps: int,
                     loras: LoraChoice = (), progress: ProgressFn | None = None,
                     cancel: threading.Event | None = None) -> RunOutput:
        return self.service.run_pipeline(kind, inputs, seeds, steps=steps, loras=loras, progress=progress,
                                         cancel=cancel)

    def _generate(self, request: GenerationRequest, *, lora: str | None, lora_scale: float | None,
                  progress: ProgressFn | None, cancel: threading.Event | None) -> GenerationResult:
        request = replace(request, loras=self.service.choose_loras(lora, lora_scale))
        return self.service.generate(request, progress=progress, cancel=cancel)

    def first_use_note(self, width: Any, height: Any) -> str | None:
        if self.unavailable_reason is None and not self.service.owner.loaded:
            return "loading the model (first use)…"
        return self.service.speed_status(width, height)  # --speed compile / fp8: the first run at a size compiles

    def _parse(self, image: Image.Image, dtype: str, faces: str) -> ParseReply:
        from webapp.parsing import get_parser, parse_image

        parser = get_parser(self.settings.parser_dir, dtype, provider=self.settings.parse_provider,
                            device=self.settings.device)
        start = time.perf_counter()
        providers = parser.providers  # loads the ONNX Runtime session on first use
        load_ms = (time.perf_counter() - start) * 1000
        return ParseReply(parse_image(parser, image, faces), providers, parser.dtype, load_ms)

    def _status(self) -> dict[str, Any]:
        return {**self.service.status(), "replicas": 1, "replica_range": "1", "gpus_per_replica": 0.0}
