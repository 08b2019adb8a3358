"""``/milestone hook`` on Discord, end to end: the real discord.py client against the fake
Discord, on SQLite and PostgreSQL. An admin adds a hook (its URL and secret in an ephemeral
interaction reply) and a rule; a signed GitHub ``release`` delivery POSTed to the app's own
HTTP server posts the celebration in the channel with ``allowed_mentions`` pinging nobody; a
member who is not an admin is refused privately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from adapters.console.clock import DemoClock
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import FakeDiscord, FakeGuild, Interaction
from tests.hooks_world import KEY, SECRET_IN_REPLY, URL_IN_REPLY, github_headers, release

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: str
    bob: str
    bot: RunningBot

    @property
    def team(self) -> str:
        return self.fake.channel_id(self.guild, "team")

    async def hook(self, action: str, options: dict[str, str], *, by: str) -> Interaction:
        return await self.fake.slash(
            "milestone",
            "hook",
            {"action": action, **options},
            user_id=by,
            guild=self.guild,
            channel="team",
            admin=by == self.alice,
        )


@pytest.fixture
async def world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    # Hook secrets are encrypted at rest (PostgreSQL has no key file beside it); the app's
    # HTTP server on a free port.
    monkeypatch.setenv("SYNCUP_SECURITY_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNCUP_WEB_PORT", "0")
    fake = await FakeDiscord().start()
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    guild = fake.add_guild("Acme", ["team"], [alice, bob])
    try:
        async with running(fake, db_url, DemoClock(START)) as bot:
            yield World(fake, guild, alice, bob, bot)
    finally:
        await fake.stop()


async def private(world: World, interaction: Interaction) -> str:
    await world.bot.settle()
    reply = await world.fake.settled_reply(interaction)
    assert reply["type"] == 4 and reply["data"]["flags"] == 64, reply
    return str(reply["data"]["content"])


async def test_an_admin_adds_a_hook_and_a_signed_release_is_celebrated(world: World) -> None:
    fake = world.fake
    added = await private(
        world, await world.hook("add", {"hook": "github", "line": "ci"}, by=world.alice)
    )
    url, secret = URL_IN_REPLY.search(added), SECRET_IN_REPLY.search(added)
    assert url is not None and secret is not None, added
    line = f"release <#{world.team}> 🚀 $repo $tag: $name"
    ruled = await private(
        world, await world.hook("rule", {"hook": "ci", "line": line}, by=world.alice)
    )
    assert "added to" in ruled and "ci" in ruled
    assert fake.created_messages(world.team) == []

    body = release("v2.0.0", "Faster <@&123> @everyone @here checkout")
    path = f"/hooks/{url.group(1)}/{url.group(2)}"
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"http://127.0.0.1:{world.bot.app.web.port}{path}",
            content=body,
            headers=github_headers(secret.group(1), body, "release", "guid-discord-1"),
        )
    assert answer.status_code == 200 and answer.json()["outcome"] == "posted"
    await world.bot.settle()
    [post] = fake.created_messages(world.team)
    assert "acme/shop v2.0.0: Faster" in post["content"]
    assert post["allowed_mentions"]["parse"] == []  # @everyone, @here and roles ping nobody
    assert not post["allowed_mentions"].get("users") and not post["allowed_mentions"].get("roles")

    refused = await private(
        world, await world.hook("add", {"hook": "github", "line": "mine"}, by=world.bob)
    )
    assert "admin" in refused.lower() and "secret" not in refused.lower()
    await world.bot.settle()
    assert len(fake.created_messages(world.team)) == 1
