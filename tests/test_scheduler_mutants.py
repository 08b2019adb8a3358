"""What the scheduler promises beyond running each occurrence once, found by mutation testing
(issue 17): the ``syncup_occurrences`` counts and the lag an operator reads on /metrics, an
occurrence that adds schedules having them read (and run) in the same pass, a listing of the
next runs that does not depend on the order of booking, and the periodic reconcile that keeps
running (every minute unless told otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from apscheduler.triggers.date import DateTrigger
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.scheduler import RECONCILE_JOB_ID, Occurrence, Schedule, Scheduler
from storage.db import Database
from tests.fakes.clock import FakeClock
from tests.test_scheduler import (
    BERLIN,
    HANDLER,
    MONDAY,
    WAIT_LIMIT,
    ListSource,
    Recorder,
    Replicas,
    claims,
    daily,
    local,
    schedule,
)


def scheduler_of(replicas: Replicas, clock: FakeClock, instance: str = "a") -> Scheduler:
    scheduler = Scheduler(replicas.database(), clock, instance=instance, reconcile_interval=3600)
    replicas.schedulers.append(scheduler)
    return scheduler


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
    for replica in (a, b):
        replica.add_handler(HANDLER, Recorder(replica.instance))
        replica.add_handler("broken", Recorder(replica.instance, fail=True))

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
    for replica in (a, b):
        replica.add_handler(HANDLER, Recorder(replica.instance))
        replica.add_handler("broken", Recorder(replica.instance, fail=True))
    assert await a.run_occurrence(standup, nine) is True
    assert await b.run_occurrence(standup, nine) is False
    assert await a.run_occurrence(broken, nine) is False
    for replica in (a, b):
        assert not replica.busy()
        async with asyncio.timeout(WAIT_LIMIT):  # a safety net, not a measure
            await replica.stop()
