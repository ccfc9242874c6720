"""The LoRAs a server allows: chosen by the operator at start, picked by visitors BY NAME per request.

``face-studio serve --lora PATH_OR_ID[:WEIGHT_NAME][=SCALE]`` (repeatable) and ``--lora-dir DIR`` (every
``*.safetensors`` in DIR, named after its file) build one :class:`LoraCatalog`. A request names at most the
LoRAs in it; nothing a visitor sends is ever used as a path, and no message to a visitor names a path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from face_studio.errors import UserError

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")  # owner/name
NO_LORA = "(none)"  # the Generate view's "no LoRA" choice
MIN_SCALE, MAX_SCALE = -10.0, 10.0


@dataclass(frozen=True)
class AllowedLora:
    """One LoRA the operator allowed. ``name`` is all a visitor ever sees or sends."""

    name: str  # also the peft adapter name
    location: str  # a local folder or a hub id (operator-given; never shown to visitors)
    weight_name: str | None  # the .safetensors file inside ``location``
    scale: float = 1.0  # used when a request gives no scale


def lora_name(text: str) -> str:
    """An adapter name from a file or weight name: its stem, non-word characters as ``_``."""
    return re.sub(r"\W+", "_", Path(text).stem).strip("_") or "lora"


def check_scale(scale: object) -> float:
    """A LoRA scale as a float in [-10, 10]; a clear error otherwise."""
    if isinstance(scale, bool):
        raise UserError(f"LoRA scale must be a number, got {scale!r}.")
    try:
        value = float(scale)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"LoRA scale must be a number, got {scale!r}.") from None
    if not math.isfinite(value) or not MIN_SCALE <= value <= MAX_SCALE:
        raise UserError(f"LoRA scale must be between {MIN_SCALE:g} and {MAX_SCALE:g}, got {value}.")
    return value


def locate(spec: str) -> tuple[str, str | None]:
    """Where an operator's ``--lora`` spec lives: ``(folder, file name)`` or ``(hub id, weight name | None)``.

    Operator-facing (start-up) errors, so they may name the path.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix != ".safetensors":
            raise UserError(f"--lora {spec}: {path.name} is not .safetensors; only safetensors files are loaded.")
        return str(path.parent), path.name
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise UserError(f"--lora {spec}: the folder holds {len(files)} .safetensors files; give the file's "
                            "path, or use --lora-dir to allow every file in it.")
        return str(path), files[0].name
    hub_id, _, weight_name = spec.partition(":")
    if (spec.endswith(".safetensors") and not weight_name) or not HUB_ID_RE.match(hub_id):
        raise UserError(f"--lora {spec}: not an existing file, and not a hub id; give a local .safetensors "
                        "path or owner/name[:file.safetensors].")
    return hub_id, weight_name or None


class LoraCatalog:
    """The allowed LoRAs by name, in the order the operator gave them (``--lora`` first, then ``--lora-dir``)."""

    def __init__(self, loras: list[AllowedLora] | None = None) -> None:
        self._by_name: dict[str, AllowedLora] = {}
        for lora in loras or []:
            self._add(lora)

    def _add(self, lora: AllowedLora) -> AllowedLora:
        name, n = lora.name, 2
        while name in self._by_name:  # two files with one stem: style, style_2
            name, n = f"{lora.name}_{n}", n + 1
        lora = AllowedLora(name, lora.location, lora.weight_name, lora.scale)
        self._by_name[name] = lora
        return lora

    @classmethod
    def from_options(cls, specs: list[tuple[str, float]] | None = None,
                     dirs: list[str | Path] | None = None) -> LoraCatalog:
        """From ``--lora`` (spec, scale) pairs and ``--lora-dir`` folders; operator errors name the option."""
        catalog = cls()
        for spec, scale in specs or []:
            location, weight_name = locate(spec)
            stem = weight_name or spec.split(":")[0].rstrip("/").split("/")[-1]
            catalog._add(AllowedLora(lora_name(stem), location, weight_name, check_scale(scale)))
        for folder in dirs or []:
            folder = Path(folder).expanduser()
            if not folder.is_dir():
                raise UserError(f"--lora-dir {folder}: not an existing folder.")
            files = sorted(folder.glob("*.safetensors"))
            if not files:
                raise UserError(f"--lora-dir {folder}: holds no .safetensors files.")
            for file in files:
                catalog._add(AllowedLora(lora_name(file.name), str(folder), file.name))
        return catalog

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> AllowedLora:
        """The allowed LoRA called ``name``; the message lists the names, never a path."""
        lora = self._by_name.get(name) if isinstance(name, str) else None
        if lora is None:
            name = str(name)[:80]  # the visitor's own text, echoed short
            if not self._by_name:
                raise UserError(f"no LoRA named {name!r}: this server allows none (its operator adds them with "
                                "`face-studio serve --lora FILE` or `--lora-dir DIR`).")
            raise UserError(f"no LoRA named {name!r}; choose one of: {', '.join(self._by_name)}.")
        return lora

    def choose(self, name: object, scale: object = None) -> tuple[tuple[str, float], ...]:
        """A request's LoRA choice as ``((name, scale),)``, or ``()`` for none (empty, None or "(none)").

        ``scale`` None / empty takes the operator's scale for that LoRA.
        """
        if name is None or (isinstance(name, str) and name.strip() in ("", NO_LORA)):
            return ()
        if not isinstance(name, str):
            raise UserError(f"lora must be the name of an allowed LoRA, got {type(name).__name__}.")
        lora = self.get(name.strip())
        value = lora.scale if scale is None or scale == "" else check_scale(scale)
        return ((lora.name, value),)
