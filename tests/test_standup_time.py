"""Standup time (issue 3, item 7; invariant 7): exactly one prompt per member per local date
through DST changes and odd offsets, each member's own local date across the date line, and the
downtime policy (an open window's prompt goes out once when back, a passed one does not, a week
of stale reminders is never replayed).

Runs on SQLite and PostgreSQL with the core and the scheduler on a FakeClock (see
:class:`tests.test_standup_runtime.World`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core import Core
from bot.features.standups import runtime
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import OccurrenceClaim, PromptStatus, Standup, StandupPrompt, StandupRun
from tests.test_standup_runtime import World, make_world

EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]


def at(day: date, clock: str, zone: str) -> datetime:
    """A local wall-clock time as a UTC instant: the first of a repeated time, and a skipped
    time shifted forward by the gap (zoneinfo's fold=0)."""
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone)).astimezone(UTC)


async def prompts_of(world: World, name: str) -> list[tuple[date, datetime]]:
    """(run date, prompted at) of a member's prompts, in order."""
    async with world.db.transaction() as session:
        rows = await session.execute(
            select(StandupRun.run_date, StandupPrompt.prompted_at)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .where(StandupPrompt.member_id == world.members[name])
            .order_by(StandupRun.run_date)
        )
        return [(d, p) for d, p in rows.all()]


async def claim_keys(world: World) -> list[str]:
    async with world.db.transaction() as session:
        return sorted(await session.scalars(select(OccurrenceClaim.key)))


async def restart(world: World, when: datetime) -> Scheduler:
    """Stop the running scheduler, let the clock jump to ``when`` (downtime), and start a new
    one, as a new process would: its own core and scheduler on the same database."""
    await world.scheduler.stop()
    world.clock.set(when)
    core = Core(world.db, world.clock)
    scheduler = Scheduler(world.db, world.clock, instance="restarted", reconcile_interval=3600)
    runtime.register(core, scheduler)
    world.core, world.scheduler = core, scheduler
    await scheduler.start()
    return scheduler


# -- DST and odd offsets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "change", "clock"),
    [
        # Spring forward: 02:00 -> 03:00; 02:30 does not exist that night.
        ("America/New_York", date(2026, 3, 8), "09:00"),
        ("America/New_York", date(2026, 3, 8), "02:30"),
        # Fall back: 02:00 -> 01:00; 01:30 happens twice.
        ("America/New_York", date(2026, 11, 1), "09:00"),
        ("America/New_York", date(2026, 11, 1), "01:30"),
        # Europe: 02:00 -> 03:00 in March, 03:00 -> 02:00 in October.
        ("Europe/Berlin", date(2026, 3, 29), "09:00"),
        ("Europe/Berlin", date(2026, 3, 29), "02:30"),
        ("Europe/Berlin", date(2026, 10, 25), "09:00"),
        ("Europe/Berlin", date(2026, 10, 25), "02:30"),
        # +05:30 all year.
        ("Asia/Kolkata", date(2026, 3, 8), "09:00"),
        # +12:45 / +13:45: DST ends 03:45 -> 02:45 in April and starts 02:45 -> 03:45 in September.
        ("Pacific/Chatham", date(2026, 4, 5), "09:00"),
        ("Pacific/Chatham", date(2026, 4, 5), "03:00"),
        ("Pacific/Chatham", date(2026, 9, 27), "09:00"),
        ("Pacific/Chatham", date(2026, 9, 27), "03:00"),
    ],
)
async def test_one_prompt_per_local_date_through_dst(
    database: Database, zone: str, change: date, clock: str
) -> None:
    first, last = change - timedelta(days=3), change + timedelta(days=3)
    world, scheduler = await make_world(
        database, {"pat": zone}, start=at(first, "00:00", zone) - timedelta(minutes=1)
    )
    try:
        await world.add_standup(["pat"], days=EVERY_DAY, time_of_day=clock)
        await world.advance_to(at(last, "23:59", zone))
        days = [first + timedelta(days=n) for n in range(7)]
        assert await prompts_of(world, "pat") == [(d, at(d, clock, zone)) for d in days]
        assert len(await world.dms("pat")) == 7
        prompt_claims = [k for k in await claim_keys(world) if ":m:" in k]
        assert prompt_claims == [f"standup:1:m:{world.members['pat']}@{d}" for d in days]
        # Every prompt says the member's own date.
        for day, text in zip(days, await world.dms("pat"), strict=True):
            assert f"({day:%a} {day.day} {day:%b})" in text.split("\n")[0]
    finally:
        await scheduler.stop()


async def test_a_restart_in_the_repeated_hour_does_not_prompt_again(database: Database) -> None:
    zone = "America/New_York"
    day = date(2026, 11, 1)
    world, _ = await make_world(database, {"pat": zone}, start=at(day, "00:00", zone))
    try:
        await world.add_standup(["pat"], days=EVERY_DAY, time_of_day="01:30")
        await world.advance_to(at(day, "01:40", zone))  # 01:40 EDT: prompted at 01:30 EDT
        # The bot restarts at 01:35 EST, the second 01:30-ish of the night.
        second_pass = datetime(2026, 11, 1, 6, 35, tzinfo=UTC)
        assert second_pass.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") == "01:35 EST"
        await restart(world, second_pass)
        await world.advance_to(at(day, "12:00", zone))
        assert await prompts_of(world, "pat") == [(day, at(day, "01:30", zone))]
        assert len(await world.dms("pat")) == 1
    finally:
        await world.scheduler.stop()


async def test_moving_the_time_after_todays_prompt_does_not_prompt_twice(
    database: Database,
) -> None:
    zone = "Europe/Berlin"
    day = date(2026, 3, 9)
    world, _ = await make_world(database, {"pat": zone}, start=at(day, "08:00", zone))
    try:
        standup_id = await world.add_standup(["pat"])
        await world.advance_to(at(day, "09:30", zone))
        async with database.transaction() as session:
            standup = await session.get(Standup, standup_id)
            assert standup is not None
            standup.time_of_day = "11:00"
        await world.scheduler.reconcile()
        await world.advance_to(at(day + timedelta(days=1), "12:00", zone))
        assert await prompts_of(world, "pat") == [
            (day, at(day, "09:00", zone)),
            (day + timedelta(days=1), at(day + timedelta(days=1), "11:00", zone)),
        ]
    finally:
        await world.scheduler.stop()


# -- across the date line ------------------------------------------------------------------------


async def test_auckland_and_los_angeles_each_get_their_own_local_date(database: Database) -> None:
    zones = {"kiri": "Pacific/Auckland", "lou": "America/Los_Angeles"}
    # Monday 9 March 2026, 01:00 UTC: Monday 14:00 in Auckland, Sunday 18:00 in Los Angeles.
    world, _ = await make_world(database, zones, start=datetime(2026, 3, 9, 1, tzinfo=UTC))
    try:
        await world.add_standup(["kiri", "lou"])
        await world.advance_to(datetime(2026, 3, 10, 0, tzinfo=UTC))
        # Los Angeles: Monday 09:00 PDT = 16:00 UTC Monday, the standup of Monday 9 March.
        assert await prompts_of(world, "lou") == [
            (date(2026, 3, 9), datetime(2026, 3, 9, 16, tzinfo=UTC))
        ]
        # Auckland: Tuesday 09:00 NZDT = 20:00 UTC Monday, already the standup of Tuesday.
        assert await prompts_of(world, "kiri") == [
            (date(2026, 3, 10), datetime(2026, 3, 9, 20, tzinfo=UTC))
        ]
        (lou_dm,) = await world.dms("lou")
        (kiri_dm,) = await world.dms("kiri")
        assert lou_dm.startswith("Hi lou! Time for Daily (Mon 9 Mar).")
        assert kiri_dm.startswith("Hi kiri! Time for Daily (Tue 10 Mar).")
        keys = await claim_keys(world)
        assert f"standup:1:m:{world.members['lou']}@2026-03-09" in keys
        assert f"standup:1:m:{world.members['kiri']}@2026-03-10" in keys
    finally:
        await world.scheduler.stop()


# -- downtime ---------------------------------------------------------------------------------


BERLIN = "Europe/Berlin"
MONDAY = date(2026, 3, 9)


async def test_a_prompt_whose_window_is_open_goes_out_once_when_back(database: Database) -> None:
    world, _ = await make_world(database, {"pat": BERLIN}, start=at(MONDAY, "08:00", BERLIN))
    try:
        await world.add_standup(["pat"], window_minutes=240, reminder_minutes=30)
        # Down from 08:00 to 10:30: the 09:00 prompt's window is open until 13:00.
        await restart(world, at(MONDAY, "10:30", BERLIN))
        await world.scheduler.reconcile()
        assert await prompts_of(world, "pat") == [(MONDAY, at(MONDAY, "10:30", BERLIN))]
        assert len(await world.dms("pat")) == 1
        # Its reminder counts from when the prompt really went out.
        await world.advance_to(at(MONDAY, "10:59", BERLIN))
        assert len(await world.dms("pat")) == 1
        await world.advance_to(at(MONDAY, "11:00", BERLIN))
        assert len(await world.dms("pat")) == 2
        # Another restart inside the window sends nothing again.
        await restart(world, at(MONDAY, "11:30", BERLIN))
        await world.advance_to(at(MONDAY, "20:00", BERLIN))
        assert len(await world.dms("pat")) == 2
    finally:
        await world.scheduler.stop()


async def test_a_prompt_whose_window_passed_is_not_sent(database: Database) -> None:
    world, _ = await make_world(database, {"pat": BERLIN}, start=at(MONDAY, "08:00", BERLIN))
    try:
        await world.add_standup(["pat"], window_minutes=240)
        await restart(world, at(MONDAY, "13:01", BERLIN))
        assert await world.dms("pat") == []
        assert await prompts_of(world, "pat") == []
        # The next one is tomorrow's, as usual.
        assert world.scheduler.next_runs()[0][1] == at(MONDAY + timedelta(days=1), "09:00", BERLIN)
        await world.advance_to(at(MONDAY + timedelta(days=1), "09:01", BERLIN))
        assert await prompts_of(world, "pat") == [
            (MONDAY + timedelta(days=1), at(MONDAY + timedelta(days=1), "09:00", BERLIN))
        ]
    finally:
        await world.scheduler.stop()


async def test_a_week_of_downtime_replays_no_stale_reminders(database: Database) -> None:
    zones = {"pat": BERLIN, "sam": BERLIN}
    world, _ = await make_world(database, zones, start=at(MONDAY, "08:00", BERLIN))
    try:
        await world.add_standup(
            ["pat", "sam"], days=EVERY_DAY, reminder_minutes=30, channel_nudge=True
        )
        await world.advance_to(at(MONDAY, "09:10", BERLIN))  # prompted; reminders due at 09:30
        assert [len(await world.dms(n)) for n in zones] == [1, 1]
        # Down for a week; back a week later at 09:05, in the new day's window.
        await restart(world, at(MONDAY + timedelta(days=7), "09:05", BERLIN))
        await world.scheduler.reconcile()
        week_later = MONDAY + timedelta(days=7)
        for name in zones:
            # Only the new day's prompt: no reminder, no prompt, no report of the week gone by.
            dms = await world.dms(name)
            assert len(dms) == 2
            assert not any(text.startswith("A reminder") for text in dms)
            assert [d for d, _ in await prompts_of(world, name)] == [MONDAY, week_later]
        assert await world.posts() == []
        async with database.transaction() as session:
            stale = await session.scalars(
                select(StandupPrompt)
                .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
                .where(StandupRun.run_date == MONDAY)
            )
            for prompt in stale:
                assert (PromptStatus(prompt.status), prompt.reminded_at) == (
                    PromptStatus.PENDING,
                    None,
                )
        # The new day's reminder still comes, once each.
        await world.advance_to(at(week_later, "12:00", BERLIN))
        for name in zones:
            reminders = [t for t in await world.dms(name) if t.startswith("A reminder")]
            assert len(reminders) == 1
            assert "(Mon 16 Mar)" in reminders[0]
    finally:
        await world.scheduler.stop()


async def test_team_mode_gives_everyone_the_team_zones_date(
    database: Database,
) -> None:
    """Team mode: everyone gets the team zone's date, whatever their own zone says."""
    zones = {"kiri": "Pacific/Auckland", "lou": "America/Los_Angeles"}
    world, _ = await make_world(database, zones, start=datetime(2026, 3, 9, 1, tzinfo=UTC))
    try:
        await world.add_standup(["kiri", "lou"], team_timezone="Europe/London")
        await world.advance_to(datetime(2026, 3, 9, 10, tzinfo=UTC))
        for name in zones:
            assert await prompts_of(world, name) == [
                (date(2026, 3, 9), datetime(2026, 3, 9, 9, tzinfo=UTC))
            ]
        (kiri_dm,) = await world.dms("kiri")
        assert kiri_dm.startswith("Hi kiri! Time for Daily (Mon 9 Mar).")
    finally:
        await world.scheduler.stop()
