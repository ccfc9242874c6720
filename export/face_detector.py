"""Convert MediaPipe's BlazeFace TFLite files (npm ``@mediapipe/face_detection``) to ONNX, checked against the
reference TFLite runtime, with a manifest. Run by the set-up::

    python -m export.face_detector static/vendor/face-detector [--source node_modules/@mediapipe/face_detection]

For each detector in :data:`face_studio.faces.spec.DETECTORS`: ``tflite2onnx`` converts the file; both runtimes
(``ai-edge-litert`` on the TFLite file, ONNX Runtime on the ONNX file) see the same inputs (skimage's astronaut,
a synthetic face, a synthetic group scene, noise, black), and the largest |Δ| of each output is recorded in
``manifest.json``. Over :data:`TOLERANCE` nothing is written. Idempotent: when the manifest already records these
source files and the ONNX files still match it, nothing is done. Each file is written atomically, the manifest
last (its presence means the folder is complete). Needs the ``detector`` extra (tflite2onnx, ai-edge-litert,
scikit-image); the app itself needs only onnxruntime.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from face_studio.atomic import atomic_write
from face_studio.errors import UserError
from face_studio.faces.anchors import decode, weighted_nms
from face_studio.faces.geometry import letterbox
from face_studio.faces.spec import (
    DETECTORS,
    MANIFEST,
    NMS_IOU,
    PACKAGE,
    PACKAGE_LICENSE,
    PACKAGE_VERSION,
    SCORE_THRESHOLD,
    DetectorSpec,
)
from face_studio.hashing import sha256

# Max |ONNX − TFLite| of an output relative to that output's largest |TFLite value| on the same input (values run
# from ~100 on photos to ~30000 on a black frame, where float32 rounding alone gives |Δ| ~ 0.03). Measured: ≤ 2e-6.
TOLERANCE = 1e-5
MANIFEST_VERSION = 1
DEFAULT_SOURCE = Path("node_modules") / PACKAGE


def fidelity_images() -> dict[str, Image.Image]:
    """The fixed inputs both runtimes see (deterministic)."""
    from skimage import data

    from face_studio.training.synth import render_face

    scene = Image.new("RGB", (1280, 720), (90, 110, 100))
    for i, (x, y, side) in enumerate(((40, 150, 420), (480, 120, 400), (900, 200, 360))):
        scene.paste(render_face(100 + i, side)[0], (x, y))
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    return {"astronaut": Image.fromarray(data.astronaut()), "synthetic_face": render_face(7, 256)[0],
            "synthetic_group": scene, "noise": Image.fromarray(noise), "black": Image.new("RGB", (64, 48))}


def _quiet():
    """tflite2onnx logs a warning per float16 tensor ("not supported/tested yet"); the result is still checked."""
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    return contextlib.redirect_stdout(io.StringIO())


def convert(source: Path, target: Path) -> None:
    import tflite2onnx

    with _quiet():
        tflite2onnx.convert(str(source), str(target))


def check(spec: DetectorSpec, tflite: Path, onnx: Path) -> dict:
    """Shapes and max |Δ| of both outputs between ai-edge-litert (NHWC) and ONNX Runtime (NCHW), and whether the
    decoded faces agree, over :func:`fidelity_images`."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    outs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    names = (spec.regressors, spec.classificators)
    diff = dict.fromkeys(names, 0.0)
    relative = dict.fromkeys(names, 0.0)
    faces: dict[str, int] = {}
    agree = True
    for label, image in fidelity_images().items():
        pixels, _ = letterbox(image, spec.input_size)
        got = session.run(list(names), {spec.input_name: pixels})
        interpreter.set_tensor(inp["index"], pixels.transpose(0, 2, 3, 1).copy())
        interpreter.invoke()
        ref = [interpreter.get_tensor(outs[name]) for name in names]
        for name, a, b in zip(names, got, ref, strict=True):
            diff[name] = max(diff[name], float(np.abs(a - b).max()))
            relative[name] = max(relative[name], float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max()))))
        ours = weighted_nms(decode(*got, spec, SCORE_THRESHOLD), NMS_IOU)
        theirs = weighted_nms(decode(*ref, spec, SCORE_THRESHOLD), NMS_IOU)
        faces[label] = len(ours)
        agree &= len(ours) == len(theirs) and bool(np.allclose(ours.boxes, theirs.boxes, atol=1e-3))
    return {
        "input": {"name": spec.input_name, "shape": [1, 3, spec.input_size, spec.input_size],
                  "layout": "NCHW RGB in [-1, 1]"},
        "outputs": {o.name: list(o.shape) for o in session.get_outputs()},
        "fidelity": {"reference": f"ai-edge-litert {_version('ai-edge-litert')}",
                     "inputs": list(faces), "max_abs_diff": diff, "max_relative_diff": relative,
                     "tolerance": TOLERANCE,
                     "faces_found": faces, "detections_agree": agree},
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def up_to_date(out: Path, source: Path) -> bool:
    """True when ``out``'s manifest records these source files and every ONNX file still matches it."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        for spec in DETECTORS.values():
            entry = manifest["models"][spec.name]
            if entry["source_sha256"] != sha256(source / spec.tflite) or entry["sha256"] != sha256(out / spec.onnx):
                return False
        return manifest.get("version") == MANIFEST_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def build(out: str | Path, source: str | Path = DEFAULT_SOURCE, *, force: bool = False) -> dict | None:
    """Convert, check and write into ``out``; the manifest written, or None when ``out`` was already up to date."""
    out, source = Path(out), Path(source)
    missing = [spec.tflite for spec in DETECTORS.values() if not (source / spec.tflite).is_file()]
    if missing:
        raise UserError(f"{source} has no {missing[0]}: install the npm package {PACKAGE}@{PACKAGE_VERSION} "
                        "(`npm ci`, as scripts/setup.sh does) or pass --source.")
    if not force and up_to_date(out, source):
        return None
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in DETECTORS.values():
            onnx = Path(tmp) / spec.onnx
            convert(source / spec.tflite, onnx)
            report = check(spec, source / spec.tflite, onnx)
            worst = max(report["fidelity"]["max_relative_diff"].values())
            if worst > TOLERANCE or not report["fidelity"]["detections_agree"]:
                raise UserError(f"{spec.onnx}: the ONNX conversion differs from TFLite by {worst:.3g} (relative; "
                                f"tolerance {TOLERANCE}) or finds other faces; nothing was written. "
                                "Check the versions of tflite2onnx and onnxruntime.")
            models[spec.name] = {"file": spec.onnx, "bytes": onnx.stat().st_size, "sha256": sha256(onnx),
                                 "source_file": spec.tflite, "source_sha256": sha256(source / spec.tflite),
                                 **report}
        manifest = {
            "version": MANIFEST_VERSION,
            "source": {"package": PACKAGE, "version": PACKAGE_VERSION, "license": PACKAGE_LICENSE},
            "converter": f"tflite2onnx {_version('tflite2onnx')}",
            "onnxruntime": _version("onnxruntime"),
            "models": models,
        }
        for spec in DETECTORS.values():
            atomic_write(out / spec.onnx, (Path(tmp) / spec.onnx).read_bytes())
    atomic_write(out / "LICENSE.txt", f"{PACKAGE} {PACKAGE_VERSION}: {PACKAGE_LICENSE} licence "
                 "(https://github.com/google-ai-edge/mediapipe). Converted to ONNX by face-studio's set-up.\n"
                 .encode())
    atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    for path in out.iterdir():
        path.chmod(0o644)  # served and packaged like the other vendored files (temp files are 0600)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.face_detector", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the ONNX files and manifest.json")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help=f"the npm package's folder "
                        f"(default {DEFAULT_SOURCE})")
    parser.add_argument("--force", action="store_true", help="convert even when the folder is up to date")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out, args.source, force=args.force)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"error: {err.name} is missing: install the detector extra (`pip install -e '.[detector]'`, as "
              "scripts/setup.sh does).", file=sys.stderr)
        return 2
    if manifest is None:
        print(f"face detector in {args.out} is up to date")
        return 0
    for name, entry in manifest["models"].items():
        fid = entry["fidelity"]
        print(f"{name}: {entry['file']} ({entry['bytes']} bytes), max |ONNX − TFLite| "
              f"{max(fid['max_abs_diff'].values()):.2e} (relative {max(fid['max_relative_diff'].values()):.1e}), "
              f"faces found {fid['faces_found']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
