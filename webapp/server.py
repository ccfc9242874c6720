"""The web server: the Gradio app plus our static files, with cross-origin isolation on every route.

One design for every way of starting it (CLI, tests, ``--share``): ``demo.launch()`` builds Gradio's
FastAPI app from ``app_kwargs``, into which we put

* :class:`IsolationHeaders`, a plain ASGI middleware adding COOP ``same-origin`` + COEP ``require-corp``
  (+ CORP ``same-origin``) to every response, so ``crossOriginIsolated`` is true and ONNX Runtime Web can
  use threads;
* :class:`webapp.login_limit.LoginRateLimit`, a back-off for wrong logins on Gradio's ``/login`` (``--auth``);
* static mounts served by :class:`StaticFolder` (explicit MIME types, a real 404 for a missing file, which
  transformers.js needs to tell "absent" from "error"): ``/studio/`` → ``static/`` (our ES modules,
  vendored transformers.js and ORT wasm, labels) and ``/parser/<model id>/`` → the export folder (and, with
  ``--live-parser``, ``/parser/live-<hash>/`` → the live parser's export);
* two operator endpoints: ``GET /healthz`` (liveness: 200 ``ok``, no login, says nothing else) and
  ``GET /status`` (JSON: backend, replicas, SD pipelines in this process, queue lengths per lane, jobs
  served per endpoint; behind ``--auth`` like everything else).

``launch`` (not ``gr.mount_gradio_app``) because Gradio 6 only opens a share link from ``launch``.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import asdict, dataclass
from http.cookies import SimpleCookie
from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.app import build_app, launch_assets, setup_queue
from webapp.backend import backend_for, forget
from webapp.errors import install_visitor_errors
from webapp.gradio_cache import install_atomic_cache_writes
from webapp.login_limit import LOGIN_MESSAGE, LoginBackoff, LoginRateLimit
from webapp.routes import ASSETS_PATH, PARSER_PATH, live_parser_model_id, parser_model_id
from webapp.settings import STATIC_DIR, ServeSettings

ISOLATION_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
MEDIA_TYPES: dict[str, str] = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".safetensors": "application/octet-stream",
    ".css": "text/css",
    ".png": "image/png",
}
_OPERATOR_PROXIES = os.environ.get("FORWARDED_ALLOW_IPS")  # uvicorn's own variable, as the operator set it
UPLOAD_LIMIT = "64mb"  # well above any photo; the 40 MP pixel limit (face_studio.images) is checked after upload


class IsolationHeaders:
    """ASGI middleware: cross-origin isolation headers on every HTTP response (streams untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in ISOLATION_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequireLogin:
    """ASGI wrapper for our static mounts: with ``--auth``, no file without Gradio's login cookie (401), so the
    model and the page's code are as private as the API. Without ``--auth`` it passes everything through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gradio_app = scope.get("app")  # Gradio's FastAPI app: Starlette puts the outermost app in the scope
        if scope["type"] == "http" and getattr(gradio_app, "auth", None):
            cookies = SimpleCookie()
            for name, value in scope.get("headers", []):
                if name == b"cookie":
                    cookies.load(value.decode("latin-1"))
            cookie_id = gradio_app.cookie_id
            token = next((cookies[k].value for k in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}")
                          if k in cookies), None)
            if gradio_app.tokens.get(token) is None:
                await PlainTextResponse("Not authenticated: log in to the app first.", status_code=401)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


class StaticFolder(StaticFiles):
    """``StaticFiles`` with the MIME types browsers insist on (module scripts, wasm streaming)."""

    def file_response(self, full_path, stat_result, scope, status_code=200):  # type: ignore[override]
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = MEDIA_TYPES.get(Path(full_path).suffix.lower())
        if media_type:
            response.media_type = media_type
            response.headers["content-type"] = media_type + ("; charset=utf-8" if "text" in media_type else "")
        return response


async def healthz(request: Request) -> Response:
    """Liveness for load balancers and Kubernetes probes: the process answers HTTP. Reveals nothing."""
    return PlainTextResponse("ok")


STATUS_FIELDS = ("backend", "replicas", "front_end_pipelines", "loaded", "device", "memory_mode", "speed", "served")


def status_json(settings: ServeSettings, blocks: object | None) -> dict:
    """``GET /status``: what serves (``backend`` "local" or "ray", ``replicas``, ``front_end_pipelines`` —
    SD pipelines loaded in this process, 0 under Ray), ``queues`` (events waiting and running per lane) and
    ``served`` (jobs finished per endpoint). No paths, no model location, no user data."""
    status = asdict(backend_for(settings).status())
    out = {key: status[key] for key in STATUS_FIELDS}
    out["generation_available"] = status["unavailable"] is None
    out["queues"] = queue_lengths(getattr(blocks, "_queue", None))
    return out


def queue_lengths(queue: object | None) -> dict[str, dict[str, int]]:
    """Per Gradio concurrency id (lane): events ``waiting`` and ``running``."""
    lanes = getattr(queue, "event_queue_per_concurrency_id", None) or {}
    return {lane: {"waiting": len(q.queue), "running": q.current_concurrency} for lane, q in sorted(lanes.items())}


def status_route(settings: ServeSettings) -> ASGIApp:
    async def status(scope: Scope, receive: Receive, send: Send) -> None:
        gradio_app = scope.get("app")
        blocks = getattr(gradio_app, "blocks", None)
        await JSONResponse(status_json(settings, blocks))(scope, receive, send)

    return RequireLogin(status)


def app_kwargs(settings: ServeSettings) -> dict:
    """FastAPI keyword arguments for Gradio's app: the isolation middleware, the wrong-login back-off and our
    static mounts (assets, the parser, and the live parser when there is one)."""
    model_id = parser_model_id(Path(settings.parser_dir))
    routes = [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/status", status_route(settings), methods=["GET"], name="status"),
        Mount(ASSETS_PATH, app=RequireLogin(StaticFolder(directory=STATIC_DIR)), name="assets"),
        Mount(f"{PARSER_PATH}/{model_id}",
              app=RequireLogin(StaticFolder(directory=settings.parser_dir, check_dir=False)), name="parser"),
    ]
    if settings.live_parser_dir is not None:
        live_id = live_parser_model_id(Path(settings.live_parser_dir))
        routes.append(Mount(f"{PARSER_PATH}/{live_id}", name="live-parser",
                            app=RequireLogin(StaticFolder(directory=settings.live_parser_dir, check_dir=False))))
    return {
        "middleware": [Middleware(IsolationHeaders), Middleware(LoginRateLimit, backoff=LoginBackoff())],
        "routes": routes,
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def trusted_proxies(settings: ServeSettings) -> str | None:
    """``FORWARDED_ALLOW_IPS`` for uvicorn: the setting, else nobody with ``share`` (its relay connects from
    127.0.0.1 for every visitor), else None (uvicorn's default, 127.0.0.1 and ::1)."""
    if settings.forwarded_allow_ips is not None:
        return settings.forwarded_allow_ips
    return "" if settings.share else None


def _launch(settings: ServeSettings, *, block: bool):
    install_atomic_cache_writes()  # identical concurrent results share one cache path (webapp/gradio_cache.py)
    install_visitor_errors()  # no server path, no long echo in any error a visitor sees (webapp/errors.py)
    demo = build_app(settings)
    setup_queue(demo, settings)
    port = settings.port or free_port(settings.host)
    proxies = trusted_proxies(settings)  # uvicorn reads it when Gradio builds its server config, in launch()
    proxies = proxies if proxies is not None else _OPERATOR_PROXIES
    if proxies is None:
        os.environ.pop("FORWARDED_ALLOW_IPS", None)
    else:
        os.environ["FORWARDED_ALLOW_IPS"] = proxies
    _, local_url, share_url = demo.launch(
        server_name=settings.host,
        server_port=port,
        share=settings.share,
        auth=settings.auth,
        auth_message=LOGIN_MESSAGE if settings.auth else None,
        app_kwargs=app_kwargs(settings),
        prevent_thread_lock=not block,
        show_error=True,
        max_file_size=UPLOAD_LIMIT,
        quiet=not block,
        **launch_assets(settings),
    )
    return demo, port, local_url, share_url


@dataclass
class ServerHandle:
    """A running server started by :func:`run_in_thread`."""

    url: str
    port: int
    share_url: str | None
    settings: ServeSettings
    demo: object
    _closed: threading.Event

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self.demo.close()  # type: ignore[attr-defined]
            forget(self.settings)  # its backend (and loaded pipeline) goes with it

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_in_thread(settings: ServeSettings) -> ServerHandle:
    """Start the app in a background thread and return once it answers; ``settings.port == 0`` picks a
    free port. Call ``handle.close()`` to stop it."""
    demo, port, _, share_url = _launch(settings, block=False)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    return ServerHandle(url=f"http://{host}:{port}/", port=port, share_url=share_url, settings=settings, demo=demo,
                        _closed=threading.Event())


def serve(settings: ServeSettings) -> None:
    """Start the app and block until interrupted (``face-studio serve``)."""
    _launch(settings, block=True)
