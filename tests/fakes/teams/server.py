"""A fake Microsoft Teams on 127.0.0.1: the Bot Framework's token endpoints and the connector.

It runs on its own thread and event loop, because the Teams SDK fetches the signing keys with a
blocking call (PyJWT's ``PyJWKClient``) from inside the bot's event loop: a fake on that same loop
could never answer it.

* OpenID metadata (``/v1/.well-known/openidconfiguration``) and its JWKS (``/v1/.well-known/keys``)
  with a test RSA key; :meth:`FakeTeams.token` signs the JWTs Teams puts on every activity it
  sends to the bot (issuer, audience = the app id, ``serviceurl``, expiry), and
  :meth:`FakeTeams.deliver` posts an activity to the bot's ``/api/messages`` with one.
* ``POST /<tenant>/oauth2/v2.0/token``: client-credential tokens for the bot's outbound calls;
  the connector refuses calls without one (401).
* The connector's REST API: ``POST /v3/conversations`` (a 1:1 chat with a member of a tenant),
  ``POST /v3/conversations/{id}/activities`` (send), ``POST .../activities/{activityId}``
  (reply in a thread), ``PUT .../activities/{activityId}`` (update),
  ``GET /v3/conversations/{id}/members``. Every call is recorded.
* Teams' limits per bot and conversation: 7 operations a second, 8 in 2 s, 60 in 30 s, 1,800 an
  hour (a 1:1 chat's creation counts in that chat); and per bot and tenant, 50 requests a second
  over every connector call; over any of them, 429 with ``Retry-After``. An activity over 28 KB
  (Adaptive Cards' limit) is refused with 413 and recorded in :attr:`FakeTeams.violations`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "00000000-0000-4000-8000-0000000a5e11"
TENANT = "11111111-2222-4333-8444-555555555555"
KID = "fake-teams-key"
MAX_ACTIVITY_BYTES = 28 * 1024
# (operations, seconds) per bot per conversation (Teams' documented per-thread limits).
WINDOWS = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
# (requests, seconds) per bot per tenant, over every connector call.
TENANT_WINDOWS = ((50, 1.0),)


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int


@dataclass
class Sent:
    """An activity the bot created (a send or a reply) and its edits."""

    conversation_id: str
    activity_id: str
    activity: dict[str, Any]
    reply_to: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current(self) -> dict[str, Any]:
        return self.edits[-1] if self.edits else self.activity


@dataclass
class User:
    aad_id: str
    teams_id: str
    name: str
    timezone: str


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class FakeTeams:
    def __init__(self, app_id: str = APP_ID) -> None:
        self.app_id = app_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.deleted: list[Sent] = []
        self.violations: list[str] = []
        self.users: dict[str, User] = {}  # by Entra object id
        self._by_teams_id: dict[str, User] = {}
        self.chats: dict[str, str] = {}  # 1:1 conversation id -> Entra object id
        self.channels: dict[str, str] = {}  # channel conversation id -> name
        self.issued: set[str] = set()
        self.limit = True
        self.rate_limited = 0  # 429s for Teams' limits (not the forced ones)
        self.faults: deque[tuple[int, dict[str, str]]] = deque()  # the next answers to force
        self._ops: dict[str, deque[float]] = {}
        self._tenant_ops: deque[float] = deque()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle (a thread of its own) -------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-teams", daemon=True)
        self._thread.start()
        ready.wait(10)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/teams/v3/conversations", self._create_conversation)
        app.router.add_post("/teams/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/teams/v3/conversations/{cid}/activities/{aid}", self._reply)
        app.router.add_put("/teams/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_delete("/teams/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/teams/v3/conversations/{cid}/members", self._members)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.url}/teams/"

    @property
    def openid_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    issuer = "https://api.botframework.com"

    # -- the people and places -----------------------------------------------------------------

    def add_user(self, aad_id: str, name: str, timezone: str) -> User:
        user = User(aad_id, f"29:{aad_id}-teams-{uuid.uuid4().hex}", name, timezone)
        self.users[aad_id] = user
        self._by_teams_id[user.teams_id] = user
        return user

    def add_channel(self, conversation_id: str, name: str) -> None:
        self.channels[conversation_id] = name

    # -- tokens --------------------------------------------------------------------------------

    def token(self, **override: Any) -> str:
        """A connector token as Teams signs it; ``override`` changes or removes (None) claims,
        ``key`` signs with another key, ``kid`` names another key."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.app_id,
            "serviceurl": self.service_url,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        key = override.pop("key", self.key)
        kid = override.pop("kid", KID)
        for name, value in override.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/v1/authorize",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": KID,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
            "endorsements": ["msteams"],
        }
        return web.json_response({"keys": [jwk]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.app_id:
            return web.json_response({"error": "invalid_client"}, status=401)
        now = int(time.time())
        claims = {
            "aud": "https://api.botframework.com",
            "iss": f"{self.url}/{request.match_info['tenant']}/",
            "appid": self.app_id,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})
        self.issued.add(token)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": token}
        )

    async def fetch_bot_token(self) -> str:
        """What the bot's token provider gets (the client-credential flow, over HTTP)."""
        import httpx

        async with httpx.AsyncClient() as client:
            got = await client.post(
                f"{self.url}/botframework.com/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.app_id,
                    "client_secret": "test-secret",
                    "scope": "https://api.botframework.com/.default",
                },
            )
            got.raise_for_status()
            return str(got.json()["access_token"])

    # -- the connector -------------------------------------------------------------------------

    def _refuse(self, request: web.Request, conversation: str) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.issued:
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        if self.faults:
            status, headers = self.faults.popleft()
            return web.json_response({"error": {"code": "Forced"}}, status=status, headers=headers)
        if not self.limit:
            return None
        now = time.monotonic()
        wait = max(
            self._over(self._ops.setdefault(conversation, deque()), WINDOWS, now),
            self._over(self._tenant_ops, TENANT_WINDOWS, now),
        )
        if wait > 0:
            self.rate_limited += 1
            return web.json_response(
                {"error": {"code": "ThrottledRequest", "message": "Too many requests"}},
                status=429,
                headers={"Retry-After": f"{max(wait, 0.05):.2f}"},
            )
        self._ops[conversation].append(now)
        self._tenant_ops.append(now)
        return None

    @staticmethod
    def _over(ops: deque[float], windows: tuple[tuple[int, float], ...], now: float) -> float:
        """How long until one more operation fits every window (0: it fits now)."""
        while ops and ops[0] <= now - windows[-1][1]:
            ops.popleft()
        wait = 0.0
        for count, seconds in windows:
            if len(ops) < count:
                continue
            oldest = ops[-count]  # the count-th most recent operation
            if oldest > now - seconds:
                wait = max(wait, oldest + seconds - now)
        return wait

    async def _record(self, request: web.Request, status: int, body: Any) -> None:
        self.calls.append(Call(request.method, request.path, body, status))

    def _too_big(self, body: dict[str, Any]) -> bool:
        size = len(json.dumps(body).encode())
        if size > MAX_ACTIVITY_BYTES:
            self.violations.append(f"activity of {size} bytes (over {MAX_ACTIVITY_BYTES})")
            return True
        return False

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await request.json()
        members = body.get("members") or []
        teams_id = members[0].get("id") if members else None
        user = self._by_teams_id.get(str(teams_id))
        if user is not None and user.aad_id not in self.users:
            user = None
        chat = f"a:1{user.aad_id}-chat" if user is not None else "create"
        refused = self._refuse(request, chat)
        if refused is not None:
            await self._record(request, refused.status, body)
            return refused
        refuse = user is None or user.teams_id != teams_id or body.get("isGroup")
        if refuse or body.get("tenantId") != TENANT:
            await self._record(request, 403, body)
            return web.json_response({"error": {"code": "Forbidden"}}, status=403)
        conversation = chat
        self.chats[conversation] = user.aad_id
        await self._record(request, 201, body)
        return web.json_response({"id": conversation}, status=201)

    async def _activity(
        self, request: web.Request, reply_to: str | None, update: str | None
    ) -> web.Response:
        cid = request.match_info["cid"]
        body = await request.json()
        refused = self._refuse(request, cid)
        if refused is not None:
            await self._record(request, refused.status, body)
            return refused
        if cid not in self.chats and cid.split(";")[0] not in self.channels:
            await self._record(request, 404, body)
            return web.json_response({"error": {"code": "ConversationNotFound"}}, status=404)
        if self._too_big(body):
            await self._record(request, 413, body)
            return web.json_response({"error": {"code": "MessageSizeTooBig"}}, status=413)
        if update is not None:
            sent = self.find(update)
            if sent is None:
                await self._record(request, 404, body)
                return web.json_response({"error": {"code": "ActivityNotFound"}}, status=404)
            sent.edits.append(body)
            await self._record(request, 200, body)
            return web.json_response({"id": update})
        activity_id = f"{next(self._ids):06d}"
        self.sent.append(Sent(cid, activity_id, body, reply_to))
        await self._record(request, 201, body)
        return web.json_response({"id": activity_id}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        return await self._activity(request, None, None)

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._activity(request, request.match_info["aid"], None)

    async def _update(self, request: web.Request) -> web.Response:
        return await self._activity(request, None, request.match_info["aid"])

    async def _delete(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, request.match_info["cid"])
        if refused is not None:
            await self._record(request, refused.status, None)
            return refused
        sent = self.find(request.match_info["aid"])
        if sent is None:
            await self._record(request, 404, None)
            return web.json_response({"error": {"code": "ActivityNotFound"}}, status=404)
        self.sent.remove(sent)
        self.deleted.append(sent)
        await self._record(request, 200, None)
        return web.Response(status=200)

    async def _members(self, request: web.Request) -> web.Response:
        refused = self._refuse(request, request.match_info["cid"])
        if refused is not None:
            await self._record(request, refused.status, None)
            return refused
        await self._record(request, 200, None)
        members = [
            {"id": u.teams_id, "aadObjectId": u.aad_id, "name": u.name} for u in self.users.values()
        ]
        return web.json_response([{"id": f"28:{self.app_id}", "name": "syncup"}, *members])

    # -- reading what happened -----------------------------------------------------------------

    def find(self, activity_id: str) -> Sent | None:
        return next((s for s in self.sent if s.activity_id == activity_id), None)

    def chat_of(self, aad_id: str) -> str | None:
        return next((c for c, who in self.chats.items() if who == aad_id), None)

    def dms_to(self, aad_id: str) -> list[Sent]:
        chat = self.chat_of(aad_id)
        return [s for s in self.sent if s.conversation_id == chat] if chat else []

    def posts(self, channel: str) -> list[Sent]:
        return [s for s in self.sent if s.conversation_id.split(";")[0] == channel]

    def calls_to(self, predicate: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if predicate(c)]
