"""HTTP mode: bolt's ASGI request handler under uvicorn, plus health endpoints.

Routes: ``POST /slack/events`` (commands, interactions and events; signature checked by bolt:
``X-Slack-Signature`` v0, timestamps older than 5 minutes refused with 401), ``GET
/slack/install`` and ``GET /slack/oauth_redirect`` (OAuth installs), ``GET /healthz`` (the
process answers) and ``GET /readyz`` (connected and the database answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text

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
        self.bolt = AsyncSlackRequestHandler(adapter.bolt, path=EVENTS_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await _json(send, 200, {"ok": True})
            return
        if scope["type"] == "http" and scope["path"] == "/readyz":
            ready, detail = await self._ready()
            await _json(send, 200 if ready else 503, {"ok": ready, "detail": detail})
            return
        await self.bolt(scope, receive, send)

    async def _ready(self) -> tuple[bool, str]:
        if not self.adapter.ready:
            return False, "starting"
        try:
            async with self.adapter.app.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"database: {type(exc).__name__}"
        return True, "ready"


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(data)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


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
        config = uvicorn.Config(
            SlackAsgi(self.adapter),
            lifespan="off",
            log_level="warning",
            access_log=False,
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
