"""Members whose platform gives no time zone (Discord) are asked for one with their first
prompt, and picking one moves their next prompts to their local time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest

from bot.chat import Reply
from bot.events import ActionInvocation
from bot.features import account
from bot.features.account import TIMEZONE_ACTION
from bot.timezones import COMMON_ZONES
from storage.db import Database
from storage.models import Member
from tests.test_standup_runtime import MONDAY, World, running_standups, text_of

TEAM = {"alice": "Europe/Berlin", "zed": None}


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database, TEAM) as built:  # type: ignore[arg-type]
        account.register(built.core)  # the picker's action (the app registers both)
        yield built


def at(hour: int, day: int = 0) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), time(hour), UTC)


async def test_a_member_without_a_zone_is_asked_and_the_pick_moves_the_prompts(
    world: World,
) -> None:
    assert 1 < len(COMMON_ZONES) <= 25  # one Discord select
    await world.add_standup(["alice", "zed"])
    await world.advance_to(at(9))  # 09:00 UTC: zed's prompt (alice's came at 08:00 UTC)
    (prompt,) = await world.dms("zed")
    assert "I don't know your time zone yet, so this came at 09:00 UTC." in prompt
    assert "/syncup timezone Area/City" in prompt
    (alice_prompt,) = await world.dms("alice")
    assert "time zone" not in alice_prompt  # she has one

    payload = (await world.outbox())[-1].payload
    assert any(
        element.get("action_id") == TIMEZONE_ACTION
        for block in payload["blocks"]
        if block["kind"] == "actions"
        for element in block["elements"]
    )

    picked = await world.handle(
        ActionInvocation(
            world._origin("D-zed"), world.actor("zed"), TIMEZONE_ACTION, values=("Asia/Tokyo",)
        )
    )
    assert isinstance(picked, Reply)
    assert text_of(picked).startswith("Saved: your time zone is Asia/Tokyo")
    async with world.db.transaction() as session:
        zed = await session.get(Member, world.members["zed"])
        assert zed is not None and zed.timezone == "Asia/Tokyo" and zed.timezone_set_by_member
    # Tuesday: 09:00 in Tokyo is 00:00 UTC, and the prompt no longer asks.
    await world.advance_to(at(0, day=1) + timedelta(minutes=1))
    prompts = await world.dms("zed")
    assert len(prompts) == 2  # Monday's and Tuesday's
    assert "(Tue 10 Mar)" in prompts[-1]
    assert "time zone" not in prompts[-1]


async def test_a_picked_zone_that_is_not_a_zone_is_refused(world: World) -> None:
    refused = await world.handle(
        ActionInvocation(
            world._origin("D-zed"), world.actor("zed"), TIMEZONE_ACTION, values=("Mars/Olympus",)
        )
    )
    assert isinstance(refused, Reply)
    assert "Mars/Olympus" in text_of(refused)
    async with world.db.transaction() as session:
        zed = await session.get(Member, world.members["zed"])
        assert zed is not None and zed.timezone is None
