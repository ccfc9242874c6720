#!/usr/bin/env bash
# One set-up for the README's two commands and CI: system packages, Python venv, npm vendor files.
# Idempotent: each step is skipped when already done (stamp files keyed on the inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}   # CPU build on this machine; GPU users install their CUDA torch first
WITH_TEST=${WITH_TEST:-0}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. System packages (tests only): Debian Chromium for the browser tests.
if [ "$WITH_TEST" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian chromium (browser tests)"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ "$WITH_TEST" = 1 ] && ! command -v node >/dev/null 2>&1; then
  log "installing Node.js (transformers.js tests)"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

# 2. Python: torch first (so the range in pyproject never pulls a CUDA build), then the project.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  log "installing $TORCH_SPEC"
  "$VENV/bin/pip" install -q "$TORCH_SPEC"
fi
# The `detector` extra converts the face detector at set-up (step 4); the app itself needs only onnxruntime.
extra="[detector]"; [ "$WITH_TEST" = 1 ] && extra="[detector,test]"
stamp=".setup-stamp-py$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing face-studio$extra into $VENV"
  "$VENV/bin/pip" install -q -e ".$extra"
  touch "$stamp"
fi

# 3. Browser vendor files: transformers.js + ONNX Runtime Web, pinned by package-lock.json, copied
#    into static/vendor/ (served by our server, shipped in the wheel; never a CDN). The ORT builds are the
#    two static/js/worker.js loads: plain (WASM) and asyncify (WebGPU). onnxruntime-node's install script
#    reaches a host we don't need, so it is skipped.
vendored=static/vendor/THIRD-PARTY.txt  # written last: its presence means the vendoring finished
if [ ! -f "$vendored" ] || [ package-lock.json -nt "$vendored" ]; then
  log "npm ci (transformers.js) and vendoring into static/vendor/"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  rm -rf static/vendor && mkdir -p static/vendor
  dist=node_modules/@huggingface/transformers/dist
  ort=node_modules/onnxruntime-web/dist
  [ -d "$dist/../node_modules/onnxruntime-web/dist" ] && ort="$dist/../node_modules/onnxruntime-web/dist"
  cp "$dist/transformers.min.js" "$ort"/ort-wasm-simd-threaded{,.asyncify}.{mjs,wasm} static/vendor/
  # The wheel redistributes these files: say what they are and under which licence.
  cp "$dist/../LICENSE" static/vendor/LICENSE-transformers.js.txt
  node -e 'for (const f of process.argv.slice(1)) { const p = require(f);
    console.log(`${p.name} ${p.version}, ${p.license} licence: ${p.repository.url || p.repository}`) }' \
    "$PWD/$dist/../package.json" "$PWD/$ort/../package.json" "$PWD/node_modules/@mediapipe/face_detection/package.json" \
    > "$vendored.tmp" && mv "$vendored.tmp" "$vendored"
fi

# 4. Face detector: MediaPipe's BlazeFace TFLite files (npm @mediapipe/face_detection, pinned by package-lock.json)
#    converted to ONNX and checked against the TFLite runtime (export/face_detector.py; skipped when up to date).
#    Served from static/vendor/face-detector/ and shipped in the wheel; nothing is downloaded at run time.
[ -d node_modules/@mediapipe/face_detection ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
log "face detector (static/vendor/face-detector/)"
"$VENV/bin/python" -m export.face_detector static/vendor/face-detector --source node_modules/@mediapipe/face_detection

# 5. Generated tables for the browser (one source of truth each: face_studio/labels.py, face_studio/faces/spec.py).
"$VENV/bin/python" -c "from face_studio.labels import write_labels_json; write_labels_json('static/labels.json')"
"$VENV/bin/python" -c "from face_studio.faces.spec import write_faces_json; write_faces_json('static/faces.json')"
log "ready"
