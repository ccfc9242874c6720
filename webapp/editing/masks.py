"""Masks for editing: class list → mask through the one label table; grow/shrink; feather; checks.

Conventions: a *mask* is a bool array (True = regenerate); an *alpha* is uint8 0…255 (255 = take the
generated pixel). Outside the alpha (alpha == 0) the result is a bit-exact copy of the input.

Growing and feathering cost time in proportion to pixels × radius, so :func:`prepare` runs them at SD3's
working size (≤ 1 MP) and scales the result up: a 36 MP photo with grow 128 costs what a 1 MP one does.
Callers run it before taking the GPU lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from face_studio.errors import UserError
from face_studio.labels import ALIASES, NAMES, resolve_regions

MAX_GROW = 128  # px; more than this is a different edit (use a hand-painted mask)
MAX_FEATHER = 64
# A mask covering (almost) the whole image is not a local edit: Img2Img restyles the whole picture.
MAX_COVERAGE = 0.995


class MaskError(UserError):
    """A mask or region list that cannot be used; the message says what to change."""


def region_names(regions: str | list[str] | tuple[str, ...], what: str = "regions") -> list[str]:
    """The names in ``regions`` (comma-separated text or a list), each one the label table knows; [] for none.

    Every name is tried on its own, so any odd one ("²", which ``str.isdigit`` accepts and ``int`` refuses)
    gets the same message as a misspelt one, naming ``what``.
    """
    parts = regions.split(",") if isinstance(regions, str) else list(regions)
    names = [n.strip() for n in parts if n.strip()]
    unknown = []
    for name in names:
        try:
            resolve_regions([name])
        except ValueError:
            unknown.append(name)
    if unknown:
        raise MaskError(f"{what}: unknown region name(s): {', '.join(repr(u) for u in unknown)}. Use label names "
                        f"({', '.join(NAMES)}) or groups ({', '.join(ALIASES)}).")
    return names


def regions_to_mask(labels: np.ndarray, regions: str | list[str] | tuple[str, ...]) -> tuple[np.ndarray, list[int]]:
    """Mask of the pixels whose label is one of ``regions`` (names, groups like "lips", or ids)."""
    try:
        ids = resolve_regions(region_names(regions))
    except ValueError as err:
        raise MaskError(str(err)) from None
    return np.isin(labels, ids), ids


def mask_from_image(mask: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A user's mask PNG (white = regenerate) as a bool array; it must be the image's size."""
    arr = np.asarray(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    h, w = arr.shape[:2]
    if (w, h) != tuple(size):
        raise MaskError(f"the mask is {w}×{h} but the image is {size[0]}×{size[1]}: give a mask of the same "
                        "size (white = regenerate, black = keep).")
    return arr >= 128


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """Dilate (``px`` > 0) or erode (``px`` < 0) by ``px`` pixels (an octagon, close to a disk)."""
    px = int(px)
    if abs(px) > MAX_GROW:
        raise MaskError(f"grow must be between -{MAX_GROW} and {MAX_GROW} pixels, got {px}.")
    if px == 0:
        return mask.copy()
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    op = ImageFilter.MaxFilter(3) if px > 0 else ImageFilter.MinFilter(3)
    for _ in range(abs(px)):
        img = img.filter(op)
    return np.asarray(img) >= 128


def feather(mask: np.ndarray, px: int) -> np.ndarray:
    """uint8 alpha: the mask blurred by ``px`` (Gaussian, sigma = px / 2); the mask itself stays 255.

    Feathering only reaches outward, so every pixel the user selected is fully regenerated and the
    soft edge blends into the kept area.
    """
    px = int(px)
    if not 0 <= px <= MAX_FEATHER:
        raise MaskError(f"feather must be between 0 and {MAX_FEATHER} pixels, got {px}.")
    hard = mask.astype(np.uint8) * 255
    if px == 0:
        return hard
    soft = np.asarray(Image.fromarray(hard).filter(ImageFilter.GaussianBlur(px / 2)))
    # Rescale so the blur's inner half reaches 255 at the mask edge; keep the selected pixels at 255.
    soft = np.clip(soft.astype(np.int32) * 2, 0, 255).astype(np.uint8)
    return np.maximum(soft, hard)


def check_mask(mask: np.ndarray) -> float:
    """Refuse an empty mask or one covering everything; return the covered fraction."""
    coverage = float(mask.mean())
    if coverage == 0:
        raise MaskError("the mask is empty: pick at least one region present in the image (or paint strokes), "
                        "or grow the mask.")
    if coverage >= MAX_COVERAGE:
        raise MaskError(f"the mask covers {coverage:.1%} of the image: that is not a local edit. Use Restyle "
                        "(Img2Img with a strength) or Generate instead, or pick fewer regions.")
    return coverage


@dataclass
class PreparedMask:
    grown: np.ndarray  # bool, image size: what is regenerated
    alpha: np.ndarray  # uint8, image size: the feathered composite weight
    work_mask: Image.Image  # mode L at the working size, for the inpaint pipeline
    size: tuple[int, int]  # width × height the grow and feather ran at


def _resize_bool(mask: np.ndarray, size: tuple[int, int], *, any_pixel: bool = False) -> np.ndarray:
    """``mask`` resized to ``size`` (w, h); ``any_pixel`` keeps a pixel touched by any selected one."""
    img = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BOX if any_pixel else Image.BILINEAR)
    return np.asarray(img) > 0 if any_pixel else np.asarray(img) >= 128


def prepare(selected: np.ndarray, grow_px: int, feather_px: int, work: tuple[int, int]) -> PreparedMask:
    """Grow, check and feather ``selected`` (the user's mask, image size) for a run at ``work`` (w, h).

    Small images (≤ the working area) are processed at their own size, pixel for pixel. Larger ones are
    processed at ``work`` with the radii scaled to it, then scaled back; a pixel the user selected is
    never left out (when growing) and everything outside the feathered edge stays exactly 0.
    """
    h, w = selected.shape
    if w * h <= work[0] * work[1]:
        grown = grow(selected, grow_px)
        check_mask(grown)
        work_mask = Image.fromarray(grown.astype(np.uint8) * 255).resize(work, Image.BILINEAR)
        return PreparedMask(grown, feather(grown, feather_px), work_mask, (w, h))
    scale = work[0] / w
    small = _resize_bool(selected, work, any_pixel=True)
    grown_small = grow(small, round(grow_px * scale))
    check_mask(grown_small)
    alpha_small = feather(grown_small, round(feather_px * scale))
    grown = _resize_bool(grown_small, (w, h))
    if grow_px >= 0:
        grown |= selected
    alpha = np.asarray(Image.fromarray(alpha_small).resize((w, h), Image.BILINEAR))
    alpha = np.maximum(alpha, grown.astype(np.uint8) * 255)
    work_mask = Image.fromarray(grown_small.astype(np.uint8) * 255)
    return PreparedMask(grown, alpha, work_mask, work)


def prepare_faces(selected: dict[int, np.ndarray], owner: np.ndarray | None, grow_px: int, feather_px: int,
                  work: tuple[int, int]) -> dict[int, PreparedMask]:
    """:func:`prepare` for each chosen face k (``selected[k]``: its pixels), kept off every other face.

    Face k's grown mask and feathered alpha never reach another face's pixels: with an owner map, every pixel
    owned by another face (chosen or not: editing face k must leave face j as it is); always, the pixels
    selected for another chosen face. The one exception is a pixel selected for k itself (a stroke the user
    painted for k over j): it is regenerated for k. Background (owner 0) is free to grow into.
    """
    out: dict[int, PreparedMask] = {}
    for k, sel in selected.items():
        others = np.zeros_like(sel) if owner is None else (owner != 0) & (owner != k)
        for j, other in selected.items():
            if j != k:
                others |= other
        blocked = others & ~sel
        try:
            prepared = prepare(sel, grow_px, feather_px, work)
        except MaskError as err:
            raise MaskError(f"face {k}: {err}") from None
        if blocked.any():
            grown = prepared.grown & ~blocked
            alpha = np.where(blocked, 0, prepared.alpha).astype(np.uint8)
            work_mask = Image.fromarray(grown.astype(np.uint8) * 255).resize(work, Image.BILINEAR)
            prepared = PreparedMask(grown, alpha, work_mask, prepared.size)
        out[k] = prepared
    return out
