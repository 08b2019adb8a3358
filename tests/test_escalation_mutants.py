"""Escalation timers at their edges (issue 17, the gaps mutation testing found): business time
whatever the server's own zone, the working window lost in a spring-forward gap, the exact
three-year limit on a closed calendar, the words an operator reads about a calendar; the
ladder's boundaries; the sweep's timeline entries, held DMs and stopping rules."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.core import Core
from bot.features import raci
from bot.features.blockers import escalation, ladder, policy, policy_commands, timeline
from bot.features.blockers.business_time import BusinessCalendar, CalendarError
from bot.features.blockers.ladder import LadderState
from bot.features.blockers.policy import DEFAULT_POLICY
from bot.features.blockers.timeline import Kind
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import Blocker, BlockerEvent, Member, OutboxMessage, OutboxStatus, Workspace
from storage.raci import BlockerSettings, RaciArea, RaciAssignment
from tests.blocker_world import ADMIN, DANA, ERIN, World, make_world, said, submit
from tests.raci_world import FakeDirectory
from tests.test_escalation_sweep import escalations, open_blocker, replica, steps_sent, texts

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
THREE_YEARS = 3 * 366  # closed days a calendar may have in a row before it is refused


# -- business time ----------------------------------------------------------------------------


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the zone of the process itself (``TZ``), as a server configured elsewhere has it."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_business_time_is_in_utc_and_the_areas_zone_whatever_the_servers_zone(
    host_zone: Callable[[str], None],
) -> None:
    # A server in Kiritimati (UTC+14) is more than a day ahead of Pago Pago (UTC-11).
    host_zone("Pacific/Kiritimati")
    berlin = BusinessCalendar("Europe/Berlin")
    saturday = datetime(2026, 12, 5, 12, tzinfo=BERLIN)
    monday_9 = datetime(2026, 12, 7, 8, tzinfo=UTC)
    for result, expected in [
        (berlin.add(saturday, H), monday_9 + H),  # from the window's start
        (berlin.add(saturday, timedelta(0)), saturday),  # the start itself
        (berlin.add(datetime(2026, 12, 7, 10, tzinfo=BERLIN), H), monday_9 + 2 * H),
        (berlin.next_open(saturday), monday_9),
        (berlin.next_open(datetime(2026, 12, 7, 12, tzinfo=BERLIN)), monday_9 + 3 * H),
    ]:
        assert result == expected
        assert result.utcoffset() == timedelta(0), result
    # An evening shift in Pago Pago, 18:00-24:00: at 23:30 there (00:30 two days later on the
    # server's clock) it is under way, and half an hour of it is left.
    evening = BusinessCalendar("Pacific/Pago_Pago", start_minute=18 * 60, end_minute=24 * 60)
    late = datetime(2026, 12, 8, 23, 30, tzinfo=ZoneInfo("Pacific/Pago_Pago"))
    assert evening.is_open(late)
    assert evening.next_open(late) == late
    assert evening.add(late, timedelta(minutes=30)) == datetime(2026, 12, 9, 11, tzinfo=UTC)


def test_a_working_window_lost_in_the_spring_forward_gap_is_no_opening() -> None:
    # 02:00-03:00 every day in Berlin: on 29 March 2026 02:00 does not exist and the window
    # has no length (02:00 read before the jump is 01:00 UTC, and so is 03:00 after it).
    gap = BusinessCalendar("Europe/Berlin", work_days=range(1, 8), start_minute=120, end_minute=180)
    sunday_night = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert not gap.is_open(sunday_night)
    # The next opening is Monday's 02:00 (CEST, 00:00 UTC), not the vanished Sunday one.
    assert gap.next_open(sunday_night) == datetime(2026, 3, 30, 0, tzinfo=UTC)
    assert gap.add(sunday_night, H) == datetime(2026, 3, 30, 1, tzinfo=UTC)
    assert gap.between(sunday_night, datetime(2026, 3, 30, 0, tzinfo=UTC)) == timedelta(0)


def test_no_business_time_passes_between_a_moment_and_itself() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    for at in (datetime(2026, 12, 8, 12, tzinfo=BERLIN), datetime(2026, 12, 5, 12, tzinfo=BERLIN)):
        assert cal.between(at, at) == timedelta(0)


def _closed(first: date, days: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(days)]


def test_a_closure_of_exactly_three_years_is_waited_out_and_one_day_more_is_refused() -> None:
    """Closed days count in a row from the day before the start (in the area's zone); a
    calendar with 3 x 366 of them is searched through, one with a day more is refused."""
    start = datetime(2026, 1, 10, 12, tzinfo=UTC)  # in a closure that began days before
    opened = date(2026, 1, 9) + timedelta(days=THREE_YEARS)  # the first day open again
    every_day = range(1, 8)
    closure = _closed(date(2026, 1, 4), (opened - date(2026, 1, 4)).days)
    cal = BusinessCalendar(work_days=every_day, custom=closure)
    assert cal.add(start, H) == datetime.combine(opened, datetime.min.time(), UTC) + 10 * H
    assert cal.next_open(start).date() == opened
    longer = BusinessCalendar(work_days=every_day, custom=[*closure, opened])
    with pytest.raises(CalendarError) as refused:
        longer.add(start, H)
    assert str(refused.value) == "This calendar has no working day in three years"


def test_the_three_years_start_again_after_every_open_day() -> None:
    # Open on Friday 9 January, then closed for exactly three years, then open again: a delay
    # longer than Friday's hours is counted on across the closure.
    friday = date(2026, 1, 9)
    opened = friday + timedelta(days=THREE_YEARS + 1)
    cal = BusinessCalendar(
        work_days=range(1, 8), custom=_closed(friday + timedelta(days=1), THREE_YEARS)
    )
    start = datetime(2026, 1, 9, 9, tzinfo=UTC)
    assert cal.add(start, 9 * H) == datetime.combine(opened, datetime.min.time(), UTC) + 10 * H
    assert cal.between(start, cal.add(start, 9 * H)) == 9 * H


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"work_days": []}, "Pick at least one working day"),
        ({"work_days": [7, 8]}, "Working days are ISO weekdays: 1 (Monday) to 7 (Sunday)"),
        (
            {"start_minute": 540, "end_minute": 540},
            "Working hours must start before they end, within one day (e.g. 09:00-17:00)",
        ),
        ({"subdivision": "BY"}, "A holiday subdivision needs a country too (e.g. DE and BY)"),
    ],
)
def test_a_bad_calendar_is_refused_with_these_words(kwargs: dict, message: str) -> None:
    with pytest.raises(CalendarError) as refused:
        BusinessCalendar(**kwargs)
    assert str(refused.value) == message


def test_the_arithmetic_refuses_to_go_backwards_or_guess_a_zone_with_these_words() -> None:
    cal = BusinessCalendar()
    with pytest.raises(CalendarError) as backwards:
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), -H)
    assert str(backwards.value) == "Business time cannot go backwards"
    with pytest.raises(ValueError) as naive:
        cal.is_open(datetime(2026, 1, 1))
    assert str(naive.value) == "business time needs timezone-aware datetimes (UTC in storage)"


def test_an_area_without_its_own_zone_or_days_works_monday_to_friday_in_utc() -> None:
    area = RaciArea(name="Ops", key="ops", day_start_minute=540, day_end_minute=1020)
    cal = BusinessCalendar.for_area(area)
    assert cal.describe() == "Mon-Fri 09:00-17:00 UTC"
    assert cal.is_open(datetime(2026, 12, 7, 9, tzinfo=UTC))  # a Monday
    assert not cal.is_open(datetime(2026, 12, 5, 12, tzinfo=UTC))  # a Saturday
    area.timezone, area.work_days = "", []
    assert BusinessCalendar.for_area(area) == cal


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"work_days": [5, 6]}, "Fri,Sat 09:00-17:00 UTC"),
        ({"work_days": [1, 2, 3]}, "Mon-Wed 09:00-17:00 UTC"),
        ({"work_days": [1, 2, 3, 4, 5, 6]}, "Mon-Sat 09:00-17:00 UTC"),
        ({"work_days": [1, 5], "end_minute": 1440}, "Mon,Fri 09:00-24:00 UTC"),
        (
            {"zone": "Europe/Berlin", "country": "DE"},
            "Mon-Fri 09:00-17:00 Europe/Berlin, holidays DE",
        ),
    ],
)
def test_a_calendar_describes_itself_in_one_line(kwargs: dict, text: str) -> None:
    assert BusinessCalendar(**kwargs).describe() == text


def test_a_calendar_as_a_dict_names_every_setting() -> None:
    cal = BusinessCalendar(
        "Europe/Berlin",
        work_days=[4, 1, 2],
        start_minute=480,
        end_minute=960,
        country="de",
        subdivision="BY",
        custom=["2026-12-31", date(2026, 12, 30)],
    )
    assert cal.to_dict() == {
        "zone": "Europe/Berlin",
        "work_days": [1, 2, 4],
        "start_minute": 480,
        "end_minute": 960,
        "country": "DE",
        "subdivision": "BY",
        "custom": ["2026-12-30", "2026-12-31"],
    }


# -- the ladder ---------------------------------------------------------------------------------

UTC_DAY = BusinessCalendar()  # Mon-Fri 09:00-17:00 UTC
MONDAY_9 = datetime(2026, 12, 7, 9, tzinfo=UTC)


def _policy(*afters: str, repeat: int = 0) -> policy.Policy:
    targets = ["responsible", "accountable", "channel", "member:7"]
    return policy.parse(
        {
            "levels": [
                {"target": t, "after": a}
                for t, a in zip(targets[: len(afters)], afters, strict=True)
            ],
            "repeat": repeat,
        }
    )


@pytest.mark.parametrize("second", ["9h", "8h 30m"])
def test_a_level_that_a_longer_working_day_puts_at_or_before_the_one_above_fires_a_minute_after_it(
    second: str,
) -> None:
    # Checked with 8-hour days (a workspace default), "1d" comes before 9h and 8h 30m; in an
    # area working 09:00-18:00 a day is 9 hours, and the second level keeps its place a minute
    # later rather than firing with the first (which would then never be sent).
    rule = _policy("1d", second)
    long_days = BusinessCalendar(start_minute=540, end_minute=1080)
    state = LadderState(anchor=MONDAY_9)
    dues = [(s.level, s.due) for s in ladder.steps(rule, long_days, state)]
    # 1d: Monday 18:00, the end of the day; a minute later: Tuesday 09:01.
    assert dues == [(1, MONDAY_9 + 9 * H), (2, datetime(2026, 12, 8, 9, 1, tzinfo=UTC))]
    firing = ladder.due(rule, long_days, state, MONDAY_9 + 9 * H)
    assert firing.step.level == 1 and firing.skipped == 0


def test_an_immediate_first_level_of_three_repeats_after_the_last_gap() -> None:
    rule = _policy("0m", "1h", "3h", repeat=1)
    dues = [s.due - MONDAY_9 for s in ladder.steps(rule, UTC_DAY, LadderState(anchor=MONDAY_9))]
    # A round is 3 hours plus the last gap (2 hours) before the first level again.
    assert dues == [timedelta(0), H, 3 * H, 5 * H, 6 * H, 8 * H]


def test_a_ladder_resumes_in_a_later_round_where_it_stopped() -> None:
    rule = _policy("4h", "1d", repeat=2)
    state = LadderState(anchor=MONDAY_9, round=1, level=1)
    left = [(s.position, s.due) for s in ladder.steps(rule, UTC_DAY, state)]
    # A round is one business day: round 1 level 2 on Tuesday 17:00, round 2 on Wednesday.
    assert left == [
        ((1, 2), datetime(2026, 12, 8, 17, tzinfo=UTC)),
        ((2, 1), datetime(2026, 12, 9, 13, tzinfo=UTC)),
        ((2, 2), datetime(2026, 12, 9, 17, tzinfo=UTC)),
    ]
    assert ladder.next_step(rule, UTC_DAY, state).position == (1, 2)


def test_each_step_names_whom_it_pages() -> None:
    rule = _policy("1h", "2h", "3h", "4h")
    steps = list(ladder.steps(rule, UTC_DAY, LadderState(anchor=MONDAY_9)))
    assert [s.target for s in steps] == list(rule.levels)
    assert [s.target.target for s in steps] == ["responsible", "accountable", "channel", "member:7"]


def test_a_step_fired_ten_minutes_late_is_on_time_and_a_moment_more_is_delayed() -> None:
    state = LadderState(anchor=MONDAY_9)
    due_at = MONDAY_9 + 4 * H
    on_time = ladder.due(DEFAULT_POLICY, UTC_DAY, state, due_at + ladder.DELAY_TOLERANCE)
    assert ladder.DELAY_TOLERANCE == timedelta(minutes=10)
    assert on_time.step.level == 1 and not on_time.delayed
    late = ladder.due(
        DEFAULT_POLICY, UTC_DAY, state, due_at + ladder.DELAY_TOLERANCE + timedelta(microseconds=1)
    )
    assert late.step.level == 1 and late.delayed and late.skipped == 0


# -- the sweep (tests/blocker_world.py: "data pipeline" works 09:00-17:00 in Berlin, its
# Responsible dana, its Accountable erin; the clock starts on Monday 9 March 2026, 10:00 UTC) --


@pytest.fixture
async def world(database: Database) -> World:
    return await make_world(database)


async def set_area(database: Database, world: World, **values: Any) -> None:
    """Change the "data pipeline" area's columns (policy, zone, hours) as /raci would have."""
    async with database.transaction() as session:
        await session.execute(
            update(RaciArea).where(RaciArea.id == world.areas["data pipeline"]).values(**values)
        )


async def test_a_dm_already_due_is_still_sent_when_the_blocker_is_resolved_that_moment(
    database: Database, world: World
) -> None:
    # Only DMs held for a member's working hours are withdrawn; one queued for now (dana is at
    # work) is on its way, even if the blocker is resolved in the same instant.
    number = await open_blocker(world, "The nightly ETL job fails --area data pipeline")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    [dm] = await steps_sent(world)
    assert dm.next_attempt_at == world.clock.now()
    await world.run(f"/blocker resolve {number}", DANA)
    assert [row.id for row in await steps_sent(world)] == [dm.id]
    assert (await world.blocker(number)).next_escalation_at is None


async def test_closed_blockers_left_with_a_step_booked_are_not_escalated_nor_hold_up_others(
    database: Database, world: World
) -> None:
    # Resolved and cancelled by something that did not stop their ladders (an older version,
    # an edit in the database): the sweep stops them instead of paging anyone, all in one
    # batch, so that an open blocker due after more of them than a reconcile pass has batches
    # (ten) is still escalated in that pass.
    closed = [await open_blocker(world, f"ETL {n} fails --area data pipeline") for n in range(11)]
    world.clock.advance(timedelta(minutes=1))
    still_open = await open_blocker(world, "ETL 11 fails --area data pipeline")
    async with database.transaction() as session:
        for n, number in enumerate(closed):
            status = ("resolved", "cancelled")[n % 2]
            await session.execute(update(Blocker).where(Blocker.id == number).values(status=status))
    world.clock.set(datetime(2026, 3, 9, 14, 2, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    assert [d["level"] for d in await escalations(world, still_open)] == [1]
    assert len(await steps_sent(world)) == 1
    for number in closed:
        assert await escalations(world, number) == []
        assert (await world.blocker(number)).next_escalation_at is None


async def test_a_blocker_booked_without_a_ladder_start_starts_its_ladder_when_found_due(
    database: Database, world: World
) -> None:
    # Booked by a version that kept no ladder start: found due, it starts afresh from then.
    number = await open_blocker(world, "ETL stalls --area data pipeline")
    async with database.transaction() as session:
        await session.execute(
            update(Blocker).where(Blocker.id == number).values(escalation_anchor_at=None)
        )
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))  # 15:01 in Berlin
    r = replica(database, world, "r")
    await r.scheduler.reconcile()
    assert await steps_sent(world) == []
    blocker = await world.blocker(number)
    assert blocker.escalation_anchor_at == world.clock.now()
    # Four business hours from Monday 15:01: Tuesday 11:01 in Berlin.
    assert blocker.next_escalation_at == datetime(2026, 3, 10, 10, 1, tzinfo=UTC)
    world.clock.set(datetime(2026, 3, 10, 10, 2, tzinfo=UTC))
    await r.scheduler.reconcile()
    assert [d["level"] for d in await escalations(world, number)] == [1]


async def test_the_longest_overdue_blocker_is_escalated_first(
    database: Database, world: World
) -> None:
    normal = await open_blocker(world, "ETL report late --area data pipeline")  # due 14:00
    world.clock.set(datetime(2026, 3, 9, 10, 5, tzinfo=UTC))
    critical = await open_blocker(world, "Prod data lost --area data pipeline --severity critical")
    # Nothing ran until 14:01: the critical blocker has waited since 10:05, the other since 14:00.
    core = Core(database, world.clock)
    raci.register(core)
    scheduler = Scheduler(database, world.clock, instance="one", reconcile_interval=3600)
    escalation.register(core, scheduler, batch_size=1)
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await scheduler.reconcile()
    await core.idle()
    async with database.transaction() as session:
        order = await session.scalars(
            select(BlockerEvent.blocker_id)
            .where(BlockerEvent.kind == Kind.ESCALATED)
            .order_by(BlockerEvent.id)
        )
        assert list(order) == [critical, normal]


async def test_each_batch_commits_on_its_own(database: Database, world: World) -> None:
    # Batches of one: a blocker whose step fails holds back neither the one before it nor,
    # once the failure is gone, itself.
    numbers = [
        await open_blocker(world, f"ETL part {n} fails --area data pipeline") for n in (1, 2)
    ]
    failing = {numbers[1]}

    async def broken(change: timeline.Change) -> None:
        if change.entry.kind == Kind.ESCALATED and change.blocker.id in failing:
            raise RuntimeError("this blocker's step cannot be written")

    core = Core(database, world.clock)
    raci.register(core)
    scheduler = Scheduler(database, world.clock, instance="one", reconcile_interval=3600)
    escalation.register(core, scheduler, batch_size=1)
    timeline.listen(broken)
    try:
        world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
        await scheduler.reconcile()
        await core.idle()
        assert [d["level"] for d in await escalations(world, numbers[0])] == [1]
        assert await escalations(world, numbers[1]) == []
        failing.clear()
        await scheduler.reconcile()
        await core.idle()
    finally:
        timeline._listeners.remove(broken)
    for number in numbers:
        assert [d["level"] for d in await escalations(world, number)] == [1]
    assert len(await steps_sent(world)) == 2


async def test_after_a_sweep_the_next_one_is_booked_at_the_next_due_step(
    database: Database, world: World
) -> None:
    await open_blocker(world, "ETL schema drift --area data pipeline")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    r = replica(database, world, "r")
    await r.scheduler.start()  # its first reconcile fires level 1
    try:
        assert len(await escalations(world)) == 1
        # Level 2, one business day after the start: Tuesday 11:00 in Berlin.
        assert r.scheduler.next_runs() == [
            (escalation.SWEEP_KEY, datetime(2026, 3, 10, 10, tzinfo=UTC))
        ]
    finally:
        await r.scheduler.stop()


async def test_a_sweep_passes_over_the_blockers_another_replica_is_escalating_postgresql_only(
    database: Database, world: World
) -> None:
    """PostgreSQL: a replica in the middle of a batch holds its blockers' rows; another
    replica's sweep skips them (``SKIP LOCKED``) and escalates the rest instead of waiting for
    that batch. SQLite has no row locks: one writer at a time."""
    if database.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (row locks)")
    busy = await open_blocker(world, "ETL A fails --area data pipeline")
    world.clock.advance(timedelta(minutes=1))
    other = await open_blocker(world, "ETL B fails --area data pipeline")
    world.clock.set(datetime(2026, 3, 9, 14, 2, tzinfo=UTC))
    swept = asyncio.Event()
    async with database.transaction() as held:  # the first replica's batch, still open
        await held.execute(select(Blocker).where(Blocker.id == busy).with_for_update())

        async def second_replica() -> None:
            await replica(database, world, "second").scheduler.reconcile()
            swept.set()

        task = asyncio.create_task(second_replica())
        async with asyncio.timeout(60):  # a safety net: without SKIP LOCKED it waits for us
            await swept.wait()
        await task
    assert [d["level"] for d in await escalations(world, other)] == [1]
    assert await escalations(world, busy) == []


async def test_a_dead_lettered_escalation_dm_is_kept_when_the_blocker_is_resolved(
    database: Database, world: World
) -> None:
    # Bob's DM is held until his day starts (13:00 UTC). A replica whose clock runs ahead
    # tried it and dead-lettered it; resolving the blocker withdraws only DMs still waiting,
    # so the dead letter stays for the operator to see.
    world.clock.set(datetime(2026, 3, 9, 6, tzinfo=UTC))
    number = await open_blocker(
        world, "Need the ETL credentials --area data pipeline --waiting-on @bob"
    )
    world.clock.set(datetime(2026, 3, 9, 12, 0, 30, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    [dm] = await steps_sent(world)
    assert dm.next_attempt_at == datetime(2026, 3, 9, 13, tzinfo=UTC)
    async with database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == dm.id)
            .values(status=OutboxStatus.DEAD, last_error="account deactivated")
        )
    await world.run(f"/blocker resolve {number}")
    [kept] = await steps_sent(world)
    assert (kept.id, kept.status) == (dm.id, OutboxStatus.DEAD)


async def test_a_step_booked_under_hours_the_area_no_longer_keeps_is_re_timed_not_sent(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # due 14:00 UTC
    # The area moves to New York hours: 4 business hours from 09:00 EDT are 13:00 EDT.
    await set_area(database, world, timezone="America/New_York")
    r = replica(database, world, "r")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await r.scheduler.reconcile()
    assert await steps_sent(world) == []
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 17, tzinfo=UTC)
    world.clock.set(datetime(2026, 3, 9, 17, 0, 20, tzinfo=UTC))
    await r.scheduler.reconcile()
    assert [d["level"] for d in await escalations(world, number)] == [1]


async def test_a_ladder_pages_named_members_and_channels_and_says_so(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    frank = world.members["frank"]
    levels = [
        (f"member:{frank}", "1h"),
        ("channel:C-ops", "2h"),
        ("member:99999", "3h"),  # nobody: a member since deleted
        ("webhook:7", "4h"),  # sent by the webhooks' listener, not here
    ]
    await set_area(
        database, world, policy={"levels": [{"target": t, "after": a} for t, a in levels]}
    )
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    r = replica(database, world, "r")
    for hour in (11, 12, 13, 14):  # UTC: one level each hour from 12:00 in Berlin
        world.clock.set(datetime(2026, 3, 9, hour, 0, 20, tzinfo=UTC))
        await r.scheduler.reconcile()
    details = await escalations(world, number)
    assert [(d["level"], d["target"], d["targets"], d["label"]) for d in details] == [
        (1, f"member:{frank}", [frank], "@frank"),
        (2, "channel:C-ops", [], "#C-ops"),
        (3, "member:99999", [], "member #99999"),
        (4, "webhook:7", [], "webhook #7"),
    ]
    sent = await steps_sent(world)
    assert [(row.method, row.target) for row in sent] == [
        ("dm", {"user_id": "U6"}),
        ("post", {"channel_id": "C-ops"}),
    ]
    assert f"blocker {number}: policy names unknown member 99999" in caplog.messages


async def test_a_held_dm_holds_only_itself_and_queued_steps_wake_the_sender(
    database: Database, world: World
) -> None:
    # Both opened Monday 06:00 UTC, both due at 12:00 UTC (13:00 in Berlin): bob's DM waits
    # for his day (13:00 UTC in New York), dana's goes at once, and so does everything else
    # queued (the blockers' cards).
    world.clock.set(datetime(2026, 3, 9, 6, tzinfo=UTC))
    held = await open_blocker(world, "Need ETL credentials --area data pipeline --waiting-on @bob")
    await open_blocker(world, "ETL disk full --area data pipeline")
    r = replica(database, world, "r")
    wakes: list[str] = []
    r.scheduler.on_outbox.append(lambda: wakes.append("woken"))
    now = datetime(2026, 3, 9, 12, 0, 30, tzinfo=UTC)
    world.clock.set(now)
    await r.scheduler.reconcile()
    assert wakes == ["woken"]
    bob_dm = f"blocker:{held}:esc:0:0:1:dm:{world.members['bob']}"
    times = {row.idempotency_key: row.next_attempt_at for row in await world.outbox()}
    assert times.pop(bob_dm) == datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert any(":esc:" in key for key in times)  # dana's
    assert all(at <= now for at in times.values()), times
    # A sweep that only re-times (nothing queued) wakes nobody.
    world.clock.set(datetime(2026, 3, 9, 12, 5, tzinfo=UTC))
    async with database.transaction() as session:
        await session.execute(
            update(Blocker).where(Blocker.id == held).values(next_escalation_at=world.clock.now())
        )
    await r.scheduler.reconcile()
    assert wakes == ["woken"]


async def test_a_level_with_two_people_pages_both_and_names_both(
    database: Database, world: World
) -> None:
    dana, bob = world.members["dana"], world.members["bob"]
    async with database.transaction() as session:
        session.add(
            RaciAssignment(
                area_id=world.areas["data pipeline"], role="R", who=f"member:{bob}", member_id=bob
            )
        )
    number = await open_blocker(world, "ETL job fails --area data pipeline")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))  # 10:00 in New York
    await replica(database, world, "r").scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert sorted(detail["targets"]) == sorted([dana, bob])
    assert detail["label"] in ("@dana, @bob", "@bob, @dana")
    assert sorted(row.target["user_id"] for row in await steps_sent(world)) == ["U2", "U4"]


async def test_an_acknowledged_critical_blocker_pauses_in_wall_clock_time(
    database: Database, world: World
) -> None:
    saturday_night = datetime(2026, 3, 14, 22, tzinfo=UTC)
    world.clock.set(saturday_night)
    number = await open_blocker(world, "Prod data lost --area data pipeline --severity critical")
    await world.run(f"/blocker ack {number}", ERIN)
    # The pause is one working day's length (8 hours) of every hour, not Monday's hours.
    assert (await world.blocker(number)).next_escalation_at == saturday_night + 8 * H


async def test_a_ladder_restarted_in_a_later_round_starts_from_its_first_round(
    database: Database, world: World
) -> None:
    await set_area(
        database, world, policy={"levels": [{"target": "responsible", "after": "1h"}], "repeat": 2}
    )
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    r = replica(database, world, "r")
    for hour in (11, 12):  # rounds 0 and 1 at 12:00 and 13:00 in Berlin
        world.clock.set(datetime(2026, 3, 9, hour, 0, 20, tzinfo=UTC))
        await r.scheduler.reconcile()
    # Round 2 is next, an hour later.
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 13, tzinfo=UTC)
    await world.run(f"/blocker ack {number}", DANA)  # paused one business day
    world.clock.set(datetime(2026, 3, 10, 12, 1, tzinfo=UTC))
    await r.scheduler.reconcile()
    details = await escalations(world, number)
    assert [(d["round"], d["level"]) for d in details] == [(0, 1), (1, 1), (0, 1)]
    keys = [row.idempotency_key for row in await steps_sent(world)]
    assert keys[-1].startswith(f"blocker:{number}:esc:1:0:1:")
    blocker = await world.blocker(number)
    assert (blocker.escalation_round, blocker.escalation_level) == (0, 1)


async def test_a_snoozed_blocker_is_not_escalated_before_its_snooze_ends(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # due 14:00 UTC
    answer = await world.run(f"/blocker snooze {number} 2026-03-10 12:00", DANA)
    assert answer.startswith(f"Snoozed blocker #{number} until Tue 10 Mar 12:00"), answer
    until = datetime(2026, 3, 10, 11, tzinfo=UTC)  # 12:00 in Berlin
    assert (await world.blocker(number)).next_escalation_at == until
    r = replica(database, world, "r")
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await r.scheduler.reconcile()
    assert await escalations(world, number) == []
    # Then the highest step due by then (level 2, due 11:00 in Berlin) fires, once.
    world.clock.set(until + timedelta(seconds=20))
    await r.scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert (detail["level"], detail["skipped"]) == (2, 1)


async def test_a_short_snooze_keeps_the_ladders_times(database: Database, world: World) -> None:
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    world.clock.advance(H)
    await world.run(f"/blocker snooze {number} 2026-03-09 13:00", DANA)  # Berlin time
    # The ladder still counts from the opening: level 1 at 15:00 in Berlin, after the snooze.
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 14, tzinfo=UTC)


async def test_saving_the_default_policy_counts_the_blockers_it_re_times(
    database: Database, world: World
) -> None:
    raci.register(world.core)
    policy_commands.register(world.core)
    await open_blocker(world, "The nightly ETL fails --area data pipeline")
    nowhere = await open_blocker(world, "The coffee machine is broken")
    assert (await world.blocker(nowhere)).area_id is None  # no area: nothing to escalate to
    values = {"levels": "responsible 2h", "repeat": "0", "reack": "1d"}
    saved = await world.core.handle(submit("raci-policy", ADMIN, values, "default"))
    assert (
        said(saved).splitlines()[0]
        == "Saved the workspace's default escalation policy. 1 open blocker(s) re-timed."
    )


async def test_a_change_after_the_ladder_is_over_books_nothing(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "ETL docs typo --area data pipeline --severity low")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    assert [d["level"] for d in await escalations(world, number)] == [1]  # its only level
    answer = await world.run(f"/blocker snooze {number} 2026-03-10 12:00", DANA)
    assert answer.startswith(f"Snoozed blocker #{number}"), answer
    assert (await world.blocker(number)).next_escalation_at is None


async def test_the_sweep_is_booked_at_the_earliest_due_blocker_and_named_in_utc(
    database: Database, world: World, host_zone: Callable[[str], None]
) -> None:
    # Two replicas in different zones must name one sweep alike: the key is in UTC.
    host_zone("Pacific/Kiritimati")
    later = await open_blocker(world, "ETL report late --area data pipeline")  # due 14:00
    world.clock.set(datetime(2026, 3, 9, 10, 5, tzinfo=UTC))
    earliest = await open_blocker(world, "Prod data lost --area data pipeline --severity critical")
    assert later < earliest
    async with database.transaction() as session:
        [schedule] = await escalation.EscalationSchedules().schedules(session, world.clock.now())
    due = datetime(2026, 3, 9, 10, 5, tzinfo=UTC)
    assert schedule.trigger.run_date == due
    assert schedule.payload == {"first": earliest}
    assert schedule.occurrence_key(due) == (
        f"blockers:escalation:{earliest}@2026-03-09T10:05:00.000000Z"
    )


# -- whom a step pages, and the plans it follows (compose, recipients, Plans) ------------------


async def test_a_dm_goes_to_the_members_known_dm_channel(database: Database, world: World) -> None:
    # A platform that gave syncup dana's DM channel: the step's DM names it, so the sender
    # writes there instead of opening a conversation first.
    async with database.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == world.members["dana"]).values(dm_channel_id="D-dana")
        )
    await open_blocker(world, "The nightly ETL job fails --area data pipeline")
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    [dm] = await steps_sent(world)
    assert (dm.method, dm.target) == ("dm", {"user_id": "U4", "dm_channel_id": "D-dana"})


async def test_a_blocker_waiting_on_a_member_goes_to_the_areas_accountable_at_level_two(
    database: Database, world: World
) -> None:
    # Waiting on bob: bob is the Responsible of this blocker (level 1), but the Accountable
    # (level 2) is still the area's, erin, not bob again.
    number = await open_blocker(
        world, "Need the ETL credentials --area data pipeline --waiting-on @bob"
    )
    world.clock.set(datetime(2026, 3, 10, 13, 30, tzinfo=UTC))  # level 2 due, bob at work too
    await replica(database, world, "r").scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert (detail["level"], detail["targets"], detail["label"]) == (
        2,
        [world.members["erin"]],
        "@erin",
    )
    assert [row.target["user_id"] for row in await steps_sent(world)] == ["U5"]


async def test_a_responsible_user_group_is_expanded_by_the_platform_and_each_member_paged(
    database: Database, world: World
) -> None:
    # dana holds R herself and through the user group "data-eng" with frank: the step pages
    # both, frank found through the platform's list of the group's members.
    async with database.transaction() as session:
        session.add(
            RaciAssignment(
                area_id=world.areas["data pipeline"], role="R", who="group:S-eng", label="@data-eng"
            )
        )
    number = await open_blocker(world, "ETL job fails --area data pipeline")
    r = replica(database, world, "r")
    r.core.directory = FakeDirectory(  # type: ignore[assignment]
        members={"U4": "dana", "U6": "frank"}, groups={"S-eng": ("data-eng", ["U4", "U6"])}
    )
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await r.scheduler.reconcile()
    [detail] = await escalations(world, number)
    dana, frank = world.members["dana"], world.members["frank"]
    assert (detail["targets"], detail["label"]) == ([dana, frank], "@dana, @frank")
    assert sorted(row.target["user_id"] for row in await steps_sent(world)) == ["U4", "U6"]


async def test_the_workspaces_default_policy_times_the_areas_without_their_own(
    database: Database, world: World
) -> None:
    async with database.transaction() as session:
        workspace = await session.scalar(select(Workspace))
        assert workspace is not None
        session.add(
            BlockerSettings(
                workspace_id=workspace.id,
                default_policy={"levels": [{"target": "accountable", "after": "2h"}]},
                updated_at=world.clock.now(),
            )
        )
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 12, tzinfo=UTC)
    world.clock.set(datetime(2026, 3, 9, 12, 0, 20, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert (detail["level"], detail["label"]) == (1, "@erin")


@pytest.mark.parametrize(
    ("where", "stored", "reason"),
    [
        ("area", {"levels": []}, "A policy needs at least one level (a target and a delay)"),
        ("workspace", {"repeat": 1}, "A policy needs at least one level (a target and a delay)"),
        ("workspace", {"levels": "x", "pause": 1}, "Unknown policy field(s): pause"),
    ],
)
async def test_an_unusable_stored_policy_escalates_by_the_built_in_one_and_says_where(
    database: Database,
    world: World,
    caplog: pytest.LogCaptureFixture,
    where: str,
    stored: dict,
    reason: str,
) -> None:
    # Written by hand or by an older version: the blocker still escalates (the built-in
    # policy: the Responsible after 4 business hours) and the log names the policy's owner.
    area_id = world.areas["data pipeline"]
    async with database.transaction() as session:
        workspace = await session.scalar(select(Workspace))
        assert workspace is not None
        if where == "area":
            await session.execute(
                update(RaciArea).where(RaciArea.id == area_id).values(policy=stored)
            )
        else:
            session.add(
                BlockerSettings(
                    workspace_id=workspace.id, default_policy=stored, updated_at=world.clock.now()
                )
            )
    owner = f"area {area_id}" if where == "area" else f"workspace {workspace.id}"
    caplog.set_level(logging.WARNING, logger=escalation.__name__)
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 14, tzinfo=UTC)
    assert f"{owner} has an unusable escalation policy ({reason}); using the default" in (
        caplog.messages
    )


async def test_an_area_with_an_unusable_calendar_escalates_in_utc_office_hours_and_says_so(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Saved before calendars were checked: weekday 8. The area's other settings (12:00-20:00
    # in Berlin, which would give 15:00 UTC) are not guessed at; the ladder counts Mon-Fri
    # 09:00-17:00 UTC instead.
    area_id = world.areas["data pipeline"]
    async with database.transaction() as session:
        await session.execute(
            update(RaciArea)
            .where(RaciArea.id == area_id)
            .values(work_days=[1, 8], day_start_minute=720, day_end_minute=1200)
        )
    caplog.set_level(logging.WARNING, logger=escalation.__name__)
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 10:00 UTC
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 9, 14, tzinfo=UTC)
    reason = "Working days are ISO weekdays: 1 (Monday) to 7 (Sunday)"
    assert f"area {area_id} has an unusable calendar ({reason}); using UTC 09-17" in caplog.messages


def _one_at_a_time(database: Database, world: World) -> tuple[Core, Scheduler]:
    """A replica sweeping one blocker per batch, so that a few due blockers fill batches."""
    core = Core(database, world.clock)
    raci.register(core)
    scheduler = Scheduler(database, world.clock, instance="one", reconcile_interval=3600)
    escalation.register(core, scheduler, batch_size=1)
    return core, scheduler


async def test_full_batches_carry_on_in_one_background_pass_at_a_time(
    database: Database, world: World
) -> None:
    # 12 due blockers, one per batch: the reconcile pass takes 10 (its reloads), and the
    # full batches start passes in the background to take the rest; one such pass at a time
    # (a full batch while one runs asks it to go round again instead of starting another).
    numbers = [
        await open_blocker(world, f"ETL shard {n} fails --area data pipeline") for n in range(12)
    ]
    core, scheduler = _one_at_a_time(database, world)
    reconcile, most = scheduler.reconcile, 0

    def count() -> None:
        nonlocal most
        tasks = asyncio.all_tasks()
        most = max(most, sum(t.get_name() == "escalation-sweep" and not t.done() for t in tasks))

    async def counted() -> None:
        count()
        await reconcile()
        count()

    scheduler.reconcile = counted  # type: ignore[method-assign]
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await scheduler.reconcile()
    async with asyncio.timeout(120):  # a safety net: passes that never stop going round
        await core.idle()
    assert len(await steps_sent(world)) == len(numbers)
    assert most == 1


async def test_a_background_sweep_pass_that_fails_is_logged_by_its_name(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await open_blocker(world, "ETL job fails --area data pipeline")
    core, scheduler = _one_at_a_time(database, world)
    reconcile, caller = scheduler.reconcile, asyncio.current_task()

    async def failing_in_the_background() -> None:
        if asyncio.current_task() is not caller:
            raise RuntimeError("the scheduler broke")
        await reconcile()

    scheduler.reconcile = failing_in_the_background  # type: ignore[method-assign]
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await scheduler.reconcile()  # a full batch (of one) asks for another pass
    await core.idle()
    assert len(await steps_sent(world)) == 1
    assert "background task escalation-sweep failed" in caplog.messages


async def test_a_channel_step_posts_the_blocker_with_its_buttons(
    database: Database, world: World
) -> None:
    await set_area(database, world, policy={"levels": [{"target": "channel", "after": "1h"}]})
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    world.clock.set(datetime(2026, 3, 9, 11, 0, 20, tzinfo=UTC))
    await replica(database, world, "r").scheduler.reconcile()
    [post] = await steps_sent(world)
    assert (post.method, post.target) == ("post", {"channel_id": "C-data"})
    assert post.idempotency_key == f"blocker:{number}:esc:0:0:1:post"
    body = texts(post)
    assert f"Blocker #{number} escalated (level 1)" in body and "ETL job fails" in body
    assert "R: @dana" in body and "A: @erin" in body
    actions = [b["action_id"] for b in post.payload["blocks"][-1]["elements"]]
    assert f"blocker:ack:{number}" in actions and f"blocker:resolve:{number}" in actions


async def test_an_areas_policy_is_read_with_the_areas_own_working_day(
    database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # A 6-hour day (10:00-16:00 in Berlin): "1d" then "7h" is in order (6 hours, then 7), as
    # /raci policy accepted it for this area; read with a standard 8-hour day it would not be,
    # and the area would fall back to the built-in ladder.
    await set_area(
        database,
        world,
        day_start_minute=600,
        day_end_minute=960,
        policy={
            "levels": [
                {"target": "responsible", "after": "1d"},
                {"target": "accountable", "after": "7h"},
            ]
        },
    )
    caplog.set_level(logging.WARNING, logger=escalation.__name__)
    number = await open_blocker(world, "ETL job fails --area data pipeline")  # Mon 11:00 Berlin
    # One working day: five hours on Monday, the sixth on Tuesday from 10:00 in Berlin.
    assert (await world.blocker(number)).next_escalation_at == datetime(2026, 3, 10, 10, tzinfo=UTC)
    assert not any("unusable" in line for line in caplog.messages)
