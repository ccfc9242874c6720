"""``manifest.json``: what was exported from where, each file's size and sha256, each dtype's fidelity."""

from __future__ import annotations

import json
from pathlib import Path

from export.spec import MANIFEST
from face_studio.hashing import sha256


def file_entries(folder: Path) -> dict[str, dict]:
    """``{relative path: {bytes, sha256}}`` for every file in ``folder`` except the manifest."""
    return {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def check_files(folder: Path, manifest: dict) -> list[str]:
    """Every file the manifest lists, against its size and sha256: one problem per damaged file (empty: intact)."""
    problems = []
    for rel, entry in manifest.get("files", {}).items():
        path = Path(folder) / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{rel}: {path.stat().st_size} bytes, manifest says {entry.get('bytes')}")
        elif sha256(path) != entry.get("sha256"):
            problems.append(f"{rel}: sha256 mismatch (file changed or corrupt)")
    return problems


def write(folder: Path, manifest: dict) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read(folder: Path) -> dict | None:
    """The manifest in ``folder``, or None if there is none or it is unreadable."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
