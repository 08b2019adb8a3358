"""Kudos on Discord, end to end: the real discord.py client against the fake Discord, on SQLite
and PostgreSQL. ``/kudos give`` posts in the channel with ``allowed_mentions`` naming only the
receivers (an ``@everyone`` in the reason pings nobody), DMs the receiver and answers the giver
privately; "Give kudos" on a member's Apps menu opens the short form (a modal) and its
submission gives; on oneself or a bot the menu entry is refused privately, nothing saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from adapters.console.clock import DemoClock
from storage.db import Database
from storage.kudos import Kudos
from tests.fakes.discord import menus
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import FakeDiscord, FakeGuild, Interaction, snowflake, user_payload

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: str
    bob: str
    robot: str
    database: Database
    bot: RunningBot

    @property
    def team(self) -> str:
        return self.fake.channel_id(self.guild, "team")


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    fake = await FakeDiscord().start()
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    robot = snowflake()
    fake.users[robot] = user_payload(robot, "deploybot", bot=True)
    guild = fake.add_guild("Acme", ["team"], [alice, bob, robot])
    try:
        async with running(fake, db_url, DemoClock(START)) as bot:
            yield World(fake, guild, alice, bob, robot, database, bot)
    finally:
        await fake.stop()


async def private(world: World, interaction: Interaction) -> str:
    await world.bot.settle()
    reply = await world.fake.settled_reply(interaction)
    assert reply["type"] == 4 and reply["data"]["flags"] == 64, reply
    return str(reply["data"]["content"])


async def kudos_count(world: World) -> int:
    async with world.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Kudos)) or 0)


async def test_slash_kudos_pings_only_the_receivers(world: World) -> None:
    fake = world.fake
    line = f"<@{world.bob}> Thanks for the review, @everyone saw it #craft"
    asked = await fake.slash(
        "kudos", "give", {"line": line}, user_id=world.alice, guild=world.guild, channel="team"
    )
    answer = await private(world, asked)
    assert answer.startswith(f"Kudos to <@{world.bob}> (#craft) posted in <#{world.team}>.")
    [post] = fake.created_messages(world.team)
    assert f"<@{world.bob}>" in post["content"] and "Thanks for the review" in post["content"]
    assert post["allowed_mentions"] == {"parse": [], "users": [world.bob], "replied_user": False}
    [dm] = fake.dm_messages(world.bob)
    assert "gave you kudos" in dm["content"] and "#craft" in dm["content"]

    for line, problem in (
        (f"<@{world.alice}> Thanks me", "you can't give yourself kudos"),
        (f"<@{world.bob}>", "Say what the kudos are for"),
        (f"<@{world.bob}> Nice #speed", "#speed is not one of this workspace's values"),
    ):
        asked = await fake.slash(
            "kudos", "give", {"line": line}, user_id=world.alice, guild=world.guild, channel="team"
        )
        assert problem in await private(world, asked), line
    assert len(fake.created_messages(world.team)) == 1
    assert await kudos_count(world) == 1


async def test_give_kudos_on_a_member_opens_the_form_and_gives(world: World) -> None:
    fake = world.fake
    asked = await menus.context_menu(
        fake, "Give kudos", user_id=world.alice, guild=world.guild, target_user=world.bob
    )
    answer = await fake.answered(asked)
    assert answer["type"] == 9, answer
    modal = answer["data"]
    assert modal["title"] == "Kudos for bob"
    names = [c["component"]["custom_id"] for c in modal["components"]]
    assert names == ["reason", "value", "private"]
    done = await fake.submit(
        modal,
        {"reason": "Unblocked the release", "value": ["ownership"], "private": ["yes"]},
        user_id=world.alice,
        guild=world.guild,
        channel_id=world.team,
    )
    reply = await private(world, done)
    assert reply.startswith(f"Kudos to <@{world.bob}> (#ownership) sent privately")
    assert fake.created_messages(world.team) == []  # private: posted nowhere
    [dm] = fake.dm_messages(world.bob)
    assert "Unblocked the release" in dm["content"] and "Private" in dm["content"]
    assert await kudos_count(world) == 1


async def test_give_kudos_on_oneself_or_a_bot_is_refused_privately(world: World) -> None:
    for target, problem in (
        (world.alice, "you can't give yourself kudos"),
        (world.robot, "is a bot; name a person instead."),
    ):
        asked = await menus.context_menu(
            world.fake, "Give kudos", user_id=world.alice, guild=world.guild, target_user=target
        )
        assert problem in await private(world, asked)
    assert await kudos_count(world) == 0
