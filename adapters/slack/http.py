"""HTTP mode: bolt's ASGI request handler under uvicorn, plus health endpoints.

Routes: ``POST /slack/events`` (commands, interactions and events; signature checked by bolt:
``X-Slack-Signature`` v0, timestamps older than 5 minutes refused with 401), ``GET
/slack/install`` and ``GET /slack/oauth_redirect`` (OAuth installs), ``GET /healthz`` (the
process answers) and ``GET /readyz`` (connected and the database answers).

What reaches bolt has passed the limits of ``[http]`` first: a body over ``max_body_bytes`` gets
413 before it is read whole (at once from its Content-Length, else as it streams); a request to
``/slack/events`` without a valid signature gets 401 and one log line without its body (bolt would
log the body); a signed body that is not the JSON it claims gets 400. Under it,
:func:`guarded_protocol` closes connections that send their headers or body too slowly and the
ones over ``max_connections``, and :class:`InstallLimiter` caps the installs one client starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import h11
import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from uvicorn.protocols.http.h11_impl import H11Protocol

from adapters.slack.oauth import STATE_SECONDS
from bot.config import HttpSection

if TYPE_CHECKING:
    from adapters.slack.app import SlackAdapter

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
EVENTS_PATH = "/slack/events"


class SlackAsgi:
    """The ASGI application: health checks here, everything else to bolt."""

    def __init__(self, adapter: SlackAdapter) -> None:
        assert adapter.bolt is not None
        self.adapter = adapter
        self.limits: HttpSection = adapter.settings.http
        self.bolt = AsyncSlackRequestHandler(adapter.bolt, path=EVENTS_PATH)
        secret = adapter.config.signing_secret
        self.verifier = SignatureVerifier(secret.get_secret_value() if secret else "")
        self.installs = InstallLimiter(self.limits.installs_per_client, STATE_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.bolt(scope, receive, send)
            return
        path, method = scope["path"], scope.get("method", "GET")
        if path == "/healthz":
            await _json(send, 200, {"ok": True})
            return
        if path == "/readyz":
            ready, detail = await self._ready()
            await _json(send, 200 if ready else 503, {"ok": ready, "detail": detail})
            return
        if path == self.adapter.config.install_path and method == "GET":
            client = _client(scope)
            if not self.installs.allow(client):
                log.warning("slack: too many installs started from %s; answered 429", client)
                await _json(send, 429, {"ok": False, "error": "too many installs started"})
                return
        # bolt reads the whole body of every request it handles, GETs included.
        body = await self._body(scope, receive, send)
        if body is None:
            return
        if path != EVENTS_PATH or method != "POST":
            await self.bolt(scope, _replay(body, receive), send)
            return
        if not self._signed(scope, body):
            log.info("slack: refused a request without a valid signature from %s", _client(scope))
            await _json(send, 401, {"ok": False, "error": "invalid signature"})
            return
        if not _parses(scope, body):
            log.warning("slack: refused a signed request whose body is not valid JSON")
            await _json(send, 400, {"ok": False, "error": "malformed body"})
            return
        await self.bolt(scope, _replay(body, receive), send)

    async def _body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once 413 is answered (or the client went away)."""
        limit = self.limits.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(scope, send)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        log.info(
            "slack: refused a request body over %d bytes from %s",
            self.limits.max_body_bytes,
            _client(scope),
        )
        await _json(send, 413, {"ok": False, "error": "request body too large"}, close=True)

    def _signed(self, scope: Scope, body: bytes) -> bool:
        try:
            return self.verifier.is_valid(
                body=body,
                timestamp=_header(scope, b"x-slack-request-timestamp"),
                signature=_header(scope, b"x-slack-signature"),
            )
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False

    async def _ready(self) -> tuple[bool, str]:
        if not self.adapter.ready:
            return False, "starting"
        try:
            async with self.adapter.app.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"database: {type(exc).__name__}"
        return True, "ready"


async def _json(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    if close:  # the rest of the body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "an unknown address"


def _parses(scope: Scope, body: bytes) -> bool:
    """Whether bolt can parse the body: JSON, or a form whose ``payload`` is JSON."""
    try:
        if (_header(scope, b"content-type") or "").startswith("application/json"):
            json.loads(body)
        else:
            form = parse_qs(body.decode("utf-8"))
            if "payload" in form:
                json.loads(form["payload"][0])
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class InstallLimiter:
    """How many installs (OAuth states) each client address may start within ``window``
    seconds. In memory, per process: the cap is per replica."""

    MAX_CLIENTS = 10_000

    def __init__(self, per_client: int, window: float) -> None:
        self.per_client = per_client
        self.window = window
        self._starts: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        starts = self._starts.get(client)
        if starts is None:
            if len(self._starts) >= self.MAX_CLIENTS:
                self._forget(now)
            starts = self._starts[client] = deque()
        while starts and starts[0] <= now - self.window:
            starts.popleft()
        if len(starts) >= self.per_client:
            return False
        starts.append(now)
        return True

    def _forget(self, now: float) -> None:
        for client in [c for c, s in self._starts.items() if not s or s[-1] <= now - self.window]:
            del self._starts[client]
        while len(self._starts) >= self.MAX_CLIENTS:  # all recent: drop the oldest entry
            del self._starts[next(iter(self._starts))]


class _Throttled:
    """A warning at most once a minute, with how many times it happened."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0
        self.last = 0.0

    def note(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= 60.0:
            log.warning(self.text, self.count)
            self.count, self.last = 0, now


def guarded_protocol(limits: HttpSection) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the timeouts and the connection cap it lacks: headers must
    arrive within ``header_timeout_seconds`` of the connection (or of the first byte of the
    next request on a kept-alive one), the body within ``body_timeout_seconds`` of the
    headers; a connection over ``max_connections`` is closed at once."""
    refused = _Throttled("slack: %d connection(s) over [http] max_connections closed")
    slow = _Throttled("slack: closed %d connection(s) that sent their request too slowly")

    class Guarded(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _phase = ""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                refused.note()
                transport.close()
                return
            self._enter("headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._enter("")
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._enter("")  # idle: uvicorn's keep-alive timeout closes it

        def _follow(self) -> None:
            if self.transport.is_closing():
                self._enter("")
            elif self.cycle is None or self.cycle.response_complete:
                self._enter("headers")
            elif self.conn.their_state is h11.SEND_BODY:
                self._enter("body")
            else:
                self._enter("")  # the whole request is in; the app answers

        def _enter(self, phase: str) -> None:
            if phase == self._phase:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._phase = phase
            seconds = {
                "headers": limits.header_timeout_seconds,
                "body": limits.body_timeout_seconds,
            }.get(phase)
            if seconds is not None:
                self._timer = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                slow.note()
                self.transport.close()

    return Guarded


class HttpServer:
    """uvicorn on a socket we bind ourselves (port 0 picks a free one; :attr:`port` tells)."""

    def __init__(self, adapter: SlackAdapter, host: str, port: int) -> None:
        self.adapter = adapter
        self.host = host
        self.requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        limits = self.adapter.settings.http
        config = uvicorn.Config(
            SlackAsgi(self.adapter),
            http=guarded_protocol(limits),
            lifespan="off",
            log_level="warning",
            log_config=None,  # uvicorn's loggers go through syncup's handler (bot.logs)
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=list(limits.trusted_proxies),
        )
        self._server = uvicorn.Server(config)
        # syncup's CLI owns SIGINT/SIGTERM (they stop the whole app, then this server).
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="slack-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        log.info("slack: HTTP mode listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
