"""Milestones on Discord, end to end: the real discord.py client against the fake Discord, on
SQLite and PostgreSQL. ``/milestone add`` without a line opens the form (a modal of five fields
at most) and its submission adds the milestone for the channel it was run in; the T-7 countdown
is posted there at 09:00; ``/milestone done`` posts the celebration with ``allowed_mentions``
naming only the people involved, and the card as a PNG attachment; a bad line is refused
privately with nothing saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from adapters.console.clock import DemoClock
from bot.charts import render_png
from bot.chat import Chart
from bot.delivery.outbox import decode_message
from storage.db import Database
from storage.milestones import Milestone
from storage.models import OutboxMessage
from tests.fakes.discord.harness import running
from tests.fakes.discord.server import FakeDiscord
from tests.test_discord_charts import png_of
from tests.test_kudos_discord import World, private

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    fake = await FakeDiscord().start()
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    robot = fake.add_user("deploybot")
    guild = fake.add_guild("Acme", ["team"], [alice, bob])
    try:
        async with running(fake, db_url, DemoClock(START)) as bot:
            yield World(fake, guild, alice, bob, robot, database, bot)
    finally:
        await fake.stop()


async def count(world: World) -> int:
    async with world.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Milestone)) or 0)


async def test_the_form_the_countdown_and_the_celebration_with_its_card(world: World) -> None:
    fake = world.fake
    asked = await fake.slash(
        "milestone", "add", user_id=world.alice, guild=world.guild, channel="team"
    )
    answer = await fake.answered(asked)
    assert answer["type"] == 9, answer
    modal = answer["data"]
    names = [c["component"]["custom_id"] for c in modal["components"]]
    assert names == ["name", "date", "channel", "owner", "area"]
    submitted = await fake.submit(
        modal,
        {"name": "Launch v2", "date": "2026-03-20", "owner": "bob"},
        user_id=world.alice,
        guild=world.guild,
        channel_id=world.team,
    )
    reply = await private(world, submitted)
    assert reply.startswith("Milestone **Launch v2** added: due Fri 20 Mar 2026, in 11 days.")
    # Discord gives no zone: the date is in UTC until alice sets hers, and the reply says so.
    assert "The date is in UTC (UTC: syncup doesn't know your zone" in reply

    await world.bot.move_to(datetime(2026, 3, 13, 9, 1, tzinfo=UTC))
    [countdown] = fake.created_messages(world.team)
    assert countdown["content"].startswith("⏳ 7 days to **Launch v2**: due Fri 20 Mar 2026 (UTC).")
    assert countdown["allowed_mentions"]["users"] == [world.bob]

    asked = await fake.slash(
        "milestone", "done", {"name": "Launch v2"}, user_id=world.bob, guild=world.guild,
        channel="team",
    )  # fmt: skip
    assert (await private(world, asked)).startswith("Marked **Launch v2** done.")
    [_, posted] = fake.created_messages(world.team)
    assert "Milestone done: Launch v2" in str(posted)
    assert posted["allowed_mentions"]["parse"] == []
    assert sorted(posted["allowed_mentions"]["users"]) == sorted([world.bob])
    [attachment] = posted["attachments"]
    async with world.database.transaction() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("milestone:%:done"))
        )
    assert row is not None
    [card] = [b for b in decode_message(row.payload).blocks if isinstance(b, Chart)]
    assert card.rows == ("bob",)
    assert png_of(fake, attachment) == render_png(card)

    for options, problem in (
        ({"line": "Beta 2026-03-01"}, "is in the past"),
        ({"line": "Beta whenever"}, "can't read"),
        ({"line": "launch v2 friday"}, "There is already a milestone named"),
    ):
        asked = await fake.slash(
            "milestone", "add", options, user_id=world.alice, guild=world.guild, channel="team"
        )
        assert problem in await private(world, asked), options
    assert await count(world) == 1
