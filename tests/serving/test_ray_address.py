"""``face-studio serve --ray HOST:PORT`` against a cluster started apart with ``ray start --head`` (how a
multi-machine set-up starts): the app joins it, deploys its replica there and serves a generate call. Ray 2.60's
``ray start`` turns token authentication on by default; this test turns it off on both sides
(``RAY_AUTH_MODE=disabled``), as docs/serving.md says. Slow: about a minute and a half on 2 cores."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from face_studio.errors import UserError
from webapp.server import free_port

pytest.importorskip("ray.serve", reason="the Ray tests need pip install 'face-studio[ray]'")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serve_joins_a_ray_start_head_cluster(tiny_sd3_dir, tmp_path):
    from webapp.serving import cluster

    ray_bin = str(Path(sys.executable).parent / "ray")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    # its own session folder (short: Ray's socket paths must fit 107 characters); --block keeps the head in our
    # process group, stopped below
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    app = None
    try:
        deadline = time.monotonic() + 180
        while True:  # the head's GCS answers on its port
            assert head.poll() is None, "ray start --head exited"
            try:
                cluster.probe_address(f"127.0.0.1:{port}", timeout=1)
                break
            except UserError:
                assert time.monotonic() < deadline, "ray start --head did not come up in 3 min"
                time.sleep(1)
        # the app as a user starts it, in its own process (a driver of this cluster, and of no other)
        app_port = free_port()
        log = tmp_path / "serve.log"
        log_file = log.open("w")
        app = subprocess.Popen([sys.executable, "-m", "webapp", "serve", "--ray", f"127.0.0.1:{port}", "--replicas",
                                "1", "--sd-model", str(tiny_sd3_dir), "--device", "cpu", "--port", str(app_port),
                                "--parser", str(tmp_path / "no-parser"), "--output-dir", str(tmp_path / "out")],
                               env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{app_port}/"
        deadline = time.monotonic() + 300
        while True:
            assert app.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(url + "healthz", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        status = httpx.get(url + "status", timeout=30).json()
        assert status["backend"] == "ray" and status["replicas"] == 1
        _, seed, _ = Client(url, verbose=False).predict("a face", "", "Custom", 2, 4.5, 64, 64, 4, 1, 77,
                                                        api_name="/generate")
        assert seed == 4 and list((tmp_path / "out").glob("*-4.png"))
    finally:
        if app is not None:
            os.killpg(app.pid, signal.SIGINT)  # the app we started
            try:
                app.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
            log_file.close()
        os.killpg(head.pid, signal.SIGTERM)  # the head we started (its process group), nothing else
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
