"""``face-studio export``: one documented entry point, numbered steps, atomic output.

    export_model("jonathandinu/face-parsing", "static/models/face-parsing")

writes, in the layout transformers.js v4 reads::

    config.json  preprocessor_config.json  labels.json  model.safetensors  manifest.json
    onnx/model.onnx  onnx/model_fp16.onnx  onnx/model_quantized.onnx
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm

from export import manifest as manifest_io
from export import onnx_build, source, validation
from export.spec import (
    DTYPE_FILES,
    DTYPES,
    FIDELITY,
    LABELS_FILES,
    MANIFEST_VERSION,
    Q8_OPS,
    Q8_OPS_DEFAULT,
    Q8_OPS_LIVE,
)
from face_studio import __version__
from face_studio.errors import UserError
from face_studio.labels import write_labels_json
from face_studio.onnx_files import LABELS_HEAD_VERSION, current_labels_graphs
from face_studio.preprocess import preprocessor_config, to_pixel_values

EvalFn = Callable[[Path, Path], dict]


def parse_dtypes(spec: str | Iterable[str]) -> list[str]:
    """``"fp32,q8"`` → ``["fp32", "q8"]`` (fp32 always first: the others are built from it)."""
    items = [d.strip().lower() for d in (spec.split(",") if isinstance(spec, str) else spec) if d.strip()]
    unknown = [d for d in items if d not in DTYPES]
    if unknown or not items:
        raise UserError(f"--dtypes: unknown dtype(s) {', '.join(unknown) or '(none given)'}; "
                        f"choose from {', '.join(DTYPES)} (comma-separated).")
    return ["fp32"] + [d for d in DTYPES if d in items and d != "fp32"]


def export_model(
    model: str,
    out: str | Path,
    *,
    revision: str | None = None,
    dtypes: str | Iterable[str] = DTYPES,
    force: bool = False,
    labels_ok: bool = False,
    eval_data: str | Path | None = None,
    labels_out: bool = False,
    q8_ops: str | None = None,
    progress: bool = True,
) -> Path:
    """Export a SegFormer face parser (hub id or folder) to ``out``; return ``out``.

    ``labels_out``: also write a labels graph per dtype (``onnx/labels*.onnx``: upsample + argmax in the graph,
    uint8 labels out; see ``export.labels_graph``) for live mode's worker.
    ``q8_ops``: the q8 recipe (``export.spec.Q8_OPS``); None: ``matmul`` for a live export (``labels_out``),
    else ``all``.
    Same source, revision and dtypes as the manifest already at ``out``: nothing to do unless ``force``.
    Everything is written to a sibling temp folder and renamed into place at the end, so a failure or
    an interrupt never leaves a half-written ``out``.
    """
    # 1. Check inputs (cheap checks before any download or model load).
    wanted = parse_dtypes(dtypes)
    # The recipe an existing export must have to count as this one: the one asked for, or a live export's;
    # a plain re-export (neither) keeps whatever recipe is there.
    must_match = q8_ops or (Q8_OPS_LIVE if labels_out else None)
    q8_ops = q8_ops or (Q8_OPS_LIVE if labels_out else Q8_OPS_DEFAULT)
    if q8_ops not in Q8_OPS:
        raise UserError(f"--q8-ops {q8_ops}: choose {' or '.join(Q8_OPS)}.")
    out = Path(out).expanduser().resolve()
    if eval_data is not None and not Path(eval_data).is_dir():
        raise UserError(f"--eval-data {eval_data}: no such folder (it needs images/ and masks/).")
    _check_writable(out)
    src = source.resolve(model, revision)
    for note in remove_stale_partials(out):
        _say(progress, note)

    # 2. Nothing to do when the same export is already there and every file still matches its sha256.
    existing = manifest_io.read(out)
    if existing and not force and _same_export(existing, src, wanted, eval_data, labels_out, must_match):
        damaged = manifest_io.check_files(out, existing)
        if not damaged:
            _say(progress, f"{out} is already an export of {src.location} @ {src.revision}: nothing to do "
                           "(--force to rebuild).")
            return out
        shown = "; ".join(damaged[:3]) + (f"; … {len(damaged) - 3} more" if len(damaged) > 3 else "")
        print(f"{out} no longer matches its manifest.json ({shown}): rebuilding it.", file=sys.stderr)
    if out.exists() and not force and not existing:
        raise UserError(f"--out {out} exists and is not a face-studio export: choose another folder or "
                        "pass --force to replace it.")

    tmp = out.parent / f"{_partial_prefix(out)}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "onnx").mkdir(parents=True)
        record = _build(src, tmp, wanted, labels_ok, eval_data, progress, labels_out, q8_ops)
        manifest_io.write(tmp, record)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _say(progress, f"exported {src.location} → {out}")
    return out


def _build(src: source.Source, tmp: Path, wanted: list[str], labels_ok: bool,
           eval_data: str | Path | None, progress: bool, labels_out: bool = False,
           q8_ops: str = Q8_OPS_DEFAULT) -> dict:
    bar = tqdm(total=4 + len(wanted) + int(labels_out), desc="export", unit="stage", disable=not progress,
               file=sys.stderr)

    # 3. Load the PyTorch model (safetensors only) and save the browser-side files next to it.
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    bar.set_postfix_str("loading model")
    model, labels = source.load(src, labels_ok=labels_ok)
    model.save_pretrained(tmp)  # config.json (architectures, id2label) + model.safetensors
    config = json.loads((tmp / "config.json").read_text())
    config["architectures"] = ["SegformerForSemanticSegmentation"]
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    size = source.input_size(src)  # what the model was trained at (512 for jonathandinu/face-parsing)
    (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(size), indent=2) + "\n")
    write_labels_json(tmp / "labels.json")
    bar.update()

    # 4. ONNX graphs: fp32 traced from PyTorch; fp16 and q8 converted from fp32.
    bar.set_postfix_str("fp32 graph")
    onnx_build.export_fp32(model, tmp / DTYPE_FILES["fp32"], size=size)
    bar.update()
    for dtype in wanted[1:]:
        bar.set_postfix_str(f"{dtype} graph")
        extra = {"ops": q8_ops} if dtype == "q8" else {}
        onnx_build.BUILDERS[dtype](tmp / DTYPE_FILES["fp32"], tmp / DTYPE_FILES[dtype], **extra)
        bar.update()

    # 5. Fidelity of every dtype against PyTorch on the validation images, and CPU latency.
    bar.set_postfix_str("fidelity")
    images = validation.validation_images()
    reference = [validation.torch_logits(model, to_pixel_values([im], size))[0] for im in images]
    per_dtype = {}
    for dtype in tqdm(wanted, desc="fidelity", unit="dtype", disable=not progress, leave=False,
                      file=sys.stderr):
        session = validation.ort_session(tmp / DTYPE_FILES[dtype])
        stats = validation.fidelity(session, images, reference, size)
        stats["cpu_latency_ms"] = round(validation.latency_ms(session, size, FIDELITY.latency_runs), 2)
        per_dtype[dtype] = {"file": DTYPE_FILES[dtype], **({"q8_ops": q8_ops} if dtype == "q8" else {}), **stats}
    fp32_err = per_dtype["fp32"]["max_abs_logit_diff"]
    if fp32_err > FIDELITY.fp32_max_abs:
        raise RuntimeError(f"the fp32 ONNX graph differs from PyTorch by {fp32_err:.2e} (limit "
                           f"{FIDELITY.fp32_max_abs:.0e}): the export is wrong; please report it.")
    bar.update()

    # 5b. Optional: labels graphs (post-processing in the graph), checked against the logits graph + the
    #     Python twin of segment.js's post-processing on the validation images at their own sizes.
    labels_graph = None
    if labels_out:
        bar.set_postfix_str("labels graphs")
        labels_graph = _labels_graphs(tmp, wanted, images, size)
        bar.update()

    # 6. Optional: task metrics on the user's labelled data (face-studio evaluate).
    evaluation = None
    if eval_data is not None:
        bar.set_postfix_str("evaluating on --eval-data")
        from face_studio.training.evaluate import evaluate_export

        evaluation = {"data": str(Path(eval_data).resolve()),
                      "metrics": evaluate_export(tmp, Path(eval_data), dtypes=wanted, progress=progress)}
    bar.update()
    bar.close()

    return {
        "format": MANIFEST_VERSION,
        "tool": f"face-studio {__version__}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"model": src.location, "kind": src.kind, "revision": src.revision},
        "labels": labels,
        "input": {"name": "pixel_values", "size": size, "layout": "NCHW", "dtype": "float32"},
        "output": {"name": "logits", "stride": 4},
        "validation": {"images": [list(im.size) for im in images],
                       "note": "synthetic test cards; agreement with PyTorch, not accuracy"},
        "dtypes": per_dtype,
        "labels_graph": labels_graph,
        "evaluation": evaluation,
        "files": manifest_io.file_entries(tmp),
    }


def _labels_graphs(tmp: Path, wanted: list[str], images, size: int) -> dict:
    """Write ``onnx/labels*.onnx`` for every dtype; ``{dtype: {file, label_agreement_pct}}`` for the manifest."""
    from export.labels_graph import add_labels_head, labels_agreement

    record = {}
    for dtype in wanted:
        path = add_labels_head(tmp / DTYPE_FILES[dtype], tmp / LABELS_FILES[dtype])
        labels_session, logits_session = validation.ort_session(path), validation.ort_session(tmp / DTYPE_FILES[dtype])
        agreement = [labels_agreement(labels_session, logits_session, to_pixel_values([im], size), im.height,
                                      im.width) for im in images]
        record[dtype] = {"file": LABELS_FILES[dtype], "label_agreement_pct": round(min(agreement), 4),
                         "head": LABELS_HEAD_VERSION}
    return record


def _same_export(existing: dict, src: source.Source, wanted: list[str], eval_data, labels_out: bool = False,
                 q8_ops: str | None = None) -> bool:
    prev = existing.get("source", {})
    old_q8 = existing.get("dtypes", {}).get("q8", {}).get("q8_ops", Q8_OPS_DEFAULT)  # older exports: all
    return (prev.get("model") == src.location and prev.get("revision") == src.revision
            and ("q8" not in wanted or q8_ops is None or old_q8 == q8_ops)
            and set(wanted) <= set(existing.get("dtypes", {})) and (eval_data is None or existing.get("evaluation"))
            and (not labels_out or set(wanted) <= current_labels_graphs(existing)))


def _partial_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def remove_stale_partials(out: Path) -> list[str]:
    """Remove ``.OUT.partial-PID`` folders (and ``.OUT.old-PID`` ones, when OUT is in place) left by export
    processes that are gone (killed mid-export); a live process's folders are never touched. Returns notes."""
    notes = []
    prefixes = [_partial_prefix(out)] + ([f".{out.name}.old-"] if out.is_dir() else [])
    for prefix in prefixes:
        for path in sorted(out.parent.glob(f"{prefix}*")):
            pid = path.name[len(prefix):]
            if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                notes.append(f"removed {path.name}, left by an export (process {pid}) that was stopped")
    return notes


def _check_writable(out: Path) -> None:
    parent = out.parent
    above = next((p for p in parent.parents if p.exists()), None) if not parent.exists() else parent
    if above is not None and not above.is_dir():
        raise UserError(f"--out {out}: {above} is a file, not a folder: choose another --out.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{out.name}.write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise UserError(f"--out {out}: cannot write there ({err.strerror or err}): choose a folder you can "
                        "write to.") from None
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder path.")


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is kept aside until the new one is in place."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)
