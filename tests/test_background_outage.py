"""Background work (a report refresh) that meets a database outage adds no traceback to the log:
the outage is logged once where it was found (storage.outages); a real bug still is logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.core import Core
from storage.db import Database
from storage.outages import DatabaseUnavailable, Outage
from tests.fakes.clock import FakeClock


async def _outage() -> None:
    raise DatabaseUnavailable(Outage.UNREACHABLE, "ConnectionRefusedError")


async def _bug() -> None:
    raise RuntimeError("a real bug")


@pytest.fixture
def core(sqlite_database: Database) -> Core:
    return Core(sqlite_database, FakeClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC)))


async def test_a_background_task_stopped_by_an_outage_logs_nothing_more(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    core.spawn(_outage(), name="refresh")
    await core.idle()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_background_task_that_fails_otherwise_is_logged_with_its_traceback(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    core.spawn(_bug(), name="refresh")
    await core.idle()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "background task refresh failed" in record.getMessage()
    assert record.exc_info is not None
