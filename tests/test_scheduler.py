"""The scheduler: exactly one run per occurrence across replicas, double firings and restarts
(invariant 1), the missed-occurrence policy, reconcile, DST and odd UTC offsets (invariant 7),
and the housekeeping job.

Replicas are separate :class:`Scheduler` objects, each with its own :class:`Database` (engine and
connection pool) on one database, as two processes would be. Most tests drive a
:class:`FakeClock` and call ``reconcile()``; the real-time ones wait on events set by handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import message
from bot.clock import Clock, SystemClock
from bot.port import Method, Target
from bot.scheduling.housekeeping import Housekeeping
from bot.scheduling.scheduler import (
    RECONCILE_JOB_ID,
    Occurrence,
    OccurrenceHandler,
    Schedule,
    Scheduler,
)
from storage.db import Database
from storage.models import (
    OccurrenceClaim,
    OutboxMessage,
    OutboxStatus,
    ProcessedEvent,
    Workspace,
)
from tests.fakes.clock import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONE_UTC = ZoneInfo("UTC")
MONDAY = date(2026, 3, 2)  # a Monday, away from any DST change in Berlin
HANDLER = "work"
# Safety net for the real-time tests; nothing asserts on how long anything took.
WAIT_LIMIT = 60.0


def local(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware UTC instant (fold=0: the first of an ambiguous pair,
    and a nonexistent time shifted forward by the gap, as zoneinfo does)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def daily(at: time, zone: ZoneInfo) -> CronTrigger:
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=zone)


class ListSource:
    """Schedules held in memory, standing in for a feature's rows in the database."""

    def __init__(self, *schedules: Schedule) -> None:
        self.items: dict[str, Schedule] = {s.key: s for s in schedules}

    def put(self, schedule: Schedule) -> None:
        self.items[schedule.key] = schedule

    def remove(self, key: str) -> None:
        del self.items[key]

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        return list(self.items.values())


@dataclass
class Recorder:
    """A handler that leaves one ``processed_events`` row per run in the claiming transaction
    (unique per replica, so two committed runs would leave two rows), optionally queues an
    outbox message keyed on the occurrence, and records the occurrence times it ran."""

    instance: str = "test"
    workspace_id: int | None = None
    fail: bool = False
    runs: list[datetime] = field(default_factory=list)
    ran: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, occurrence: Occurrence) -> None:
        await asyncio.sleep(0)  # give a racing replica the chance to interleave
        occurrence.session.add(
            ProcessedEvent(
                platform="test",
                event_id=f"{occurrence.key}|{self.instance}",
                received_at=occurrence.now,
            )
        )
        if self.workspace_id is not None:
            await occurrence.send(
                self.workspace_id,
                Method.POST,
                Target(channel_id="C1"),
                message(f"occurrence {occurrence.key}"),
                key=f"{occurrence.key}:post",
            )
        await occurrence.session.flush()
        if self.fail:
            raise RuntimeError("handler failed on purpose")
        self.runs.append(occurrence.fire_at.astimezone(UTC))
        self.ran.set()


class ObservedScheduler(Scheduler):
    """Reports each ``run_occurrence`` outcome, so a test can wait for replicas to be done."""

    def __init__(
        self, db: Database, clock: Clock, *, instance: str, reconcile_interval: float
    ) -> None:
        super().__init__(db, clock, instance=instance, reconcile_interval=reconcile_interval)
        self.outcomes: list[tuple[str, bool]] = []
        self.changed = asyncio.Event()

    async def run_occurrence(self, schedule: Schedule, fire_at: datetime) -> bool:
        ran = await super().run_occurrence(schedule, fire_at)
        self.outcomes.append((schedule.occurrence_key(fire_at), ran))
        self.changed.set()
        return ran


class Replicas:
    """Builds scheduler processes on one database, each with its own engine and pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.databases: list[Database] = []
        self.schedulers: list[Scheduler] = []

    def database(self) -> Database:
        db = Database(self.url)
        self.databases.append(db)
        return db

    def _wire(
        self, scheduler: Scheduler, source: ListSource, handlers: Mapping[str, OccurrenceHandler]
    ) -> None:
        scheduler.add_source(source)
        for name, handler in handlers.items():
            scheduler.add_handler(name, handler)
        self.schedulers.append(scheduler)

    def scheduler(
        self,
        clock: Clock,
        instance: str,
        source: ListSource,
        handlers: Mapping[str, OccurrenceHandler],
    ) -> Scheduler:
        # A long reconcile interval: the tests call reconcile() themselves.
        scheduler = Scheduler(self.database(), clock, instance=instance, reconcile_interval=3600)
        self._wire(scheduler, source, handlers)
        return scheduler

    def observed(
        self,
        clock: Clock,
        instance: str,
        source: ListSource,
        handlers: Mapping[str, OccurrenceHandler],
    ) -> ObservedScheduler:
        scheduler = ObservedScheduler(
            self.database(), clock, instance=instance, reconcile_interval=3600
        )
        self._wire(scheduler, source, handlers)
        return scheduler

    async def close(self) -> None:
        for scheduler in self.schedulers:
            await scheduler.stop()
        for db in self.databases:
            await db.dispose()


@pytest.fixture
async def sqlite_replicas(sqlite_database: Database) -> AsyncIterator[Replicas]:
    harness = Replicas(sqlite_database.url)
    try:
        yield harness
    finally:
        await harness.close()


async def add_workspace(db: Database) -> int:
    async with db.transaction() as session:
        workspace = Workspace(platform="slack", external_id="T1", created_at=datetime.now(UTC))
        session.add(workspace)
        await session.flush()
        return workspace.id


async def claims(db: Database) -> dict[str, str]:
    """Occurrence key -> the instance that claimed it."""
    async with db.transaction() as session:
        rows = await session.execute(select(OccurrenceClaim.key, OccurrenceClaim.claimed_by))
        return {key: by for key, by in rows.all()}


async def count(db: Database, model: type[object]) -> int:
    async with db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def outbox_keys(db: Database) -> list[str]:
    async with db.transaction() as session:
        rows = await session.execute(select(OutboxMessage.idempotency_key))
        return sorted(rows.scalars().all())


def booked_jobs(scheduler: Scheduler) -> dict[str, datetime]:
    """Every occurrence job held by the scheduler's APScheduler, by job id. Unlike
    ``next_runs()``, this also shows a job left behind by a schedule that no longer exists."""
    aps = scheduler._aps
    assert aps is not None
    return {job.id: job.args[1] for job in aps.get_jobs() if job.id != RECONCILE_JOB_ID}


def schedule(
    trigger: BaseTrigger, *, key: str = "standup", grace: timedelta | None = None
) -> Schedule:
    return Schedule(key, HANDLER, trigger, grace=grace or timedelta(hours=1))


# --- invariant 1: one run per occurrence -----------------------------------------------------


async def test_replicas_racing_on_one_occurrence_run_it_once(
    database: Database, replicas: Replicas
) -> None:
    workspace_id = await add_workspace(database)
    nine = schedule(daily(time(9), BERLIN))
    source = ListSource(nine)
    clock = FakeClock(local(MONDAY, time(9), BERLIN))
    rec_a = Recorder("a", workspace_id)
    rec_b = Recorder("b", workspace_id)
    a = replicas.scheduler(clock, "a", source, {HANDLER: rec_a})
    b = replicas.scheduler(clock, "b", source, {HANDLER: rec_b})

    fire_times = [local(MONDAY + timedelta(days=n), time(9), BERLIN) for n in range(5)]
    for fire_at in fire_times:
        clock.set(fire_at)
        results = await asyncio.gather(
            a.run_occurrence(nine, fire_at), b.run_occurrence(nine, fire_at)
        )
        assert sorted(results) == [False, True]
        # The same replica firing the same occurrence again does nothing either.
        assert await a.run_occurrence(nine, fire_at) is False

    keys = {nine.occurrence_key(t) for t in fire_times}
    assert set(await claims(database)) == keys
    assert sorted(rec_a.runs + rec_b.runs) == fire_times
    # The handler's own writes were committed once per occurrence, not once per replica.
    assert await count(database, ProcessedEvent) == len(fire_times)
    assert await outbox_keys(database) == sorted(f"{k}:post" for k in keys)


async def test_replicas_started_with_apscheduler_fire_once(
    database: Database, replicas: Replicas
) -> None:
    workspace_id = await add_workspace(database)
    clock = SystemClock()
    # Due a moment ahead in real time; yesterday's occurrence is far outside the grace.
    fire_at = (clock.now() + timedelta(seconds=2)).replace(microsecond=0)
    trigger = CronTrigger(
        hour=fire_at.hour, minute=fire_at.minute, second=fire_at.second, timezone=ZONE_UTC
    )
    soon = schedule(trigger, key="soon", grace=timedelta(minutes=5))
    source = ListSource(soon)
    body_ran = asyncio.Event()
    rec_a = Recorder("a", workspace_id, ran=body_ran)
    rec_b = Recorder("b", workspace_id, ran=body_ran)
    a = replicas.observed(clock, "a", source, {HANDLER: rec_a})
    b = replicas.observed(clock, "b", source, {HANDLER: rec_b})

    await asyncio.gather(a.start(), b.start())
    key = soon.occurrence_key(fire_at)

    async def tried(replica: ObservedScheduler) -> None:
        while not any(k == key for k, _ in replica.outcomes):
            replica.changed.clear()
            await replica.changed.wait()

    async with asyncio.timeout(WAIT_LIMIT):
        await body_ran.wait()  # one replica ran the handler body...
        await asyncio.gather(tried(a), tried(b))  # ...and both have been through the claim

    outcomes = [ran for r in (a, b) for k, ran in r.outcomes if k == key]
    assert outcomes.count(True) == 1
    assert rec_a.runs + rec_b.runs == [fire_at]
    assert list(await claims(database)) == [key]
    assert await count(database, ProcessedEvent) == 1
    assert await outbox_keys(database) == [f"{key}:post"]


async def test_failed_handler_rolls_back_its_claim_and_is_retried_within_grace(
    database: Database, replicas: Replicas
) -> None:
    workspace_id = await add_workspace(database)
    nine = schedule(daily(time(9), BERLIN), grace=timedelta(hours=2))
    fire_at = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(fire_at + timedelta(minutes=1))
    recorder = Recorder("a", workspace_id, fail=True)
    scheduler = replicas.scheduler(clock, "a", ListSource(nine), {HANDLER: recorder})

    await scheduler.start()  # the start-up reconcile finds 09:00 due; the handler raises
    assert recorder.runs == []
    assert await claims(database) == {}
    assert await count(database, ProcessedEvent) == 0
    assert await outbox_keys(database) == []

    recorder.fail = False
    clock.advance(timedelta(minutes=30))
    await scheduler.reconcile()
    assert recorder.runs == [fire_at]
    key = nine.occurrence_key(fire_at)
    assert await claims(database) == {key: "a"}
    assert await outbox_keys(database) == [f"{key}:post"]

    clock.advance(timedelta(minutes=30))
    await scheduler.reconcile()
    assert recorder.runs == [fire_at]


async def test_restart_after_an_occurrence_ran_does_not_run_it_again(
    database: Database, replicas: Replicas
) -> None:
    nine = schedule(daily(time(9), BERLIN))
    source = ListSource(nine)
    fire_at = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(fire_at + timedelta(minutes=5))
    first = Recorder("first")
    before = replicas.scheduler(clock, "first", source, {HANDLER: first})
    await before.start()
    assert first.runs == [fire_at]
    await before.stop()

    clock.advance(timedelta(minutes=5))  # still inside the grace window
    second = Recorder("second")
    after = replicas.scheduler(clock, "second", source, {HANDLER: second})
    await after.start()
    await after.reconcile()
    assert await after.run_occurrence(nine, fire_at) is False
    assert second.runs == []
    assert await claims(database) == {nine.occurrence_key(fire_at): "first"}
    assert await count(database, ProcessedEvent) == 1
    assert after.next_runs() == [("standup", local(MONDAY + timedelta(days=1), time(9), BERLIN))]


# --- missed occurrences ----------------------------------------------------------------------


@dataclass
class Downtime:
    before: Recorder  # the handler of the scheduler that went down
    after: Recorder  # the handler of the one that came back
    scheduler: Scheduler  # the one that came back, started
    clock: FakeClock


async def _downtime(
    replicas: Replicas, trigger: BaseTrigger, grace: timedelta, down: datetime, up: datetime
) -> Downtime:
    """Run a scheduler until ``down``, then start a new one at ``up``."""
    source = ListSource(schedule(trigger, grace=grace))
    clock = FakeClock(down)
    before = Recorder("before")
    old = replicas.scheduler(clock, "before", source, {HANDLER: before})
    await old.start()
    await old.stop()
    clock.set(up)
    after = Recorder("after")
    new = replicas.scheduler(clock, "after", source, {HANDLER: after})
    await new.start()
    return Downtime(before, after, new, clock)


async def test_missed_occurrence_within_grace_runs_once_when_back(
    database: Database, replicas: Replicas
) -> None:
    run = await _downtime(
        replicas,
        daily(time(9), BERLIN),
        timedelta(hours=2),
        down=local(MONDAY, time(8), BERLIN),
        up=local(MONDAY, time(10, 30), BERLIN),
    )
    nine = local(MONDAY, time(9), BERLIN)
    assert run.before.runs == []
    assert run.after.runs == [nine]
    await run.scheduler.reconcile()
    assert run.after.runs == [nine]
    assert list(await claims(database)) == [f"standup@{nine:%Y-%m-%dT%H:%M:%SZ}"]
    assert run.scheduler.next_runs() == [
        ("standup", local(MONDAY + timedelta(days=1), time(9), BERLIN))
    ]


async def test_missed_occurrence_outside_grace_is_skipped_and_the_next_one_booked(
    database: Database, replicas: Replicas
) -> None:
    run = await _downtime(
        replicas,
        daily(time(9), BERLIN),
        timedelta(hours=2),
        down=local(MONDAY, time(8), BERLIN),
        up=local(MONDAY, time(12), BERLIN),
    )
    assert run.before.runs == run.after.runs == []
    assert await claims(database) == {}
    tuesday_nine = local(MONDAY + timedelta(days=1), time(9), BERLIN)
    assert run.scheduler.next_runs() == [("standup", tuesday_nine)]
    # The booked occurrence runs when its time comes.
    run.clock.set(tuesday_nine)
    await run.scheduler.reconcile()
    assert run.after.runs == [tuesday_nine]


async def test_a_week_of_downtime_replays_nothing_older_than_grace(
    database: Database, replicas: Replicas
) -> None:
    up = local(MONDAY + timedelta(days=7), time(10, 30), BERLIN)
    run = await _downtime(
        replicas,
        CronTrigger(hour="*", minute=0, timezone=BERLIN),
        timedelta(hours=1),
        down=local(MONDAY, time(8, 0, 30), BERLIN),
        up=up,
    )
    assert run.before.runs == [local(MONDAY, time(8), BERLIN)]
    # 169 hourly occurrences were missed; only the latest, 30 minutes old, runs.
    assert len(run.after.runs) <= 1
    assert all(up - fired <= timedelta(hours=1) for fired in run.after.runs)
    assert run.after.runs == [local(MONDAY + timedelta(days=7), time(10), BERLIN)]
    assert await count(database, OccurrenceClaim) == 2
    assert run.scheduler.next_runs() == [("standup", local(up.date(), time(11), BERLIN))]


async def test_a_job_firing_late_keeps_to_the_missed_policy(
    database: Database, replicas: Replicas
) -> None:
    """APScheduler runs a job however late it fires (the process was paused, the demo clock
    jumped). An occurrence older than its grace must not run then; the latest one inside the
    grace runs instead, as reconcile would choose."""
    clock = FakeClock(datetime.now(UTC))
    fire_at = (clock.now() + timedelta(seconds=1)).replace(microsecond=0)
    two_hours_on = fire_at + timedelta(hours=2)
    trigger = CronTrigger(
        hour=f"{fire_at.hour},{two_hours_on.hour}",
        minute=fire_at.minute,
        second=fire_at.second,
        timezone=ZONE_UTC,
    )
    recorder = Recorder()
    late = schedule(trigger, key="late", grace=timedelta(hours=1))
    scheduler = replicas.scheduler(clock, "a", ListSource(late), {HANDLER: recorder})
    await scheduler.start()
    assert scheduler.next_runs() == [("late", fire_at)]
    # By the time the job fires, the clock says 2.5 h later: fire_at is outside the grace.
    clock.advance(timedelta(hours=2, minutes=30))

    async with asyncio.timeout(WAIT_LIMIT):
        await recorder.ran.wait()

    assert recorder.runs == [two_hours_on]
    await scheduler.stop()  # the handler ran inside its claim's transaction: wait for the commit
    assert list(await claims(database)) == [late.occurrence_key(two_hours_on)]


# --- reconcile -------------------------------------------------------------------------------


async def test_reconcile_removes_dropped_schedules_and_rebooks_changed_ones(
    database: Database, replicas: Replicas
) -> None:
    source = ListSource(
        schedule(daily(time(9), BERLIN), key="standup"),
        schedule(daily(time(17), BERLIN), key="digest"),
    )
    clock = FakeClock(local(MONDAY, time(8), BERLIN))
    recorder = Recorder()
    scheduler = replicas.scheduler(clock, "a", source, {HANDLER: recorder})
    await scheduler.start()
    assert scheduler.next_runs() == [
        ("standup", local(MONDAY, time(9), BERLIN)),
        ("digest", local(MONDAY, time(17), BERLIN)),
    ]
    assert booked_jobs(scheduler) == dict(scheduler.next_runs())

    source.put(schedule(daily(time(10, 15), BERLIN), key="standup"))
    source.remove("digest")
    await scheduler.reconcile()
    assert scheduler.next_runs() == [("standup", local(MONDAY, time(10, 15), BERLIN))]
    assert booked_jobs(scheduler) == {"standup": local(MONDAY, time(10, 15), BERLIN)}

    # The old 09:00 never runs; the new 10:15 does; the removed digest does not.
    for at in (time(9, 30), time(10, 20), time(17, 30)):
        clock.set(local(MONDAY, at, BERLIN))
        await scheduler.reconcile()
    assert recorder.runs == [local(MONDAY, time(10, 15), BERLIN)]
    assert list(await claims(database)) == [
        f"standup@{local(MONDAY, time(10, 15), BERLIN):%Y-%m-%dT%H:%M:%SZ}"
    ]

    source.remove("standup")
    await scheduler.reconcile()
    assert scheduler.next_runs() == []
    assert booked_jobs(scheduler) == {}


async def test_a_one_shot_schedule_is_booked_and_runs_once(
    database: Database, replicas: Replicas
) -> None:
    at = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(local(MONDAY, time(8), BERLIN))
    recorder = Recorder()
    step = schedule(DateTrigger(run_date=at), key="escalation-1")
    scheduler = replicas.scheduler(clock, "a", ListSource(step), {HANDLER: recorder})
    await scheduler.start()
    assert scheduler.next_runs() == [("escalation-1", at)]

    clock.set(at + timedelta(seconds=30))
    await scheduler.reconcile()
    await scheduler.reconcile()
    assert recorder.runs == [at]
    assert scheduler.next_runs() == []


# --- invariant 7: DST and odd offsets --------------------------------------------------------


DST_CASES = [
    pytest.param(NEW_YORK, date(2026, 3, 8), time(9), id="new-york-spring-09:00"),
    pytest.param(NEW_YORK, date(2026, 11, 1), time(9), id="new-york-fall-09:00"),
    pytest.param(BERLIN, date(2026, 3, 29), time(9), id="berlin-spring-09:00"),
    pytest.param(BERLIN, date(2026, 10, 25), time(9), id="berlin-fall-09:00"),
    # 02:30 does not exist in New York on 2026-03-08 (02:00 -> 03:00): it runs once, at 03:30.
    pytest.param(NEW_YORK, date(2026, 3, 8), time(2, 30), id="new-york-nonexistent-02:30"),
    # 01:30 happens twice in New York on 2026-11-01 (EDT, then EST): it runs once, the first.
    pytest.param(NEW_YORK, date(2026, 11, 1), time(1, 30), id="new-york-ambiguous-01:30"),
    pytest.param(BERLIN, date(2026, 3, 29), time(2, 30), id="berlin-nonexistent-02:30"),
    pytest.param(BERLIN, date(2026, 10, 25), time(2, 30), id="berlin-ambiguous-02:30"),
]


def _expected_days(zone: ZoneInfo, change: date, at: time) -> list[datetime]:
    return [local(change + timedelta(days=n), at, zone) for n in range(-2, 3)]


@pytest.mark.parametrize(("zone", "change", "at"), DST_CASES)
async def test_dst_one_run_per_local_day_driving_the_clock(
    sqlite_database: Database, sqlite_replicas: Replicas, zone: ZoneInfo, change: date, at: time
) -> None:
    """Reconcile every 20 minutes for five local days around a DST change."""
    clock = FakeClock(local(change - timedelta(days=2), time(0), zone))
    end = local(change + timedelta(days=3), time(0), zone)
    recorder = Recorder()
    source = ListSource(schedule(daily(at, zone)))
    scheduler = sqlite_replicas.scheduler(clock, "a", source, {HANDLER: recorder})
    await scheduler.start()
    while clock.now() < end:
        clock.advance(timedelta(minutes=20))
        await scheduler.reconcile()

    expected = _expected_days(zone, change, at)
    assert recorder.runs == expected
    by_day = [fired.astimezone(zone).date() for fired in recorder.runs]
    assert by_day == [change + timedelta(days=n) for n in range(-2, 3)]
    assert await count(sqlite_database, OccurrenceClaim) == len(expected)


@pytest.mark.parametrize(("zone", "change", "at"), DST_CASES)
async def test_dst_one_booking_per_local_day_following_the_bookings(
    sqlite_replicas: Replicas, zone: ZoneInfo, change: date, at: time
) -> None:
    """Jump the clock to each booked occurrence in turn, as the APScheduler job would fire."""
    clock = FakeClock(local(change - timedelta(days=2), time(0), zone))
    recorder = Recorder()
    scheduler = sqlite_replicas.scheduler(
        clock, "a", ListSource(schedule(daily(at, zone))), {HANDLER: recorder}
    )
    await scheduler.start()
    booked: list[datetime] = []
    for _ in range(5):
        [(_key, next_at)] = scheduler.next_runs()
        booked.append(next_at)
        clock.set(next_at)
        await scheduler.reconcile()

    expected = _expected_days(zone, change, at)
    assert booked == expected
    assert recorder.runs == expected


async def test_dst_explicit_instants_in_new_york(sqlite_replicas: Replicas) -> None:
    """The same rules spelled out in UTC, so the expectation does not rest on zoneinfo alone."""
    clock = FakeClock(datetime(2026, 3, 6, tzinfo=UTC))
    recorder = Recorder()
    source = ListSource(
        schedule(daily(time(2, 30), NEW_YORK), key="early"),
        schedule(daily(time(9), NEW_YORK), key="nine"),
    )
    scheduler = sqlite_replicas.scheduler(clock, "a", source, {HANDLER: recorder})
    await scheduler.start()
    while clock.now() < datetime(2026, 3, 10, tzinfo=UTC):
        clock.advance(timedelta(minutes=15))
        await scheduler.reconcile()
    assert recorder.runs == [
        datetime(2026, 3, 6, 7, 30, tzinfo=UTC),  # 02:30 EST
        datetime(2026, 3, 6, 14, 0, tzinfo=UTC),  # 09:00 EST
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 7, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 02:30 does not exist: 03:30 EDT
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC),  # 09:00 EDT
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
        datetime(2026, 3, 9, 13, 0, tzinfo=UTC),
    ]

    recorder.runs.clear()
    source.put(schedule(daily(time(1, 30), NEW_YORK), key="early"))
    clock.set(datetime(2026, 10, 31, tzinfo=UTC))
    while clock.now() < datetime(2026, 11, 3, tzinfo=UTC):
        clock.advance(timedelta(minutes=15))
        await scheduler.reconcile()
    assert recorder.runs == [
        datetime(2026, 10, 31, 5, 30, tzinfo=UTC),  # 01:30 EDT
        datetime(2026, 10, 31, 13, 0, tzinfo=UTC),  # 09:00 EDT
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT; not again at 01:30 EST
        datetime(2026, 11, 1, 14, 0, tzinfo=UTC),  # 09:00 EST
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),  # 01:30 EST
        datetime(2026, 11, 2, 14, 0, tzinfo=UTC),
    ]


async def test_missed_run_across_the_repeated_hour_is_the_latest_one(
    sqlite_replicas: Replicas,
) -> None:
    """Down from 00:30 EDT to 02:10 EST on 2026-11-01 with an hourly schedule and 2 h grace:
    the one catch-up run is for 02:00 EST, the most recent occurrence."""
    clock = FakeClock(datetime(2026, 11, 1, 4, 30, tzinfo=UTC))
    source = ListSource(
        schedule(CronTrigger(hour="*", minute=0, timezone=NEW_YORK), grace=timedelta(hours=2))
    )
    before = Recorder("before")
    old = sqlite_replicas.scheduler(clock, "old", source, {HANDLER: before})
    await old.start()
    await old.stop()
    assert before.runs == [datetime(2026, 11, 1, 4, 0, tzinfo=UTC)]  # 00:00 EDT
    clock.set(datetime(2026, 11, 1, 7, 10, tzinfo=UTC))
    after = Recorder("after")
    new = sqlite_replicas.scheduler(clock, "new", source, {HANDLER: after})
    await new.start()
    assert after.runs == [datetime(2026, 11, 1, 7, 0, tzinfo=UTC)]  # 02:00 EST
    assert new.next_runs() == [("standup", datetime(2026, 11, 1, 8, 0, tzinfo=UTC))]


async def test_an_interval_schedule_keeps_the_repeated_hour(sqlite_replicas: Replicas) -> None:
    """Elapsed-time triggers are not wall-clock ones: hourly stays hourly through a fall-back."""
    clock = FakeClock(datetime(2026, 11, 1, 4, 30, tzinfo=UTC))
    trigger = IntervalTrigger(
        hours=1, start_date=datetime(2026, 11, 1, tzinfo=NEW_YORK), timezone=NEW_YORK
    )
    recorder = Recorder()
    scheduler = sqlite_replicas.scheduler(
        clock, "a", ListSource(schedule(trigger, key="hourly")), {HANDLER: recorder}
    )
    await scheduler.start()  # runs 04:00 UTC (00:00 EDT), inside the default 1 h grace
    booked: list[datetime] = []
    for _ in range(4):
        [(_key, next_at)] = scheduler.next_runs()
        booked.append(next_at)
        clock.set(next_at)
        await scheduler.reconcile()
    # On the trigger's own grid (not "an hour after whenever reconcile ran"), repeat included.
    assert booked == [datetime(2026, 11, 1, h, 0, tzinfo=UTC) for h in (5, 6, 7, 8)]
    assert recorder.runs == [datetime(2026, 11, 1, h, 0, tzinfo=UTC) for h in (4, 5, 6, 7, 8)]


@pytest.mark.parametrize(
    ("zone", "clock_at", "nine_local_utc"),
    [
        pytest.param(
            ZoneInfo("Asia/Kolkata"),
            datetime(2026, 7, 14, 0, 0, tzinfo=UTC),  # 05:30 local on 07-14
            datetime(2026, 7, 14, 3, 30, tzinfo=UTC),
            id="kolkata+05:30",
        ),
        pytest.param(
            ZoneInfo("Pacific/Chatham"),
            datetime(2026, 7, 14, 0, 0, tzinfo=UTC),  # 12:45 local on 07-14
            datetime(2026, 7, 14, 20, 15, tzinfo=UTC),  # 09:00 on 07-15, +12:45
            id="chatham+12:45",
        ),
        pytest.param(
            ZoneInfo("Pacific/Chatham"),
            datetime(2026, 1, 14, 0, 0, tzinfo=UTC),  # 13:45 local on 01-14
            datetime(2026, 1, 14, 19, 15, tzinfo=UTC),  # 09:00 on 01-15, +13:45 (summer)
            id="chatham-summer+13:45",
        ),
    ],
)
async def test_odd_offsets_map_local_nine_to_the_right_instant(
    sqlite_replicas: Replicas, zone: ZoneInfo, clock_at: datetime, nine_local_utc: datetime
) -> None:
    clock = FakeClock(clock_at)
    recorder = Recorder()
    scheduler = sqlite_replicas.scheduler(
        clock, "a", ListSource(schedule(daily(time(9), zone))), {HANDLER: recorder}
    )
    await scheduler.start()
    assert scheduler.next_runs() == [("standup", nine_local_utc)]

    clock.set(nine_local_utc - timedelta(minutes=1))
    await scheduler.reconcile()
    assert recorder.runs == []
    clock.set(nine_local_utc + timedelta(minutes=1))
    await scheduler.reconcile()
    assert recorder.runs == [nine_local_utc]
    assert nine_local_utc.astimezone(zone).time() == time(9)
    assert scheduler.next_runs() == [("standup", nine_local_utc + timedelta(days=1))]


# --- housekeeping ----------------------------------------------------------------------------


def outbox_row(
    workspace_id: int, key: str, status: OutboxStatus, created: datetime, sent: datetime | None
) -> OutboxMessage:
    """A post's outbox row as the worker leaves it (``sent`` for a sent one)."""
    return OutboxMessage(
        idempotency_key=key,
        workspace_id=workspace_id,
        method=Method.POST.value,
        target={"channel_id": "C1"},
        payload={"blocks": [], "summary": key},
        status=status,
        attempts=1,
        rate_limited=0,
        next_attempt_at=created,
        created_at=created,
        sent_at=sent,
    )


async def test_housekeeping_deletes_rows_older_than_retention_and_keeps_newer_ones(
    database: Database, replicas: Replicas
) -> None:
    now = datetime(2026, 3, 10, 3, 20, tzinfo=UTC)  # three minutes after the daily 03:17 run
    old = now - timedelta(days=8)
    recent = now - timedelta(days=6)
    workspace_id = await add_workspace(database)

    def outbox(
        key: str, status: OutboxStatus, created: datetime, sent: datetime | None
    ) -> OutboxMessage:
        return outbox_row(workspace_id, key, status, created, sent)

    async with database.transaction() as session:
        session.add_all(
            [
                ProcessedEvent(platform="slack", event_id="old", received_at=old),
                ProcessedEvent(platform="slack", event_id="recent", received_at=recent),
                outbox("sent-old", OutboxStatus.SENT, old, old),
                outbox("sent-recent", OutboxStatus.SENT, old, recent),
                outbox("pending-old", OutboxStatus.PENDING, old, None),
                outbox("dead-old", OutboxStatus.DEAD, old, None),
                OccurrenceClaim(
                    key="old", handler="x", scheduled_for=old, claimed_at=old, claimed_by="a"
                ),
                OccurrenceClaim(
                    key="recent",
                    handler="x",
                    scheduled_for=recent,
                    claimed_at=recent,
                    claimed_by="a",
                ),
            ]
        )

    clock = FakeClock(now)
    scheduler = Scheduler(replicas.database(), clock, instance="a", reconcile_interval=3600)
    replicas.schedulers.append(scheduler)
    Housekeeping(retention_days=7).register(scheduler)
    await scheduler.start()

    async with database.transaction() as session:
        events = (await session.execute(select(ProcessedEvent.event_id))).scalars().all()
    assert events == ["recent"]
    assert await outbox_keys(database) == ["dead-old", "pending-old", "sent-recent"]
    assert set(await claims(database)) == {"recent", "housekeeping@2026-03-10T03:17:00Z"}
