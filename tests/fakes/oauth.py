"""Fake Slack (Sign in with Slack, OpenID Connect) and Discord (OAuth2) sign-in servers.

An aiohttp server on 127.0.0.1 (port 0) with the endpoints the dashboard uses, speaking their
wire formats: the authorize pages (which here consent at once for :attr:`FakeOAuth.user` and
redirect back with a code and the state unchanged), Slack's ``openid.connect.token`` and
``openid.connect.userInfo`` (``ok``/``error`` bodies), Discord's ``/oauth2/token`` (client
credentials in HTTP Basic auth, RFC 6749 errors) and ``/users/@me``. A code works once, only
for the client and redirect URI it was issued to; every call is recorded.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

SLACK_ID, SLACK_SECRET = "slack-client", "slack-secret"
DISCORD_ID, DISCORD_SECRET = "discord-client", "discord-secret"


@dataclass
class Grant:
    platform: str
    redirect_uri: str
    user: dict[str, str]


@dataclass
class FakeOAuth:
    # The account the next authorize page signs in, per platform.
    user: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeOAuth:
        app = web.Application()
        app.router.add_get("/openid/connect/authorize", self.slack_authorize)
        app.router.add_post("/api/openid.connect.token", self.slack_token)
        app.router.add_post("/api/openid.connect.userInfo", self.slack_userinfo)
        app.router.add_get("/oauth2/authorize", self.discord_authorize)
        app.router.add_post("/api/v10/oauth2/token", self.discord_token)
        app.router.add_get("/api/v10/users/@me", self.discord_me)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorize(self, request: web.Request, platform: str, client_id: str, scope: str) -> Any:
        q = request.query
        self.calls.append((f"{platform}.authorize", dict(q)))
        if q.get("client_id") != client_id or q.get("response_type") != "code":
            return web.Response(status=400, text="bad client_id or response_type")
        if scope not in q.get("scope", "").split():
            return web.Response(status=400, text="missing scope")
        code = secrets.token_urlsafe(12)
        self.codes[code] = Grant(platform, q["redirect_uri"], self.user[platform])
        back = {"code": code, "state": q.get("state", "")}
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode(back)}")

    def _spend(self, platform: str, form: Any) -> Grant | None:
        grant = self.codes.pop(str(form.get("code", "")), None)
        if grant is None or grant.platform != platform:
            return None
        if grant.redirect_uri != form.get("redirect_uri"):
            return None
        return grant

    async def slack_authorize(self, request: web.Request) -> web.Response:
        return self._authorize(request, "slack", SLACK_ID, "openid")  # type: ignore[no-any-return]

    async def slack_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.calls.append(("slack.token", dict(form)))
        if form.get("client_id") != SLACK_ID or form.get("client_secret") != SLACK_SECRET:
            return web.json_response({"ok": False, "error": "invalid_client"})
        grant = self._spend("slack", form)
        if grant is None:
            return web.json_response({"ok": False, "error": "invalid_code"})
        token = "xoxp-" + secrets.token_urlsafe(8)
        self.tokens[token] = grant.user
        return web.json_response(
            {"ok": True, "access_token": token, "token_type": "Bearer", "id_token": "x.y.z"}
        )

    async def slack_userinfo(self, request: web.Request) -> web.Response:
        self.calls.append(("slack.userInfo", {}))
        user = self.tokens.get(request.headers.get("Authorization", "")[7:])
        if user is None:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(
            {
                "ok": True,
                "sub": user["id"],
                "https://slack.com/user_id": user["id"],
                "https://slack.com/team_id": user.get("team", "T1"),
                "name": user["name"],
            }
        )

    async def discord_authorize(self, request: web.Request) -> web.Response:
        return self._authorize(request, "discord", DISCORD_ID, "identify")  # type: ignore[no-any-return]

    async def discord_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.calls.append(("discord.token", dict(form)))
        auth = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{DISCORD_ID}:{DISCORD_SECRET}".encode()).decode()
        if auth != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._spend("discord", form)
        if grant is None or form.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = secrets.token_urlsafe(12)
        self.tokens[token] = grant.user
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 604800,
                "scope": "identify",
            }
        )

    async def discord_me(self, request: web.Request) -> web.Response:
        self.calls.append(("discord.me", {}))
        user = self.tokens.get(request.headers.get("Authorization", "")[7:])
        if user is None:
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        return web.json_response(
            {"id": user["id"], "username": user["name"], "global_name": user["name"]}
        )
