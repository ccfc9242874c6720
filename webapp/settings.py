"""Server settings: one dataclass filled by ``face-studio serve`` flags (or by tests)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# Our JS/CSS, vendored transformers.js + ORT wasm and labels.json. An installed wheel carries them as
# webapp/static (setup.py copies the top-level static/ there); a checkout (or `pip install -e .`) serves static/.
PACKAGED_STATIC_DIR = PACKAGE_DIR / "static"
IN_CHECKOUT = not PACKAGED_STATIC_DIR.is_dir()
STATIC_DIR = REPO_ROOT / "static" if IN_CHECKOUT else PACKAGED_STATIC_DIR


def data_home() -> Path:
    """Where an installed copy keeps what it makes by default (parser export, generated images):
    ``$XDG_DATA_HOME/face-studio``, i.e. ``~/.local/share/face-studio``. A checkout keeps them in the checkout."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "face-studio"


DEFAULT_PARSER_DIR = (STATIC_DIR if IN_CHECKOUT else data_home()) / "models" / "face-parsing"
DEFAULT_OUTPUT_DIR = (REPO_ROOT if IN_CHECKOUT else data_home()) / "outputs"
DEFAULT_PARSER_SOURCE = "jonathandinu/face-parsing"
DEFAULT_SD_MODEL = "stabilityai/stable-diffusion-3.5-medium"
# --max-batch's ceiling: a batch of 16 requests of up to 4 images each is 64 images in one pipeline call, about
# what an 80 GB GPU holds for SD3.5 Medium at 1024²; more only fails later, for memory, mid-request.
MAX_BATCH = 16


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: tuple[str, str] | None = None
    # Face parser: an export folder made by `face-studio export`.
    parser_dir: Path = DEFAULT_PARSER_DIR
    # Live camera mode: a small, fast export (e.g. a `face-studio distil` student); None = the main parser.
    live_parser_dir: Path | None = None
    # Generation: hub id or local diffusers folder; loaded lazily on first use.
    sd_model: str = DEFAULT_SD_MODEL
    # "cuda" when present; "cpu" only when asked for (small or dev models).
    device: str | None = None
    # "auto" picks from the GPU's memory; see webapp.generation for the modes.
    memory_mode: str = "auto"
    # LoRAs requests may pick by name (serve --lora, with default scales; --lora-dir: every file in it).
    loras: list[tuple[str, float]] = field(default_factory=list)
    lora_dirs: list[Path] = field(default_factory=list)
    # Speed mode of the served pipeline: auto, eager, compile, fp8 (webapp.generation.speed).
    speed: str = "auto"
    # Batched queue: at most this many concurrent generate requests share one pipeline call. 1 = off (the
    # default): every image is then bit-identical to its seed run alone; batched images agree to ~1 grey level.
    max_batch: int = 1
    # Server parse: ONNX Runtime provider (auto = CUDA when onnxruntime-gpu and a GPU are there, else CPU).
    parse_provider: str = "auto"
    # Ray Serve scale-out (webapp.serving): None = single box; "auto" = a local Ray instance; else a cluster
    # address. Generation replicas (one GPU each), or autoscaling bounds when min/max are set.
    ray: str | None = None
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    # Queue: one generation at a time per GPU, at most this many waiting.
    max_queue: int = 16
    # Server parses (CPU, ONNX Runtime): this many at once, at most parse_queue waiting; a lane of their own,
    # so a full GPU queue never refuses a parse.
    parse_workers: int = 2
    parse_queue: int = 64
    # Addresses whose X-Forwarded-For uvicorn believes (comma-separated; "" = nobody; "*" = everyone). None:
    # uvicorn's default (127.0.0.1 and ::1: a proxy on this machine) — but nobody with share, whose relay
    # reaches the server from 127.0.0.1 for every visitor (each could pick their own login back-off address).
    forwarded_allow_ips: str | None = None
    # Where generated images are kept for the session gallery.
    output_dir: Path = DEFAULT_OUTPUT_DIR
