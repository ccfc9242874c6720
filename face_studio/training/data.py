"""Labelled face folders: find image/label pairs, load them, and refuse bad ones with the file's name.

Two layouts are read:

``images/ + masks/`` (what ``face-studio synth`` writes)::

    DIR/images/face_001.jpg     any PNG, JPEG, WebP, BMP or TIFF
    DIR/masks/face_001.png      same stem, same size, one channel of label ids 0..18 (face_studio/labels.py)

CelebAMask-HQ, as downloaded::

    DIR/CelebA-HQ-img/123.jpg                               1024×1024 photos
    DIR/CelebAMask-HQ-mask-anno/0/00123_skin.png            512×512 black/white masks, one per part
                                  .../00123_hair.png ...    (folder k holds images 2000·k … 2000·k+1999)

The part masks are merged in label-id order, later parts winning, as CelebAMask-HQ's own ``g_mask.py`` does;
photos are resized to the masks' size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.images import ImageInputError, load_image
from face_studio.labels import LABEL2ID, NAMES, NUM_LABELS

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
CELEBA_IMAGES = "CelebA-HQ-img"
CELEBA_MASKS = "CelebAMask-HQ-mask-anno"
_PART_FILE = re.compile(r"^(\d+)_([a-z_]+)\.png$")


class DataError(UserError, ValueError):
    """A labelled-data folder or file we can't train or evaluate on; the message names the file."""


@dataclass(frozen=True)
class Sample:
    """One labelled face: the picture and either one label-id mask or CelebAMask-HQ part masks."""

    name: str
    image: Path
    mask: Path | None = None
    parts: tuple[tuple[int, Path], ...] = ()  # (label id, part mask) in merge order


def find_samples(data_dir: str | Path) -> list[Sample]:
    """All labelled faces in ``data_dir`` (either layout), sorted by name.

    Raises :class:`DataError` for a missing folder, an unknown layout, no images, an image without a mask
    (naming it and where its mask should be) or an unknown CelebAMask-HQ part file.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist (it needs images/ + masks/, or CelebAMask-HQ's "
                        f"{CELEBA_IMAGES}/ + {CELEBA_MASKS}/).")
    if (root / "images").is_dir() and (root / "masks").is_dir():
        samples = _find_pairs(root)
    elif (root / CELEBA_IMAGES).is_dir() and (root / CELEBA_MASKS).is_dir():
        samples = _find_celeba(root)
    else:
        raise DataError(f"{root} holds neither images/ + masks/ nor {CELEBA_IMAGES}/ + {CELEBA_MASKS}/: "
                        f"put pictures in images/ and label maps with the same stem in masks/ "
                        f"(`face-studio synth --out DIR` writes an example).")
    if not samples:
        raise DataError(f"no images found in {root}: add PNG/JPEG files ({', '.join(IMAGE_EXTS)}).")
    return samples


def images_in(folder: Path) -> list[Path]:
    """The pictures (IMAGE_EXTS, any case) directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _find_pairs(root: Path) -> list[Sample]:
    masks = {p.stem: p for p in (root / "masks").iterdir() if p.is_file() and p.suffix.lower() == ".png"}
    samples = []
    for image in images_in(root / "images"):
        mask = masks.get(image.stem)
        if mask is None:
            raise DataError(f"missing mask for {image}: expected {root / 'masks' / (image.stem + '.png')} "
                            f"(a PNG of label ids 0..{NUM_LABELS - 1}); add it or remove the image.")
        samples.append(Sample(name=image.name, image=image, mask=mask))
    return samples


def _find_celeba(root: Path) -> list[Sample]:
    parts: dict[int, list[tuple[int, Path]]] = {}
    for path in sorted((root / CELEBA_MASKS).rglob("*.png")):
        match = _PART_FILE.match(path.name)
        if not match or match.group(2) not in LABEL2ID or match.group(2) == "background":
            raise DataError(f"unexpected file {path} in {CELEBA_MASKS}/: part masks are named "
                            f"<5-digit id>_<part>.png with a part from {', '.join(NAMES[1:])}.")
        parts.setdefault(int(match.group(1)), []).append((LABEL2ID[match.group(2)], path))
    samples = []
    for image in images_in(root / CELEBA_IMAGES):
        if not image.stem.isdigit():
            raise DataError(f"unexpected image name {image}: CelebA-HQ images are named <id>.jpg.")
        idx = int(image.stem)
        if idx not in parts:
            raise DataError(f"missing mask for {image}: no part masks {idx:05d}_*.png under "
                            f"{root / CELEBA_MASKS / str(idx // 2000)}/.")
        samples.append(Sample(name=image.name, image=image, parts=tuple(sorted(parts[idx]))))
    return samples


def _open_mask(path: Path) -> Image.Image:
    try:
        mask = Image.open(path)
        mask.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"mask {path} can't be read ({err}): re-save it as a PNG.") from None
    return mask


def _mask_ids(path: Path) -> np.ndarray:
    """A label-id mask as a 2-D array (grey, palette or 16-bit PNG; RGB only if its channels agree)."""
    mask = _open_mask(path)
    if mask.mode in ("L", "P", "I", "I;16", "1"):
        return np.asarray(mask).astype(np.int64)
    arr = np.asarray(mask.convert("RGB"))
    if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
        raise DataError(f"mask {path} is a colour ({mask.mode}) image: masks hold label ids "
                        f"0..{NUM_LABELS - 1} in one channel (a grey or palette PNG), not colours.")
    return arr[..., 0].astype(np.int64)


def load_sample(sample: Sample) -> tuple[Image.Image, np.ndarray]:
    """The RGB picture and its ``(H, W)`` uint8 label map, checked.

    Raises :class:`DataError` naming the file for an unreadable image or mask, a size mismatch, or label
    ids of 19 and above.
    """
    try:
        image = load_image(sample.image, what="training image")
    except ImageInputError as err:
        raise DataError(str(err)) from None
    if sample.mask is not None:
        labels = _mask_ids(sample.mask)
        if labels.shape != (image.height, image.width):
            raise DataError(f"size mismatch: mask {sample.mask} is {labels.shape[1]}×{labels.shape[0]} but image "
                            f"{sample.image} is {image.width}×{image.height}; they must match pixel for pixel.")
        bad = np.unique(labels[(labels >= NUM_LABELS) | (labels < 0)])
        if bad.size:
            shown = ", ".join(str(int(b)) for b in bad[:8]) + (" …" if bad.size > 8 else "")
            raise DataError(f"mask {sample.mask} holds label id(s) {shown}; ids must be 0..{NUM_LABELS - 1} "
                            f"({', '.join(f'{i}={n}' for i, n in enumerate(NAMES))}).")
        return image, labels.astype(np.uint8)
    return image, _merge_parts(sample, image)


def _merge_parts(sample: Sample, image: Image.Image) -> np.ndarray:
    labels: np.ndarray | None = None
    first: Path | None = None
    for label_id, path in sample.parts:
        part = np.asarray(_open_mask(path).convert("L")) > 127
        if labels is None:
            labels, first = np.zeros(part.shape, dtype=np.uint8), path
        elif part.shape != labels.shape:
            raise DataError(f"size mismatch: part mask {path} is {part.shape[1]}×{part.shape[0]} but {first} is "
                            f"{labels.shape[1]}×{labels.shape[0]}; all masks of one face must match.")
        labels[part] = label_id
    assert labels is not None
    h, w = labels.shape
    if image.width * h != image.height * w:
        raise DataError(f"size mismatch: image {sample.image} is {image.width}×{image.height} but its masks "
                        f"({first}) are {w}×{h}, a different shape.")
    return labels


def load_pair(sample: Sample) -> tuple[Image.Image, np.ndarray]:
    """:func:`load_sample`, with CelebAMask-HQ photos resized to their masks' size."""
    image, labels = load_sample(sample)
    if image.size != (labels.shape[1], labels.shape[0]):
        image = image.resize((labels.shape[1], labels.shape[0]), Image.BILINEAR)
    return image, labels


def check_samples(samples: Sequence[Sample], progress: bool = True) -> None:
    """Load every sample once, so a bad file stops the run before training starts."""
    from tqdm.auto import tqdm

    for sample in tqdm(samples, desc="checking data", unit="face", disable=not progress, leave=False):
        load_pair(sample)


def iter_pairs(samples: Sequence[Sample]) -> Iterator[tuple[Sample, Image.Image, np.ndarray]]:
    for sample in samples:
        image, labels = load_pair(sample)
        yield sample, image, labels


def split(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """A deterministic train/validation split (at least one face in each)."""
    if not 0 < val_fraction < 1:
        raise DataError(f"--val-fraction must be between 0 and 1 (got {val_fraction}).")
    if len(samples) < 2:
        raise DataError(f"{len(samples)} labelled face(s): training needs at least 2 (one for validation).")
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = min(len(samples) - 1, max(1, round(len(samples) * val_fraction)))
    val = sorted(order[:n_val].tolist())
    train = sorted(order[n_val:].tolist())
    return [samples[i] for i in train], [samples[i] for i in val]
