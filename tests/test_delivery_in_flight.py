"""Several sends of one (workspace, method) bucket in flight at once (``[delivery]
max_in_flight_per_bucket``), each to a different target; one target's sends never overlap.

Overlap is counted at the fake platform (requests it is serving at once, in all and per target),
never inferred from timing: a ``hold`` fault keeps requests on the wire until the test has seen
how many arrived together. The pause after a 429 is checked at the port: a send that starts
while its bucket is paused is recorded as a violation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.delivery.worker import DeliveryWorker
from bot.port import Delivery, Method, Receipt, Target
from storage.db import Database
from storage.models import OutboxStatus
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault
from tests.test_delivery import SAFETY, JumpClock, add_workspace, deliver_all, put, rows, settings


class PauseCheckingPort(HttpPort):
    """Records every send that starts while its bucket is paused (it must not)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.worker: DeliveryWorker | None = None
        self.workspace = 0
        self.into_pause: list[str] = []

    async def deliver(self, delivery: Delivery) -> Receipt:
        if self.worker is not None:
            if self.worker.limits.bucket(self.workspace, delivery.method).is_paused():
                self.into_pause.append(delivery.idempotency_key)
        return await super().deliver(delivery)


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
async def checking(receiver: FakeReceiver) -> AsyncIterator[PauseCheckingPort]:
    http = PauseCheckingPort(receiver.url)
    yield http
    await http.aclose()


async def dms(db: Database, clock: JumpClock, ws: int, members: int, each: int) -> list[str]:
    """``each`` DMs to each of ``members`` members, interleaved: u0-0, u1-0, ..., u0-1, ..."""
    keys = []
    for n in range(each):
        for m in range(members):
            keys.append(f"u{m}-{n}")
            await put(db, clock, ws, keys[-1], method=Method.DM, target=Target(user_id=f"U{m}"))
    return keys


async def held_dms(
    db: Database, clock: JumpClock, receiver: FakeReceiver, members: int, each: int
) -> tuple[list[str], Fault]:
    """:func:`dms`, every request then held on the wire until the test releases them."""
    keys = await dms(db, clock, await add_workspace(db, "W-1"), members, each)
    return keys, receiver.inject(Fault("hold", times=None))


async def deliver_once_held(
    worker: DeliveryWorker, receiver: FakeReceiver, hold: Fault, keys: list[str], at_once: int
) -> None:
    """Run ``worker`` until ``at_once`` requests are held on the wire together (checked at the
    fake), then let everything through until ``keys`` are all delivered."""
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: hold.hits >= at_once)
        assert receiver.in_flight == at_once  # that many sends of one bucket at once
        hold.clear()
        hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()


def per_member(keys: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key in keys:
        found.setdefault(key.split("-")[0], []).append(key)
    return found


@pytest.mark.parametrize("cap", [1, 4])
async def test_dms_to_different_members_overlap_up_to_the_cap_one_members_in_order(
    cap: int, database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    # Every request waits on the wire until the test has seen ``cap`` of them there at once.
    keys, hold = await held_dms(database, clock, receiver, members=6, each=4)
    worker = DeliveryWorker(
        database, port, settings(max_in_flight_per_bucket=cap), clock=clock, instance="w1"
    )

    await deliver_once_held(worker, receiver, hold, keys, at_once=cap)

    assert receiver.max_in_flight == cap  # reached, never exceeded
    assert receiver.max_target_in_flight == 1  # one member's DMs never overlap
    assert receiver.duplicates() == 0
    assert per_member(receiver.keys()) == per_member(keys)  # each member's in enqueue order
    if cap == 1:
        assert receiver.keys() == keys  # strictly one after another, as before the setting
    stored = await rows(database)
    assert all(row.status == OutboxStatus.SENT and row.attempts == 1 for row in stored.values())


async def test_posts_to_one_channel_never_overlap_posts_to_two_do(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = []
    for n in range(5):
        for channel in ("C1", "C2"):
            keys.append(f"{channel}-{n}")
            await put(database, clock, ws, keys[-1], target=Target(channel_id=channel))
    hold = receiver.inject(Fault("hold", times=None))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")

    await deliver_once_held(worker, receiver, hold, keys, at_once=2)

    assert receiver.max_in_flight == 2
    assert receiver.max_target_in_flight == 1
    assert per_member(receiver.keys()) == per_member(keys)
    assert receiver.duplicates() == 0


async def test_a_429_among_concurrent_sends_loses_nothing_doubles_nothing_and_pauses_all(
    database: Database,
    receiver: FakeReceiver,
    checking: PauseCheckingPort,
    clock: JumpClock,
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = await dms(database, clock, ws, members=8, each=3)
    # u0-0 stays on the wire while u1-0 is answered 429: the 429 lands among sends in flight.
    hold = receiver.inject(Fault("hold", key="u0-0"))
    limit = receiver.inject(Fault("status", status=429, retry_after=0.5, key="u1-0"))
    # max_attempts=1: a 429, or a send held back by the pause, must not count as an attempt.
    worker = DeliveryWorker(
        database,
        checking,
        settings(max_in_flight_per_bucket=4, max_attempts=1),
        clock=clock,
        instance="w1",
    )
    checking.worker, checking.workspace = worker, ws

    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: limit.hits == 1 and hold.hits == 1)
        # The database's clock jumps past the pause: the rows are due there, but the bucket's
        # own pause (the event loop's time) still holds every send back until it ends.
        clock.advance(5)
        hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()

    assert checking.into_pause == []  # no send of the bucket started inside the pause
    assert receiver.duplicates() == 0
    assert sorted(receiver.keys()) == sorted(keys)
    assert per_member(receiver.keys()) == per_member(keys)
    assert receiver.max_target_in_flight == 1
    stored = await rows(database)
    assert all(row.status == OutboxStatus.SENT and row.attempts == 1 for row in stored.values())
    assert stored["u1-0"].rate_limited == 1


@pytest.mark.parametrize("how", ["stop", "cancel"])
@pytest.mark.parametrize("batch", [50, 4])  # 4: the drain has claimed more rows of its own
async def test_a_worker_ended_with_sends_in_flight_then_another_delivers_the_rest_once(
    how: str,
    batch: int,
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
) -> None:
    keys, hold = await held_dms(database, clock, receiver, members=6, each=3)
    first = DeliveryWorker(
        database,
        port,
        settings(max_in_flight_per_bucket=4, batch_size=batch),
        clock=clock,
        instance="first",
    )

    task = asyncio.create_task(first.run())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 4)
    if batch < len(keys):  # rows of a second claim are waiting behind the four
        async with asyncio.timeout(SAFETY):
            while len(first.held()) <= batch:  # noqa: ASYNC110 (no event tells of a claim)
                await asyncio.sleep(0.01)
    in_flight = set(first.held())
    if how == "stop":
        ending = asyncio.create_task(first.stop())
    else:
        task.cancel()
        ending = task
    await asyncio.sleep(0)  # the end has begun: nothing new may start from here on
    hold.clear()
    hold.release()
    async with asyncio.timeout(SAFETY):
        await asyncio.gather(ending, return_exceptions=True)
        await asyncio.gather(task, return_exceptions=True)

    assert len(receiver.keys()) == 4  # the four on the wire, nothing started after
    stored = await rows(database)
    sent = {k for k, row in stored.items() if row.status == OutboxStatus.SENT}
    assert sent == set(receiver.keys())  # each send in flight completed and was recorded
    assert {stored[k].id for k in sent} <= in_flight
    for key in set(keys) - sent:
        assert stored[key].status == OutboxStatus.PENDING
        assert stored[key].leased_by is None and stored[key].attempts == 0

    second = DeliveryWorker(database, port, settings(), clock=clock, instance="second")
    await deliver_all(second, receiver, keys)
    assert receiver.duplicates() == 0
    assert sorted(receiver.keys()) == sorted(keys)
    assert per_member(receiver.keys()) == per_member(keys)
    assert all(row.status == OutboxStatus.SENT for row in (await rows(database)).values())


async def test_a_long_fan_out_claims_its_next_rows_before_the_last_ones_are_answered(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """30 DMs in batches of 10, the very first held on the wire: the bucket's drain takes more
    of its rows while that one is still out, so the other 29 go meanwhile. (Before, the next
    batch waited for every send of the last one, then for its own claim: a pause at every
    batch of a fan-out.)"""
    keys = await dms(database, clock, await add_workspace(database, "W-1"), members=30, each=1)
    hold = receiver.inject(Fault("hold", key=keys[0]))
    worker = DeliveryWorker(database, port, settings(batch_size=10), clock=clock, instance="w1")
    others = set(keys[1:])
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: others <= set(receiver.keys()))
        assert hold.hits == 1 and keys[0] not in receiver.keys()  # still on the wire
        hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()
    assert receiver.duplicates() == 0
    stored = await rows(database)
    assert all(row.status == OutboxStatus.SENT and row.attempts == 1 for row in stored.values())
    assert worker.held() == []  # every claimed row settled, none left leased


async def test_run_once_still_drains_one_batch(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    keys = await dms(database, clock, await add_workspace(database, "W-1"), members=30, each=1)
    worker = DeliveryWorker(database, port, settings(batch_size=10), clock=clock, instance="w1")
    assert await worker.run_once() == 10
    assert sorted(receiver.keys()) == sorted(keys[:10])
