"""What one Ray Serve replica runs: the same :class:`GenerationService` (and server-side parser) as the single
box, on the replica's GPU. Plain Python (no Ray import), so it is testable without Ray; ``webapp.serving.app``
wraps it in a deployment.

Messages are plain data (dicts, bytes), so the front end needs nothing but the handle:

- ``generate(inputs, lora, lora_scale)`` streams ``{"type": "step", "done", "total"}`` items, then one
  ``{"type": "result", ...}`` with the PNG bytes (each carrying its parameters) and the LoRA used, or
  ``{"type": "error", "message"}`` for a user error (an unknown LoRA name among them);
- ``parse(png, dtype)`` returns the label map and how it ran;
- ``status()`` says what this replica serves (device, speed, why generation is off).
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from face_studio.errors import UserError
from webapp.generation.params import GenerationRequest
from webapp.generation.service import GenerationService
from webapp.settings import ServeSettings

log = logging.getLogger(__name__)


class StudioReplica:
    """One replica: loads the pipeline at start (so a replica is ready when Ray says it is) and serves
    generate / parse / status."""

    def __init__(self, settings: ServeSettings, cpu_threads: int | None = None) -> None:
        if cpu_threads:
            import torch

            torch.set_num_threads(cpu_threads)  # CPU replicas share the machine's cores between them
        self._tmp = tempfile.TemporaryDirectory(prefix="face-studio-replica-")
        # images are written here, read back into the reply, then removed: the front end keeps them
        self.settings = replace(settings, output_dir=Path(self._tmp.name), ray=None)
        self.service = GenerationService(self.settings)
        if self.service.unavailable_reason is None:
            self.service.owner.get()

    # -------------------------------------------------------------------------------------------- calls

    def status(self) -> dict[str, Any]:
        plan = self.service.owner.speed_plan
        return {"pid": os.getpid(), "unavailable": self.service.unavailable_reason,
                "status": self.service.status_markdown(), "device": self.service.owner.device,
                "speed": plan.mode, "speed_note": plan.note, "loras": self.service.lora_names}

    def generate(self, request: dict[str, Any], lora: str | None = None,
                 lora_scale: float | None = None) -> Iterator[dict[str, Any]]:
        """Run one request (a :class:`GenerationRequest` as a dict, seed already fixed) with the LoRA named
        ``lora`` (one of this replica's ``--lora`` / ``--lora-dir``; None: none) through the service's own
        generate path (the batched queue with --max-batch); stream progress, then the result. Closing the
        stream (the caller cancelled) stops the job at its next step."""
        items: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                choice = self.service.owner.catalog.choose(lora, lora_scale)
                result = self.service.generate(replace(GenerationRequest(**request), loras=choice),
                                               progress=lambda done, total: items.put(
                                                   {"type": "step", "done": done, "total": total}),
                                               cancel=cancel)
                images = []
                for image in result.images:
                    images.append({"name": image.path.name, "png": image.path.read_bytes(), "seed": image.seed,
                                   "parameters": asdict(image.parameters)})
                    image.path.unlink(missing_ok=True)
                items.put({"type": "result", "images": images, "seconds": result.seconds, "pid": os.getpid(),
                           "loras": [list(pair) for pair in choice]})
            except UserError as err:
                items.put({"type": "error", "message": str(err), "kind": type(err).__name__})
            except BaseException as err:  # reported to the caller, not lost in a thread
                log.exception("generate failed")
                items.put({"type": "failed", "message": f"{type(err).__name__}: {err}"})

        threading.Thread(target=work, name="replica-generate", daemon=True).start()
        try:
            while True:
                item = items.get()
                yield item
                if item["type"] != "step":
                    return
        finally:
            cancel.set()  # a closed stream (cancelled request) stops the job; a finished one is unaffected

    def parse(self, png: bytes, dtype: str, provider: str = "auto") -> dict[str, Any]:
        """Parse one image (PNG bytes) with this replica's ONNX Runtime session (CUDA EP on a GPU replica)."""
        import io

        from PIL import Image

        from webapp.parsing import get_parser

        try:
            parser = get_parser(self.settings.parser_dir, dtype, provider=provider)
            result = parser.parse_batch([Image.open(io.BytesIO(png)).convert("RGB")])[0]
        except UserError as err:
            return {"error": str(err)}
        return {"labels": result.labels, "timings": result.timings, "providers": parser.providers,
                "dtype": parser.dtype, "pid": os.getpid()}
