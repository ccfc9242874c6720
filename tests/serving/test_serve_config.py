"""deploy/serve_config.yaml under Ray Serve's own CLI: ``serve run`` starts the app (a local Ray instance, the
tiny SD3 pipeline on 1 CPU replica): /healthz answers, /status says ``ray``, and a generate call is served by
the replica. Slow (a Ray instance starts): about a minute on 2 cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from gradio_client import Client

from webapp.server import free_port

pytest.importorskip("ray.serve", reason="the Ray tests need pip install 'face-studio[ray]'")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "serve_config.yaml"


def test_the_config_file_names_a_real_application_and_known_options():
    from webapp.serving.app import settings_from_args

    config = yaml.safe_load(CONFIG.read_text())
    app = config["applications"][0]
    assert app["import_path"] == "webapp.serving.app:build_app"
    settings = settings_from_args(app["args"])  # every arg is a face-studio serve setting
    assert settings.port == 7860 and settings.replicas == 2 and settings.ray == "serve"
    with pytest.raises(Exception, match="unknown option"):
        settings_from_args({"replica": 2})


@pytest.mark.slow
def test_serve_run_starts_the_app(tiny_sd3_dir, tmp_path):
    port = free_port()
    config = yaml.safe_load(CONFIG.read_text())
    config["applications"][0]["args"].update(sd_model=str(tiny_sd3_dir), device="cpu", replicas=1, port=port,
                                             host="127.0.0.1", output_dir=str(tmp_path / "out"),
                                             parser_dir=str(tmp_path / "no-parser"))
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    serve = Path(sys.executable).parent / "serve"
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(serve), "run", str(path)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/healthz", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail("serve run did not bring the app up:\n" + (tmp_path / "serve.log").read_text()[-3000:])
        status = httpx.get(url + "/status", timeout=30).json()
        assert status["backend"] == "ray" and status["replicas"] == 1 and status["front_end_pipelines"] == 0
        _, seed, _ = Client(url + "/", verbose=False).predict("a face", "", "Custom", 2, 4.5, 64, 64, 9, 1, 77,
                                                              api_name="/generate")
        assert seed == 9 and list((tmp_path / "out").glob("*-9.png"))  # the front end wrote the PNG
        assert httpx.get(url + "/status", timeout=30).json()["served"]["generate"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # serve run deletes the app and stops its Ray instance
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
