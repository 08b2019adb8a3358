"""The one ASGI application: ``/healthz``, ``/readyz``, and the routes others mount on it.

Features and adapters hand their routes over as :class:`Mount` (a path prefix and an ASGI
app): Slack's HTTP mode mounts ``/slack``, inbound webhooks ``/hooks``. The core imports no
platform SDK; an adapter that serves HTTP offers ``routes()`` (:class:`WebRoutes`).

Small helpers every route uses live here too: :func:`read_body` reads a body with a cap (413
before anything over it is buffered), :func:`answer` writes a JSON answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Readiness = Callable[[], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class Mount:
    """Requests whose path is ``prefix`` or starts with ``prefix/`` go to ``app``."""

    prefix: str
    app: AsgiApp

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


@runtime_checkable
class WebRoutes(Protocol):
    """An adapter (or feature) with HTTP routes of its own."""

    def routes(self) -> Sequence[Mount]: ...


class WebApp:
    """Health checks, then the first mount whose prefix matches, else the fallback (404
    without one)."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness
        self.mounts: list[Mount] = []
        # What answers every path no mount takes (the dashboard under ``/``); None: 404.
        self.fallback: AsgiApp | None = None

    def mount(self, route: Mount) -> None:
        if any(m.prefix == route.prefix for m in self.mounts):
            raise ValueError(f"{route.prefix} is mounted already")
        self.mounts.append(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no websockets; lifespan is off
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        if path == "/healthz":
            await answer(send, 200, {"ok": True})
            return
        if path == "/readyz":
            ready, detail = await self.readiness()
            await answer(send, 200 if ready else 503, {"ok": ready, "detail": detail})
            return
        for route in self.mounts:
            if route.matches(path):
                await route.app(scope, receive, send)
                return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
            return
        await answer(send, 404, {"ok": False, "error": "not found"})


async def answer(
    send: Send,
    status: int,
    body: dict[str, Any],
    *,
    close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    data = json.dumps(body).encode()
    sent = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    sent.extend(headers)
    if close:  # the rest of the body is not read: the connection cannot be reused
        sent.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": sent})
    await send({"type": "http.response.body", "body": data})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def client(scope: Scope) -> str:
    found = scope.get("client")
    return str(found[0]) if found else "an unknown address"


class TooLarge(Exception):
    """The body is over the cap (declared, or as it streamed)."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, None if the client went away, :class:`TooLarge` past ``limit`` bytes:
    at once from its Content-Length, else as soon as the chunks read so far pass it."""
    declared = header(scope, b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (already read) first, then the client's."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def too_large(scope: Scope, send: Send, limit: int) -> None:
    """413, one log line (no body), and the connection closed (the rest is not read)."""
    log.info("web: refused a request body over %d bytes from %s", limit, client(scope))
    await answer(send, 413, {"ok": False, "error": "request body too large"}, close=True)
