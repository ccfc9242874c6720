"""Distil a small SegFormer student from a big teacher on unlabelled face photos (no masks).

    distil(DistilConfig(teacher="jonathandinu/face-parsing", images="photos/", student="mit-b0", size=256,
                        out="runs/live"))

The teacher's logits are the targets: ``alpha`` · KL(teacher ‖ student) at ``temperature`` (scaled by T²) plus
(1 − ``alpha``) · cross-entropy on the teacher's argmax. The teacher runs once over every photo; its logits, at the
student's logits resolution (``size``/4), and the photos resized to ``size`` are cached in
``OUT/teacher-cache/<key>.safetensors`` (fp16 logits, uint8 pixels), keyed by the teacher's weights sha256, the
image list (names, bytes, mtimes) and both input sizes — so epochs (and ``--resume``) never run the teacher again.
Augmentation is a mirror (the cached logits are mirrored too, with left/right classes swapped: flip_lut) and colour
jitter (the picture only: the student learns the teacher's answer for the clean photo).

Writes, like ``face-studio train``::

    OUT/config.json  OUT/model.safetensors  OUT/preprocessor_config.json   the best checkpoint by agreement
    OUT/training.json                                                     what was distilled, how, and the scores
    OUT/checkpoints/checkpoint-N/                                         Trainer state for --resume
    OUT/checkpoints/run.json                                              what the run was started with

``--resume`` continues the run ``run.json`` describes: only ``--epochs``, ``--workers`` and ``--quiet`` may change
(another student, size, teacher, photo folder or recipe is refused in one line). A damaged latest checkpoint (a
truncated ``model.safetensors``, a missing ``trainer_state.json``) is set aside as ``damaged-checkpoint-N`` and the
run continues from the previous good one, saying so.

"Agreement" is the share of pixels where the student's argmax equals the teacher's, on a held-out split of the
photos. ``face-studio export --model OUT`` takes the folder unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.hashing import sha256
from face_studio.images import load_image
from face_studio.labels import NAMES, NUM_LABELS, flip_lut
from face_studio.preprocess import INPUT_SIZE, MEAN, STD, input_size, to_pixel_values
from face_studio.training import trainer_utils
from face_studio.training.augment import AugmentConfig, colour
from face_studio.training.data import IMAGE_EXTS, images_in
from face_studio.training.synth import MAX_SEED, MAX_SIZE

STUDENTS = ("mit-b0-d64", "tiny", "mit-b0", "mit-b1")  # face_studio/configs.py presets a student may take
DEFAULT_STUDENT = "mit-b0-d64"  # the live student: chosen by measurement (bench/live_students.py, docs/live.md)
DEFAULT_ALPHA = 0.5  # share of the soft KL term; the rest is cross-entropy on the teacher's argmax
DEFAULT_TEMPERATURE = 2.0  # softens both distributions so the teacher's second choices carry signal
# From-scratch rates measured on synthetic faces (tiny: README's recipe); a pretrained --init wants a smaller one.
DEFAULT_LR = {"tiny": 5e-3, "mit-b0": 2e-3, "mit-b0-d64": 2e-3, "mit-b1": 2e-3, "init": 6e-4}
CACHE = "teacher-cache"
LOGITS_STRIDE = 4  # SegFormer's logits are size/4 a side
TEACHER_BATCH = 8
RUN_RECORD = "run.json"  # in OUT/checkpoints: the options a run was started with (--resume must match them)
RESUMABLE = ("epochs", "workers", "progress", "resume")  # the options --resume may change
# The teacher cache holds every photo at the student's size (uint8 RGB) and the teacher's fp16 logits at size/4:
# 3 + 19·2/16 bytes a pixel, in memory while distilling and once on disk.
CACHE_BYTES_PER_PIXEL = 3 + NUM_LABELS * 2 / LOGITS_STRIDE**2
MARGIN_BYTES = 512 * 2**20


@dataclass
class DistilConfig:
    """Everything one distillation run needs; the CLI flags map one to one."""

    teacher: str
    images: str | Path
    out: str | Path
    student: str = DEFAULT_STUDENT
    size: int = 256
    epochs: float = 30.0
    lr: float | None = None  # None: DEFAULT_LR for the student (or for --init)
    batch: int = 16
    alpha: float = DEFAULT_ALPHA
    temperature: float = DEFAULT_TEMPERATURE
    val_fraction: float = 0.1
    seed: int = 0
    resume: bool = False
    augment: bool = True
    init: str | None = None  # a save_pretrained folder or hub id (e.g. nvidia/mit-b0) of the student's size
    teacher_size: int | None = None  # None: the teacher's preprocessor_config (512 for jonathandinu/face-parsing)
    revision: str | None = None  # of the teacher
    workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.student not in STUDENTS:
            raise UserError(f"--student {self.student}: choose one of {', '.join(STUDENTS)}.")
        for flag, size in (("--size", self.size), ("--teacher-size", self.teacher_size)):
            if size is not None and (size < 32 or size % 32 or size > MAX_SIZE):
                raise UserError(f"{flag} must be a multiple of 32 from 32 to {MAX_SIZE} (got {size}): SegFormer "
                                f"downsamples by 32, and memory grows with size². Try 256 (or 320, 384).")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed must be 0…{MAX_SEED} (got {self.seed}).")
        if self.workers is not None and not 0 <= self.workers <= 64:
            raise UserError(f"--workers must be 0…64 (got {self.workers}); leave it out for the default.")
        if self.epochs <= 0:
            raise UserError(f"--epochs must be positive (got {self.epochs}).")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr must be a positive number (got {self.lr}).")
        if self.batch < 1:
            raise UserError(f"--batch must be at least 1 (got {self.batch}).")
        if not 0 <= self.alpha <= 1:
            raise UserError(f"--alpha must be between 0 (argmax cross-entropy only) and 1 (soft KL only), "
                            f"got {self.alpha}.")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise UserError(f"--temperature must be a positive number (got {self.temperature}); 1–4 is usual.")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction must be between 0 and 1 (got {self.val_fraction}).")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR["init" if self.init else self.student]


# ---------------------------------------------------------------------------------------------------------------
# Inputs: photos and teacher


def find_images(folder: str | Path, flag: str = "--images") -> list[Path]:
    """The pictures directly in ``folder`` (or, when it has none, in ``folder/images/``), sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{flag} {root}: no such folder; give a folder of face photos (JPEG, PNG, WebP).")
    found = images_in(root)
    if not found and (root / "images").is_dir():
        found = images_in(root / "images")
    if not found:
        raise UserError(f"{flag} {root}: no images in the folder (or an images/ subfolder); add face photos "
                        f"({', '.join(IMAGE_EXTS)}).")
    return found


def _looks_like_path(spec: str) -> bool:
    """A local path rather than a hub id (``owner/name``): absolute, relative with ./ or ../, ~, or deeper."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or os.sep != "/" and os.sep in spec


def _teacher_file(teacher: str, name: str, revision: str | None) -> Path | None:
    path = Path(teacher)
    if path.exists():
        return path / name if (path / name).is_file() else None
    from transformers.utils import cached_file

    found = cached_file(teacher, name, revision=revision, _raise_exceptions_for_missing_entries=False)
    return Path(found) if found else None


def check_teacher(teacher: str, revision: str | None = None, flag: str = "--teacher") -> None:
    """Refuse, from its config alone, a teacher that :func:`load_teacher` would refuse (all but bad weights)."""
    from transformers import AutoConfig

    if _looks_like_path(teacher) and not Path(teacher).exists():
        raise UserError(f"{flag} {teacher}: no such folder; give a save_pretrained folder or a hub id such as "
                        f"jonathandinu/face-parsing.")
    trainer_utils.check_model_folder(teacher, flag, "jonathandinu/face-parsing")
    try:
        config = AutoConfig.from_pretrained(teacher, revision=revision)
    except (OSError, ValueError) as err:
        raise UserError(f"{flag} {teacher}: could not read its config ({err}). Give a local folder or a hub id "
                        f"such as jonathandinu/face-parsing; offline, download it first.") from None
    if config.model_type != "segformer":
        raise UserError(f"{flag} {teacher} is a {config.model_type!r} model, not a SegFormer: give a SegFormer face "
                        f"parser such as jonathandinu/face-parsing.")
    names = [str(config.id2label.get(i, config.id2label.get(str(i), "?"))).strip().lower()
             for i in range(config.num_labels)]
    if names != list(NAMES):
        raise UserError(f"{flag} {teacher} predicts {config.num_labels} classes ({', '.join(names[:6])}"
                        f"{' …' if len(names) > 6 else ''}), not the {NUM_LABELS} face labels in CelebAMask-HQ "
                        f"order (background, skin, nose, …, cloth): give a 19-class face parser.")


def load_teacher(teacher: str, revision: str | None = None, flag: str = "--teacher"):
    """A 19-class face ``SegformerForSemanticSegmentation`` (eval mode) from a folder or hub id; safetensors only.

    Raises :class:`UserError` for a folder without config.json or model.safetensors, a model that is not a
    SegFormer, or one whose labels are not the 19 face labels in order.
    """
    from transformers import SegformerForSemanticSegmentation

    check_teacher(teacher, revision, flag)
    try:
        model = SegformerForSemanticSegmentation.from_pretrained(teacher, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise UserError(f"{flag} {teacher}: could not load safetensors weights ({err}).") from None
    return model.eval()


def teacher_input_size(teacher: str, revision: str | None = None) -> int:
    """The side the teacher was trained at: its preprocessor_config.json (512 when absent)."""
    found = _teacher_file(teacher, "preprocessor_config.json", revision)
    return input_size(found.parent) if found else INPUT_SIZE


def cache_key(teacher_sha: str, images: list[Path], teacher_size: int, size: int) -> str:
    """What the cached targets depend on: the teacher's weights, every photo (name, bytes, mtime), both sizes."""
    digest = hashlib.sha256(f"{teacher_sha}|{teacher_size}|{size}".encode())
    for p in images:
        st = p.stat()
        digest.update(f"|{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def teacher_targets(model, images: list[Path], teacher_size: int, size: int, *, batch: int = TEACHER_BATCH,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run the teacher over ``images`` once: ``(pixels, logits)``.

    ``pixels``: ``(N, size, size, 3)`` uint8, each photo resized (bilinear) to the student's input.
    ``logits``: ``(N, 19, size/4, size/4)`` fp16, the teacher's logits (at ``teacher_size`` input) resized
    to the student's logits grid. Raises :class:`UserError` naming an unreadable photo, or non-finite logits.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    grid = size // LOGITS_STRIDE
    device = next(model.parameters()).device
    pixels = np.empty((len(images), size, size, 3), dtype=np.uint8)
    logits = np.empty((len(images), NUM_LABELS, grid, grid), dtype=np.float16)
    bar = tqdm(total=len(images), desc="teacher logits", unit="photo", disable=not progress, file=sys.stderr)
    for start in range(0, len(images), batch):
        paths = images[start:start + batch]
        loaded = [load_image(p, what="photo") for p in paths]  # ImageInputError (a UserError) names the file
        for j, image in enumerate(loaded):
            pixels[start + j] = np.asarray(image.resize((size, size), Image.BILINEAR))
        with torch.no_grad():
            out = model(pixel_values=torch.from_numpy(to_pixel_values(loaded, teacher_size)).to(device)).logits
            out = F.interpolate(out.float(), size=(grid, grid), mode="bilinear", align_corners=False,
                                antialias=out.shape[-1] > grid)
        bad = [paths[j].name for j in range(len(paths)) if not torch.isfinite(out[j]).all()]
        if bad:
            raise UserError(f"the teacher's logits for {', '.join(bad[:3])} are not finite (NaN/inf): the teacher's "
                            f"weights are broken; re-download or re-train it.")
        logits[start:start + len(paths)] = out.clamp(-6e4, 6e4).cpu().numpy().astype(np.float16)
        bar.update(len(paths))
    bar.close()
    return pixels, logits


def load_or_make_cache(cfg: DistilConfig, images: list[Path], folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The teacher's targets for ``images``, from ``folder/<key>.safetensors`` or computed once and saved there."""
    from safetensors.numpy import load_file, save

    from face_studio.atomic import atomic_write

    check_teacher(cfg.teacher, cfg.revision)  # before anything is hashed or written
    weights = _teacher_file(cfg.teacher, "model.safetensors", cfg.revision)
    teacher_size = cfg.teacher_size or teacher_input_size(cfg.teacher, cfg.revision)
    # The weights load only to hash them (no single model.safetensors, e.g. sharded) or on a cache miss.
    model = load_teacher(cfg.teacher, cfg.revision) if weights is None else None
    sha = sha256(weights) if weights is not None else hashlib.sha256(
        b"".join(t.detach().cpu().numpy().tobytes() for t in model.state_dict().values())).hexdigest()
    key = cache_key(sha, images, teacher_size, cfg.size)
    path = folder / f"{key}.safetensors"
    info = {"teacher": cfg.teacher, "teacher_sha256": sha, "teacher_size": teacher_size, "cache": str(path),
            "cached": path.is_file()}
    if path.is_file():
        tensors = load_file(str(path))
        return tensors["pixels"], tensors["logits"], info
    import torch

    if model is None:
        model = load_teacher(cfg.teacher, cfg.revision)
    if torch.cuda.is_available():
        model.to("cuda")
    pixels, logits = teacher_targets(model, images, teacher_size, cfg.size, progress=cfg.progress)
    meta = {"teacher": cfg.teacher, "teacher_sha256": sha, "teacher_size": str(teacher_size),
            "size": str(cfg.size), "images": json.dumps([str(p) for p in images])}
    atomic_write(path, save({"pixels": pixels, "logits": logits}, metadata=meta))
    return pixels, logits, info


# ---------------------------------------------------------------------------------------------------------------
# Student, loss, dataset


def build_student(preset: str, init: str | None = None):
    """A ``SegformerForSemanticSegmentation`` student: random weights in ``preset``, or ``init``'s weights (a
    folder or hub id whose encoder is that preset's size; a new 19-class head when its labels differ)."""
    from transformers import SegformerForSemanticSegmentation

    from face_studio.configs import PRESETS, face_parser_config
    from face_studio.training.train import load_base

    if init is None:
        return SegformerForSemanticSegmentation(face_parser_config(preset))
    model = load_base(init)
    want = PRESETS[preset]
    got = {"depths": list(model.config.depths), "hidden_sizes": list(model.config.hidden_sizes)}
    if got != {"depths": want["depths"], "hidden_sizes": want["hidden_sizes"]}:
        raise UserError(f"--init {init} has encoder depths {got['depths']} and widths {got['hidden_sizes']}, not "
                        f"--student {preset}'s ({want['depths']}, {want['hidden_sizes']}): pick the matching "
                        f"--student (nvidia/mit-b0 → mit-b0 or mit-b0-d64, nvidia/mit-b1 → mit-b1).")
    if model.config.decoder_hidden_size != want["decoder_hidden_size"]:
        # A narrower decoder than --init's (mit-b0-d64 from nvidia/mit-b0): its encoder, a new decoder.
        student = SegformerForSemanticSegmentation(face_parser_config(preset))
        student.segformer.load_state_dict(model.segformer.state_dict())
        return student
    return model


def distillation_loss(student_logits, teacher_logits, alpha: float = DEFAULT_ALPHA,
                      temperature: float = DEFAULT_TEMPERATURE):
    """``alpha`` · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − ``alpha``) · CE(s, argmax t), averaged over pixels.

    Both ``(N, 19, h, w)``; the student's logits are resized to the teacher's grid if they differ.
    """
    import torch.nn.functional as F

    if student_logits.shape[-2:] != teacher_logits.shape[-2:]:
        student_logits = F.interpolate(student_logits, size=teacher_logits.shape[-2:], mode="bilinear",
                                       align_corners=False)
    teacher_logits = teacher_logits.float()
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                  log_target=True, reduction="none").sum(dim=1).mean() * (t * t)
    ce = F.cross_entropy(student_logits, teacher_logits.argmax(dim=1))
    return alpha * kl + (1 - alpha) * ce


_FLIP_LUT = flip_lut()


def mirror_logits(logits):
    """Logits of the mirrored picture: flip the width axis and swap left/right classes (``l_eye``↔``r_eye``…)."""
    return logits[..., _FLIP_LUT, :, :].flip(-1)


class DistilDataset:
    """Cached photos and teacher logits as batches: ``pixel_values`` (3, S, S), ``teacher_logits`` (19, S/4, S/4)."""

    def __init__(self, pixels: np.ndarray, logits: np.ndarray, indices: list[int], augment: bool) -> None:
        self.pixels = pixels
        self.logits = logits
        self.indices = indices
        self.augment = augment
        self.colour = AugmentConfig()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        import torch

        k = self.indices[i]
        pixels = self.pixels[k]
        target = torch.from_numpy(self.logits[k].astype(np.float32))
        if self.augment:
            # Seeded from torch's generator, which the Trainer seeds and restores on --resume.
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            if rng.random() < 0.5:
                pixels = pixels[:, ::-1]
                target = mirror_logits(target)
            pixels = np.asarray(colour(Image.fromarray(np.ascontiguousarray(pixels)), rng, self.colour))
        values = ((pixels.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)
        return {"pixel_values": torch.from_numpy(np.ascontiguousarray(values)), "teacher_logits": target}


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A deterministic train/held-out split of ``n`` photos (at least one in each)."""
    if n < 2:
        raise UserError(f"{n} photo(s): distillation needs at least 2 (one is held out to measure agreement).")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


# ---------------------------------------------------------------------------------------------------------------
# Trainer pieces


def _argmax_logits(logits, labels):
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=1)


class _AgreementMetrics(trainer_utils.BatchConfusion):
    """``compute_metrics`` for ``batch_eval_metrics``: student argmax vs teacher argmax over the held-out photos."""

    def targets(self, label_ids: np.ndarray) -> np.ndarray:
        return label_ids.argmax(axis=1)  # the teacher's logits

    def result(self, scores: dict) -> dict:
        return {"agreement": scores["pixel_accuracy"], "miou_vs_teacher": scores["miou"]}


def _trainer_class(alpha: float, temperature: float, lr: float):
    import torch

    from face_studio.training.train import _trainer_class as segformer_trainer

    class DistilTrainer(segformer_trainer()):
        """The fine-tuning Trainer (checkpoints load through from_pretrained) with the distillation loss."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outputs = model(pixel_values=inputs["pixel_values"])
            loss = distillation_loss(outputs.logits, inputs["teacher_logits"], alpha, temperature)
            if model.training and not torch.isfinite(loss.detach()).item():
                raise UserError(f"the distillation loss became {loss.item()} at step {self.state.global_step + 1}: "
                                f"training diverged. Lower --lr (it was {lr:g}) and run again.")
            return (loss, outputs) if return_outputs else loss

    return DistilTrainer


def _epoch_scores(logs: dict) -> tuple[str, str, str]:
    """The progress bar's agreement and the line it prints after each evaluation."""
    return ("agreement", f"{logs['eval_agreement']:.1%}",
            f"agreement with the teacher {logs['eval_agreement']:.2%}, mIoU vs teacher "
            f"{logs['eval_miou_vs_teacher']:.4f}")


# ---------------------------------------------------------------------------------------------------------------
# The run


def distil(cfg: DistilConfig) -> dict:
    """Distil, keep the best checkpoint by held-out agreement in ``cfg.out``, and return the run summary.

    A run that fails in a folder it created removes that folder (and any parent it created): nothing
    half-written is left.
    """
    out = Path(cfg.out)
    created = _first_missing(out)
    try:
        with trainer_utils.hf_progress_bars(cfg.progress):
            return _distil(cfg)
    except Exception:  # not KeyboardInterrupt: an interrupted run keeps its checkpoints for --resume
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (what a run would create), or None."""
    path = path.absolute()
    missing = None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing


def _make_out(out: Path) -> None:
    """Create ``--out`` now, so an unwritable place fails before any work, in one line."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    try:
        (out / trainer_utils.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(f"--out {out}: can't write there ({err.strerror or err}); choose a folder you can "
                        f"write to.") from None


def check_resources(out: Path, n_photos: int, size: int, cached: bool = False) -> None:
    """Refuse a run whose teacher cache can't fit in memory (or, when not cached yet, on disk) before any work."""
    need = int(n_photos * size * size * CACHE_BYTES_PER_PIXEL)
    fix = "lower --size or use fewer photos"
    available = _available_memory()
    if available is not None and need + MARGIN_BYTES > available:
        raise UserError(f"{n_photos} photos at --size {size} need about {need / 2**30:.1f} GiB of memory for the "
                        f"teacher's targets, but only {available / 2**30:.1f} GiB is available: {fix}.")
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if not cached and need + MARGIN_BYTES > free:
        raise UserError(f"{n_photos} photos at --size {size} need about {need / 2**30:.1f} GiB on disk for the "
                        f"teacher cache, but only {free / 2**30:.1f} GiB is free at {probe}: {fix}, or write "
                        f"elsewhere.")


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _images_digest(images: list[Path]) -> str:
    """The photo list as a run depends on it (names and sizes; its split is drawn from this list)."""
    digest = hashlib.sha256()
    for p in images:
        digest.update(f"{p.name}:{p.stat().st_size}|".encode())
    return digest.hexdigest()[:16]


def run_record(cfg: DistilConfig, images: list[Path]) -> dict:
    """What a run is started with: every option --resume may not change, the photo folder and its photos."""
    # The folders may move: the photos are compared by name and size, not by where they are.
    options = {k: v for k, v in asdict(cfg).items() if k not in (*RESUMABLE, "images", "out")}
    return {"options": options, "images": str(Path(cfg.images).resolve()), "photos": len(images),
            "photos_digest": _images_digest(images)}


def check_same_run(ckpt_dir: Path, record: dict) -> None:
    """--resume: refuse, in one line, options or photos that differ from those the run was started with."""
    path = ckpt_dir / RUN_RECORD
    if not path.is_file():
        return  # a run from before run.json was written: nothing to compare
    try:
        started = json.loads(path.read_text())
        old = started["options"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"--resume: {path} is damaged, so this run can't be checked; start again without --resume "
                        f"in a new --out.") from None
    flags = {"val_fraction": "--val-fraction", "teacher_size": "--teacher-size", "augment": "--augment"}
    changed = [(k, old.get(k), v) for k, v in record["options"].items() if old.get(k) != v]
    if changed:
        shown = ", ".join(f"{flags.get(k, '--' + k)} {_short(v)} (was {_short(was)})" for k, was, v in changed[:3])
        raise UserError(f"--resume continues the run as it was started: {shown}. Only --epochs, --workers and "
                        f"--quiet may change; use the same options, or start a new run in another --out.")
    if started.get("photos_digest") != record["photos_digest"]:
        raise UserError(f"--resume: --images holds other photos than the run started with ({started.get('photos')} "
                        f"then, {record['photos']} now, or renamed or edited): resume on the same photos, or start "
                        f"a new run in another --out.")


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint can't be resumed from (unreadable trainer state, missing or truncated weights), or None."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError) as err:
        return f"trainer_state.json is unreadable ({type(err).__name__})"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return "it has no model.safetensors"
    try:  # a safetensors file: 8-byte header length, JSON header, then the tensors' bytes up to the last offset
        with weights.open("rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        end = 8 + header_len + max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                                   default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return "model.safetensors is damaged (unreadable header)"
    size = weights.stat().st_size
    if size != end:
        return f"model.safetensors is truncated ({size:,} of {end:,} bytes)"
    return None


def usable_checkpoint(ckpt_dir: Path, warn=print) -> Path:
    """The newest checkpoint that can be resumed from; damaged newer ones are renamed ``damaged-checkpoint-N``
    (kept for a look, out of the Trainer's way), each with a note."""
    while True:
        last = trainer_utils.last_checkpoint(ckpt_dir)
        if last is None:
            raise UserError(f"--resume: no usable checkpoint in {ckpt_dir} (all were damaged); start again without "
                            f"--resume in a new --out.")
        problem = checkpoint_problem(last)
        if problem is None:
            return last
        aside = last.with_name(f"damaged-{last.name}")
        shutil.rmtree(aside, ignore_errors=True)
        last.rename(aside)
        warn(f"note: {last.name} can't be resumed from: {problem}; set aside as {aside.name}, continuing from the "
             f"checkpoint before it.")


def _distil(cfg: DistilConfig) -> dict:
    from transformers import set_seed

    from face_studio.atomic import atomic_write
    from face_studio.training.train import _save_final

    # 1. Check inputs before any work: --resume vs the folder, the photos, the teacher's config, the run's
    #    record (--resume); make --out (an unwritable one fails here); memory and disk for the teacher cache.
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    ckpt_dir, last = trainer_utils.check_resume(out, cfg.resume)
    images = find_images(cfg.images)
    train_idx, val_idx = split_indices(len(images), cfg.val_fraction, cfg.seed)
    check_teacher(cfg.teacher, cfg.revision)
    record = run_record(cfg, images)
    if cfg.resume:
        check_same_run(ckpt_dir, record)
    _make_out(out)
    check_resources(out, len(images), cfg.size, cached=cfg.resume)
    if cfg.resume:
        last = usable_checkpoint(ckpt_dir, warn=lambda line: print(line, file=sys.stderr))
    set_seed(cfg.seed)
    student = build_student(cfg.student, cfg.init)  # before the teacher runs: a bad --init fails fast

    # 2. The teacher's targets, computed once (or read from the cache).
    pixels, logits, cache_info = load_or_make_cache(cfg, images, out / CACHE)
    if not cfg.resume:
        atomic_write(ckpt_dir / RUN_RECORD, (json.dumps(record, indent=2) + "\n").encode())

    # 3. Trainer: evaluate and checkpoint every epoch, keep the best by agreement with the teacher.
    args = trainer_utils.training_arguments(
        ckpt_dir, epochs=cfg.epochs, lr=cfg.learning_rate, batch=cfg.batch, seed=cfg.seed, workers=cfg.workers,
        train_items=len(train_idx), metric="agreement", label_names=["teacher_logits"])
    trainer = _trainer_class(cfg.alpha, cfg.temperature, cfg.learning_rate)(
        model=student,
        args=args,
        train_dataset=DistilDataset(pixels, logits, train_idx, cfg.augment),
        eval_dataset=DistilDataset(pixels, logits, val_idx, False),
        compute_metrics=_AgreementMetrics(),
        preprocess_logits_for_metrics=_argmax_logits,
    )
    progress = trainer_utils.add_progress_bar(trainer, cfg.progress, "distilling", "eval_agreement", _epoch_scores)

    # 4. Train (or continue from the latest checkpoint).
    started = time.time()
    trainer.train(resume_from_checkpoint=str(last) if cfg.resume else None)
    seconds = time.time() - started

    # 5. Save the best student (safetensors) atomically, with its input size and a summary.
    history = [{"epoch": round(h["epoch"], 3), "val_agreement": h["eval_agreement"],
                "val_miou_vs_teacher": h["eval_miou_vs_teacher"]}
               for h in trainer.state.log_history if "eval_agreement" in h]
    summary = {
        "kind": "distil",
        "teacher": cfg.teacher,
        "teacher_sha256": cache_info["teacher_sha256"],
        "teacher_size": cache_info["teacher_size"],
        "student": cfg.student,
        "images": str(Path(cfg.images).resolve()),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "learning_rate": cfg.learning_rate,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "train_photos": len(train_idx),
        "val_photos": len(val_idx),
        "val_names": [images[i].name for i in val_idx],
        "cache": cache_info["cache"],
        "cache_reused": cache_info["cached"],
        **trainer_utils.run_record(trainer, progress, last, cfg.resume, seconds, history, "val_agreement"),
    }
    _save_final(trainer.model, out, cfg.size, summary)
    return summary
