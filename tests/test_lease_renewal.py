"""What a lease renewal may touch (invariant 9): only the rows asked for, only while this worker
still holds them. A worker whose leases ran out while it was stalled must not stretch the lease
of the replica that took its rows over, nor count them as its own; and a renewal that fails
says so once, without stopping the heartbeat."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.delivery import leases as leases_module
from bot.delivery.leases import Heartbeat, Leases
from storage.db import Database
from storage.models import OutboxMessage
from storage.outages import DatabaseUnavailable, Outage
from tests.fakes.clock import FakeClock
from tests.test_leases import fill

LEASE = timedelta(seconds=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))


async def leases_now(db: Database) -> dict[int, tuple[str | None, datetime | None]]:
    async with db.transaction() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return {m.id: (m.leased_by, m.lease_until) for m in rows}


async def test_a_renewal_extends_only_the_leases_asked_for_and_still_held(
    database: Database, clock: FakeClock
) -> None:
    await fill(database, clock, 3)
    stalled = Leases(database, clock, "stalled", LEASE, batch_size=10)
    other = Leases(database, clock, "other", LEASE, batch_size=10)
    first, second, third = [row.id for row in await stalled.claim(())]

    clock.advance(timedelta(seconds=5))
    assert await stalled.renew([first]) == 1
    held = await leases_now(database)
    assert held[first] == ("stalled", clock.now() + LEASE)
    assert held[second][1] == held[third][1] == clock.now() - timedelta(seconds=5) + LEASE
    assert await stalled.renew([]) == 0  # nothing held, nothing renewed

    # The stalled worker's other leases run out; another replica takes those rows over.
    clock.advance(LEASE - timedelta(seconds=1))
    assert {row.id for row in await other.claim(())} == {second, third}
    taken_over = await leases_now(database)
    clock.advance(timedelta(seconds=1))
    assert await stalled.renew([second, third]) == 0
    assert await leases_now(database) == taken_over
    # The lease it did renew runs out now, and not a moment later, for the others.
    assert clock.now() == held[first][1]
    assert [row.id for row in await other.claim(())] == [first]


async def test_a_failed_renewal_is_told_and_counts_nothing(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    leases = Leases(database, clock, "w", LEASE, batch_size=10)
    heartbeat = Heartbeat(leases, lambda: [1, 2])
    failure: Exception = OperationalError("UPDATE outbox", {}, Exception("disk I/O error"))

    async def failing(ids: object) -> int:
        raise failure

    leases.renew = failing  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    assert await heartbeat.renew_now() == 0
    assert [r.getMessage() for r in caplog.records] == [
        "delivery: renewing 2 outbox lease(s) failed (OperationalError)"
    ]
    # An outage is told once by the database's health, not here.
    caplog.clear()
    failure = DatabaseUnavailable(Outage.UNREACHABLE, "connection refused")
    assert await heartbeat.renew_now() == 0
    assert caplog.records == []


async def test_rows_given_back_after_a_429_are_due_no_earlier_than_it_and_no_sooner(
    database: Database, clock: FakeClock
) -> None:
    """A worker gives back the rows it claimed but did not send: those due before the 429's
    Retry-After wait for it, those due later keep their own time; rows it did not name (still
    being sent in another lane), or that another worker holds, are not touched."""
    await fill(database, clock, 5)
    mine = Leases(database, clock, "mine", LEASE, batch_size=3)
    theirs = Leases(database, clock, "theirs", LEASE, batch_size=10)
    early, late, kept = [row.id for row in await mine.claim(())]  # kept: still being sent
    later = clock.now() + timedelta(minutes=5)
    async with database.transaction() as session:
        row = await session.get(OutboxMessage, late)
        assert row is not None
        row.next_attempt_at = later
    others = [row.id for row in await theirs.claim(())]
    before = await leases_now(database)

    not_before = clock.now() + timedelta(seconds=30)
    await mine.release([early, late], not_before)
    async with database.transaction() as session:
        rows = {m.id: m for m in await session.scalars(select(OutboxMessage))}
    assert rows[early].next_attempt_at == not_before
    assert rows[late].next_attempt_at == later
    assert (rows[early].leased_by, rows[late].leased_by) == (None, None)
    assert (rows[kept].leased_by, rows[kept].lease_until) == before[kept]
    assert {i: before[i] for i in others} == {
        i: (rows[i].leased_by, rows[i].lease_until) for i in others
    }

    # Giving back rows another worker holds does nothing to them.
    await mine.release(others, None)
    assert {i: (await leases_now(database))[i] for i in others} == {i: before[i] for i in others}


async def test_a_failed_give_back_is_told_with_the_rows_and_their_fate(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    leases = Leases(database, clock, "w", LEASE, batch_size=10)
    failure: Exception = OperationalError("UPDATE outbox", {}, Exception("disk I/O error"))

    def failing() -> object:
        raise failure

    leases._db = SimpleNamespace(transaction=failing)  # type: ignore[assignment]
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    await leases.release([1, 2], None)
    [told] = caplog.records
    assert told.getMessage() == (
        "delivery: releasing outbox [1, 2] failed (OperationalError); their leases will expire"
    )
    assert told.exc_info is not None  # unexpected: with its traceback
    caplog.clear()
    failure = DatabaseUnavailable(Outage.UNREACHABLE, "connection refused")
    await leases.release([3], None)
    [told] = caplog.records
    assert "releasing outbox [3] failed (DatabaseUnavailable)" in told.getMessage()
    assert not told.exc_info  # an outage: its health already told, no traceback


async def test_a_start_says_how_many_rows_it_took_over_and_only_when_it_took_some(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(database, clock, 3)
    dead = Leases(database, clock, "w1", LEASE, batch_size=2)
    await dead.claim(())
    caplog.set_level(logging.INFO, logger="bot.delivery")
    restarted = Leases(database, clock, "w1", LEASE, batch_size=10)
    assert await restarted.take_over(every_lease=False) == 2
    assert await restarted.take_over(every_lease=False) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "delivery: took over 2 outbox row(s) a stopped process had leased"
    ]


async def test_the_heartbeat_beats_three_times_a_lease_and_not_after_it_stopped(
    database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = Leases(database, clock, "w", LEASE, batch_size=10)
    waits: list[float] = []
    renewals: list[list[int]] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    three = asyncio.Event()

    async def renew(ids: list[int]) -> int:
        renewals.append(ids)
        if len(renewals) == 3:
            three.set()
        return len(ids)

    monkeypatch.setattr(
        leases_module,
        "asyncio",
        SimpleNamespace(
            sleep=sleep, create_task=asyncio.create_task, CancelledError=asyncio.CancelledError
        ),
    )
    leases.renew = renew  # type: ignore[method-assign]
    heartbeat = Heartbeat(leases, lambda: [7])
    heartbeat.ensure_running()
    await asyncio.wait_for(three.wait(), 10)  # a safety net: the beats take no loop time
    assert set(waits) == {LEASE.total_seconds() / 3}
    await heartbeat.stop()
    beats = len(renewals)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(renewals) == beats
