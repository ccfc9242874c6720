"""Editing chosen faces: which faces (by number), their regions and a prompt each, in one request.

Faces are numbered as everywhere else (``SEAM-faces.md``): by detection score, descending, face 1 first; the
*owner map* (uint8, 0 = no face, k = face k) says which face each pixel belongs to.

The ``faces`` parameter is a JSON list, e.g. ``[{"face": 2, "regions": "hair", "prompt": "red curly hair"},
{"face": 3, "prompt": "a smile"}]``; an entry's ``regions`` default to the request's ``regions`` and its
``prompt`` to the request's ``prompt``. Face k's selection is its regions restricted to its owner-map pixels,
plus the pixels of a face-numbered mask PNG whose value is k (what the page sends: value k = painted or
picked for face k, 0 = keep). :func:`webapp.editing.masks.prepare_faces` grows and feathers each selection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from face_studio.errors import UserError
from face_studio.labels import resolve_regions
from webapp.editing.masks import MaskError, region_names

MAX_EDIT_FACES = 6  # faces one request may edit: each is one SD run on the shared GPU
KEYS = ("face", "prompt", "regions", "mask_regions")
EXAMPLE = '[{"face": 2, "regions": "hair", "prompt": "red curly hair"}]'
ECHO = 40  # characters of a sent value a message repeats, at most


class FacesError(UserError, ValueError):
    """A ``faces`` value or a face-numbered mask that cannot be used; the message says what to send."""


@dataclass(frozen=True)
class FaceEdit:
    """One chosen face: its number, its prompt ("" → the request's) and its regions (names)."""

    face: int
    prompt: str = ""
    regions: tuple[str, ...] = ()
    mask_regions: tuple[str, ...] = ()  # classes a face-numbered mask was made from (recorded only)


def _echo(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= ECHO else text[:ECHO - 1] + "…"


def parse_faces(value: Any, *, maximum: int = MAX_EDIT_FACES, what: str = "faces") -> list[FaceEdit]:
    """The chosen faces in ``value`` (JSON text or an already-decoded list), in the order sent; [] for none.

    Every problem is one :class:`FacesError` naming the entry and what to send.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise FacesError(f"{what} must be a JSON list like {EXAMPLE}: {err.msg} at character {err.pos}."
                             ) from None
    if not isinstance(value, list):
        raise FacesError(f"{what} must be a JSON list like {EXAMPLE}, got {type(value).__name__}.")
    if len(value) > maximum:
        raise FacesError(f"{what}: {len(value)} faces in one request, at most {maximum} (each is one SD run): "
                         "edit the others in a second request.")
    faces: list[FaceEdit] = []
    for i, entry in enumerate(value, start=1):
        faces.append(_entry(entry, f"{what} entry {i}"))
    seen: set[int] = set()
    for f in faces:
        if f.face in seen:
            raise FacesError(f"{what}: face {f.face} is listed twice: give each face once, with its regions and "
                             "prompt together.")
        seen.add(f.face)
    return faces


def _entry(entry: Any, where: str) -> FaceEdit:
    if not isinstance(entry, dict):
        raise FacesError(f"{where} must be an object like {{\"face\": 2, \"prompt\": \"…\"}}, "
                         f"got {type(entry).__name__}.")
    unknown = [k for k in entry if k not in KEYS]
    if unknown:
        raise FacesError(f"{where}: unknown key {_echo(unknown[0])}; use {', '.join(KEYS)}.")
    number = entry.get("face")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise FacesError(f"{where}: \"face\" must be a face number (1, 2, …: faces are numbered by detection "
                         f"score), got {_echo(number)}.")
    where = f"face {number}"
    prompt = entry.get("prompt", "")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise FacesError(f"{where}: \"prompt\" must be text, got {type(prompt).__name__}.")
    return FaceEdit(number, prompt, _names(entry.get("regions"), f"{where} regions"),
                    _names(entry.get("mask_regions"), f"{where} mask_regions"))


def _names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(region_names(value, what))
    if isinstance(value, str):
        return tuple(region_names(value, what))
    raise FacesError(f"{what} must be names, comma-separated or a list (e.g. \"hair,lips\"), "
                     f"got {type(value).__name__}.")


def with_defaults(faces: list[FaceEdit], regions: list[str]) -> list[FaceEdit]:
    """Each face with the request's ``regions`` where it names none of its own."""
    return [f if f.regions else FaceEdit(f.face, f.prompt, tuple(regions), f.mask_regions) for f in faces]


def face_count(owner: np.ndarray | None) -> int | None:
    """How many faces an owner map numbers (its highest value), or None without one."""
    return None if owner is None else int(owner.max(initial=0))


def check_numbers(faces: list[FaceEdit], count: int | None) -> None:
    """Refuse a face number the image does not have (``count`` faces, numbered 1…count)."""
    if count is None:
        return
    missing = [f.face for f in faces if f.face > count]
    if missing:
        have = ("no face was found in it" if count == 0 else
                "it has 1 face (face 1)" if count == 1 else f"it has {count} faces, numbered 1–{count} by score")
        raise FacesError(f"face {missing[0]} is not in this image: {have}. Pick a face shown on the picture.")


def numbered_mask(mask: Image.Image | np.ndarray, size: tuple[int, int], faces: list[FaceEdit]) -> np.ndarray:
    """A face-numbered mask PNG (pixel value k = regenerate for face k, 0 = keep) as a uint8 array."""
    arr = np.asarray(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    if arr.ndim == 3:
        arr = arr[..., 0]
    h, w = arr.shape[:2]
    if (w, h) != tuple(size):
        raise MaskError(f"the mask is {w}×{h} but the image is {size[0]}×{size[1]}: give a mask of the same "
                        "size (with faces, pixel value = face number, 0 = keep).")
    chosen = {f.face for f in faces}
    stray = sorted(set(np.unique(arr).tolist()) - chosen - {0})
    if stray:
        raise FacesError(f"with faces, the mask's pixel values are face numbers (0 = keep), but it has value "
                         f"{stray[0]}, which is not one of the chosen faces ({', '.join(map(str, sorted(chosen)))})."
                         " Send a face-numbered mask, or leave the mask out and give regions.")
    return arr.astype(np.uint8)


def owner_from_image(face_map: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An owner map PNG (pixel value = face number, 0 = none) of the image's size, as uint8."""
    arr = np.asarray(face_map.convert("L") if isinstance(face_map, Image.Image) else face_map)
    if arr.ndim == 3:
        arr = arr[..., 0]
    h, w = arr.shape[:2]
    if (w, h) != tuple(size):
        raise FacesError(f"the face map is {w}×{h} but the image is {size[0]}×{size[1]}: send the owner map of "
                         "this image (pixel value = face number, 0 = no face).")
    return arr.astype(np.uint8)


def selections(faces: list[FaceEdit], size: tuple[int, int], *, labels: np.ndarray | None,
               owner: np.ndarray | None, mask: np.ndarray | None) -> dict[int, np.ndarray]:
    """Face k's selected pixels (bool, before grow): its regions ∩ (owner == k), ∪ (mask == k)."""
    w, h = size
    for name, arr in (("label map", labels), ("owner map", owner)):
        if arr is not None and arr.shape != (h, w):
            raise MaskError(f"the {name} is {arr.shape[1]}×{arr.shape[0]} but the image is {w}×{h}.")
    out: dict[int, np.ndarray] = {}
    for f in faces:
        sel = np.zeros((h, w), dtype=bool)
        if f.regions:
            if labels is None or owner is None:
                raise MaskError(f"face {f.face}: region names need the image's faces and parse: none was given.")
            ids = resolve_regions(list(f.regions))
            sel |= np.isin(labels, ids) & (owner == f.face)
        if mask is not None:
            sel |= mask == f.face
        if not sel.any():
            if not f.regions and mask is None:
                raise MaskError(f"face {f.face}: nothing to regenerate: give it regions (e.g. \"hair\") or "
                                "paint it in the mask.")
            shows = ""
            if f.regions and labels is not None and owner is not None:
                from face_studio.labels import NAMES

                present = [NAMES[i] for i in np.unique(labels[owner == f.face]) if i]
                shows = f" (it shows: {', '.join(present) or 'nothing parsed'})"
            raise MaskError(f"face {f.face}: none of {', '.join(f.regions) or 'the mask'} is on this face{shows}:"
                            " pick regions that are there, or paint them.")
        out[f.face] = sel
    return out


@dataclass
class FoundFaces:
    labels: np.ndarray  # uint8 label map, image size
    owner: np.ndarray  # uint8 owner map: 0 = none, k = face k
    note: str | None = None


def find_faces(parser_dir: str | Path, image: Image.Image) -> FoundFaces:
    """Find and parse every face of ``image`` on this machine, numbered by score as on the page: the server's one
    face-aware parse (:func:`webapp.parsing.parse_image`, with its shared detector)."""
    from webapp.parsing import get_parser, parse_image

    result = parse_image(get_parser(parser_dir), image, "auto")
    return FoundFaces(result.labels, result.owner, result.note)
