"""HTTP mode: bolt's ASGI request handler, mounted on the core's one HTTP server (bot.web).

Routes: ``POST /slack/events`` (commands, interactions and events; signature checked by bolt:
``X-Slack-Signature`` v0, timestamps older than 5 minutes refused with 401), ``GET
/slack/install`` and ``GET /slack/oauth_redirect`` (OAuth installs). ``/healthz`` and
``/readyz`` are the server's own (bot.web.asgi).

What reaches bolt has passed the limits of ``[http]`` first: a body over ``max_body_bytes`` gets
413 before it is read whole (at once from its Content-Length, else as it streams); a request to
``/slack/events`` without a valid signature gets 401 and one log line without its body (bolt would
log the body); a signed body that is not the JSON it claims gets 400. Under it, the server's
protocol (bot.web.guard) closes connections that send their headers or body too slowly and the
ones over ``max_connections``, and :class:`InstallLimiter` caps the installs one client starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from adapters.slack.oauth import STATE_SECONDS
from bot.config import HttpSection
from bot.web.asgi import (
    Mount,
    Receive,
    Scope,
    Send,
    TooLarge,
    answer,
    client,
    header,
    read_body,
    replay,
    too_large,
)

if TYPE_CHECKING:
    from adapters.slack.app import SlackAdapter

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackAsgi:
    """Slack's routes: the limits above, then bolt."""

    def __init__(self, adapter: SlackAdapter) -> None:
        assert adapter.bolt is not None
        self.adapter = adapter
        self.limits: HttpSection = adapter.settings.http
        self.bolt = AsyncSlackRequestHandler(adapter.bolt, path=EVENTS_PATH)
        secret = adapter.config.signing_secret
        self.verifier = SignatureVerifier(secret.get_secret_value() if secret else "")
        self.installs = InstallLimiter(self.limits.installs_per_client, STATE_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope.get("method", "GET")
        if path == self.adapter.config.install_path and method == "GET":
            where = client(scope)
            if not self.installs.allow(where):
                log.warning("slack: too many installs started from %s; answered 429", where)
                await answer(send, 429, {"ok": False, "error": "too many installs started"})
                return
        # bolt reads the whole body of every request it handles, GETs included.
        try:
            body = await read_body(scope, receive, self.limits.max_body_bytes)
        except TooLarge:
            await too_large(scope, send, self.limits.max_body_bytes)
            return
        if body is None:
            return
        if path != EVENTS_PATH or method != "POST":
            await self.bolt(scope, replay(body, receive), send)
            return
        if not self._signed(scope, body):
            log.info("slack: refused a request without a valid signature from %s", client(scope))
            await answer(send, 401, {"ok": False, "error": "invalid signature"})
            return
        if not _parses(scope, body):
            log.warning("slack: refused a signed request whose body is not valid JSON")
            await answer(send, 400, {"ok": False, "error": "malformed body"})
            return
        await self.bolt(scope, replay(body, receive), send)

    def _signed(self, scope: Scope, body: bytes) -> bool:
        try:
            return self.verifier.is_valid(
                body=body,
                timestamp=header(scope, b"x-slack-request-timestamp"),
                signature=header(scope, b"x-slack-signature"),
            )
        except (ValueError, TypeError):  # a timestamp that is not a number
            return False


class SlackRoutes:
    """What the adapter mounts on the core's server: its paths, answered 503 until the adapter
    has started (bolt built) and after it stopped; :meth:`drain` waits for the requests in
    flight, so a stop lets them finish before the adapter goes away."""

    def __init__(self, adapter: SlackAdapter) -> None:
        self.adapter = adapter
        self.asgi: SlackAsgi | None = None
        self._flying = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def mounts(self) -> list[Mount]:
        config = self.adapter.config
        paths = dict.fromkeys((EVENTS_PATH, config.install_path, config.redirect_path))
        return [Mount(path, self) for path in paths]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asgi = self.asgi
        if asgi is None:
            await answer(send, 503, {"ok": False, "error": "not serving Slack right now"})
            return
        self._flying += 1
        self._idle.clear()
        try:
            await asgi(scope, receive, send)
        finally:
            self._flying -= 1
            if self._flying == 0:
                self._idle.set()

    async def drain(self) -> None:
        self.asgi = None
        await self._idle.wait()


def _parses(scope: Scope, body: bytes) -> bool:
    """Whether bolt can parse the body: JSON, or a form whose ``payload`` is JSON."""
    try:
        if (header(scope, b"content-type") or "").startswith("application/json"):
            json.loads(body)
        else:
            form = parse_qs(body.decode("utf-8"))
            if "payload" in form:
                json.loads(form["payload"][0])
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return True


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
        for who in [c for c, s in self._starts.items() if not s or s[-1] <= now - self.window]:
            del self._starts[who]
        while len(self._starts) >= self.MAX_CLIENTS:  # all recent: drop the oldest entry
            del self._starts[next(iter(self._starts))]
