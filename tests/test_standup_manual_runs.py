"""``/standup run NAME``: one run by hand, one report, everyone asked now, whatever their local
date, and nobody's scheduled prompt taken. Harness: :class:`tests.test_standup_runtime.World`
(the core and the scheduler on a FakeClock, on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.chat import Actions, Response
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission
from bot.features.standups import commands
from bot.features.standups.settings import FORM_ID as SETUP_FORM
from storage.db import Database
from storage.models import StandupPrompt, StandupRun
from tests.test_standup_runtime import World, local_nine, render, running_standups, text_of
from tests.test_standup_settings import GOOD as SETUP

# Sunday 21:49 UTC: 22:49 Sunday in Berlin, 03:19 Monday in Kolkata, 06:49 Monday in Tokyo.
SUNDAY_NIGHT = datetime(2026, 3, 8, 21, 49, tzinfo=UTC)
SUNDAY, MONDAY = date(2026, 3, 8), date(2026, 3, 9)
ZONES = {"alice": "Europe/Berlin", "chandra": "Asia/Kolkata", "kenji": "Asia/Tokyo"}


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database, ZONES, start=SUNDAY_NIGHT) as built:
        commands.register(built.core)
        yield built


async def run_by_hand(world: World, name: str = "alice") -> str:
    actor = Actor(name, name, world.zones[name], is_platform_admin=True)
    event = CommandInvocation(world._origin("C-team"), actor, "standup", "run Daily")
    return text_of(await world.handle(event))


async def prompts_to(world: World, name: str) -> list[str]:
    """The prompt DMs a member got (not the reminders)."""
    return [dm for dm in await world.dms(name) if dm.startswith(f"Hi {name}!")]


async def runs(world: World) -> list[StandupRun]:
    async with world.db.transaction() as session:
        return list(await session.scalars(select(StandupRun).order_by(StandupRun.id)))


async def prompts_of(world: World, run_id: int) -> dict[str, str]:
    names = {v: k for k, v in world.members.items()}
    async with world.db.transaction() as session:
        rows = await session.scalars(select(StandupPrompt).where(StandupPrompt.run_id == run_id))
        return {names[p.member_id]: p.status for p in rows}


async def test_a_run_by_hand_asks_everyone_now_in_one_run_with_one_report(world: World) -> None:
    await world.add_standup(list(ZONES))
    said = await run_by_hand(world)
    assert "3 participant(s)" in said
    assert "asked later" not in said.lower()
    (run,) = await runs(world)
    assert run.run_date == SUNDAY  # the date of the one who ran it
    assert await prompts_of(world, run.id) == {n: "pending" for n in ZONES}
    for name in ZONES:
        assert len(await world.dms(name)) == 1, name

    async with world.db.transaction() as session:
        prompt_ids = {
            p.member_id: p.id
            for p in await session.scalars(
                select(StandupPrompt).where(StandupPrompt.run_id == run.id)
            )
        }
    await world.submit(
        "chandra", prompt_ids[world.members["chandra"]], {"q0": "a", "q1": "b", "q2": "no"}
    )
    await world.submit(
        "kenji", prompt_ids[world.members["kenji"]], {"q0": "c", "q1": "d", "q2": "no"}
    )
    parents = [row for row in await world.posts() if row.depends_on_id is None]
    assert len(parents) == 1  # one report for the run
    latest = [row for row in await world.posts() if row.method == "update"]
    shown = render((latest or parents)[-1].payload)
    assert "Heard from 2 of 3." in shown
    assert "run by hand" in shown
    assert "Asked later" not in shown
    assert "Not answered yet: alice" in shown


async def test_a_run_by_hand_takes_nobodys_scheduled_prompt(world: World) -> None:
    """Kolkata and Tokyo are already on Monday when the run starts: their Monday 09:00 prompts
    still come, in a run of their own."""
    await world.add_standup(list(ZONES))
    await run_by_hand(world)
    await world.advance_to(local_nine("Asia/Kolkata", MONDAY))
    for name in ("chandra", "kenji"):
        dms = await world.dms(name)
        assert len(dms) == 2, (name, dms)
        assert "Mon 9 Mar" in dms[-1]
    scheduled = [r for r in await runs(world) if r.occasion == ""]
    assert [r.run_date for r in scheduled] == [MONDAY]
    assert await prompts_of(world, scheduled[0].id) == {"chandra": "pending", "kenji": "pending"}


async def test_two_runs_by_hand_are_two_runs(world: World) -> None:
    await world.add_standup(list(ZONES))
    await run_by_hand(world)
    again = await run_by_hand(world, "kenji")
    assert "3 participant(s)" in again
    assert len(await runs(world)) == 2
    assert len(await world.dms("alice")) == 2


# -- a standup created inside today's answer window ------------------------------------------

# Monday 05:00 UTC: 06:00 in Berlin (09:00 to come), 10:30 in Kolkata (09:00 passed, its
# window open), 14:00 in Tokyo (09:00 passed, its 4-hour window over).
MONDAY_MORNING = datetime(2026, 3, 9, 5, tzinfo=UTC)


@pytest.fixture
async def morning(database: Database) -> AsyncIterator[World]:
    async with running_standups(database, ZONES, start=MONDAY_MORNING) as built:
        commands.register(built.core)
        yield built


async def create(world: World, actor: Actor) -> Response:
    values = {**SETUP, "participants": "@alice @chandra @kenji", "channel": "#standup"}
    return await world.handle(FormSubmission(world._origin("C-team"), actor, SETUP_FORM, values))


async def test_a_standup_created_after_todays_time_asks_nobody_until_the_owner_says_so(
    morning: World,
) -> None:
    world = morning
    owner = Actor("alice", "alice", ZONES["alice"], is_platform_admin=True)
    created = await create(world, owner)
    shown = text_of(created)
    assert "The first prompts go out Mon 9 Mar at 09:00 (Europe/Berlin)" in shown
    assert "has already passed for 1 participant(s) (chandra)" in shown
    await world.advance_to(MONDAY_MORNING + timedelta(minutes=1))
    for name in ZONES:
        assert await world.dms(name) == [], name  # nobody asked behind the owner's back

    # A plain member may not press the owner's button.
    (button,) = [
        b for block in created.message.blocks if isinstance(block, Actions) for b in block.elements
    ]
    kenji = Actor("kenji", "kenji", ZONES["kenji"])
    refused = await world.handle(ActionInvocation(world._origin("C-team"), kenji, button.action_id))
    assert "Only the owner" in text_of(refused)
    assert await world.dms("chandra") == []

    asked = await world.handle(ActionInvocation(world._origin("C-team"), owner, button.action_id))
    assert text_of(asked) == 'Asked 1 participant(s) of "Daily standup" now, for today.'
    assert len(await world.dms("chandra")) == 1
    assert await world.dms("kenji") == []

    await world.advance_to(local_nine("Europe/Berlin", MONDAY))
    assert len(await prompts_to(world, "alice")) == 1  # at her 09:00, as scheduled
    assert len(await prompts_to(world, "chandra")) == 1  # today's prompt is not sent twice
