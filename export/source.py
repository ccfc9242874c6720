"""Resolve and load the source model: a hub id or a local ``save_pretrained`` folder.

Refuses anything that is not a ``SegformerForSemanticSegmentation`` with the 19 CelebAMask-HQ labels
in their order (unless the caller accepts other labels), and loads safetensors only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from export.manifest import sha256
from face_studio.errors import UserError
from face_studio.labels import NAMES

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SEGFORMER = "SegformerForSemanticSegmentation"


@dataclass
class Source:
    """Where the model came from, as recorded in the manifest."""

    spec: str  # what the user passed
    kind: str  # "folder" or "hub"
    location: str  # absolute folder path, or hub id
    revision: str  # commit hash (hub) or sha256 of the weights (folder)


def resolve(spec: str, revision: str | None = None) -> Source:
    """Decide whether ``spec`` is a local folder or a hub id, and pin its revision."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"--model {spec}: is a file; give the folder that holds config.json "
                            "(made by save_pretrained) or a hub id like jonathandinu/face-parsing.")
        if not (path / "config.json").is_file():
            raise UserError(f"--model {spec}: the folder has no config.json; give a folder saved with "
                            "model.save_pretrained(...) or a hub id.")
        weights = sorted(path.glob("*.safetensors"))
        if not weights:
            raise UserError(f"--model {spec}: no .safetensors weights in the folder (only safetensors are "
                            "loaded, never pickle): re-save with model.save_pretrained(folder).")
        digest = hashlib.sha256()
        for w in weights:
            digest.update(sha256(w).encode())
        return Source(spec, "folder", str(path.resolve()), revision or f"sha256:{digest.hexdigest()[:16]}")
    if spec.startswith((".", "/", "~")) or not HUB_ID.match(spec):
        raise UserError(f"--model {spec}: no such folder. Give a folder saved with save_pretrained or a hub "
                        "id like jonathandinu/face-parsing.")
    return Source(spec, "hub", spec, _hub_revision(spec, revision))


def _hub_revision(repo_id: str, revision: str | None) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().model_info(repo_id, revision=revision)
    except GatedRepoError:
        raise UserError(f"{repo_id} is gated: accept its licence on the hub and set HF_TOKEN.") from None
    except RepositoryNotFoundError:
        raise UserError(f"{repo_id}: no such model on the hub (or it is private: set HF_TOKEN). If you "
                        f"meant a local folder, it does not exist: {Path(repo_id).resolve()}") from None
    except RevisionNotFoundError:
        raise UserError(f"{repo_id}: revision {revision!r} not found on the hub.") from None
    except Exception as err:  # offline, DNS, proxy, HF_HUB_OFFLINE=1 …
        raise UserError(
            f"could not reach the hub for {repo_id!r} ({type(err).__name__}). You seem to be offline: give a "
            f"local folder saved with save_pretrained (--model ./my-parser), or connect and retry. "
            f"(If you meant a local folder, it does not exist: {Path(repo_id).resolve()})"
        ) from None
    return info.sha or (revision or "main")


def input_size(source: Source) -> int:
    """The input side the source was made for: its ``preprocessor_config.json`` (512 when it has none)."""
    from face_studio.preprocess import INPUT_SIZE
    from face_studio.preprocess import input_size as folder_input_size

    if source.kind == "folder":
        return folder_input_size(source.location)
    from transformers.utils import cached_file

    path = cached_file(source.location, "preprocessor_config.json", revision=source.revision,
                       _raise_exceptions_for_missing_entries=False)
    return folder_input_size(Path(path).parent) if path else INPUT_SIZE


def check_labels(id2label: dict, labels_ok: bool) -> list[str]:
    """Compare a model's ``id2label`` with the CelebAMask-HQ table; return its label list.

    Raises unless the labels are exactly the 19 face labels in order, or ``labels_ok`` is set.
    """
    got = [str(id2label.get(i, id2label.get(str(i), "?"))).strip().lower() for i in range(len(id2label))]
    if got == list(NAMES) or labels_ok:
        return got
    if sorted(got) == sorted(NAMES):
        wrong = [f"{i}: {g} (expected {e})" for i, (g, e) in enumerate(zip(got, NAMES, strict=True)) if g != e]
        problem = "has the 19 face labels in another order — " + "; ".join(wrong[:6])
    else:
        missing = [n for n in NAMES if n not in got]
        extra = [g for g in got if g not in NAMES]
        problem = (f"has {len(got)} labels; missing: {', '.join(missing) or 'none'}; "
                   f"unexpected: {', '.join(extra[:8]) or 'none'}")
    raise UserError(f"the model's id2label {problem}. The browser and server colour and name regions by the "
                    "CelebAMask-HQ order (0 background, 1 skin, … 18 cloth). Fix config.json, or pass "
                    "--labels-ok if you know the labels differ.")


def load(source: Source, labels_ok: bool = False):
    """Load the model (eval mode) and return ``(model, labels)``; safetensors only, no remote code."""
    from transformers import AutoConfig, SegformerForSemanticSegmentation

    kwargs = {} if source.kind == "folder" else {"revision": source.revision}
    try:
        config = AutoConfig.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as err:
        raise UserError(f"--model {source.spec}: cannot read its config.json ({err}).") from None
    archs = list(getattr(config, "architectures", None) or [])
    if config.model_type != "segformer" or (archs and SEGFORMER not in archs):
        what = ", ".join(archs) or f"a {config.model_type!r} model"
        raise UserError(f"--model {source.spec} is {what}, not a {SEGFORMER}: face-studio exports SegFormer "
                        "face parsers (e.g. jonathandinu/face-parsing).")
    labels = check_labels(config.id2label, labels_ok)
    from safetensors import SafetensorError

    try:
        model = SegformerForSemanticSegmentation.from_pretrained(source.location, use_safetensors=True,
                                                                 **kwargs)
    except SafetensorError as err:
        raise UserError(f"--model {source.spec}: its .safetensors weights are corrupt or truncated ({err}): "
                        "download them again or re-save the model with save_pretrained.") from None
    except (OSError, ValueError) as err:
        raise UserError(f"--model {source.spec}: could not load safetensors weights ({err}).") from None
    return model.eval(), labels
