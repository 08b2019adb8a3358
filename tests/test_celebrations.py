"""Automatic celebrations through the real core and scheduler on SQLite and PostgreSQL, on a
FakeClock: standup streaks (out of office and holidays do not break one, a missed standup
does), birthdays and anniversaries at 09:00 in each member's zone, the leap-day rule, exactly
once whatever the scheduler does, opt-out, settings, and every bad input answered privately
with nothing saved.

The harness is the standup runtime's :class:`~tests.test_standup_runtime.World` with
``/syncup`` and the celebrations registered on its core and scheduler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import directory
from bot.events import Actor, CommandInvocation, Origin
from bot.features import account, celebrations
from bot.features.celebrations import streaks
from bot.features.celebrations.dates import YearlyTrigger, day_in
from bot.features.celebrations.schedules import BIRTHDAY_HANDLER, STREAK_HANDLER
from bot.scheduling.scheduler import Scheduler
from storage.celebrations import Celebration, CelebrationProfile, CelebrationSettings
from storage.db import Database
from storage.models import Absence, OutboxMessage, PromptStatus, Workspace
from tests.test_polls_create import said
from tests.test_standup_runtime import CHANNEL, World, make_world, render

ZONES = {"alice": "Europe/Berlin", "bob": "Europe/Berlin", "carol": "America/New_York"}
ADMIN = "alice"
MONDAY = date(2026, 3, 9)
START = datetime(2026, 3, 9, 6, tzinfo=UTC)  # 07:00 in Berlin


@asynccontextmanager
async def celebrating(db: Database, start: datetime = START) -> AsyncIterator[World]:
    world, scheduler = await make_world(db, ZONES, start)
    account.register(world.core)
    celebrations.register(world.core, scheduler)
    await scheduler.reconcile()
    try:
        yield world
    finally:
        await world.core.idle()
        await scheduler.stop()


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with celebrating(database) as built:
        yield built


async def syncup(world: World, line: str, by: str = "alice") -> str:
    origin = Origin("test", "T1", f"c{next(world._events)}", "Test", CHANNEL, "standup")
    actor = Actor(by, by, ZONES[by], is_platform_admin=by == ADMIN)
    response = await world.core.handle(CommandInvocation(origin, actor, "syncup", line))
    await world.scheduler.reconcile()  # the app reconciles when a handler changed schedules
    return said(response)


async def posts(world: World, containing: str) -> list[OutboxMessage]:
    return [
        row
        for row in await world.outbox()
        if row.method == "post" and containing in render(row.payload)
    ]


def nine(zone: str, day: date) -> datetime:
    return datetime.combine(day, time(9), ZoneInfo(zone)).astimezone(UTC)


async def day_of_standup(world: World, day: date, answering: list[str]) -> None:
    """Move to 09:00 Berlin on ``day`` (prompts go out), and the named members answer."""
    await world.advance_to(nine("Europe/Berlin", day) + timedelta(minutes=1))
    for name in answering:
        await world.answer(name, "Shipped", "Ship more", "no", run_date=day)


# -- streaks -----------------------------------------------------------------------------------


async def test_a_streak_survives_out_of_office_and_a_holiday_and_a_miss_breaks_it(
    world: World,
) -> None:
    assert "every 3 scheduled standups" in await syncup(world, "celebrations streak 3")
    await world.add_standup(["alice", "bob"], holidays=["2026-03-11"])  # Wednesday
    async with world.db.transaction() as session:  # alice is out of office on Tuesday
        session.add(
            Absence(
                member_id=world.members["alice"],
                standup_id=None,
                start_date=date(2026, 3, 10),
                end_date=date(2026, 3, 10),
                created_at=START,
            )
        )
    await day_of_standup(world, MONDAY, ["alice", "bob"])
    await day_of_standup(world, date(2026, 3, 10), [])  # alice away, bob misses it
    # Wednesday is a holiday: no prompt at all.
    await day_of_standup(world, date(2026, 3, 12), ["alice", "bob"])
    assert await posts(world, "Standup streaks") == []
    await day_of_standup(world, date(2026, 3, 13), ["alice", "bob"])
    # Friday's window ends at 13:00 Berlin: alice has 3 in a row (Mon, Thu, Fri), bob only 2.
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 13)) + timedelta(hours=4))
    [post] = await posts(world, "Standup streaks")
    assert post.target["channel_id"] == CHANNEL  # no celebrations channel: the standup's
    shown = render(post.payload)
    assert shown == ("🔥 Standup streaks in Daily:\n@alice answered 3 scheduled standups in a row.")
    assert post.created_at == nine("Europe/Berlin", date(2026, 3, 13)) + timedelta(hours=4)
    assert (await world.prompt("alice", date(2026, 3, 10))).status == PromptStatus.AWAY
    assert (await world.prompt("bob", date(2026, 3, 10))).status == PromptStatus.PENDING
    # Monday: bob reaches 3 (Thu, Fri, Mon), alice 4 (no multiple of 3): one post, for bob.
    await day_of_standup(world, date(2026, 3, 16), ["alice", "bob"])
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 16)) + timedelta(hours=5))
    later = await posts(world, "Standup streaks")
    assert len(later) == 2
    assert render(later[1].payload).endswith("@bob answered 3 scheduled standups in a row.")


async def test_a_skip_breaks_a_streak_and_a_new_one_is_celebrated_again(world: World) -> None:
    async with world.db.transaction() as session:  # a channel for celebrations
        workspace = await session.get(Workspace, world.workspace_id)
        assert workspace is not None
        await directory.ensure_channel(session, workspace, "C-party", "party", START)
    await syncup(world, "celebrations streak 2")
    assert "Saved: celebrations are posted in #party." in await syncup(
        world, "celebrations channel #party"
    )
    await world.add_standup(["alice"])
    await day_of_standup(world, MONDAY, ["alice"])
    await day_of_standup(world, date(2026, 3, 10), ["alice"])
    await day_of_standup(world, date(2026, 3, 11), [])
    wednesday = await world.prompt("alice", date(2026, 3, 11))
    await world.press("alice", f"standup-skip:{wednesday.id}")  # Skip today: the streak ends
    await day_of_standup(world, date(2026, 3, 12), ["alice"])
    await day_of_standup(world, date(2026, 3, 13), ["alice"])
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 14)))
    found = await posts(world, "Standup streaks")
    assert {p.target["channel_id"] for p in found} == {"C-party"}  # not the standup's channel
    shown = [render(p.payload) for p in found]
    assert shown == [
        "🔥 Standup streaks in Daily:\n@alice answered 2 scheduled standups in a row.",
        "🔥 Standup streaks in Daily:\n@alice answered 2 scheduled standups in a row.",
    ]
    async with world.db.transaction() as session:
        keys = list(await session.scalars(select(Celebration.key).order_by(Celebration.id)))
    standup = keys[0].split(":")[1]
    assert keys == [
        f"streak:{standup}:{world.members['alice']}:2026-03-09:2",
        f"streak:{standup}:{world.members['alice']}:2026-03-12:2",
    ]


def test_a_streak_counts_answers_and_passes_over_away_and_open_prompts() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    later, earlier = now + timedelta(hours=1), now - timedelta(hours=1)
    day = date(2026, 6, 1)
    answered = [(PromptStatus.ANSWERED, day - timedelta(days=i), earlier) for i in range(1, 20)]
    rows = [
        (PromptStatus.ANSWERED, day, later),
        (PromptStatus.AWAY, day - timedelta(days=30), earlier),
    ]
    assert streaks.walk(rows[:1] + answered, now) == streaks.Streak(20, day - timedelta(days=19))
    assert streaks.milestone(streaks.walk(rows[:1] + answered, now), 20) == 20
    assert streaks.milestone(streaks.Streak(19, day), 20) == 0
    assert streaks.milestone(streaks.Streak(45, day), 20) == 40
    mixed = [
        (PromptStatus.ANSWERED, day, later),
        (PromptStatus.PENDING, day - timedelta(days=1), later),  # still open: passed over
        (PromptStatus.UNREACHABLE, day - timedelta(days=2), earlier),
        (PromptStatus.AWAY, day - timedelta(days=3), earlier),
        (PromptStatus.ANSWERED, day - timedelta(days=4), earlier),
        (PromptStatus.PENDING, day - timedelta(days=5), earlier),  # closed, never answered
        (PromptStatus.ANSWERED, day - timedelta(days=6), earlier),
    ]
    assert streaks.walk(mixed, now) == streaks.Streak(2, day - timedelta(days=4))
    skipped = [(PromptStatus.ANSWERED, day, later), (PromptStatus.SKIPPED, day, earlier)]
    assert streaks.walk(skipped, now).length == 1


async def test_streaks_off_and_opted_out_members_get_no_post(world: World) -> None:
    await syncup(world, "celebrations streak 3")
    assert "no longer celebrated" in await syncup(world, "celebrations streaks off")
    await world.add_standup(["alice", "bob"])
    await day_of_standup(world, MONDAY, ["alice", "bob"])
    await day_of_standup(world, date(2026, 3, 10), ["alice", "bob"])
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 10)) + timedelta(hours=5))
    assert await posts(world, "Standup streaks") == []
    assert "nothing about you is celebrated" in await syncup(world, "celebrations optout", "bob")
    # Back on: Tuesday's check, still within its grace, runs now (2 in a row: no multiple).
    await syncup(world, "celebrations streaks on")
    await day_of_standup(world, date(2026, 3, 11), ["alice", "bob"])
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 11)) + timedelta(hours=5))
    [post] = await posts(world, "Standup streaks")
    assert render(post.payload).endswith("@alice answered 3 scheduled standups in a row.")
    assert "bob" not in render(post.payload)


# -- birthdays and anniversaries ------------------------------------------------------------------


async def test_birthdays_at_nine_in_each_members_zone(world: World) -> None:
    await syncup(world, "celebrations channel #standup")
    assert "Saved: your birthday is 14 March (no year is kept)." in await syncup(
        world, "birthday 03-14"
    )
    await syncup(world, "birthday 3-14", "carol")
    await world.advance_to(nine("Europe/Berlin", date(2026, 3, 14)) - timedelta(minutes=1))
    assert await posts(world, "Happy birthday") == []
    await world.advance_to(nine("America/New_York", date(2026, 3, 14)) - timedelta(minutes=1))
    [alice] = await posts(world, "Happy birthday")
    assert render(alice.payload) == "🎂 Happy birthday, @alice! Have a wonderful day."
    assert alice.created_at == nine("Europe/Berlin", date(2026, 3, 14))  # 08:00 UTC
    assert alice.target["channel_id"] == CHANNEL
    await world.advance_to(datetime(2026, 3, 15, tzinfo=UTC))
    _, carol = await posts(world, "Happy birthday")
    assert "@carol" in render(carol.payload)
    assert carol.created_at == nine("America/New_York", date(2026, 3, 14))  # 13:00 UTC
    async with world.db.transaction() as session:
        profile = await session.get(CelebrationProfile, world.members["alice"])
        assert profile is not None
        assert (profile.birthday_month, profile.birthday_day) == (3, 14)
        # No year anywhere: the profile has no column for it.
        assert not any("year" in c.name for c in CelebrationProfile.__table__.columns)


async def test_an_anniversary_says_how_many_years(world: World) -> None:
    await syncup(world, "celebrations channel #standup")
    assert "Saved: you started on 2023-03-10" in await syncup(world, "started 2023-03-10", "bob")
    await world.advance_to(datetime(2026, 3, 11, tzinfo=UTC))
    [post] = await posts(world, "at Test")
    assert render(post.payload) == "🎉 @bob celebrates 3 years at Test today. Thank you!"
    assert post.created_at == nine("Europe/Berlin", date(2026, 3, 10))


async def test_the_29th_of_february_is_the_28th_in_other_years(database: Database) -> None:
    async with celebrating(database, datetime(2027, 2, 20, tzinfo=UTC)) as world:
        await syncup(world, "celebrations channel #standup")
        answer = await syncup(world, "birthday 02-29", "bob")
        assert "on 28 February in years without a 29th" in answer
        await world.advance_to(datetime(2027, 3, 2, tzinfo=UTC))
        [post] = await posts(world, "Happy birthday")
        assert post.created_at == nine("Europe/Berlin", date(2027, 2, 28))
    assert day_in(2028, 2, 29) == date(2028, 2, 29) and day_in(2027, 2, 29) == date(2027, 2, 28)
    trigger = YearlyTrigger(2, 29, "Asia/Tokyo")
    after = datetime(2027, 3, 1, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, after)
    assert fire == datetime(2028, 2, 29, 9, tzinfo=ZoneInfo("Asia/Tokyo"))


async def test_exactly_once_when_the_scheduler_fires_twice_and_on_two_replicas(
    world: World,
) -> None:
    await syncup(world, "celebrations channel #standup")
    await syncup(world, "birthday 03-10")
    schedule = next(s for s in world.scheduler._schedules.values() if s.handler == BIRTHDAY_HANDLER)
    fire_at = nine("Europe/Berlin", date(2026, 3, 10))
    world.clock.set(fire_at)
    replica = Scheduler(world.db, world.clock, instance="replica")
    replica.sources, replica.handlers = world.scheduler.sources, world.scheduler.handlers
    assert await world.scheduler.run_occurrence(schedule, fire_at) is True
    assert await world.scheduler.run_occurrence(schedule, fire_at) is False
    assert await replica.run_occurrence(schedule, fire_at) is False
    # Even with its occurrence claim gone (housekeeping), the celebration's own key holds.
    async with world.db.transaction() as session:
        from storage.models import OccurrenceClaim

        await session.execute(OccurrenceClaim.__table__.delete())
    assert await replica.run_occurrence(schedule, fire_at) is True
    await world.advance_to(datetime(2026, 3, 11, tzinfo=UTC))
    assert len(await posts(world, "Happy birthday")) == 1
    # The streak check of a run: claimed once too.
    await syncup(world, "celebrations streak 2")
    await world.add_standup(["bob"])
    await day_of_standup(world, date(2026, 3, 11), ["bob"])
    await day_of_standup(world, date(2026, 3, 12), ["bob"])
    check = next(s for s in world.scheduler._schedules.values() if s.handler == STREAK_HANDLER)
    due = nine("Europe/Berlin", date(2026, 3, 12)) + timedelta(hours=4)
    world.clock.set(due)
    results = [
        await replica.run_occurrence(check, due),
        await world.scheduler.run_occurrence(check, due),
    ]
    assert results == [True, False]
    assert len(await posts(world, "Standup streaks")) == 1


async def test_opted_out_members_and_switched_off_kinds_are_not_posted(world: World) -> None:
    await syncup(world, "celebrations channel #standup")
    await syncup(world, "birthday 03-10", "bob")
    await syncup(world, "started 2020-03-10", "carol")
    await syncup(world, "birthday 03-10", "carol")
    assert "Your dates are kept" in await syncup(world, "celebrations optout", "bob")
    assert "birthdays are no longer celebrated" in await syncup(world, "celebrations birthdays off")
    await world.advance_to(datetime(2026, 3, 11, 12, tzinfo=UTC))
    shown = [render(row.payload) for row in await world.outbox() if row.method == "post"]
    assert shown == ["🎉 @carol celebrates 6 years at Test today. Thank you!"]
    async with world.db.transaction() as session:  # kept, unused
        profile = await session.get(CelebrationProfile, world.members["bob"])
        assert profile is not None and profile.birthday_month == 3 and profile.opted_out
    # Opting in again, with birthdays back on: next year's is posted.
    await syncup(world, "celebrations optin", "bob")
    await syncup(world, "celebrations birthdays on")
    await world.advance_to(datetime(2027, 3, 11, tzinfo=UTC))
    birthdays = [render(p.payload) for p in await posts(world, "Happy birthday")]
    assert birthdays == [
        "🎂 Happy birthday, @bob! Have a wonderful day.",
        "🎂 Happy birthday, @carol! Have a wonderful day.",
    ]


async def test_settings_show_and_the_birthday_can_be_removed(world: World) -> None:
    shown = await syncup(world, "celebrations", "bob")
    assert "Streaks on (every 20 scheduled standups" in shown
    assert "birthdays on, anniversaries on" in shown
    assert "You: no birthday or start date saved." in shown
    answer = await syncup(world, "birthday 07-01", "bob")
    assert "No celebrations channel is set yet" in answer
    assert "birthday 1 July" in await syncup(world, "celebrations", "bob")
    assert "Removed" in await syncup(world, "birthday off", "bob")
    async with world.db.transaction() as session:
        profile = await session.get(CelebrationProfile, world.members["bob"])
        assert profile is not None and profile.birthday_month is None


# -- bad input --------------------------------------------------------------------------------


async def stored(world: World) -> list[tuple[object, ...]]:
    async with world.db.transaction() as session:
        profiles = [
            (p.member_id, p.birthday_month, p.birthday_day, p.started_on, p.opted_out)
            for p in await session.scalars(select(CelebrationProfile))
        ]
        settings = [
            (s.streaks, s.birthdays, s.anniversaries, s.streak_length, s.channel_id)
            for s in await session.scalars(select(CelebrationSettings))
        ]
        count = await session.scalar(select(func.count()).select_from(Celebration))
    return [*profiles, *settings, count]


async def test_bad_input_is_refused_privately_and_saves_nothing(world: World) -> None:
    await syncup(world, "birthday 05-05", "bob")
    await syncup(world, "started 2022-01-03", "bob")
    before = await stored(world)
    bad = {
        ("birthday 02-30", "bob"): '"02-30": February has no day 30',
        ("birthday 13-01", "bob"): "there is no month 13",
        ("birthday tomorrow", "bob"): '"tomorrow" is not a birthday: give the month and the day',
        ("birthday 1990-03-14", "bob"): "syncup never needs, stores or shows the year",
        ("birthday 14-03-1990", "bob"): "syncup never needs, stores or shows the year",
        ("birthday 04-31", "bob"): "April has no day 31",
        ("started 2026-03-10", "bob"): "2026-03-10 is in the future",
        ("started yesterday", "bob"): '"yesterday" is not a date: give the day you started',
        ("started 2021-02-30", "bob"): '"2021-02-30" is not a real date',
        ("started 1850-01-01", "bob"): "too long ago",
        ("celebrations streak 0", "alice"): 'a whole number of standups from 2 to 500, not "0"',
        ("celebrations streak 100000", "alice"): 'not "100000"',
        ("celebrations streak many", "alice"): 'not "many"',
        ("celebrations streaks maybe", "alice"): '"maybe" is not on or off',
        ("celebrations channel #nowhere", "alice"): "#nowhere",
        ("celebrations streak", "alice"): "Give the new value",
        ("celebrations streak 30", "bob"): "Only admins can do that.",
        ("celebrations channel #standup", "bob"): "Only admins can do that.",
        ("celebrations birthdays off", "carol"): "Only admins can do that.",
        ("celebrations party", "bob"): "SETTING must be one of",
    }
    for (line, by), problem in bad.items():
        assert problem in await syncup(world, line, by), line
    assert await stored(world) == before


async def test_the_console_clock_names_what_celebrations_schedule(world: World) -> None:
    from adapters.console.upcoming import in_words

    await world.add_standup(["alice"])
    await day_of_standup(world, MONDAY, [])
    async with world.db.transaction() as session:
        alice = world.members["alice"]
        assert await in_words(session, f"celebrate:birthday:{alice}") == (
            "celebrate @alice's birthday"
        )
        assert await in_words(session, f"celebrate:anniversary:{alice}") == (
            "celebrate @alice's work anniversary"
        )
        [run_key] = [k for k in world.scheduler._schedules if k.startswith("celebrate:streaks")]
        assert await in_words(session, run_key) == (
            "celebrate the answer streaks of the standup Daily for Mon 9 Mar"
        )
