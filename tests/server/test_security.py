"""What issue #11 found holding up and must stay true, plus #11.14: path traversal out of our mounts and through
``/gradio_api/file=`` refused, uploads capped at 64 MB, ``--auth`` on every route (ours and Gradio's), and a
back-off for wrong logins. All on 127.0.0.1 with raw HTTP (paths sent exactly as written)."""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from starlette.routing import Mount

from tests.server.bad_inputs import BAD_INPUTS, FILE_ROUTE, LOGIN, MOUNTS, QUEUE, SERVE, UPLOAD, by_surface, expect
from tests.server.conftest import SECRET, start_server
from webapp.login_limit import LOGIN_MESSAGE, LoginBackoff
from webapp.routes import parser_model_id
from webapp.settings import REPO_ROOT

USER, PASSWORD = "ada", "lovelace"
LEAKS = (SECRET, "root:x:0:0", "[project]")  # the secret files, /etc/passwd, the repo's pyproject.toml


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (no client-side normalising of ``..`` or ``%2e``)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(parser_dir):
    handle = start_server(parser_dir=parser_dir)
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def auth_server(parser_dir):
    handle = start_server(parser_dir=parser_dir, auth=(USER, PASSWORD))
    yield handle
    handle.close()


def traversal_paths(parser_dir: Path) -> list[tuple[str, str]]:
    """(raw path, expected message) for every bad-input record, on both mounts."""
    model = f"/parser/{parser_model_id(parser_dir)}"
    secret = str(parser_dir.parent / "secret.txt")
    paths = []
    for case in by_surface(MOUNTS):
        for mount, target in (("/studio", "pyproject.toml"), (model, "secret.txt")):
            paths.append((case.args[0].format(mount=mount, target=target), case.expect))
    for case in by_surface(FILE_ROUTE):
        paths.append((case.args[0].format(secret=secret, quoted=quote(secret, safe=""), repo=REPO_ROOT,
                                          model=parser_dir / "config.json"), case.expect))
    return paths


def test_no_path_gets_out_of_the_mounts_or_through_file_routes(server, parser_dir) -> None:
    assert raw_get(server.url, f"/parser/{parser_model_id(parser_dir)}/config.json")[0] == 200  # the mount works
    for path, message in traversal_paths(parser_dir):
        status, body = raw_get(server.url, path)
        text = body.decode("latin-1")
        assert not any(leak in text for leak in LEAKS), f"{path} → {status} served a file outside the mounts"
        assert status in (403, 404) and message in text, f"{path} → {status} {text[:200]}"
    assert raw_get(server.url, "/studio/js/worker.js")[0] == 200  # and the server still serves


def test_uploads_over_64_mb_are_refused_and_smaller_ones_accepted(server) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        big = client.post("gradio_api/upload", files={"files": ("big.png", b"\0" * (64 * 1024 * 1024 + 1))})
        assert big.status_code == 413 and expect(UPLOAD, "a file of 64 MB") in big.text, big.text
        small = client.post("gradio_api/upload", files={"files": ("small.png", b"\0" * 1024)})
        assert small.status_code == 200 and len(small.json()) == 1


# Gradio's routes that answer without a login and hold nothing of the app (its login page, icons, theme,
# "who am I" = nobody, its own cancel/reset that need a random event id); everything else must refuse.
PUBLIC = {
    "/", "/openapi.json", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/robots.txt",
    "/manifest.json", "/pwa_icon", "/gradio_api/user", "/gradio_api/user/", "/gradio_api/token",
    "/gradio_api/token/", "/gradio_api/app_id", "/gradio_api/app_id/", "/gradio_api/runs", "/gradio_api/runs/",
    "/gradio_api/startup-events", "/gradio_api/theme.css", "/gradio_api/cancel", "/gradio_api/reset",
    "/gradio_api/reset/", "/gradio_api/heartbeat/{session_hash}",
    "/healthz",  # liveness for load balancers: "ok", nothing else (tests/serving/test_status.py)
}
REFUSED = {401, 403, 404, 405, 422}  # 404/422: Gradio's own checks of a made-up id come before the login


def every_route(routes, prefix: str = ""):
    """(method, path template) of every route of a FastAPI app, into included routers; a mount as one path."""
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included router (Gradio's /gradio_api)
            yield from every_route(route.original_router.routes, prefix + (route.include_context.prefix or ""))
        elif isinstance(route, Mount):
            yield "GET", prefix + route.path + "/js/worker.js"
            yield "GET", prefix + route.path + "/config.json"
        else:
            for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
                yield method, prefix + route.path


def test_auth_covers_every_route(auth_server, parser_dir) -> None:
    routes = list(every_route(auth_server.demo.server_app.routes))
    assert len(routes) > 60 and any(path.startswith("/parser/") for _, path in routes)
    with httpx.Client(base_url=auth_server.url.rstrip("/"), timeout=10) as client:
        for method, template in routes:
            if template in PUBLIC:
                continue
            path = re.sub(r"\{[^}]+\}", "x", template)
            status = client.request(method, path).status_code
            assert status in REFUSED, f"{method} {template} answered {status} without a login"
        # The public ones hold nothing of the app: the page is Gradio's login form, without our config.
        for path in ("/", "/gradio_api/runs"):
            page = client.get(path).text
            assert "fs-parse" not in page and parser_model_id(parser_dir) not in page, path
        assert client.get("/gradio_api/token").json() == {"token": None, "user": None}
        assert LOGIN_MESSAGE in client.get("/").text  # the login page tells people about the back-off


def login(client: httpx.Client, password: str, **headers) -> httpx.Response:
    return client.post("/login", data={"username": USER, "password": password}, headers=headers)


def test_wrong_logins_back_off_per_client_and_a_right_one_resets(auth_server) -> None:
    with httpx.Client(base_url=auth_server.url.rstrip("/"), timeout=10) as client:
        for _ in range(4):
            assert login(client, "wrong").status_code == 400
        assert login(client, PASSWORD).status_code == 200  # resets the count
        for _ in range(5):
            assert login(client, "wrong").status_code == 400
        refused = login(client, "wrong")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert expect(LOGIN, "a 6th wrong password") in refused.json()["detail"]
        assert login(client, PASSWORD).status_code == 429  # blocked means blocked, right password or not
        # Another client (through a proxy on this machine that uvicorn trusts) is not held back.
        assert login(client, PASSWORD, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 200
        time.sleep(1.1)
        assert login(client, "wrong").status_code == 400  # the 6th failure: blocked for 2 s now
        assert login(client, "wrong").headers.get("retry-after") == "2"
        time.sleep(2.1)
        assert login(client, PASSWORD).status_code == 200


def test_backoff_doubles_up_to_the_cap_and_forgets_old_clients() -> None:
    now = [0.0]
    backoff = LoginBackoff(free=5, base_s=1.0, cap_s=60.0, clock=lambda: now[0], max_clients=3)
    waits = []
    for _ in range(14):
        waits.append(backoff.failed("a"))
        now[0] += 100
    assert waits == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert backoff.retry_after("a") == 0  # 100 s later
    backoff.failed("a")
    assert backoff.retry_after("a") == 60 and backoff.retry_after("b") == 0
    backoff.succeeded("a")
    assert backoff.retry_after("a") == 0
    for client in ("a", "b", "c", "d"):
        for _ in range(5):
            backoff.failed(client)
    assert backoff.retry_after("a") == 0 and backoff.retry_after("d") == 1  # "a", the oldest, was forgotten


def test_bad_input_records_are_all_used() -> None:
    surfaces = {case.surface for case in BAD_INPUTS}
    assert surfaces == {MOUNTS, FILE_ROUTE, UPLOAD, LOGIN, QUEUE, SERVE}


def test_with_share_or_no_trusted_proxy_a_spoofed_forwarded_for_gets_no_fresh_counter(parser_dir) -> None:
    """Issue #17.11: --share's relay reaches the server from 127.0.0.1, so by default nobody's X-Forwarded-For is
    believed there; here the same with --forwarded-allow-ips "" on a plain server."""
    from webapp.server import trusted_proxies
    from webapp.settings import ServeSettings

    assert trusted_proxies(ServeSettings(share=True)) == "" and trusted_proxies(ServeSettings()) is None
    assert trusted_proxies(ServeSettings(share=True, forwarded_allow_ips="10.0.0.5")) == "10.0.0.5"
    handle = start_server(parser_dir=parser_dir, auth=(USER, PASSWORD), forwarded_allow_ips="")
    try:
        with httpx.Client(base_url=handle.url.rstrip("/"), timeout=10) as client:
            for _ in range(5):
                assert login(client, "wrong").status_code == 400
            assert login(client, "wrong").status_code == 429
            spoofed = login(client, PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
            assert spoofed.status_code == 429  # the header chose no new address
    finally:
        handle.close()
