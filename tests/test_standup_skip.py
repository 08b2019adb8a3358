"""``/standup skip`` skips the member's *local* today, not UTC's. Harness:
:class:`tests.test_standup_runtime.World` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.events import Actor, CommandInvocation
from bot.features.standups import commands
from storage.db import Database
from tests.test_standup_runtime import World, local_nine, running_standups, text_of

MONDAY = date(2026, 3, 9)
ZONES = {"kenji": "Asia/Tokyo", "lou": "America/Los_Angeles"}


async def world_at(database: Database, start: datetime) -> AsyncIterator[World]:
    async with running_standups(database, ZONES, start=start) as built:
        commands.register(built.core)
        yield built


@pytest.fixture
async def sunday_night(database: Database) -> AsyncIterator[World]:
    # Sunday 23:00 UTC: Monday 08:00 in Tokyo, Sunday 16:00 in Los Angeles.
    async for world in world_at(database, datetime(2026, 3, 8, 23, tzinfo=UTC)):
        yield world


async def skip(world: World, name: str) -> str:
    actor = Actor(name, name, world.zones[name])
    return text_of(
        await world.handle(CommandInvocation(world._origin("C"), actor, "standup", "skip"))
    )


async def test_skip_takes_today_in_the_members_zone(sunday_night: World) -> None:
    world = sunday_night
    await world.add_standup(list(ZONES))  # Mon-Fri at 09:00, each member's local time
    # Monday already in Tokyo: kenji skips his Monday, so no prompt comes at his 09:00.
    assert await skip(world, "kenji") == (
        "Skipped today's Daily: no prompt or reminder for it today."
    )
    # Still Sunday in Los Angeles: nothing to skip, and lou's Monday stays as it was.
    assert await skip(world, "lou") == "You have no standup today, so there is nothing to skip."
    await world.advance_to(local_nine("America/Los_Angeles", MONDAY))
    assert await world.dms("kenji") == []
    assert len(await world.dms("lou")) == 1
