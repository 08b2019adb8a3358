"""What the scheduler promises beyond running each occurrence once, found by mutation testing
(issue 17): the ``syncup_occurrences`` counts and the lag an operator reads on /metrics, an
occurrence that adds schedules having them read (and run) in the same pass, a listing of the
next runs that does not depend on the order of booking, and the periodic reconcile that keeps
running (every minute unless told otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers import cron
from apscheduler.triggers.date import DateTrigger
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.housekeeping import Housekeeping
from bot.scheduling.scheduler import RECONCILE_JOB_ID, Occurrence, Schedule, Scheduler
from storage.db import Database
from storage.models import OccurrenceClaim, OutboxStatus, ProcessedEvent
from storage.slack_installs import SlackOAuthState
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
    outbox_keys,
    outbox_row,
    schedule,
)


def scheduler_of(replicas: Replicas, clock: FakeClock, instance: str = "a") -> Scheduler:
    scheduler = Scheduler(replicas.database(), clock, instance=instance, reconcile_interval=3600)
    replicas.schedulers.append(scheduler)
    return scheduler


def with_handlers(*schedulers: Scheduler) -> None:
    """On each replica, a recording handler and one that fails ("broken")."""
    for replica in schedulers:
        replica.add_handler(HANDLER, Recorder(replica.instance))
        replica.add_handler("broken", Recorder(replica.instance, fail=True))


def occurrence_counts(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Every non-zero ``syncup_occurrences_total`` sample: (handler, outcome) -> count."""
    return {
        (sample.labels["handler"], sample.labels["outcome"]): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "syncup_occurrences_total" and sample.value
    }


def lag(registry: CollectorRegistry, handler: str) -> tuple[float | None, float | None]:
    """(how many runs were timed, their total lag in seconds) for a handler."""
    labels = {"handler": handler}
    return (
        registry.get_sample_value("syncup_scheduler_lag_seconds_count", labels),
        registry.get_sample_value("syncup_scheduler_lag_seconds_sum", labels),
    )


async def test_metrics_count_each_occurrence_by_handler_and_outcome_with_its_lag(
    database: Database, replicas: Replicas
) -> None:
    """The replica that ran an occurrence counts it as ran (with how late it ran), the one that
    found it claimed counts claimed_elsewhere, a failing handler counts failed; nothing else."""
    nine = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(nine + timedelta(minutes=7))
    standup = schedule(daily(time(9), BERLIN))
    broken = Schedule("digest", "broken", daily(time(9), BERLIN))
    a = scheduler_of(replicas, clock, "a")
    b = scheduler_of(replicas, clock, "b")
    with_handlers(a, b)

    assert await a.run_occurrence(standup, nine) is True
    assert await b.run_occurrence(standup, nine) is False
    assert await b.run_occurrence(broken, nine) is False

    assert occurrence_counts(a.metrics.registry) == {(HANDLER, "ran"): 1}
    assert lag(a.metrics.registry, HANDLER) == (1, 7 * 60)
    assert occurrence_counts(b.metrics.registry) == {
        (HANDLER, "claimed_elsewhere"): 1,
        ("broken", "failed"): 1,
    }
    assert lag(b.metrics.registry, HANDLER) == (None, None)  # b timed no run
    assert await claims(database) == {standup.occurrence_key(nine): "a"}


async def test_a_follow_up_an_occurrence_books_runs_in_the_same_reconcile_when_due(
    database: Database, replicas: Replicas
) -> None:
    """Back at 09:05: the 09:00 prompt runs and books a reminder for 09:01, already due. The
    same reconcile reads the sources again and runs the reminder; it is not left until the
    next periodic pass (an hour later here) nor lost."""
    nine = local(MONDAY, time(9), BERLIN)
    source = ListSource(Schedule("prompt", "prompt", daily(time(9), BERLIN)))
    reminder = Schedule("reminder", "remind", DateTrigger(run_date=nine + timedelta(minutes=1)))
    reminders = Recorder()

    async def prompt(occurrence: Occurrence) -> None:
        source.put(reminder)  # in real life a row written in the occurrence's transaction
        occurrence.schedules_changed = True

    scheduler = scheduler_of(replicas, FakeClock(nine + timedelta(minutes=5)))
    scheduler.add_source(source)
    scheduler.add_handler("prompt", prompt)
    scheduler.add_handler("remind", reminders)
    await scheduler.start()
    assert reminders.runs == [nine + timedelta(minutes=1)]
    assert set(await claims(database)) == {
        f"prompt@{nine:%Y-%m-%dT%H:%M:%SZ}",
        reminder.occurrence_key(nine + timedelta(minutes=1)),
    }


async def test_schedules_due_at_the_same_time_are_listed_in_the_order_of_their_keys(
    database: Database, replicas: Replicas
) -> None:
    """The console lists the next runs; two due at once come in key order whatever the order
    the sources gave them in (and so the order they were booked in)."""
    nine = local(MONDAY, time(9), BERLIN)
    source = ListSource(
        schedule(daily(time(9), BERLIN), key="standup-c"),
        schedule(daily(time(9), BERLIN), key="standup-b"),
        schedule(daily(time(8, 30), BERLIN), key="standup-z"),
        schedule(daily(time(9), BERLIN), key="standup-a"),
    )
    scheduler = scheduler_of(replicas, FakeClock(nine - timedelta(hours=1)))
    scheduler.add_source(source)
    scheduler.add_handler(HANDLER, Recorder())
    await scheduler.start()
    assert scheduler.next_runs() == [
        ("standup-z", nine - timedelta(minutes=30)),
        ("standup-a", nine),
        ("standup-b", nine),
        ("standup-c", nine),
    ]


async def test_the_periodic_reconcile_keeps_running_after_it_has_run(
    database: Database, replicas: Replicas
) -> None:
    """Each periodic reconcile rebooks every schedule's job; the reconcile job itself must
    survive that, or the sources are read once after start and never again."""
    reads = 0
    read = asyncio.Event()

    class CountingSource(ListSource):
        async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
            nonlocal reads
            reads += 1
            read.set()
            return await super().schedules(session, now)

    scheduler = Scheduler(
        replicas.database(),
        FakeClock(local(MONDAY, time(8), BERLIN)),
        instance="a",
        reconcile_interval=0.05,
    )
    replicas.schedulers.append(scheduler)
    scheduler.add_source(CountingSource(schedule(daily(time(9), BERLIN))))
    scheduler.add_handler(HANDLER, Recorder())
    await scheduler.start()  # the first read
    async with asyncio.timeout(WAIT_LIMIT):
        while reads < 4:  # then the periodic job, again and again
            read.clear()
            await read.wait()
    assert reads >= 4


async def test_without_an_interval_the_scheduler_reconciles_every_minute(
    database: Database, replicas: Replicas
) -> None:
    """The default interval, as the config's ``reconcile_interval_seconds`` default says."""
    scheduler = Scheduler(
        replicas.database(), FakeClock(local(MONDAY, time(8), BERLIN)), instance="a"
    )
    replicas.schedulers.append(scheduler)
    await scheduler.start()
    assert scheduler._aps is not None
    job = scheduler._aps.get_job(RECONCILE_JOB_ID)
    assert job is not None and job.trigger.interval == timedelta(minutes=1)


async def test_after_its_occurrences_ran_or_failed_the_scheduler_is_idle_and_stops(
    database: Database, replicas: Replicas
) -> None:
    """Shutting down waits for running occurrences and only for them: once each has run, been
    claimed elsewhere or failed, the scheduler says it is not busy and ``stop()`` returns
    (``App.stop`` and the console's clock wait on this)."""
    nine = local(MONDAY, time(9), BERLIN)
    clock = FakeClock(nine + timedelta(minutes=1))
    # Not in replicas.schedulers: a stop() that never returns fails this test (at the safety
    # net) instead of hanging its teardown.
    a = Scheduler(replicas.database(), clock, instance="a", reconcile_interval=3600)
    b = Scheduler(replicas.database(), clock, instance="b", reconcile_interval=3600)
    standup = schedule(daily(time(9), BERLIN))
    broken = Schedule("digest", "broken", daily(time(9), BERLIN))
    with_handlers(a, b)
    assert await a.run_occurrence(standup, nine) is True
    assert await b.run_occurrence(standup, nine) is False
    assert await a.run_occurrence(broken, nine) is False
    for replica in (a, b):
        assert not replica.busy()
        async with asyncio.timeout(WAIT_LIMIT):  # a safety net, not a measure
            await replica.stop()


# --- housekeeping ----------------------------------------------------------------------------


async def test_housekeeping_keeps_rows_exactly_as_old_as_retention_and_unexpired_installs(
    database: Database, replicas: Replicas
) -> None:
    """Retention is "older than N days": a row exactly N days old stays until the next run; an
    install state is removed once expired, not before, and not at its very instant."""
    now = datetime(2026, 3, 10, 3, 20, tzinfo=UTC)
    cutoff = now - timedelta(days=7)
    workspace_id = await add_workspace(database)
    async with database.transaction() as session:
        session.add_all(
            [
                ProcessedEvent(platform="slack", event_id="edge", received_at=cutoff),
                ProcessedEvent(platform="slack", event_id="gone", received_at=cutoff - SECOND),
                outbox_row(workspace_id, "sent-edge", OutboxStatus.SENT, cutoff, cutoff),
                outbox_row(workspace_id, "sent-gone", OutboxStatus.SENT, cutoff, cutoff - SECOND),
                OccurrenceClaim(
                    key="edge", handler="x", scheduled_for=cutoff, claimed_at=cutoff, claimed_by="a"
                ),
                SlackOAuthState(state="expired", expire_at=now - SECOND),
                SlackOAuthState(state="expiring", expire_at=now),
                SlackOAuthState(state="fresh", expire_at=now + timedelta(minutes=10)),
            ]
        )
    scheduler = scheduler_of(replicas, FakeClock(now))
    Housekeeping(retention_days=7).register(scheduler)
    await scheduler.start()  # the 03:17 run, three minutes late, runs at once

    async with database.transaction() as session:
        events = set((await session.execute(select(ProcessedEvent.event_id))).scalars())
        states = set((await session.execute(select(SlackOAuthState.state))).scalars())
    assert events == {"edge"}
    assert await outbox_keys(database) == ["sent-edge"]
    assert set(await claims(database)) == {"edge", "housekeeping@2026-03-10T03:17:00Z"}
    assert states == {"expiring", "fresh"}


async def test_housekeeping_runs_daily_at_03_17_utc_whatever_the_hosts_zone(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Booked once a day at 03:17 UTC, with a day's grace (a process down at 03:17 cleans up
    when it starts, up to a day later), also on a host whose local zone is not UTC."""
    monkeypatch.setattr(cron, "get_localzone", lambda: ZoneInfo("Asia/Tokyo"))
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    async with database.transaction() as session:
        (booked,) = list(await Housekeeping(retention_days=7).schedules(session, now))
    assert (booked.key, booked.handler, booked.grace) == (
        "housekeeping",
        "housekeeping",
        timedelta(days=1),
    )
    first = booked.trigger.get_next_fire_time(None, now)
    second = booked.trigger.get_next_fire_time(first, first + SECOND)
    assert first is not None and second is not None
    assert (first.astimezone(UTC), second.astimezone(UTC)) == (
        datetime(2026, 3, 11, 3, 17, tzinfo=UTC),
        datetime(2026, 3, 12, 3, 17, tzinfo=UTC),
    )


SECOND = timedelta(seconds=1)
