"""Milestones through the real core on SQLite and PostgreSQL: add (a line, the form), list, edit
(flags, the form), done (the celebration and its card in the outbox), cancel (with its
confirmation), who may change one, and every bad input answered privately with nothing saved."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.chat import Chart, FormErrors, OpenForm
from bot.delivery.outbox import decode_message
from bot.features.milestones import service
from bot.features.milestones.commands import ADD_FORM, EDIT_FORM
from bot.features.raci.people import area_key
from storage.db import Database
from storage.milestones import Milestone, MilestoneStatus
from storage.models import Workspace
from storage.raci import RaciArea
from tests.milestones_world import LAUNCHES, START, TEAM, World, milestone_world
from tests.test_polls_create import said


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with milestone_world(database) as built:
        yield built


async def workspace_id(world: World) -> int:
    async with world.db.transaction() as session:
        found = await session.scalar(select(Workspace.id))
        assert found is not None
        return found


async def add_area(world: World, name: str, zone: str, channel: str | None = None) -> None:
    workspace = await workspace_id(world)
    async with world.db.transaction() as session:
        session.add(
            RaciArea(
                workspace_id=workspace,
                name=name,
                key=area_key(name),
                timezone=zone,
                channel_id=channel,
                created_at=START,
                updated_at=START,
            )
        )


# -- adding ---------------------------------------------------------------------------------------


async def test_add_with_a_line_in_the_creators_zone(world: World) -> None:
    answer = await world.say('add "Launch v2" 2026-03-20 #launches --owner @bob --with @carol')
    assert answer.splitlines() == [
        "Milestone Launch v2 added: due Fri 20 Mar 2026, in 11 days.",
        "The date is in Europe/Berlin (your zone).",
        "Countdown T-7 and T-1 at 09:00 there, in #launches; owner bob.",
        "When it ships: /milestone done Launch v2.",
    ]
    found = await world.milestone("Launch v2")
    assert (found.due_on, found.timezone, found.channel_id) == (
        date(2026, 3, 20),
        "Europe/Berlin",
        LAUNCHES,
    )
    assert found.owner_id == world.members["bob"]
    assert found.created_by_id == world.members["alice"]
    assert found.countdown_days == [7, 1] and found.status == "open"
    assert await world.contributors("Launch v2") == {"bob", "carol"}
    # Unquoted, several words of name and of date, the channel where it was typed.
    answer = await world.say("add Data platform beta in 3 weeks --countdown 14,7,1", by="bob")
    assert "Milestone Data platform beta added: due Mon 30 Mar 2026, in 21 days." in answer
    assert "The date is in America/New_York (your zone)." in answer
    assert "Countdown T-14, T-7 and T-1 at 09:00 there, in #team; owner bob." in answer
    assert (await world.milestone("Data platform beta")).countdown_days == [14, 7, 1]


async def test_with_an_area_the_date_is_in_the_areas_zone_and_channel(world: World) -> None:
    await add_area(world, "Data pipeline", "Asia/Tokyo", LAUNCHES)
    answer = await world.say("add ETL v3 tomorrow --area data pipeline")
    # 12:00 UTC is 21:00 in Tokyo, Monday: tomorrow there is Tuesday 10 March.
    assert "due Tue 10 Mar 2026, tomorrow." in answer
    assert "The date is in Asia/Tokyo (the zone of the area Data pipeline)." in answer
    assert "in #launches" in answer
    found = await world.milestone("ETL v3")
    assert found.timezone == "Asia/Tokyo" and found.channel_id == LAUNCHES


async def test_add_without_a_line_opens_the_form(world: World) -> None:
    opened = await world.command("add")
    assert isinstance(opened, OpenForm)
    form = opened.form
    assert form.form_id == ADD_FORM and len(form.fields) <= 5  # Discord's modal limit
    assert json.loads(form.state) == {"c": TEAM, "n": "team"}
    refused = await world.submit(ADD_FORM, {"name": "Beta", "date": "someday"}, state=form.state)
    assert isinstance(refused, FormErrors) and "can't read" in refused.errors["date"]
    refused = await world.submit(
        ADD_FORM, {"name": "Beta", "date": "friday", "owner": "@zed"}, state=form.state
    )
    assert isinstance(refused, FormErrors) and "@zed" in refused.errors["owner"]
    refused = await world.submit(
        ADD_FORM, {"name": "Beta", "date": "friday", "channel": "#random"}, state=form.state
    )
    assert isinstance(refused, FormErrors) and refused.errors == {"channel": "Invite me first."}
    assert await world.count() == 0
    answer = said(
        await world.submit(
            ADD_FORM, {"name": "Beta", "date": "friday", "owner": "@dana"}, state=form.state
        )
    )
    assert "Milestone Beta added: due Fri 13 Mar 2026, in 4 days." in answer
    found = await world.milestone("Beta")
    assert found.channel_id == TEAM and found.owner_id == world.members["dana"]


async def test_bad_input_is_refused_privately_and_saves_nothing(world: World) -> None:
    await world.say("add Launch 2026-04-01")
    refusals = {
        "add Beta 2026-03-01": "Sun 1 Mar 2026 is in the past (today is Mon 9 Mar 2026 in "
        "Europe/Berlin)",
        "add Beta someday": 'I can\'t read "someday" as a date. Type it as 2027-01-15, "15 Jan", '
        '"Jan 15 2027", today, tomorrow',
        "add Beta 2027-02-30": '"2027-02-30" is not a day of the calendar',
        "add Beta": "When is",
        "add launch 2026-05-01": 'There is already a milestone named "Launch" (due Wed 1 Apr 2026)',
        "add Beta friday --area nowhere": 'Unknown area "nowhere"',
        "add Beta friday --owner @zed": "No member named @zed",
        "add Beta friday --owner @syncup": "@syncup is a bot",
        "add Beta friday --countdown 0": '"0" is not a number of days. The countdown is days',
        "add Beta friday --countdown 7,x": '"x" is not a number of days',
        "add Beta friday --countdown 400": '"400" is not a number of days',
        "add Beta friday --colour red": "Unknown option --colour",
        "add Beta friday #random": "Invite me first.",
        "add Beta friday #nowhere": "I don't know the channel #nowhere",
        "done Lanch": 'There is no milestone named "Lanch". Did you mean "Launch"?',
        "edit Lanch --date friday": 'There is no milestone named "Lanch". Did you mean "Launch"?',
        "cancel Lanch": 'There is no milestone named "Lanch". Did you mean "Launch"?',
        "edit Launch --date 2020-01-01": "is in the past",
        "edit Launch --countdown -1": "is not a number of days",
        "edit Launch --owner": "--owner needs a value",
    }
    for line, expected in refusals.items():
        answer = await world.say(line)
        assert expected in answer, (line, answer)
    assert await world.count() == 1
    found = await world.milestone("Launch")
    assert found.due_on == date(2026, 4, 1) and found.countdown_days == [7, 1]
    assert await world.outbox() == []
    # In a DM, with no channel named: where to post?
    assert "Say where to count down and celebrate" in await world.say(
        "add Beta friday", channel="D-alice"
    )


async def test_a_name_taken_meanwhile_is_a_duplicate_not_a_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = await asyncio.gather(
        world.say("add Launch 2026-04-01", by="alice"),
        world.say("add launch 2026-04-02", by="bob"),
    )
    assert sorted(["added" in first, "added" in second]) == [False, True]
    assert "There is already a milestone named" in (second if "added" in first else first)
    assert await world.count() == 1

    # The race itself: the other insert commits between the check and ours (the unique index).
    async def not_yet(*args: object) -> None:
        return None

    monkeypatch.setattr(service, "by_name", not_yet)
    answer = await world.say("add LAUNCH 2026-04-03")
    assert answer == 'There is already a milestone named "LAUNCH"; pick another name.'
    assert await world.count() == 1


# -- listing ---------------------------------------------------------------------------------------


async def test_list_shows_days_left_overdue_and_done_lately(world: World) -> None:
    assert "No milestones yet" in await world.say("list")
    await world.say("add Alpha 2026-03-10 --countdown none")
    await world.say("add Beta 2026-03-20")
    await world.say("add Gamma 2026-03-12")
    await world.jump(START + timedelta(days=2))  # Wed 11 March
    await world.say("done Gamma", by="bob")  # not bob's: refused
    await world.say("done Gamma")
    shown = await world.say("list", by="bob")
    assert shown.splitlines() == [
        "Milestones",
        "⚠ Alpha: OVERDUE, was due Tue 10 Mar 2026 (yesterday); owner alice",
        "• Beta: due Fri 20 Mar 2026, in 9 days; owner alice; #team",
        "Done lately",
        "✓ Gamma: done Wed 11 Mar 2026 by alice",
        "2 open (1 overdue). Dates are in each milestone's zone; done dates in yours.",
    ]


# -- editing ---------------------------------------------------------------------------------------


async def test_edit_with_flags_and_with_the_form(world: World) -> None:
    await world.say("add Launch 2026-04-01", by="bob")
    answer = await world.say(
        'edit launch --date 2026-04-08 --name "Launch v2" --countdown 14,1 --with @dana',
        by="bob",
    )
    assert answer.splitlines()[0] == (
        'Changed Launch v2: name "Launch v2"; date Wed 8 Apr 2026 (America/New_York); '
        "countdowns re-armed; countdown T-14, T-1; with dana."
    )
    found = await world.milestone("Launch v2")
    assert (found.due_on, found.countdown_days) == (date(2026, 4, 8), [14, 1])
    assert await world.contributors("Launch v2") == {"bob", "dana"}
    opened = await world.command("edit Launch v2", by="bob")
    assert isinstance(opened, OpenForm) and opened.form.form_id == EDIT_FORM
    initial = {f.name: f.initial for f in opened.form.fields}
    assert initial == {
        "name": "Launch v2",
        "date": "2026-04-08",
        "channel": "#team",
        "owner": "@bob",
        "countdown": "14,1",
    }
    values = {**initial, "date": "2026-04-15", "owner": "@carol", "countdown": ""}
    answer = said(await world.submit(EDIT_FORM, values, by="bob", state=opened.form.state))
    assert "date Wed 15 Apr 2026" in answer and "owner carol" in answer
    assert "countdown none" in answer
    found = await world.milestone("Launch v2")
    assert found.owner_id == world.members["carol"] and found.countdown_days == []
    bad = await world.submit(
        EDIT_FORM, {**values, "date": "2020-01-01"}, by="bob", state=opened.form.state
    )
    assert isinstance(bad, FormErrors) and "is in the past" in bad.errors["date"]
    bad = await world.submit(
        EDIT_FORM, {**values, "countdown": "7,0"}, by="bob", state=opened.form.state
    )
    assert isinstance(bad, FormErrors) and "not a number of days" in bad.errors["countdown"]
    assert "Nothing changed" in said(
        await world.submit(EDIT_FORM, values, by="bob", state=opened.form.state)
    )


async def test_who_may_change_a_milestone(world: World) -> None:
    await world.say("add Launch 2026-04-01 --owner @bob", by="alice")
    for who in ("carol", "dana"):
        answer = await world.say("edit Launch --date 2026-04-02", by=who)
        assert answer == (
            'Only the owner (bob, alice (who added it)), team leads and admins can change "Launch".'
        )
        assert "can mark done" in await world.say("done Launch", by=who)
        assert "can cancel" in await world.say("cancel Launch", by=who)
    for who, day in (("bob", 2), ("alice", 3), ("gina", 4), ("frank", 5)):
        assert "Changed Launch" in await world.say(f"edit Launch --date 2026-04-0{day}", by=who)
    assert (await world.milestone("Launch")).due_on == date(2026, 4, 5)


# -- done -----------------------------------------------------------------------------------------


async def test_done_posts_the_celebration_with_its_card(world: World) -> None:
    await world.say("add Launch v2 2026-03-20 #launches --owner @bob --with @carol @dana")
    await world.jump(START + timedelta(days=9, hours=2))  # Wed 18 March, 14:00 UTC
    answer = await world.say("done launch v2", by="bob")
    assert answer == "Marked Launch v2 done. The celebration is on its way to #launches."
    [row] = [r for r in await world.outbox() if r.idempotency_key.endswith(":done")]
    assert row.target["channel_id"] == LAUNCHES
    shown = (await world.sent("post", LAUNCHES))[-1]
    assert shown.splitlines() == [
        "🎉 Milestone done: Launch v2",
        "Done Wed 18 Mar 2026, 2 days early (it was due Fri 20 Mar 2026). It took 9 days from "
        "the day it was added.",
        "Who was involved: @bob (owner), @carol, @dana",
        "[chart: Launch v2]",
        "Marked done by @bob.",
    ]
    [card] = [b for b in decode_message(row.payload).blocks if isinstance(b, Chart)]
    assert card.style == "card" and card.rows == ("bob", "carol", "dana")
    assert card.period == "Due Fri 20 Mar 2026 · done Wed 18 Mar 2026 (2 days early)"
    assert card.headline == "Done in 9 days"
    found = await world.milestone("Launch v2")
    assert found.status == "done" and found.done_by_id == world.members["bob"]
    assert found.done_source == "hand" and found.done_at == world.clock.now()
    # Done twice: who and when, in the asker's zone; nothing more is sent.
    again = await world.say("done Launch v2", by="alice")
    assert again == (
        '"Launch v2" was already marked done by bob on Wed 18 Mar 2026 at 15:00 '
        "(Europe/Berlin); there is nothing left to do."
    )
    assert "already marked done by bob" in await world.say("edit Launch v2 --date friday")
    assert "a done milestone stays" in await world.say("cancel Launch v2")
    assert len(await world.sent("post", LAUNCHES)) == 1


async def test_done_by_hand_and_by_a_hook_at_once_celebrates_once(world: World) -> None:
    await world.say("add Launch 2026-03-20")

    workspace = await workspace_id(world)

    async def by_hook() -> str:
        async with world.db.transaction() as session:
            return await service.done_by_hook(session, workspace, "launch", world.clock.now())

    results = await asyncio.gather(world.say("done Launch"), by_hook())
    celebrations = [r for r in await world.outbox() if r.idempotency_key.endswith(":done")]
    assert len(celebrations) == 1
    assert ("Marked Launch done" in results[0]) != (results[1] == 'milestone "Launch" marked done')


# -- cancelling ---------------------------------------------------------------------------------


async def test_cancel_asks_first_and_frees_the_name(world: World) -> None:
    await world.say("add Launch 2026-03-20")
    asked = await world.command("cancel launch")
    assert "Cancel the milestone Launch (due Fri 20 Mar 2026)?" in said(asked)
    assert await world.press(asked, "Keep it") == "Kept Launch."
    assert (await world.milestone("Launch")).status == "open"
    assert "Only the owner (alice)" in await world.press(asked, "Cancel it", by="carol")
    assert await world.press(asked, "Cancel it") == (
        "Cancelled the milestone Launch; its countdowns stop."
    )
    found = await world.milestone("Launch")
    assert found.status == MilestoneStatus.CANCELLED and found.name_key is None
    assert "cancelled meanwhile" in await world.press(asked, "Cancel it")
    assert "There is no milestone named" in await world.say("done Launch")
    assert "added" in await world.say("add Launch 2026-03-27")
    async with world.db.transaction() as session:
        rows = list(await session.scalars(select(Milestone).where(Milestone.name == "Launch")))
    assert sorted(r.status for r in rows) == ["cancelled", "open"]
