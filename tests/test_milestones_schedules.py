"""Milestone countdowns and the overdue DM through the real Scheduler on a jumping FakeClock, on
SQLite and PostgreSQL: at 09:00 in the milestone's zone (the owner's for the DM), once per
milestone and day-count even with two schedulers on one database, re-armed by a new date,
never for a done or cancelled milestone, and not replayed late after downtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.console.upcoming import in_words
from bot.features.milestones.schedules import overdue_at
from storage.db import Database
from storage.milestones import Milestone
from tests.milestones_world import World, build_core, milestone_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with milestone_world(database) as built:
        yield built


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


async def countdowns(world: World) -> list[str]:
    return [s for s in await world.sent("post") if s.startswith("⏳")]


async def test_t7_and_t1_at_nine_in_the_milestones_zone_once_each(world: World) -> None:
    # alice is in Berlin (UTC+1 in March): 09:00 there is 08:00 UTC.
    await world.say("add Launch v2 2026-03-20 #launches --owner @bob")
    await world.jump(utc(13, 7, 59))
    assert await countdowns(world) == []
    await world.jump(utc(13, 8, 1))
    await world.scheduler.reconcile()  # a second pass (or firing) changes nothing
    assert await countdowns(world) == [
        "⏳ 7 days to Launch v2: due Fri 20 Mar 2026 (Europe/Berlin). Owner: @bob.\n"
        "Shipped already? /milestone done Launch v2"
    ]
    await world.jump(utc(19, 8, 0))
    shown = await countdowns(world)
    assert len(shown) == 2 and shown[1].startswith("⏳ 1 day to Launch v2: due Fri 20 Mar 2026")
    rows = [r for r in await world.outbox() if ":t-" in r.idempotency_key]
    assert [r.target["channel_id"] for r in rows] == ["C-launch", "C-launch"]
    assert [r.idempotency_key for r in rows] == [
        f"milestone:{(await world.milestone('Launch v2')).id}:t-7:2026-03-20:post",
        f"milestone:{(await world.milestone('Launch v2')).id}:t-1:2026-03-20:post",
    ]
    await world.jump(utc(21, 8, 0))
    assert len(await countdowns(world)) == 2


async def test_two_schedulers_on_one_database_post_each_countdown_once(
    database: Database, world: World
) -> None:
    for n in range(5):
        await world.say(f"add Release {n} 2026-03-20 --countdown 7,1")
    other_db = Database(database.url)
    _, other = build_core(other_db, world.clock, instance="b")
    try:
        for when in (utc(13, 8, 0), utc(19, 8, 0)):
            world.clock.set(when)
            await asyncio.gather(world.scheduler.reconcile(), other.reconcile())
            await asyncio.gather(world.scheduler.reconcile(), other.reconcile())
    finally:
        await other.stop()
        await other_db.dispose()
    keys = [r.idempotency_key for r in await world.outbox()]
    assert len(keys) == len(set(keys)) == 10


async def test_a_new_date_re_arms_the_countdowns(world: World) -> None:
    await world.say("add Launch 2026-03-20 --countdown 14,7,1")
    assert (await world.milestone("Launch")).countdown_days == [14, 7, 1]
    await world.jump(utc(13, 8, 0))  # T-7 (T-14 was before it was added)
    assert len(await countdowns(world)) == 1
    assert "Changed Launch" in await world.say("edit Launch --date 2026-03-28")
    for day in (14, 19, 21, 27):  # T-14, the old T-1 (nothing), T-7, T-1 of the new date
        await world.jump(utc(day, 8, 0))
    shown = await countdowns(world)
    assert [s.split(":", 1)[0] for s in shown] == [
        "⏳ 7 days to Launch",
        "⏳ 14 days to Launch",
        "⏳ 7 days to Launch",
        "⏳ 1 day to Launch",
    ]
    assert all("due Sat 28 Mar 2026" in s for s in shown[1:])


async def test_no_countdown_before_it_was_added_after_it_is_done_or_when_late(
    world: World,
) -> None:
    await world.say("add Soon 2026-03-12")  # T-7 was before it existed
    await world.say("add Done early 2026-03-20")
    await world.say("add Dropped 2026-03-20")
    await world.say("add Quiet 2026-03-20 --countdown none")
    await world.say("done Done early")
    asked = await world.command("cancel Dropped")
    await world.press(asked, "Cancel it")
    await world.jump(utc(11, 8, 0))
    assert [s.split(":", 1)[0] for s in await countdowns(world)] == ["⏳ 1 day to Soon"]
    # Down from before T-7 until two days later: the missed countdown is not posted late.
    await world.say("add Late 2026-03-25")
    await world.jump(utc(20, 8, 0))
    assert [s.split(":", 1)[0] for s in await countdowns(world)] == ["⏳ 1 day to Soon"]


async def test_the_owner_gets_one_dm_the_day_after_at_nine_in_their_zone(
    database: Database, world: World
) -> None:
    # Due Tuesday 10 March in Berlin; bob owns it, in New York (UTC-4 since 8 March).
    await world.say("add Launch 2026-03-10 --owner @bob --countdown none")
    milestone = await world.milestone("Launch")
    assert overdue_at(milestone, "America/New_York") == utc(11, 13, 0)
    await world.jump(utc(11, 12, 59))
    assert await world.sent("dm") == []
    assert "OVERDUE, was due Tue 10 Mar 2026 (yesterday)" in await world.say("list")
    other_db = Database(database.url)
    _, other = build_core(other_db, world.clock, instance="b")
    try:
        world.clock.set(utc(11, 13, 0))
        await asyncio.gather(world.scheduler.reconcile(), other.reconcile())
        await asyncio.gather(world.scheduler.reconcile(), other.reconcile())
    finally:
        await other.stop()
        await other_db.dispose()
    [dm] = await world.sent("dm", "bob")
    assert dm.startswith("Launch was due Tue 10 Mar 2026 (Europe/Berlin) and is not marked done.")
    assert "/milestone done Launch" in dm
    found = await world.milestone("Launch")
    assert found.overdue_notified_at == utc(11, 13, 0)
    await world.jump(utc(12, 13, 0))
    assert len(await world.sent("dm")) == 1


async def test_no_overdue_dm_for_a_milestone_done_in_time(world: World) -> None:
    await world.say("add Launch 2026-03-10 --countdown none")
    await world.jump(utc(10, 16, 0))
    await world.say("done Launch")
    await world.jump(utc(11, 9, 0))
    assert await world.sent("dm") == []
    found: Milestone = await world.milestone("Launch")
    assert found.overdue_notified_at is None


def test_the_overdue_time_waits_for_the_day_to_end_in_the_milestones_zone() -> None:
    # Due 10 March in Los Angeles (UTC-7): the day ends at 07:00 UTC on the 11th. 09:00 in
    # Tokyo on the 11th is 00:00 UTC, before that: the DM waits for 09:00 on the 12th there.
    milestone = Milestone(due_on=datetime(2026, 3, 10).date(), timezone="America/Los_Angeles")
    assert overdue_at(milestone, "Asia/Tokyo") == utc(12, 0, 0)
    assert overdue_at(milestone, "America/Los_Angeles") == utc(11, 16, 0)
    assert overdue_at(milestone, "Europe/Berlin") == utc(11, 8, 0) + timedelta(0)


async def test_clock_names_the_countdowns_and_the_overdue_dm_in_words(world: World) -> None:
    await world.say("add Launch 2026-03-20")
    milestone = await world.milestone("Launch")
    async with world.db.transaction() as session:
        countdown = await in_words(session, f"milestone:{milestone.id}:t-7:2026-03-20")
        overdue = await in_words(session, f"milestone:{milestone.id}:overdue:2026-03-20")
        gone = await in_words(session, "milestone:999:t-1:2026-03-20")
    assert countdown == "post the milestone Launch's countdown"
    assert overdue == "tell the owner of the milestone Launch that it is overdue"
    assert gone == "post a milestone's countdown"


async def test_countdowns_at_nine_local_across_both_dst_changes(world: World) -> None:
    # Berlin springs forward on Sun 29 March and falls back on Sun 25 October 2026.
    await world.say("add Spring 2026-04-05 --countdown 7")  # T-7: Sun 29 Mar, 09:00 CEST
    await world.say("add Autumn 2026-11-01 --countdown 7")  # T-7: Sun 25 Oct, 09:00 CET
    await world.jump(utc(29, 6, 59))
    assert await countdowns(world) == []
    await world.jump(utc(29, 7, 0))  # 09:00 CEST is 07:00 UTC
    assert [s.split(":", 1)[0] for s in await countdowns(world)] == ["⏳ 7 days to Spring"]
    await world.jump(datetime(2026, 10, 25, 7, 59, tzinfo=UTC))
    assert len(await countdowns(world)) == 1
    await world.jump(datetime(2026, 10, 25, 8, 0, tzinfo=UTC))  # 09:00 CET is 08:00 UTC
    await world.scheduler.reconcile()
    assert [s.split(":", 1)[0] for s in await countdowns(world)] == [
        "⏳ 7 days to Spring",
        "⏳ 7 days to Autumn",
    ]
