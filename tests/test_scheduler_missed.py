"""The edges of the missed-occurrence policy an operator relies on: an occurrence exactly as old
as its grace still runs, the log line says how many occurrences were skipped (and none is
written when nothing was), and a schedule naming a handler nobody registered is reported, not
run and not claimed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from storage.db import Database
from tests.fakes.clock import FakeClock
from tests.test_scheduler import (
    BERLIN,
    HANDLER,
    MONDAY,
    ListSource,
    Recorder,
    Replicas,
    claims,
    daily,
    local,
    schedule,
)

SCHEDULER_LOG = "bot.scheduling.scheduler"


@pytest.fixture
async def replicas(database: Database) -> AsyncIterator[Replicas]:
    harness = Replicas(database.url)
    try:
        yield harness
    finally:
        await harness.close()


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
