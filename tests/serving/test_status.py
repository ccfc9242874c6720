"""Operator endpoints: ``GET /healthz`` (200 "ok", no login, nothing else) and ``GET /status`` (JSON: backend,
replicas, SD pipelines in this process, queue lengths per lane, jobs served per endpoint), with and without
``--auth``. The Ray side (``backend: "ray"``, ``front_end_pipelines`` 0 after edits) is in test_ray.py."""

from __future__ import annotations

import httpx
import pytest
from gradio_client import Client

from tests.generation.conftest import start_server
from webapp.backend import backend_for

USER, PASSWORD = "operator", "a long test password"


@pytest.fixture(scope="module")
def server(tiny_sd3_dir, tmp_path_factory):
    handle = start_server(sd_model=str(tiny_sd3_dir), device="cpu", parser_dir=tmp_path_factory.mktemp("no-parser"),
                          output_dir=tmp_path_factory.mktemp("out"))
    yield handle
    handle.close()


def test_healthz_and_status_without_auth(server, tiny_sd3_dir):
    with httpx.Client(base_url=server.url.rstrip("/"), timeout=30) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.text == "ok"
        before = http.get("/status").json()
        assert before["backend"] == "local" and before["replicas"] == 1
        assert not before["loaded"]  # the model loads on the first job
        assert before["served"] == {"generate": 0, "inpaint": 0, "restyle": 0, "parse": 0}
        Client(server.url, verbose=False).predict("a face", "", "Custom", 2, 4.5, 64, 64, 5, 1, 77,
                                                  api_name="/generate")
        after = http.get("/status").json()
    assert after["served"]["generate"] == 1 and after["loaded"]
    # this process's pipelines: the first job loaded this server's. A test session may hold others, which the
    # garbage collector can drop at any moment, so "before + 1" is not exact here: this server's is counted.
    assert backend_for(server.settings).service.owner.loaded and after["front_end_pipelines"] >= 1
    assert after["queues"]["gpu"] == {"waiting": 0, "running": 0}
    assert str(tiny_sd3_dir) not in str(after) and "/" not in str(after["served"])  # no paths


def test_with_auth_status_needs_a_login_and_healthz_does_not(tmp_path):
    handle = start_server(parser_dir=tmp_path / "no-parser", auth=(USER, PASSWORD), output_dir=tmp_path / "out")
    try:
        with httpx.Client(base_url=handle.url.rstrip("/"), timeout=30) as http:
            health = http.get("/healthz")
            assert health.status_code == 200 and health.text == "ok"  # liveness, and nothing else
            refused = http.get("/status")
            assert refused.status_code == 401 and "backend" not in refused.text
            assert http.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
            status = http.get("/status").json()
    finally:
        handle.close()
    assert status["backend"] == "local" and status["generation_available"] is False  # no GPU here
    assert isinstance(status["front_end_pipelines"], int) and not status["loaded"]
