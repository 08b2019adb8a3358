"""``POST /api/messages`` on the core's one HTTP server, handed to the Teams SDK.

The SDK takes any HTTP framework through its ``HttpServerAdapter`` protocol: it registers its
messaging route here (``register_route``), and this ASGI app calls it. The SDK's handler is what
validates each request's JWT (``InboundActivityTokenValidator``: RS256 signature with a key from
the Bot Framework's OpenID metadata, issuer, audience = the app id, expiry, and the token's
``serviceurl`` claim against the activity's ``serviceUrl``) and answers 401 when it fails.

Before the SDK sees a request: a body over ``[http] max_body_bytes`` gets 413, a body that is
not a JSON object 400, and, when ``[teams] allowed_tenants`` is set, an activity from another
tenant 401. Nothing from a request is logged beyond ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from microsoft_teams.apps.http.adapter import HttpMethod, HttpRequest, HttpRouteHandler

from bot.web.asgi import Mount, Receive, Scope, Send, TooLarge, client, read_body, too_large

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/messages"


def tenant_of(activity: dict[str, Any]) -> str | None:
    conversation = activity.get("conversation") or {}
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    if not tenant:
        data = activity.get("channelData") or {}
        tenant = ((data.get("tenant") or {}) if isinstance(data, dict) else {}).get("id")
    return str(tenant) if tenant else None


class AsgiServerAdapter:
    """The SDK's ``HttpServerAdapter`` on the core's server: routes registered by the SDK are
    served by :meth:`__call__`; the SDK never starts a server of its own here."""

    def __init__(self, max_body_bytes: int, allowed_tenants: list[str]) -> None:
        self.max_body_bytes = max_body_bytes
        self.allowed_tenants = set(allowed_tenants)
        self._routes: dict[tuple[str, str], HttpRouteHandler] = {}
        self._flying = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.serving = False

    # -- the SDK's side --------------------------------------------------------------------------

    def register_route(self, method: HttpMethod, path: str, handler: HttpRouteHandler) -> None:
        self._routes[(method, path)] = handler

    def serve_static(self, path: str, directory: str) -> None:
        """syncup serves no tab pages."""

    async def start(self, port: int) -> None:
        raise NotImplementedError("syncup's own HTTP server (bot.web) carries the Teams routes")

    async def stop(self) -> None:
        await self.drain()

    # -- the core's side -------------------------------------------------------------------------

    def mounts(self) -> list[Mount]:
        return [Mount(MESSAGES_PATH, self)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._routes.get((scope.get("method", "GET"), scope["path"]))
        if not self.serving or handler is None:
            status = 405 if self.serving else 503
            await _answer(send, status, {"error": "not serving Teams activities here now"})
            return
        self._flying += 1
        self._idle.clear()
        try:
            await self._handle(scope, receive, send, handler)
        finally:
            self._flying -= 1
            if self._flying == 0:
                self._idle.set()

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, handler: HttpRouteHandler
    ) -> None:
        try:
            raw = await read_body(scope, receive, self.max_body_bytes)
        except TooLarge:
            await too_large(scope, send, self.max_body_bytes)
            return
        if raw is None:
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.info("teams: refused a body that is not a JSON object from %s", client(scope))
            await _answer(send, 400, {"error": "malformed body"})
            return
        if self.allowed_tenants and tenant_of(body) not in self.allowed_tenants:
            log.warning("teams: refused an activity from a tenant not in [teams] allowed_tenants")
            await _answer(send, 401, {"error": "Unauthorized"})
            return
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers") or []
        }
        request: HttpRequest = {"body": body, "headers": headers}
        response = await handler(request)
        await _answer(send, response["status"], response["body"])

    async def drain(self) -> None:
        self.serving = False
        await self._idle.wait()


async def _answer(send: Send, status: int, body: Any) -> None:
    data = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-length", b"%d" % len(data))]
    if data:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
