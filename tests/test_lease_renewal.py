"""What a lease renewal may touch (invariant 9): only the rows asked for, only while this worker
still holds them. A worker whose leases ran out while it was stalled must not stretch the lease
of the replica that took its rows over, nor count them as its own; and a renewal that fails
says so once, without stopping the heartbeat."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

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
