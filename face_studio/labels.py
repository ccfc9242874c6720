"""The one table of face labels: ids, names, colours, left/right pairs.

Everything else (server, CLI, export checks, tests, and the browser through the generated
``labels.json``) reads it from here. The order is CelebAMask-HQ's, as used by
``jonathandinu/face-parsing``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    title: str
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label(0, "background", "Background", (0, 0, 0)),
    Label(1, "skin", "Skin", (204, 153, 119)),
    Label(2, "nose", "Nose", (255, 128, 64)),
    Label(3, "eye_g", "Eyeglasses", (64, 224, 208)),
    Label(4, "l_eye", "Left eye", (0, 102, 255)),
    Label(5, "r_eye", "Right eye", (102, 178, 255)),
    Label(6, "l_brow", "Left brow", (128, 64, 0)),
    Label(7, "r_brow", "Right brow", (176, 112, 48)),
    Label(8, "l_ear", "Left ear", (255, 204, 0)),
    Label(9, "r_ear", "Right ear", (255, 230, 128)),
    Label(10, "mouth", "Mouth", (128, 0, 64)),
    Label(11, "u_lip", "Upper lip", (230, 0, 76)),
    Label(12, "l_lip", "Lower lip", (255, 77, 136)),
    Label(13, "hair", "Hair", (96, 48, 160)),
    Label(14, "hat", "Hat", (0, 153, 76)),
    Label(15, "ear_r", "Earring", (255, 255, 0)),
    Label(16, "neck_l", "Necklace", (192, 192, 192)),
    Label(17, "neck", "Neck", (166, 115, 82)),
    Label(18, "cloth", "Clothes", (51, 102, 153)),
)

NUM_LABELS = len(LABELS)
NAMES: tuple[str, ...] = tuple(label.name for label in LABELS)
ID2LABEL: dict[int, str] = {label.id: label.name for label in LABELS}
LABEL2ID: dict[str, int] = {label.name: label.id for label in LABELS}
PALETTE: tuple[tuple[int, int, int], ...] = tuple(label.color for label in LABELS)

# Horizontal flip swaps these (used by training augmentation).
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((4, 5), (6, 7), (8, 9))

# Friendly names accepted wherever a user names regions ("lips" → both lips).
ALIASES: dict[str, tuple[str, ...]] = {
    "eyes": ("l_eye", "r_eye"),
    "brows": ("l_brow", "r_brow"),
    "eyebrows": ("l_brow", "r_brow"),
    "ears": ("l_ear", "r_ear"),
    "lips": ("u_lip", "l_lip"),
    "glasses": ("eye_g",),
    "eyeglasses": ("eye_g",),
    "earrings": ("ear_r",),
    "necklace": ("neck_l",),
    "clothes": ("cloth",),
    "face": ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip"),
}




@dataclass(frozen=True)
class RegionGroup:
    """A set of classes the page recolours together (static/js/recolour-panel.js reads them from labels.json)."""

    name: str
    title: str
    names: tuple[str, ...]


# The page's instant recolour offers these, in this order.
RECOLOUR_GROUPS: tuple[RegionGroup, ...] = (
    RegionGroup("hair", "Hair", ("hair",)),
    RegionGroup("lips", "Lips", ALIASES["lips"]),
    RegionGroup("brows", "Brows", ALIASES["brows"]),
    RegionGroup("eyes", "Eyes / iris", ALIASES["eyes"]),
    RegionGroup("skin", "Skin", ("skin", "nose", "l_ear", "r_ear", "neck")),
)


def flip_lut() -> list[int]:
    """Label lookup table for a horizontal flip: ``lut[id]`` is the id after mirroring."""
    lut = list(range(NUM_LABELS))
    for a, b in FLIP_PAIRS:
        lut[a], lut[b] = b, a
    return lut


def resolve_regions(names: list[str] | tuple[str, ...] | str) -> list[int]:
    """Turn region names ("hair", "lips", "l_eye", "13") into sorted label ids.

    Raises ``ValueError`` naming the unknown entries and the accepted names.
    """
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    ids: set[int] = set()
    unknown: list[str] = []
    for raw in names:
        name = raw.strip().lower().replace(" ", "_").replace("-", "_")
        if not name:
            continue
        if name.isascii() and name.isdecimal() and int(name) < NUM_LABELS:
            ids.add(int(name))
        elif name in LABEL2ID:
            ids.add(LABEL2ID[name])
        elif name in ALIASES:
            ids.update(LABEL2ID[n] for n in ALIASES[name])
        else:
            unknown.append(raw)
    if unknown:
        raise ValueError(
            f"unknown region name(s): {', '.join(repr(u) for u in unknown)}. "
            f"Use label names ({', '.join(NAMES)}) or groups ({', '.join(ALIASES)})."
        )
    if not ids:
        raise ValueError("no regions given: name at least one, e.g. 'hair' or 'lips'.")
    return sorted(ids)


def labels_json() -> dict:
    """The table as the browser reads it (``static/labels.json`` and ``<export>/labels.json``)."""
    return {
        "labels": [{**asdict(label), "color": list(label.color)} for label in LABELS],
        "aliases": {k: list(v) for k, v in ALIASES.items()},
        "groups": [{"name": g.name, "title": g.title, "ids": [LABEL2ID[n] for n in g.names]}
                   for g in RECOLOUR_GROUPS],
    }


def write_labels_json(path: str | Path) -> Path:
    """Write :func:`labels_json` to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(labels_json(), indent=1) + "\n")
    return path
