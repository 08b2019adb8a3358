"""The edges of the scheduler an operator relies on: an occurrence exactly as old as its grace
still runs (in reconcile and in a job that fires late), the log lines say how many occurrences
were skipped and which job fired too late, a schedule naming a handler nobody registered is
reported, not run and not claimed; ``busy()`` (what the console waits on) and an occurrence's
after-commit callbacks."""

from __future__ import annotations

import asyncio
import logging
import time as time_module
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import message
from bot.delivery.outbox import decode_message
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.db import Database
from storage.models import OccurrenceClaim, OutboxMessage
from storage.outages import DatabaseUnavailable, Outage
from tests.fakes.clock import FakeClock
from tests.test_scheduler import (
    BERLIN,
    HANDLER,
    MONDAY,
    WAIT_LIMIT,
    ListSource,
    Recorder,
    Replicas,
    add_workspace,
    claims,
    daily,
    local,
    schedule,
)

SCHEDULER_LOG = "bot.scheduling.scheduler"


def the_one_error(caplog: pytest.LogCaptureFixture) -> tuple[str, str]:
    """The scheduler's only log line, an error with its exception: (message, exception)."""
    [record] = [r for r in caplog.records if r.name == SCHEDULER_LOG]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    return record.getMessage(), str(record.exc_info[1])


def scheduler_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == SCHEDULER_LOG and r.levelno == level
    ]


async def test_an_occurrence_exactly_as_old_as_its_grace_still_runs(
    database: Database, replicas: Replicas
) -> None:
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN), grace=timedelta(hours=2))
    clock = FakeClock(nine + timedelta(hours=2))  # the last instant of the grace window
    recorder = Recorder()
    scheduler = replicas.scheduler(clock, "a", ListSource(standup), {HANDLER: recorder})
    await scheduler.start()
    assert recorder.runs == [nine]
    assert list(await claims(database)) == [standup.occurrence_key(nine)]


async def test_one_instant_past_its_grace_an_occurrence_is_skipped(
    database: Database, replicas: Replicas
) -> None:
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN), grace=timedelta(hours=2))
    clock = FakeClock(nine + timedelta(hours=2, microseconds=1))
    recorder = Recorder()
    scheduler = replicas.scheduler(clock, "a", ListSource(standup), {HANDLER: recorder})
    await scheduler.start()
    assert recorder.runs == []
    assert await claims(database) == {}


async def test_the_log_says_how_many_missed_occurrences_were_skipped(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    """Every 10 minutes with a 35-minute grace, back at 09:04: 08:30, 08:40 and 08:50 (inside
    the grace) are skipped, only 09:00 runs (the latest), and the operator reads the count."""
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    tens = schedule(
        CronTrigger(minute="*/10", timezone=BERLIN), key="tens", grace=timedelta(minutes=35)
    )
    clock = FakeClock(nine + timedelta(minutes=4))
    recorder = Recorder()
    scheduler = replicas.scheduler(clock, "a", ListSource(tens), {HANDLER: recorder})
    await scheduler.start()
    assert recorder.runs == [nine]
    assert scheduler_lines(caplog, logging.INFO) == [
        "schedule tens: 3 missed occurrence(s) skipped"
    ]


async def test_nothing_skipped_writes_no_skip_line(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN), grace=timedelta(hours=2))
    clock = FakeClock(nine + timedelta(minutes=30))
    recorder = Recorder()
    scheduler = replicas.scheduler(clock, "a", ListSource(standup), {HANDLER: recorder})
    await scheduler.start()
    clock.advance(timedelta(minutes=10))
    await scheduler.reconcile()
    assert recorder.runs == [nine]
    assert scheduler_lines(caplog, logging.INFO) == []


async def test_a_schedule_naming_an_unknown_handler_is_reported_and_not_claimed(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    clock = FakeClock(nine + timedelta(minutes=1))
    recorder = Recorder()
    # The handler was registered under another name (a feature renamed it, say).
    scheduler = replicas.scheduler(clock, "a", ListSource(standup), {"other": recorder})
    await scheduler.start()
    assert await scheduler.run_occurrence(standup, nine) is False
    assert recorder.runs == []
    assert await claims(database) == {}
    assert (
        scheduler_lines(caplog, logging.ERROR)
        == [f"schedule standup names unknown handler {HANDLER}"] * 2
    )  # the start-up reconcile and the direct call


async def test_a_job_firing_late_says_so_in_the_log(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    """Every 30 minutes with a 1 h grace, the first job fires when the clock says two hours
    later: the operator reads which occurrence fired too late; the latest one runs instead."""
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    clock = FakeClock(datetime.now(UTC))
    fire_at = (clock.now() + timedelta(seconds=1)).replace(microsecond=0)
    trigger = IntervalTrigger(minutes=30, start_date=fire_at, timezone=UTC)
    recorder = Recorder()
    late = schedule(trigger, key="late", grace=timedelta(hours=1))
    scheduler = replicas.scheduler(clock, "a", ListSource(late), {HANDLER: recorder})
    await scheduler.start()
    clock.set(fire_at + timedelta(hours=2))
    async with asyncio.timeout(WAIT_LIMIT):
        await recorder.ran.wait()
    assert recorder.runs == [fire_at + timedelta(hours=2)]
    assert scheduler_lines(caplog, logging.INFO)[0] == (
        f"occurrence {late.occurrence_key(fire_at)} fired outside its grace"
    )


async def test_a_job_firing_exactly_at_the_end_of_its_grace_runs_its_own_occurrence(
    database: Database, replicas: Replicas
) -> None:
    """Every 30 minutes with a 1 h grace, the job fires when the clock says exactly an hour
    later: its own occurrence is still inside the grace and runs, not the latest one."""
    clock = FakeClock(datetime.now(UTC))
    fire_at = (clock.now() + timedelta(seconds=1)).replace(microsecond=0)
    trigger = IntervalTrigger(minutes=30, start_date=fire_at, timezone=UTC)
    recorder = Recorder()
    halves = schedule(trigger, key="halves", grace=timedelta(hours=1))
    scheduler = replicas.scheduler(clock, "a", ListSource(halves), {HANDLER: recorder})
    await scheduler.start()
    assert scheduler.next_runs() == [("halves", fire_at)]
    clock.set(fire_at + timedelta(hours=1))
    async with asyncio.timeout(WAIT_LIMIT):
        await recorder.ran.wait()
    assert recorder.runs == [fire_at]
    await scheduler.stop()  # the handler ran inside its claim's transaction: wait for the commit
    assert list(await claims(database)) == [halves.occurrence_key(fire_at)]


class FiringScheduler(Scheduler):
    """Tells a test when a job it booked has fired and been dealt with (or raised)."""

    def __init__(self, db: Database, clock: FakeClock) -> None:
        super().__init__(db, clock, instance="a", reconcile_interval=3600)
        self.fired = asyncio.Event()

    async def _fire(self, key: str, fire_at: datetime) -> None:
        try:
            await super()._fire(key, fire_at)
        finally:
            self.fired.set()


async def test_a_job_firing_late_with_nothing_in_its_grace_books_the_next_occurrence(
    database: Database, replicas: Replicas
) -> None:
    """Every 3 hours with a 1 h grace, the job fires when the clock says 90 minutes later:
    nothing is inside the grace, nothing runs, and the next occurrence is still booked."""
    clock = FakeClock(datetime.now(UTC))
    fire_at = (clock.now() + timedelta(seconds=1)).replace(microsecond=0)
    trigger = IntervalTrigger(hours=3, start_date=fire_at, timezone=UTC)
    recorder = Recorder()
    scheduler = FiringScheduler(replicas.database(), clock)
    replicas.schedulers.append(scheduler)
    scheduler.add_source(ListSource(schedule(trigger, key="threes", grace=timedelta(hours=1))))
    scheduler.add_handler(HANDLER, recorder)
    await scheduler.start()
    clock.set(fire_at + timedelta(minutes=90))
    async with asyncio.timeout(WAIT_LIMIT):
        await scheduler.fired.wait()
    assert recorder.runs == []
    assert await claims(database) == {}
    assert scheduler.next_runs() == [("threes", fire_at + timedelta(hours=3))]


# --- busy(): what the console waits on before it shows the next prompt ----------------------


def scheduler_of(replicas: Replicas, clock: FakeClock, reconcile_interval: float) -> Scheduler:
    scheduler = Scheduler(
        replicas.database(), clock, instance="a", reconcile_interval=reconcile_interval
    )
    replicas.schedulers.append(scheduler)
    return scheduler


def let_real_time_pass() -> None:
    """Block the event loop (APScheduler cannot run a job meanwhile) while real time passes."""
    time_module.sleep(0.2)


async def test_busy_while_an_occurrence_runs_and_while_reconcile_reads_the_sources(
    database: Database, replicas: Replicas
) -> None:
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    clock = FakeClock(nine - timedelta(hours=1))
    seen: dict[str, bool] = {}
    scheduler = scheduler_of(replicas, clock, 3600)

    class WatchingSource(ListSource):
        async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
            seen.setdefault("reading sources", scheduler.busy())
            return await super().schedules(session, now)

    async def handler(occurrence: Occurrence) -> None:
        seen["running"] = scheduler.busy()

    scheduler.add_source(WatchingSource(standup))
    scheduler.add_handler(HANDLER, handler)
    assert not scheduler.busy()  # not started
    await scheduler.start()
    assert not scheduler.busy()  # the 09:00 job is an hour ahead, the reconcile job too
    assert await scheduler.run_occurrence(standup, nine)
    assert seen == {"reading sources": True, "running": True}
    assert not scheduler.busy()


async def test_busy_when_a_job_is_due_but_has_not_run_yet(
    database: Database, replicas: Replicas
) -> None:
    nine = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(nine - timedelta(milliseconds=20))
    recorder = Recorder()
    scheduler = scheduler_of(replicas, clock, 3600)
    scheduler.add_source(ListSource(schedule(daily(time(9), BERLIN))))
    scheduler.add_handler(HANDLER, recorder)
    await scheduler.start()
    let_real_time_pass()
    assert scheduler.busy()  # the 09:00 job is due in real time; the loop has not run it
    clock.set(nine)
    async with asyncio.timeout(WAIT_LIMIT):
        await recorder.ran.wait()
    assert recorder.runs == [nine]


async def test_a_due_reconcile_job_alone_is_not_busy(
    database: Database, replicas: Replicas
) -> None:
    clock = FakeClock(local(MONDAY, time(8), BERLIN))
    scheduler = scheduler_of(replicas, clock, 0.01)
    scheduler.add_source(ListSource(schedule(daily(time(9), BERLIN))))
    scheduler.add_handler(HANDLER, Recorder())
    await scheduler.start()
    let_real_time_pass()
    assert not scheduler.busy()


# --- after-commit callbacks -----------------------------------------------------------------


async def test_an_occurrences_after_commit_callback_runs_once_it_committed_never_on_failure(
    database: Database, replicas: Replicas
) -> None:
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    called: list[str] = []
    fail = True

    async def handler(occurrence: Occurrence) -> None:
        occurrence.after_commit(lambda: called.append(occurrence.key))
        if fail:
            raise RuntimeError("handler failed on purpose")

    clock = FakeClock(nine)
    scheduler = scheduler_of(replicas, clock, 3600)
    scheduler.add_source(ListSource(standup))
    scheduler.add_handler(HANDLER, handler)
    assert await scheduler.run_occurrence(standup, nine) is False
    assert called == []
    fail = False
    assert await scheduler.run_occurrence(standup, nine) is True
    assert called == [standup.occurrence_key(nine)]


async def test_an_occurrence_that_queued_a_message_wakes_the_outbox_worker(
    database: Database, replicas: Replicas
) -> None:
    """The worker sleeps until told (or its poll): a prompt an occurrence queued is sent at
    once; an occurrence that queued nothing wakes nobody."""
    workspace_id = await add_workspace(database)
    nine = local(MONDAY, time(9), BERLIN)
    quiet = schedule(daily(time(9), BERLIN), key="quiet")
    chatty = Schedule("chatty", "sends", daily(time(9), BERLIN))
    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    wakes: list[str] = []
    scheduler.on_outbox.append(lambda: wakes.append("woken"))
    scheduler.add_handler(HANDLER, Recorder())
    scheduler.add_handler("sends", Recorder(workspace_id=workspace_id))
    assert await scheduler.run_occurrence(quiet, nine)
    assert wakes == []
    assert await scheduler.run_occurrence(chatty, nine)
    assert wakes == ["woken"]


# --- run_occurrence: the claim row and what a failure leaves in the log -----------------------


async def test_the_claim_row_says_which_handler_ran_what_occurrence_when_and_where(
    database: Database, replicas: Replicas
) -> None:
    """What an operator reads in ``occurrence_claims`` (and housekeeping ages out by)."""
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    now = nine + timedelta(minutes=7)
    scheduler = scheduler_of(replicas, FakeClock(now), 3600)
    scheduler.add_handler(HANDLER, Recorder())
    assert await scheduler.run_occurrence(standup, nine)
    async with database.transaction() as session:
        [claim] = (await session.scalars(select(OccurrenceClaim))).all()
        row = (claim.key, claim.handler, claim.scheduled_for, claim.claimed_at, claim.claimed_by)
    assert row == (standup.occurrence_key(nine), HANDLER, nine, now, "a")


async def test_a_failing_handler_is_logged_with_its_occurrence_and_its_traceback(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    scheduler.add_handler(HANDLER, Recorder(fail=True))
    assert await scheduler.run_occurrence(standup, nine) is False
    assert the_one_error(caplog) == (
        f"occurrence {standup.occurrence_key(nine)} failed; it will be retried within its grace",
        "handler failed on purpose",
    )


async def test_an_outage_during_an_occurrence_is_not_a_failure_in_the_log(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    """The database's health tells the outage once; the occurrence waits quietly (a debug line)
    and is tried again when the database is back."""
    caplog.set_level(logging.DEBUG, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    recorder = Recorder()
    down = True

    async def handler(occurrence: Occurrence) -> None:
        if down:
            raise DatabaseUnavailable(Outage.UNREACHABLE, "connection refused")
        await recorder(occurrence)

    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    scheduler.add_handler(HANDLER, handler)
    assert await scheduler.run_occurrence(standup, nine) is False
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == SCHEDULER_LOG]
    assert lines == [
        (logging.DEBUG, f"occurrence {standup.occurrence_key(nine)} waits for the database")
    ]
    assert await claims(database) == {}
    down = False
    assert await scheduler.run_occurrence(standup, nine) is True
    assert recorder.runs == [nine]


async def test_a_failing_after_commit_callback_is_logged_and_the_others_still_run(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    nine = local(MONDAY, time(9), BERLIN)
    standup = schedule(daily(time(9), BERLIN))
    called: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback failed on purpose")

    async def handler(occurrence: Occurrence) -> None:
        occurrence.after_commit(broken)
        occurrence.after_commit(lambda: called.append("second"))

    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    scheduler.add_handler(HANDLER, handler)
    assert await scheduler.run_occurrence(standup, nine) is True  # it ran and committed
    assert called == ["second"]
    assert the_one_error(caplog) == (
        f"after-commit callback of occurrence {standup.occurrence_key(nine)} failed",
        "callback failed on purpose",
    )


async def test_busy_until_the_last_of_two_occurrences_ends(
    database: Database, replicas: Replicas
) -> None:
    """The second occurrence runs beside the first (PostgreSQL) or waits for its write lock
    (SQLite): either way the scheduler is busy until it too has ended."""
    nine = local(MONDAY, time(9), BERLIN)
    first = schedule(daily(time(9), BERLIN), key="first")
    second = schedule(daily(time(9), BERLIN), key="second")
    release = {"first": asyncio.Event(), "second": asyncio.Event()}
    started = asyncio.Event()

    async def handler(occurrence: Occurrence) -> None:
        if occurrence.schedule.key == "first":
            started.set()
        await release[occurrence.schedule.key].wait()

    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    scheduler.add_handler(HANDLER, handler)
    async with asyncio.timeout(WAIT_LIMIT):
        one = asyncio.create_task(scheduler.run_occurrence(first, nine))
        await started.wait()
        two = asyncio.create_task(scheduler.run_occurrence(second, nine))
        await asyncio.sleep(0)  # the second has begun (up to its claim)
        release["first"].set()
        assert await one
        assert scheduler.busy()  # the second has not ended
        release["second"].set()
        assert await two
    assert not scheduler.busy()


async def test_an_occurrences_messages_are_queued_as_given_the_reply_after_its_parent(
    database: Database, replicas: Replicas
) -> None:
    """A report and its thread reply queued by one occurrence: both rows hold their message,
    and the reply waits for the report (``depends_on``)."""
    workspace_id = await add_workspace(database)
    nine = local(MONDAY, time(9), BERLIN)
    report = schedule(daily(time(9), BERLIN), key="report")

    async def handler(occurrence: Occurrence) -> None:
        parent = await occurrence.send(
            workspace_id,
            Method.POST,
            Target(channel_id="C1"),
            message("the report"),
            key=f"{occurrence.key}:report",
        )
        await occurrence.send(
            workspace_id,
            Method.POST,
            Target(channel_id="C1"),
            message("a reply"),
            key=f"{occurrence.key}:reply",
            depends_on=parent,
        )

    scheduler = scheduler_of(replicas, FakeClock(nine), 3600)
    scheduler.add_handler(HANDLER, handler)
    assert await scheduler.run_occurrence(report, nine)
    async with database.transaction() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        stored = [(r.id, decode_message(r.payload), r.depends_on_id) for r in rows]
    assert [(m, d) for _, m, d in stored] == [
        (message("the report"), None),
        (message("a reply"), stored[0][0]),
    ]


async def test_a_one_shot_run_by_reconcile_skips_nothing(
    database: Database, replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SCHEDULER_LOG)
    at = local(MONDAY, time(9), BERLIN)
    recorder = Recorder()
    step = schedule(DateTrigger(run_date=at), key="escalation-1")
    scheduler = replicas.scheduler(
        FakeClock(at + timedelta(minutes=5)), "a", ListSource(step), {HANDLER: recorder}
    )
    await scheduler.start()
    assert recorder.runs == [at]
    assert scheduler_lines(caplog, logging.INFO) == []


async def test_the_periodic_reconcile_keeps_to_its_interval(
    database: Database, replicas: Replicas
) -> None:
    """Each reconcile reads every feature's schedules from the database (once, unless an
    occurrence changed them): with an hour's interval, nothing is read again while the process
    idles for a few seconds."""
    reads: list[tuple[int, datetime]] = []

    class CountingSource(ListSource):
        """Reads its rows in the reconcile's transaction, as a feature's source does."""

        async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
            claimed = select(func.count()).select_from(OccurrenceClaim)
            reads.append(((await session.execute(claimed)).scalar_one(), now))
            return await super().schedules(session, now)

    eight = local(MONDAY, time(8), BERLIN)
    scheduler = scheduler_of(replicas, FakeClock(eight), 3600)
    scheduler.add_source(CountingSource(schedule(daily(time(9), BERLIN))))
    scheduler.add_handler(HANDLER, Recorder())
    await scheduler.start()
    await asyncio.sleep(2.5)  # APScheduler's shortest interval (its default) is 1 s
    assert reads == [(0, eight)]  # read once, at the clock's time
