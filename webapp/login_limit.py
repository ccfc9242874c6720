"""A back-off for wrong logins (``--auth``): per client address, after a few failures, Gradio's ``/login``
answers 429 with ``Retry-After`` for a time that doubles with each further failure, up to a cap; a successful
login clears the address.

The address is the connection's peer as uvicorn reports it. Behind a reverse proxy on the same machine,
uvicorn takes it from ``X-Forwarded-For`` (it trusts that header from 127.0.0.1 and ::1 only, or from the
addresses in ``FORWARDED_ALLOW_IPS``); see docs/security.md.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGIN_PATHS = ("/login", "/login/")  # Gradio 6.31's login form posts here (gradio.routes)
FREE_FAILURES = 5
BASE_S = 1.0
CAP_S = 300.0
MAX_CLIENTS = 10_000  # addresses remembered; the oldest are forgotten first
# Shown on Gradio's login page, whose form says only "Incorrect Credentials" for any refusal (429 included).
LOGIN_MESSAGE = (f"After {FREE_FAILURES} wrong logins from one address, each further try must wait longer "
                 f"(1 s, doubling up to {int(CAP_S // 60)} min).")


@dataclass
class _Record:
    failures: int = 0
    blocked_until: float = 0.0


class LoginBackoff:
    """Failed-login book-keeping per client: ``free`` failures, then blocked for ``base · 2^(n − free)``
    seconds after the n-th failure (capped at ``cap``)."""

    def __init__(self, free: int = FREE_FAILURES, base_s: float = BASE_S, cap_s: float = CAP_S,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS) -> None:
        self.free, self.base_s, self.cap_s, self.clock, self.max_clients = free, base_s, cap_s, clock, max_clients
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds this client must wait before its next login attempt (0: it may try now)."""
        record = self._records.get(client)
        return max(0.0, record.blocked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Count a wrong login; returns the seconds the client is now blocked for."""
        record = self._records.pop(client, None) or _Record()
        self._records[client] = record  # most recent last
        while len(self._records) > self.max_clients:
            self._records.popitem(last=False)
        record.failures += 1
        if record.failures < self.free:
            return 0.0
        wait = min(self.cap_s, self.base_s * 2 ** (record.failures - self.free))
        record.blocked_until = self.clock() + wait
        return wait

    def succeeded(self, client: str) -> None:
        self._records.pop(client, None)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class LoginRateLimit:
    """ASGI middleware: the :class:`LoginBackoff` around Gradio's ``POST /login`` (Gradio answers 400 to wrong
    credentials, 200 with the session cookie to right ones); every other request passes untouched."""

    def __init__(self, app: ASGIApp, backoff: LoginBackoff | None = None) -> None:
        self.app = app
        self.backoff = backoff or LoginBackoff()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = _client(scope)
        wait = self.backoff.retry_after(client)
        if wait > 0:
            await self._too_many(send, wait)
            return

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 400:
                    self.backoff.failed(client)
                elif 200 <= message["status"] < 300:
                    self.backoff.succeeded(client)
            await send(message)

        await self.app(scope, receive, observe)

    @staticmethod
    async def _too_many(send: Send, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        body = json.dumps({"detail": f"Too many wrong logins from your address: try again in {seconds} s."}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(seconds).encode())]})
        await send({"type": "http.response.body", "body": body})
