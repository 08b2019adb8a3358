"""``/standup setup`` on Discord naming seven members syncup has not met, while Discord's member
search answers 429: the real discord.py client and app against the fake Discord.

One 429 (Discord's bucket is empty for its Retry-After) is waited out, after the interaction
was deferred, and the standup is created with every one of the 13 fields as typed; a rate limit
that outlasts the look-up's time says so next to the participants field and keeps the form: "Fix"
opens it again pre-filled, and sending it then creates the standup. Each name is searched once
per form, never twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from adapters.console.clock import DemoClock
from storage.db import Database
from storage.models import Member, Standup, StandupParticipant
from tests.fakes.discord.harness import running
from tests.fakes.discord.server import FakeDiscord, FakeGuild, Interaction

START = datetime(2026, 3, 9, 6, tzinfo=UTC)
NAMES = ("bea", "cyd", "dov", "eli", "fay", "gus", "hal")
SEARCH = "/members/search"
TYPED: list[dict[str, str | list[str]]] = [
    {
        "name": "Platform sync",
        "channel": "#team",
        "participants": " ".join(f"@{n}" for n in NAMES),
        "questions": "What shipped?\nblocker: Anything stuck?",
        "days": "mon,wed,fri",
    },
    {
        "every_weeks": "2",
        "time": "10:30",
        "timezone": "Europe/Berlin",
        "reminder": "45",
        "window": "3h",
    },
    {"report": "cutoff", "options": ["by_question"], "holidays": "2026-12-24"},
]


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: str
    db_url: str
    database: Database
    clock: DemoClock

    @property
    def team(self) -> str:
        return self.fake.channel_id(self.guild, "team")


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    fake = await FakeDiscord().start()
    alice = fake.add_user("alice")
    others = [fake.add_user(n) for n in NAMES]
    guild = fake.add_guild("Acme", ["team"], [alice, *others])
    try:
        yield World(fake, guild, alice, db_url, database, DemoClock(START))
    finally:
        await fake.stop()


async def press(world: World, message: dict[str, Any], label: str) -> Interaction:
    for row in message.get("components") or []:
        for item in row["components"]:
            if item.get("label", "").startswith(label):
                return await world.fake.click(message, item["custom_id"], user_id=world.alice)
    raise AssertionError(f"no button {label!r} in {message.get('components')}")


async def fill_setup(world: World) -> Interaction:
    """The three steps of the setup form, typed in; the last submit's interaction."""
    fake = world.fake
    opened = await fake.slash(
        "standup", "setup", user_id=world.alice, guild=world.guild, channel="team", admin=True
    )
    modal = (await fake.answered(opened))["data"]
    step = opened
    for n, values in enumerate(TYPED):
        if n:
            await fake.settled_reply(step)
            shown = fake.reply_message(step)
            modal = (await fake.answered(await press(world, shown, "Continue")))["data"]
        step = await fake.submit(
            modal, values, user_id=world.alice, guild=world.guild, channel_id=world.team
        )
    return step


async def check_created(world: World) -> None:
    async with world.database.transaction() as session:
        standup = await session.scalar(select(Standup))
        assert standup is not None and standup.name == "Platform sync"
        assert [q["text"] for q in standup.questions] == ["What shipped?", "Anything stuck?"]
        assert standup.days == [1, 3, 5] and standup.every_weeks == 2
        assert (standup.time_of_day, standup.team_timezone) == ("10:30", "Europe/Berlin")
        assert (standup.reminder_minutes, standup.window_minutes) == (45, 180)
        assert (standup.report_mode, standup.group_by) == ("cutoff", "question")
        assert standup.holidays == ["2026-12-24"]
        people = set(
            await session.scalars(
                select(Member.display_name)
                .join(StandupParticipant, StandupParticipant.member_id == Member.id)
                .where(StandupParticipant.standup_id == standup.id)
            )
        )
        assert people == set(NAMES)


def searched(world: World) -> list[str]:
    """The names searched and answered (not 429)."""
    calls = world.fake.calls_to("GET", SEARCH)
    return [c.query["query"] for c in calls if c.status == 200]


async def test_one_429_on_member_search_is_waited_out_and_nothing_is_lost(world: World) -> None:
    fake = world.fake
    limited = fake.rate_limit("GET", SEARCH, retry_after=0.3)
    # A short ack deadline: the interaction is deferred, and the Retry-After waited out after.
    async with running(fake, world.db_url, world.clock, ack_seconds=0.1) as bot:
        step = await fill_setup(world)
        done = await fake.settled_reply(step)
        await bot.settle()
        assert (await fake.answered(step))["type"] == 5  # deferred first
        assert "Created **Platform sync**" in done["data"]["content"], done
        assert limited.hits == 1  # waited out: no request while Discord said to wait
        assert sorted(searched(world)) == sorted(NAMES)  # each name once
        await check_created(world)


async def test_a_rate_limit_that_lasts_keeps_the_form_and_fix_sends_it_again(
    world: World,
) -> None:
    fake = world.fake
    limited = fake.rate_limit("GET", SEARCH, retry_after=1.0, times=1000)
    async with running(fake, world.db_url, world.clock) as bot:
        bot.adapter.discord_port.search.wait_seconds = 0.5  # less than the Retry-After
        step = await fill_setup(world)
        answer = await fake.settled_reply(step)
        await bot.settle()
        content = answer["data"]["content"]
        assert "Sorry, something went wrong" not in content
        assert "Please fix" in content and "Discord is busy" in content, content
        assert "Nothing you typed is lost" in content
        assert limited.hits == 1  # busy: no more searches until its Retry-After ends
        async with world.database.transaction() as session:
            assert await session.scalar(select(Standup)) is None

        # Discord is free again; Fix opens the form with what was typed, and sends it all.
        limited.times = 0
        await asyncio.sleep(1.0)  # the Retry-After the bot honours
        fix = await press(world, fake.reply_message(step), "Fix")
        modal = (await fake.answered(fix))["data"]
        shown = {
            item["custom_id"]: item.get("value")
            for top in modal["components"]
            for item in [top.get("component") or (top.get("components") or [{}])[0]]
        }
        assert shown == {"participants": TYPED[0]["participants"]}
        again = await fake.submit(
            modal, {}, user_id=world.alice, guild=world.guild, channel_id=world.team
        )
        done = await fake.settled_reply(again)
        await bot.settle()
        assert "Created **Platform sync**" in done["data"]["content"], done
        assert sorted(searched(world)) == sorted(NAMES)
        await check_created(world)
