"""The built wheel alone serves the app: ``python -m build``, install the wheel into a fresh venv in an empty
folder, run ``face-studio serve`` from there and parse a photo in Chromium with the vendored transformers.js.

The fresh venv gets the wheel and nothing of the checkout. For the heavy third-party dependencies (torch,
gradio, …) a ``.pth`` line adds the test's own site-packages, after the wheel is installed (so pip never sees the
checkout's editable install); a path line in a ``.pth`` does not run the ``.pth`` files there, so that editable
install stays inert. The build runs without isolation (offline): setuptools and build come from the test extra.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import ParsePage
from tests.parsing.samples import astronaut
from webapp.routes import ASSETS_PATH

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 300  # import torch + gradio and build the app on 2 cores shared with other jobs


def run(*command: str | Path, **kwargs) -> str:
    proc = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{command[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    """The wheel built from this checkout, installed into a fresh venv; an empty working folder; a clean env."""
    root = tmp_path_factory.mktemp("wheel")
    # No PYTHONPATH anywhere: pip would take the checkout (and the egg-info the sdist step leaves) as installed.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(XDG_DATA_HOME=str(root / "data"), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    egg_info = REPO / "face_studio.egg-info"
    made_egg_info = not egg_info.exists()
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", root / "dist", REPO, cwd=REPO, env=env)
    if made_egg_info:
        shutil.rmtree(egg_info, ignore_errors=True)
    (wheel,) = (root / "dist").glob("face_studio-*.whl")

    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, env=env)
    site_packages = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", env=env).strip())
    assert (site_packages / "webapp" / "__init__.py").is_file(), "pip did not install the wheel into the venv"
    shared = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "third_party_deps.pth").write_text("\n".join(sorted(shared)) + "\n")

    workdir = root / "empty"
    workdir.mkdir()
    return SimpleNamespace(root=root, venv=venv, python=python, workdir=workdir, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"face-studio serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"face-studio serve did not answer in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def wheel_server(installed, tiny_export_dir):
    """``face-studio serve`` from the fresh venv, started in the empty folder."""
    port = free_port()
    log = installed.root / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(installed.venv / "bin" / "face-studio"), "serve", "--port", str(port),
                                 "--parser", str(tiny_export_dir), "--output-dir", str(installed.root / "outputs")],
                                cwd=installed.workdir, env=installed.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, proc, log)
        yield SimpleNamespace(url=url, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_wheel_holds_the_app_and_its_static_files(installed) -> None:
    where = run(installed.python, "-c", "import webapp, webapp.settings as s; "
                "print(webapp.__file__, s.STATIC_DIR, s.DEFAULT_PARSER_DIR, s.DEFAULT_OUTPUT_DIR, sep='\\n')",
                cwd=installed.workdir, env=installed.env).split("\n")
    package, static, parser_dir, output_dir = map(Path, where[:4])
    assert package.is_relative_to(installed.venv) and not package.is_relative_to(REPO), package
    assert static == package.parent / "static"
    for name in ("labels.json", "js/worker.js", "css/parse.css", "vendor/transformers.min.js",
                 "vendor/ort-wasm-simd-threaded.wasm", "vendor/ort-wasm-simd-threaded.mjs", "vendor/THIRD-PARTY.txt",
                 "faces.json", "vendor/face-detector/manifest.json", "vendor/face-detector/LICENSE.txt",
                 "vendor/face-detector/face_detection_full_range.onnx",
                 "vendor/face-detector/face_detection_short_range.onnx"):
        assert (static / name).is_file(), name
    assert not (static / "models").exists()  # the checkout's exports never ship
    # Not a checkout: what the app makes by default goes to the user's data folder, not into site-packages.
    data = installed.root / "data" / "face-studio"
    assert (parser_dir, output_dir) == (data / "models" / "face-parsing", data / "outputs")


def test_face_studio_serve_from_the_wheel_parses_in_the_browser(browser, wheel_server, tmp_path) -> None:
    from gradio_client import Client, handle_file

    vendored = wheel_server.url.rstrip("/") + f"{ASSETS_PATH}/vendor/transformers.min.js"
    with urllib.request.urlopen(vendored, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/javascript")
    photo = astronaut(tmp_path, "astronaut.png", (640, 480))
    page = ParsePage(browser, wheel_server)
    try:
        page.open()
        assert page.upload(photo) == "done", page.text("error")
        assert page.root.get_attribute("data-backend") == "wasm"
        assert "Parsed in this browser · WASM q8" in page.text("status")
        labels = np.asarray(Image.open(page.download("labels")))
        assert not page.errors, page.errors
    finally:
        page.close()
    assert labels.shape == (480, 640)
    # The same file parsed by the wheel's server (native ORT), faces found as the page finds them (auto, both
    # defaults): nearly the same map (q8 kernels round differently).
    label_path, _, _ = Client(wheel_server.url, verbose=False).predict(handle_file(photo), "q8", "auto",
                                                                        api_name="/parse")
    agreement = (labels == np.asarray(Image.open(label_path))).mean()
    assert agreement >= 0.98, f"browser and server agree on {agreement:.2%} of pixels"


def test_a_build_before_the_set_up_says_what_to_run(tmp_path) -> None:
    """Without the vendored files the wheel's page could not parse: the build refuses, naming the fix."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    source = tmp_path / "clone"
    for name in tracked:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                           str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300, env=env)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "static/labels.json is missing" in said and "run `bash scripts/setup.sh` (or `make setup`) first" in said, \
        said[-3000:]
    assert not list((tmp_path / "dist").glob("*.whl"))
