"""Build hook, nothing else (the project is described in pyproject.toml).

The wheel carries the top-level ``static/`` folder (our ES modules and CSS, the transformers.js + ONNX Runtime
wasm files that ``scripts/setup.sh`` vendors, ``labels.json``) as ``webapp/static``, where
``webapp.settings`` finds it in an installed copy. ``static/models/`` (exports the user made) stays out.
An editable install copies nothing: it serves the checkout's ``static/``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STATIC = Path(__file__).resolve().parent / "static"
# Without these the page can't parse (or the vendored files travel without their licences): build after the
# set-up (`make setup` or scripts/setup.sh).
REQUIRED = ("labels.json", "faces.json", "js/worker.js", "vendor/transformers.min.js",
            "vendor/ort-wasm-simd-threaded.wasm", "vendor/THIRD-PARTY.txt",
            "vendor/face-detector/face_detection_full_range.onnx",
            "vendor/face-detector/face_detection_short_range.onnx", "vendor/face-detector/manifest.json")
LEFT_OUT = ("models", "__pycache__")


class BuildPyWithStatic(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        missing = [name for name in REQUIRED if not (STATIC / name).is_file()]
        if missing:
            raise SystemExit(f"static/{missing[0]} is missing, so the wheel's page could not parse: "
                             "run `bash scripts/setup.sh` (or `make setup`) first, then build again")
        target = Path(self.build_lib) / "webapp" / "static"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(STATIC, target, ignore=shutil.ignore_patterns(*LEFT_OUT))


setup(cmdclass={"build_py": BuildPyWithStatic})
