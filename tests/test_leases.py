"""Short, renewed outbox leases (invariant 9): a worker that dies leaves its rows for one short
lease; a live one keeps them however long its batch takes; a stop or a restart frees them at
once.

Lease times are database times from a :class:`FakeClock` the test moves by hand, so nothing
depends on how fast the machine is; ``asyncio.timeout`` is only a safety net against a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import App
from bot.clock import Clock
from bot.config import DatabaseSection, DeliverySection, Settings
from bot.delivery.leases import Leases
from bot.delivery.worker import DeliveryWorker
from bot.port import Delivery, Method, RateLimit, Receipt
from storage import migrate
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.fakes.clock import FakeClock
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault
from tests.test_delivery import add_workspace, put

SAFETY = 30
TAKEOVER_GOAL = timedelta(seconds=15)  # the bound for orphaned work


def defaults(**overrides: object) -> DeliverySection:
    """The shipped settings (the lease above all), with a fast poll for the tests."""
    return DeliverySection.model_validate({"poll_interval_seconds": 0.05, **overrides})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))


async def fill(db: Database, clock: FakeClock, count: int) -> list[str]:
    ws = await add_workspace(db, "W-1")
    keys = [f"prompt-{i:02d}" for i in range(count)]
    for key in keys:
        await put(db, clock, ws, key)  # type: ignore[arg-type]
    return keys


async def leased_by(db: Database) -> dict[str, str | None]:
    async with db.transaction() as session:
        found = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return {row.idempotency_key: row.leased_by for row in found}


def test_the_shipped_lease_lets_orphans_be_taken_over_within_15_seconds() -> None:
    settings = DeliverySection()
    assert timedelta(seconds=settings.lease_seconds + settings.poll_interval_seconds) <= (
        TAKEOVER_GOAL
    )


async def test_rows_of_a_worker_killed_mid_batch_are_taken_over_after_one_short_lease(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: FakeClock
) -> None:
    """The dead replica sent 10 of 30 prompts and held the other 20 when it was killed."""
    keys = await fill(database, clock, 30)
    dead = DeliveryWorker(database, port, defaults(batch_size=10), clock=clock, instance="dead")
    assert await dead.run_once() == 10
    # Its next claim is the last thing it did: the rows are leased, nobody sends them.
    orphans = Leases(database, clock, "dead", dead.leases.lease, batch_size=50)
    assert len(await orphans.claim(())) == 20

    survivor = DeliveryWorker(database, port, defaults(), clock=clock, instance="survivor")
    clock.advance(timedelta(seconds=5))
    assert await survivor.run_once() == 0  # still the dead one's
    clock.advance(TAKEOVER_GOAL - timedelta(seconds=5))  # 15 s after the kill
    assert await survivor.run_once() == 20
    assert receiver.keys() == keys  # in order, none twice
    assert receiver.duplicates() == 0


async def test_a_live_worker_renews_its_leases_however_long_its_batch_takes(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: FakeClock
) -> None:
    keys = await fill(database, clock, 5)
    hold = receiver.inject(Fault("hold", key=keys[0]))
    slow = DeliveryWorker(database, port, defaults(), clock=clock, instance="slow")
    other = DeliveryWorker(database, port, defaults(), clock=clock, instance="other")
    batch = asyncio.create_task(slow.run_once())  # claims all 5, stuck sending the first
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    for _ in range(4):  # four leases' worth of time, renewed every third of one
        for _ in range(3):
            clock.advance(slow.leases.lease / 3)
            assert await slow.renew_leases() == 5
        assert await other.run_once() == 0
    hold.release()
    async with asyncio.timeout(SAFETY):
        assert await batch == 5
    assert port.deliveries and {d.outbox_id for d in port.deliveries} == set(range(1, 6))
    assert receiver.keys() == keys and receiver.duplicates() == 0


async def test_the_heartbeat_renews_by_itself_while_rows_are_held(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: FakeClock
) -> None:
    keys = await fill(database, clock, 3)
    hold = receiver.inject(Fault("hold", key=keys[0]))
    # A lease of 0.3 s: the heartbeat beats every 0.1 s of loop time.
    worker = DeliveryWorker(database, port, defaults(lease_seconds=0.3), clock=clock, instance="w")
    batch = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
        clock.advance(timedelta(hours=1))
        wanted = clock.now() + timedelta(seconds=0.3)
        while True:  # the next beat writes the new lease on every held row
            async with database.transaction() as session:
                until = set(await session.scalars(select(OutboxMessage.lease_until)))
            if until == {wanted}:
                break
            await asyncio.sleep(0.05)
        hold.release()
        assert await batch == 3
    assert receiver.keys() == keys


async def test_stop_releases_at_once_and_the_next_worker_needs_no_wait(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: FakeClock
) -> None:
    keys = await fill(database, clock, 6)
    hold = receiver.inject(Fault("hold", key=keys[0]))
    first = DeliveryWorker(database, port, defaults(), clock=clock, instance="first")
    await first.start()
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
        stopping = asyncio.create_task(first.stop())
        await asyncio.sleep(0)
        hold.release()  # the send in flight completes and is recorded
        await stopping
    assert set((await leased_by(database)).values()) == {None}
    second = DeliveryWorker(database, port, defaults(), clock=clock, instance="second")
    assert await second.run_once() == 5  # no clock advance: nothing was left leased
    assert receiver.keys() == keys and receiver.duplicates() == 0


async def test_a_restart_takes_over_what_its_dead_predecessor_leased(
    database: Database, clock: FakeClock
) -> None:
    """Under a fixed instance name, a restart frees the leases of its previous life at once;
    the only process of a SQLite file (it holds the file's lock) frees every lease."""
    await fill(database, clock, 6)
    lease = timedelta(seconds=10)
    await Leases(database, clock, "replica-1", lease, batch_size=2).claim(())
    await Leases(database, clock, "replica-2", lease, batch_size=2).claim(())
    sent = Leases(database, clock, "replica-3", lease, batch_size=2)
    (done, _) = await sent.claim(())
    async with database.transaction() as session:  # a sent row keeps its history
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == done.id)
            .values(status=OutboxStatus.SENT, leased_by="replica-3")
        )

    restarted = Leases(database, clock, "replica-1", lease, batch_size=50)
    assert await restarted.take_over(every_lease=False) == 2
    held = await leased_by(database)
    assert list(held.values()) == [None, None, "replica-2", "replica-2", "replica-3", "replica-3"]

    assert await restarted.take_over(every_lease=True) == 3
    held = await leased_by(database)
    assert list(held.values()) == [None, None, None, None, "replica-3", None]


async def test_the_only_process_of_a_sqlite_file_takes_over_every_lease_at_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A restart after a kill -9 on SQLite: nobody else can be alive (the file's lock says so),
    so the dead process's rows go out at once, not a lease later."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    keys = await fill(db, clock, 4)
    await Leases(db, clock, "vm:4711", timedelta(seconds=120), batch_size=50).claim(())
    await db.dispose()

    adapter = SendsThenQuits(len(keys))
    settings = Settings.model_construct(database=DatabaseSection(url=url), delivery=defaults())
    async with asyncio.timeout(SAFETY):
        assert await App(settings, adapter).run() == 0
    assert adapter.port.sent == keys  # with the clock not moved at all


class CountingPort:
    platform = "fake"

    def __init__(self, wanted: int) -> None:
        self.sent: list[str] = []
        self.all_sent = asyncio.Event()
        self.wanted = wanted

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return dict.fromkeys(Method, RateLimit(rate=100.0, burst=100))

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.sent.append(delivery.idempotency_key)
        if len(self.sent) >= self.wanted:
            self.all_sent.set()
        return Receipt(message_id=str(delivery.outbox_id))


class SendsThenQuits:
    def __init__(self, wanted: int) -> None:
        self.port = CountingPort(wanted)
        self._clock = FakeClock(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))

    def clock(self) -> Clock | None:
        return self._clock

    async def run(self, app: App) -> int:
        await self.port.all_sent.wait()
        return 0
