"""Signing in to the dashboard (SQLite and PostgreSQL): one-time console links, Sign in with
Slack (OpenID Connect) and Discord OAuth2 against fake servers on 127.0.0.1, and the bad
input around them: a link used twice or expired, a forged, tampered or expired session cookie,
an OAuth callback whose state is not this browser's, too many attempts, no key to sign with."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot import directory
from bot.cli import cli
from bot.config import Settings
from bot.events import Actor
from bot.web.asgi import WebApp
from bot.web.dashboard.app import Dashboard
from bot.web.dashboard.cli import LinkRefused, make_link
from bot.web.dashboard.sessions import SESSION_COOKIE
from storage import migrate
from storage.db import Database
from storage.web_sessions import WebLoginLink, token_hash
from tests.cli_env import cli_on_sqlite
from tests.dashboard_world import form_of
from tests.fakes.clock import FakeClock
from tests.fakes.oauth import DISCORD_ID, DISCORD_SECRET, SLACK_ID, SLACK_SECRET, FakeOAuth

BASE = "https://dash.example.test"
START = datetime(2026, 5, 4, 9, tzinfo=UTC)


@dataclass
class Door:
    db: Database
    clock: FakeClock
    settings: Settings
    app: WebApp
    fake: FakeOAuth
    workspaces: dict[str, int]

    def client(self, ip: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 5000))
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    async def link(self, member: str) -> str:
        url = await make_link(self.db, self.settings, member, None, self.clock.now())
        return url.removeprefix(BASE)


def settings_for(fake: FakeOAuth, **dashboard: Any) -> Settings:
    return Settings(
        security={"secret_key": Fernet.generate_key().decode()},
        web={"public_url": BASE},
        slack={"client_id": SLACK_ID, "client_secret": SLACK_SECRET,
               "api_base_url": f"{fake.url}/api/"},
        discord={"application_id": DISCORD_ID, "api_base_url": f"{fake.url}/api/v10"},
        dashboard={
            "slack_authorize_url": f"{fake.url}/openid/connect/authorize",
            "discord_authorize_url": f"{fake.url}/oauth2/authorize",
            "discord_client_secret": DISCORD_SECRET,
            **dashboard,
        },
    )  # fmt: skip


async def make_door(database: Database, fake: FakeOAuth, **dashboard: Any) -> Door:
    settings = settings_for(fake, **dashboard)
    clock = FakeClock(START)
    found: dict[str, int] = {}
    async with database.transaction() as session:
        for platform, external, name, user in (
            ("console", "console", "Console", "alice"),
            ("slack", "T9", "Acme Slack", "U123"),
            ("discord", "G1", "Acme Guild", "4242"),
            ("slack", "T8", "Someone Else", "U999"),
        ):
            ws = await directory.ensure_workspace(session, platform, external, name, START)
            await directory.ensure_member(session, ws, Actor(user, user.lower()), START)
            found[name] = ws.id
    app = WebApp(_ready)
    app.fallback = Dashboard(settings, database, clock, base_url=lambda: BASE)
    return Door(database, clock, settings, app, fake, found)


async def _ready() -> tuple[bool, str]:
    return True, "ready"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOAuth]:
    async with FakeOAuth() as server:
        server.user = {
            "slack": {"id": "U123", "name": "Ursula"},
            "discord": {"id": "4242", "name": "dee"},
        }
        yield server


@pytest.fixture
async def door(database: Database, fake: FakeOAuth) -> Door:
    return await make_door(database, fake)


async def press(client: httpx.AsyncClient, link: str) -> httpx.Response:
    page = await client.get(link)
    assert page.status_code == 200
    return await client.post("/login/link", data=form_of(page.text))


async def test_a_login_link_signs_in_once(door: Door) -> None:
    link = await door.link("alice")
    async with door.client() as client:
        # Opening the link only shows a button: a chat app's preview cannot spend it.
        assert (await client.get(link)).status_code == 200
        signed = await press(client, link)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
        home = await client.get("/", follow_redirects=True)
        assert "<h1>Overview</h1>" in home.text and "Console" in home.text
    async with door.client() as other:
        again = await press(other, link)
        assert again.status_code == 403 and "used already" in again.text
        assert SESSION_COOKIE not in again.headers.get("set-cookie", "")
    async with door.db.transaction() as session:
        rows = list(await session.scalars(select(WebLoginLink)))
    token = link.rsplit("/", 1)[1]
    assert [r.token_hash for r in rows] == [token_hash(token)]  # only the hash is kept


async def test_an_expired_or_unknown_link_is_refused(door: Door) -> None:
    link = await door.link("alice")
    door.clock.advance(timedelta(minutes=16))
    async with door.client() as client:
        late = await press(client, link)
        assert late.status_code == 403 and "expired" in late.text
        bogus = await press(client, "/login/link/" + "x" * 43)
        assert bogus.status_code == 403 and "not valid" in bogus.text
        # The form without the browser's sign-in cookie (posted from elsewhere).
        client.cookies.clear()
        forged = await client.post("/login/link", data={"token": "x" * 43, "csrf": "y"})
        assert forged.status_code == 403


async def test_forged_tampered_and_expired_session_cookies_are_refused(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = f"/w/{door.workspaces['Console']}/"
    other_key = itsdangerous.URLSafeTimedSerializer(
        Fernet.generate_key().decode(), salt="syncup.dashboard.session"
    )
    forged = other_key.dumps({"p": "console", "u": "alice", "n": "alice", "c": "x"})
    async with door.client() as client:
        signed = await press(client, await door.link("alice"))
        real = signed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        assert (await client.get(page)).status_code == 200
        for cookie in (forged, real[:-2] + ("AA" if not real.endswith("AA") else "BB"), "junk"):
            client.cookies.clear()
            client.cookies.set(SESSION_COOKIE, cookie)
            answer = await client.get(page)
            assert answer.status_code == 303 and answer.headers["location"] == "/login"
        # A cookie signed with the right key 13 hours ago (sessions last 12).
        key = door.settings.security.secret_key
        assert key is not None
        old = int(time.time()) - 13 * 3600
        monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: old)
        stale = itsdangerous.URLSafeTimedSerializer(
            key.get_secret_value(), salt="syncup.dashboard.session"
        ).dumps({"p": "console", "u": "alice", "n": "alice", "c": "x"})
        monkeypatch.undo()
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, stale)
        assert (await client.get(page)).status_code == 303


async def oauth(client: httpx.AsyncClient, platform: str) -> httpx.Response:
    """Press "Sign in with ...", consent on the fake, and come back to the callback."""
    start = await client.get(f"/login/{platform}")
    assert start.status_code == 302
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.headers["location"])
    assert consent.status_code == 302, consent.text
    back = consent.headers["location"]
    assert back.startswith(f"{BASE}/login/{platform}/callback?")
    return await client.get(back.removeprefix(BASE))


@pytest.mark.parametrize(
    ("platform", "sees", "hidden"),
    [("slack", "Acme Slack", "Someone Else"), ("discord", "Acme Guild", "Acme Slack")],
)
async def test_sign_in_with_slack_and_discord(
    door: Door, fake: FakeOAuth, platform: str, sees: str, hidden: str
) -> None:
    async with door.client() as client:
        login = await client.get("/login")
        assert f'href="/login/{platform}"' in login.text
        signed = await oauth(client, platform)
        assert signed.status_code == 303, signed.text
        home = await client.get("/", follow_redirects=True)
        assert sees in home.text and hidden not in home.text
        forbidden = await client.get(f"/w/{door.workspaces['Someone Else']}/")
        assert forbidden.status_code == 403 and "Someone Else" not in forbidden.text
    kinds = [kind for kind, _ in fake.calls]
    if platform == "slack":
        assert kinds == ["slack.authorize", "slack.token", "slack.userInfo"]
        assert fake.calls[0][1]["scope"] == "openid profile"
    else:
        assert kinds == ["discord.authorize", "discord.token", "discord.me"]
        assert fake.calls[0][1]["scope"] == "identify"
    assert fake.calls[0][1]["redirect_uri"] == f"{BASE}/login/{platform}/callback"


async def test_an_oauth_callback_needs_this_browsers_state(door: Door, fake: FakeOAuth) -> None:
    async with door.client() as mine, door.client() as theirs:
        start = await mine.get("/login/slack")
        async with httpx.AsyncClient() as browser:
            consent = await browser.get(start.headers["location"])
        callback = consent.headers["location"].removeprefix(BASE)
        # Another browser (a login CSRF: the attacker's code in the victim's browser).
        stolen = await theirs.get(callback)
        assert stolen.status_code == 403 and "did not start in this browser" in stolen.text
        # The right browser with a changed state.
        changed = await mine.get(callback.replace("state=", "state=x"))
        assert changed.status_code == 403
        # The platform said no.
        denied = await mine.get("/login/slack/callback?error=access_denied&state=" + "z")
        assert denied.status_code == 403
    assert "slack.token" not in [kind for kind, _ in fake.calls]


async def test_a_code_the_platform_refuses_is_a_clear_403(door: Door, fake: FakeOAuth) -> None:
    async with door.client() as client:
        start = await client.get("/login/discord")
        state = dict(httpx.URL(start.headers["location"]).params)["state"]
        refused = await client.get(f"/login/discord/callback?code=made-up&state={state}")
        assert refused.status_code == 403 and "Discord refused the sign-in" in refused.text


async def test_sign_in_attempts_are_rate_limited_per_address_and_account(
    database: Database, fake: FakeOAuth
) -> None:
    door = await make_door(database, fake, login_attempts_per_ip=3, login_attempts_per_account=2)
    async with door.client("10.0.0.1") as client:
        for _ in range(3):
            assert (await press(client, "/login/link/" + "q" * 43)).status_code == 403
        limited = await press(client, await door.link("alice"))
        assert limited.status_code == 429
    # alice's account from fresh addresses: two sign-ins, then 429.
    for n, expected in ((2, 303), (3, 303), (4, 429)):
        async with door.client(f"10.0.0.{n}") as client:
            assert (await press(client, await door.link("alice"))).status_code == expected


async def test_no_key_to_sign_cookies_with_is_a_503_not_a_default(
    database: Database, fake: FakeOAuth
) -> None:
    settings = Settings(database={"url": "postgresql+asyncpg://nobody@127.0.0.1/none"})
    app = WebApp(_ready)
    app.fallback = Dashboard(settings, database, FakeClock(START), base_url=lambda: BASE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        answer = await c.get("/login")
    assert answer.status_code == 503 and "[security] secret_key" in answer.text
    with pytest.raises(LinkRefused, match="secret_key"):
        await make_link(database, settings, "alice", None, START)


async def test_a_link_for_an_unknown_or_ambiguous_member_is_refused(door: Door) -> None:
    with pytest.raises(LinkRefused, match='no member "zed"'):
        await door.link("zed")


def test_the_login_link_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = cli_on_sqlite(tmp_path, monkeypatch, "syncup.db")
    monkeypatch.setenv("SYNCUP_WEB_PUBLIC_URL", BASE)

    async def seed() -> None:
        db = Database(url)
        await migrate.upgrade(db.engine)
        async with db.transaction() as session:
            ws = await directory.ensure_workspace(session, "console", "c", "Console", START)
            await directory.ensure_member(session, ws, Actor("alice", "Alice"), START)
        await db.dispose()

    import asyncio

    asyncio.run(seed())
    runner = CliRunner()
    made = runner.invoke(cli, ["web", "login-link", "--member", "alice"])
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith(f"{BASE}/login/link/")
    unknown = runner.invoke(cli, ["web", "login-link", "--member", "zed"])
    assert unknown.exit_code == 1
    assert unknown.stderr.strip().startswith('syncup: no member "zed"')
    assert "Traceback" not in unknown.output
