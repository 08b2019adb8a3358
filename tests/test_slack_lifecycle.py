"""Installs and uninstalls: OAuth into several workspaces with tokens encrypted at rest and
rotated, and a workspace's data deleted once the uninstall grace period has passed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from adapters.slack.oauth import SqlInstallationStore, TokenCipher
from storage.db import Database
from storage.models import Member, Standup, Workspace
from storage.slack_installs import SlackBot, SlackInstallation
from tests.fakes.slack.harness import SlackWorld, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack

START = datetime(2026, 3, 9, 7, tzinfo=UTC)
KEY = Fernet.generate_key().decode()
# slack_sdk's oauth.v2.access still builds aiohttp's BasicAuth; not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        yield slack


@pytest.fixture(params=["socket", "http"])
async def world(
    request: pytest.FixtureRequest, fake: FakeSlack, database: Database
) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, request.param, START, uninstall_grace_days=2) as w:
        yield w


async def count(db: Database, model: type, *where: object) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def test_an_uninstall_removes_the_workspace_data_after_the_grace(world: SlackWorld) -> None:
    db = world.app.db
    await world.command("UALICE", "/standup setup")
    await world.submit(
        "UALICE",
        {"name": "Daily", "channel": "#team", "participants": "@alice @bob", "reminder": "off"},
    )
    await world.command("UALICE", "/standup pause Daily")
    assert await count(db, Standup) == 1
    assert await count(db, Member) == 2

    world.fake.revoke("T1")
    await world.event({"type": "app_uninstalled"}, event_id="Ev-bye")
    async with db.transaction() as session:
        workspace = await session.scalar(select(Workspace))
    assert workspace is not None and workspace.uninstalled_at is not None

    await world.move_to(START + timedelta(days=1, hours=12))
    assert await count(db, Workspace) == 1  # still within the grace period
    assert await count(db, Standup) == 1

    await world.move_to(START + timedelta(days=2, hours=2))
    assert await count(db, Workspace) == 0
    assert await count(db, Member) == 0
    assert await count(db, Standup) == 0
    assert world.app.workspace_removal.removed == ["slack:T1"]


async def test_tokens_revoked_for_users_only_keeps_the_workspace(world: SlackWorld) -> None:
    await world.dm("UBOB", "hello")
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["UBOB"], "bot": []}}
    await world.event(event, event_id="Ev-revoked")
    async with world.app.db.transaction() as session:
        workspace = await session.scalar(select(Workspace))
    assert workspace is not None and workspace.uninstalled_at is None


# -- OAuth ---------------------------------------------------------------------------------------


@pytest.fixture
async def oauth_world(fake: FakeSlack, database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(
        fake,
        database.url,
        "http",
        START,
        bot_token=None,
        app_token=None,
        client_id="111.222",
        client_secret="client-secret",
        token_encryption_key=KEY,
    ) as w:
        yield w


async def install(world: SlackWorld, team: str, **grant: object) -> str:
    status, page = await world.get("/slack/install")
    assert status == 200
    state = re.search(r"state=([\w\-]+)", page)
    assert state is not None, page
    token = world.fake.grant_code(f"code-{team}", team, **grant)  # type: ignore[arg-type]
    status, page = await world.get(
        f"/slack/oauth_redirect?code=code-{team}&state={state[1]}",
        {"Cookie": world.last_cookie},
    )
    assert status == 200, page
    assert "syncup is installed" in page
    return token


async def test_oauth_installs_store_tokens_encrypted(oauth_world: SlackWorld) -> None:
    db = oauth_world.app.db
    token = await install(oauth_world, "T1")
    await install(oauth_world, "T2")
    async with db.transaction() as session:
        stored = list(await session.scalars(select(SlackBot.bot_token)))
        installs = list(await session.scalars(select(SlackInstallation)))
    assert len(stored) == 2 and len(installs) == 2
    assert all(t and "xoxb" not in t for t in stored)  # ciphertext only
    store = SqlInstallationStore(db, TokenCipher(KEY), "111.222")
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == token

    # The installed workspace works: a DM gets its answer with that workspace's token.
    await oauth_world.dm("UBOB", "hello")
    answer = oauth_world.fake.calls_of("chat.postMessage")[-1]
    assert answer.token == token
    assert "/syncup help" in text_of(oauth_world.fake.dms_to("UBOB")[-1].blocks)


async def test_a_state_is_used_once(oauth_world: SlackWorld) -> None:
    status, page = await oauth_world.get("/slack/install")
    state = re.search(r"state=([\w\-]+)", page)
    assert state is not None
    oauth_world.fake.grant_code("c1", "T1")
    oauth_world.fake.grant_code("c2", "T1")
    cookie = {"Cookie": oauth_world.last_cookie}
    redirect = f"/slack/oauth_redirect?code=c1&state={state[1]}"
    assert (await oauth_world.get(redirect, cookie))[0] == 200
    redirect = f"/slack/oauth_redirect?code=c2&state={state[1]}"
    status, page = await oauth_world.get(redirect, cookie)
    assert status != 200 and "not installed" in page


async def test_rotating_tokens_are_refreshed_before_they_expire(oauth_world: SlackWorld) -> None:
    fake = oauth_world.fake
    first = await install(oauth_world, "T1", rotating=True, expires_in=600)
    await oauth_world.dm("UBOB", "hello")
    refreshes = [c for c in fake.calls_of("oauth.v2.access") if c.args.get("grant_type")]
    assert len(refreshes) == 1  # once, though both bolt and the port needed a token
    used = fake.calls_of("chat.postMessage")[-1].token
    assert used != first and used is not None and used.startswith("xoxe.")
    await oauth_world.dm("UBOB", "again")
    assert fake.calls_of("chat.postMessage")[-1].token == used
    assert len([c for c in fake.calls_of("oauth.v2.access") if c.args.get("grant_type")]) == 1


async def test_an_uninstall_deletes_the_installation_at_once(oauth_world: SlackWorld) -> None:
    await install(oauth_world, "T1")
    await oauth_world.dm("UBOB", "hello")
    await oauth_world.event({"type": "app_uninstalled"}, event_id="Ev-gone")
    assert await count(oauth_world.app.db, SlackBot) == 0
    assert await count(oauth_world.app.db, SlackInstallation) == 0
    async with oauth_world.app.db.transaction() as session:
        workspace = await session.scalar(select(Workspace))
    assert workspace is not None and workspace.uninstalled_at is not None
    # Installing again within the grace period keeps the data.
    await install(oauth_world, "T1")
    async with oauth_world.app.db.transaction() as session:
        workspace = await session.scalar(select(Workspace))
    assert workspace is not None and workspace.uninstalled_at is None
