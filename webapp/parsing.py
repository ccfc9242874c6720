"""Face parsing on the server: ONNX Runtime over the same export folder the browser loads.

One lazily loaded session per (export folder, dtype), shared by the Gradio ``parse`` API, the
``face-studio parse`` batch CLI and the Edit view. CUDA execution provider when ONNX Runtime has it,
else CPU. Pre/post-processing is :mod:`face_studio.preprocess` (the browser has its JS twin).

Face-aware parsing (:func:`parse_image`): find the faces with the vendored detector (one session per process,
same provider choice as the parser), parse each face's crop at the model's size and paste it back
(:mod:`face_studio.faces.parse`); ``faces`` = ``auto`` (every face, the whole image when none), ``largest`` or
``off`` (the whole image, as before).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.faces.detector import FaceDetector
from face_studio.faces.parse import FaceParse, parse_faces
from face_studio.faces.spec import DEFAULT_MODE as DEFAULT_FACES
from face_studio.faces.spec import DETECTOR_FOLDER
from face_studio.faces.spec import MODES as FACES_MODES
from face_studio.labels import LABELS
from face_studio.onnx_files import DTYPE_FILES, DTYPES, INPUT_NAME, OUTPUT_NAME
from face_studio.preprocess import input_size, logits_to_labels, to_pixel_values

log = logging.getLogger(__name__)

# q8 is dynamically quantized: activation scales are computed over the whole input tensor, so a batch
# would change each image's result. Those dtypes run one image per model call.
BATCH_INVARIANT: dict[str, bool] = {"fp32": True, "fp16": True, "q8": False}
DEFAULT_DTYPE = "q8"  # the browser's WASM default: server fallback and browser agree out of the box
EXPORT_HINT = "face-studio export --out {dir}"


class ParserNotReady(UserError):
    """The export folder is missing or incomplete; the message says how to make it."""


def missing_export_message(export_dir: str | Path, dtype: str | None = None) -> str | None:
    """``None`` when ``export_dir`` holds a usable export (for ``dtype`` if given), else what to do."""
    export_dir = Path(export_dir)
    needed = [DTYPE_FILES[dtype]] if dtype else list(DTYPE_FILES.values())
    if not export_dir.is_dir():
        problem = f"no face-parser export at {export_dir}"
    elif not any((export_dir / name).is_file() for name in needed):
        problem = f"{export_dir} holds no ONNX model ({', '.join(needed)})"
    else:
        return None
    return (f"{problem}. Make one with `{EXPORT_HINT.format(dir=export_dir)}` "
            f"(or start the server with `--parser DIR` pointing at an export).")


def available_dtypes(export_dir: str | Path) -> list[str]:
    """The dtypes whose ONNX file exists in ``export_dir``."""
    return [d for d, name in DTYPE_FILES.items() if (Path(export_dir) / name).is_file()]


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPE_FILES:
        raise UserError(f"unknown parser dtype {dtype!r}: choose one of {', '.join(DTYPES)}.")
    return dtype


PROVIDERS: dict[str, str] = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *PROVIDERS)
CUDA_EP_HINT = ("install onnxruntime-gpu in place of onnxruntime (pip uninstall onnxruntime && pip install "
                "onnxruntime-gpu) on a machine with an NVIDIA GPU")


def select_providers(requested: str = "auto") -> tuple[list[str], str | None]:
    """ONNX Runtime execution providers for ``requested`` (auto, cuda, cpu), and a note when CUDA was asked
    for but cannot be used (then it falls back to CPU). auto: CUDA when this build has it and a GPU is
    visible, else CPU. CPU is always last, as the fallback."""
    import onnxruntime as ort

    if requested not in PROVIDER_CHOICES:
        raise UserError(f"unknown parse provider {requested!r}: choose one of {', '.join(PROVIDER_CHOICES)}.")
    cpu = [PROVIDERS["cpu"]]
    if requested == "cpu":
        return cpu, None
    if PROVIDERS["cuda"] in ort.get_available_providers():
        return [PROVIDERS["cuda"], *cpu], None
    if requested == "cuda":
        return cpu, (f"CUDA was asked for the server parse, but this ONNX Runtime ({ort.__version__}) has no "
                     f"CUDAExecutionProvider: parsing on the CPU. For the GPU, {CUDA_EP_HINT}.")
    return cpu, None


@dataclass
class ParseResult:
    """One parsed image: the label map at the image's size and where the time went (milliseconds)."""

    labels: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


class FaceParser:
    """Owner of one ONNX Runtime session over ``<export_dir>/onnx/model*.onnx`` for ``dtype``, loaded on first use."""

    def __init__(self, export_dir: str | Path, dtype: str = DEFAULT_DTYPE, provider: str = "auto") -> None:
        self.export_dir = Path(export_dir)
        self.requested_provider = provider
        self.provider_note: str | None = None  # set at load when CUDA was asked for and is not there
        self.dtype = check_dtype(dtype)
        self.model_path = self.export_dir / DTYPE_FILES[dtype]
        self.input_size = input_size(self.export_dir)  # the export's preprocessor_config (512 by default)
        self._session = None
        self._lock = threading.Lock()
        self.load_ms: float | None = None

    @property
    def session(self):
        """The ONNX Runtime session (created once, thread-safe)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._load()
        return self._session

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _load(self):
        import onnxruntime as ort

        message = missing_export_message(self.export_dir, self.dtype)
        if message:
            raise ParserNotReady(message)
        if not self.model_path.is_file():
            have = ", ".join(available_dtypes(self.export_dir)) or "none"
            raise ParserNotReady(f"{self.export_dir} has no {self.dtype} model ({self.model_path.name}); "
                                 f"dtypes present: {have}. Re-run `{EXPORT_HINT.format(dir=self.export_dir)}`.")
        providers, self.provider_note = select_providers(self.requested_provider)
        if self.provider_note:
            log.warning("%s", self.provider_note)
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(str(self.model_path), providers=providers)
        except Exception as err:  # onnxruntime raises its own exception types for corrupt files
            raise ParserNotReady(f"could not load {self.model_path}: {err}. Re-run "
                                 f"`{EXPORT_HINT.format(dir=self.export_dir)}`.") from None
        self.load_ms = (time.perf_counter() - start) * 1000
        return session

    def logits(self, pixel_values: np.ndarray) -> np.ndarray:
        """Run the model on an ``(N, 3, H, W)`` float32 batch; returns ``(N, 19, H/4, W/4)`` logits."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values})[0]

    def parse_batch(self, images: list[Image.Image]) -> list[ParseResult]:
        """Parse RGB images (one model call when the dtype allows it); each label map has its image's size."""
        if not images:
            return []
        session = self.session  # load outside the timings
        t0 = time.perf_counter()
        pixels = to_pixel_values(images, self.input_size)
        t1 = time.perf_counter()
        if BATCH_INVARIANT[self.dtype]:
            logits = session.run([OUTPUT_NAME], {INPUT_NAME: pixels})[0]
        else:
            logits = [session.run([OUTPUT_NAME], {INPUT_NAME: item[None]})[0][0] for item in pixels]
        t2 = time.perf_counter()
        results = []
        for image, item in zip(images, logits, strict=True):
            p0 = time.perf_counter()
            labels = logits_to_labels(item, image.height, image.width)
            post = (time.perf_counter() - p0) * 1000
            results.append(ParseResult(labels, {
                "preprocess": (t1 - t0) * 1000 / len(images),
                "model": (t2 - t1) * 1000 / len(images),
                "postprocess": post,
            }))
        return results

    def parse(self, image: Image.Image) -> np.ndarray:
        """``(height, width)`` uint8 label map of one RGB image."""
        return self.parse_batch([image])[0].labels


_PARSERS: dict[tuple[Path, str, str], FaceParser] = {}
_PARSERS_LOCK = threading.Lock()


def get_parser(export_dir: str | Path, dtype: str = DEFAULT_DTYPE, provider: str = "auto") -> FaceParser:
    """The shared :class:`FaceParser` for ``(export_dir, dtype, provider)``: one session per process."""
    key = (Path(export_dir).resolve(), check_dtype(dtype), provider)
    with _PARSERS_LOCK:
        if key not in _PARSERS:
            _PARSERS[key] = FaceParser(key[0], dtype, provider)
        return _PARSERS[key]


_DETECTORS: dict[tuple[Path, str], FaceDetector] = {}


def detector_dir() -> Path:
    """Where the set-up put the converted face detector (``static/vendor/face-detector``; in the wheel too)."""
    from webapp.settings import STATIC_DIR

    return STATIC_DIR / DETECTOR_FOLDER


def get_detector(provider: str = "auto", folder: str | Path | None = None) -> FaceDetector:
    """The shared :class:`FaceDetector` (one session per process and provider choice), checked on first use."""
    key = (Path(folder or detector_dir()).resolve(), provider)
    with _PARSERS_LOCK:
        if key not in _DETECTORS:
            providers, _ = select_providers(provider)
            _DETECTORS[key] = FaceDetector(key[0], providers=providers)
        return _DETECTORS[key]


def check_faces(mode: str | None) -> str:
    """``mode`` (None → the default), or a :class:`UserError` naming the choices."""
    mode = mode or DEFAULT_FACES
    if mode not in FACES_MODES:
        raise UserError(f"unknown faces mode {mode!r}: choose one of {', '.join(FACES_MODES)}.")
    return mode


def parse_image(parser: FaceParser, image: Image.Image, faces: str = DEFAULT_FACES,
                detector: FaceDetector | None = None) -> FaceParse:
    """The face-aware parse of one RGB image with ``parser`` (any object with ``parse_batch``, e.g. a remote
    parser). ``detector`` defaults to :func:`get_detector` with the parser's provider choice."""
    faces = check_faces(faces)
    if faces != "off" and detector is None:
        detector = get_detector(getattr(parser, "requested_provider", "auto"))
    parse_timings: dict[str, float] = {}

    def parse_images(images: list[Image.Image]) -> list[np.ndarray]:
        results = parser.parse_batch(images)
        for result in results:
            for key, value in result.timings.items():
                parse_timings[key] = parse_timings.get(key, 0.0) + value
        return [result.labels for result in results]

    result = parse_faces(image, detector, parse_images, faces)
    result.timings = {**{k: v for k, v in result.timings.items() if k != "parse"}, **parse_timings}
    return result


def faces_summary(result: FaceParse, mode: str) -> dict:
    """The faces part of a summary (CLI ``<name>.json``, server ``parse``): mode, faces, note."""
    return {"faces_mode": mode, "faces": result.faces_json(), "faces_note": result.note}


def area_summary(labels: np.ndarray) -> dict[str, float]:
    """Percent of the image's pixels per label name (all 19, in table order; sums to 100)."""
    counts = np.bincount(labels.ravel(), minlength=len(LABELS))
    total = max(int(labels.size), 1)
    return {label.name: round(100.0 * int(counts[label.id]) / total, 4) for label in LABELS}


def label_map_png(labels: np.ndarray) -> bytes:
    """Single-channel PNG where pixel value = class id."""
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def summary_json(labels: np.ndarray, *, source: str, backend: str, dtype: str,
                 timings: dict[str, float] | None = None, faces: dict | None = None) -> str:
    """The JSON written next to a label map: size, % area per class, how it was made, the faces
    (:func:`faces_summary`)."""
    return json.dumps({
        "source": source,
        "width": int(labels.shape[1]),
        "height": int(labels.shape[0]),
        "backend": backend,
        "dtype": dtype,
        "area_percent": area_summary(labels),
        "timings_ms": {k: round(v, 2) for k, v in (timings or {}).items()},
        **(faces or {}),
    }, indent=1)
