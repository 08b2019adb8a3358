"""The delivery worker against a fake platform over real HTTP (invariant 2).

Every test runs the real worker, the real outbox and a real HTTP round trip; the fake receiver
counts what it created per idempotency key, so a duplicate or a loss shows up there. Waiting is
always on an event (the receiver's condition, a task); ``asyncio.timeout`` is only a safety net
against a hang, never an assertion about speed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.chat import message
from bot.config import DeliverySection, RateSetting
from bot.delivery.admin import list_messages, retry_dead
from bot.delivery.outbox import enqueue
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket, effective_limits
from bot.delivery.worker import DeliveryWorker, backoff_delay
from bot.port import Delivery, Method, RateLimit, Receipt, Target
from storage.db import Database
from storage.models import Member, OutboxMessage, OutboxStatus, Workspace
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault

SAFETY = 30  # seconds before a hung test fails instead of hanging


class JumpClock:
    """Real time plus jumps the test makes, like the console's demo clock."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def settings(**overrides: object) -> DeliverySection:
    values: dict[str, object] = {
        "max_attempts": 5,
        "batch_size": 50,
        "poll_interval_seconds": 0.05,
        "lease_seconds": 30.0,
        "backoff_base_seconds": 1.0,
        "backoff_max_seconds": 4.0,
    }
    values.update(overrides)
    return DeliverySection.model_validate(values)


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


async def add_workspace(db: Database, external_id: str) -> int:
    async with db.transaction() as session:
        ws = Workspace(
            platform="fake", external_id=external_id, name=external_id, created_at=datetime.now(UTC)
        )
        session.add(ws)
        await session.flush()
        return ws.id


async def put(
    db: Database,
    clock: JumpClock,
    workspace_id: int,
    key: str,
    *,
    method: Method = Method.POST,
    target: Target | None = None,
    text: str | None = None,
    depends_on: int | None = None,
) -> int:
    if target is None:
        target = Target(user_id="U1") if method is Method.DM else Target(channel_id="C1")
    async with db.transaction() as session:
        return await enqueue(
            session,
            workspace_id=workspace_id,
            method=method,
            target=target,
            message=message(text or f"hello {key}"),
            key=key,
            now=clock.now(),
            depends_on=depends_on,
        )


async def rows(db: Database) -> dict[str, OutboxMessage]:
    async with db.transaction() as session:
        found = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return {row.idempotency_key: row for row in found}


async def deliver_all(worker: DeliveryWorker, receiver: FakeReceiver, keys: list[str]) -> None:
    """Run the worker until the receiver has every key, then stop it (outcomes recorded)."""
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()


# --- delivery, order, idempotent enqueue ---------------------------------------------------------


async def test_delivers_every_message_once_in_order(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = [f"msg-{i:03d}" for i in range(40)]
    for key in keys:
        await put(database, clock, ws, key)
    worker = DeliveryWorker(database, port, settings(batch_size=7), clock=clock, instance="w1")

    await deliver_all(worker, receiver, keys)

    assert receiver.keys() == keys  # once each, in enqueue order
    assert receiver.duplicates() == 0
    stored = await rows(database)
    for key in keys:
        row = stored[key]
        assert row.status == OutboxStatus.SENT
        assert row.attempts == 1
        assert row.platform_message_id == receiver.by_key(key).message_id
        assert row.platform_channel_id == "C1"
        assert row.sent_at is not None
        assert row.sending_since is None and row.lease_until is None and row.leased_by is None
    assert {d.workspace_id for d in port.deliveries} == {"W-1"}  # the platform's id, not ours
    assert not any(d.maybe_sent for d in port.deliveries)
    assert await worker.idle()


async def test_same_idempotency_key_twice_is_one_row_and_one_message(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    first = await put(database, clock, ws, "standup:42:2025-03-03")
    second = await put(database, clock, ws, "standup:42:2025-03-03", text="retried occurrence")
    assert first == second
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1

    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    assert await worker.run_once() == 1
    assert receiver.counts() == {"standup:42:2025-03-03": 1}
    assert receiver.created[0].text == "hello standup:42:2025-03-03"  # the first one wins


async def test_wake_delivers_without_waiting_for_the_poll(
    sqlite_database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(sqlite_database, "W-1")
    worker = DeliveryWorker(
        sqlite_database, port, settings(poll_interval_seconds=3600), clock=clock, instance="w1"
    )
    await worker.start()
    try:
        await put(sqlite_database, clock, ws, "late")
        worker.wake()
        async with asyncio.timeout(SAFETY):  # the poll would take an hour
            await receiver.wait_for_keys(["late"])
    finally:
        await worker.stop()
    assert (await rows(sqlite_database))["late"].status == OutboxStatus.SENT


async def test_idle_reports_due_work_and_in_flight(
    sqlite_database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(sqlite_database, "W-1")
    worker = DeliveryWorker(sqlite_database, port, settings(), clock=clock, instance="w1")
    assert await worker.idle()
    await put(sqlite_database, clock, ws, "a")
    assert not await worker.idle()

    hold = receiver.inject(Fault("hold", key="a"))
    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    assert not await worker.idle()  # in flight
    hold.release()
    assert await task == 1
    assert await worker.idle()


# --- rate limits ---------------------------------------------------------------------------------


async def test_429_pauses_only_that_workspace_and_method(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws_a = await add_workspace(database, "W-A")
    ws_b = await add_workspace(database, "W-B")
    a_post, a_dm, b_post = [], [], []
    for i in range(4):  # interleaved ids: the paused bucket sits between the others
        a_post.append(f"a-post-{i}")
        await put(database, clock, ws_a, a_post[-1])
        a_dm.append(f"a-dm-{i}")
        await put(database, clock, ws_a, a_dm[-1], method=Method.DM)
        b_post.append(f"b-post-{i}")
        await put(database, clock, ws_b, b_post[-1])
    # (W-A, post) answers 429 until the test lifts it; the others are served normally.
    limit = receiver.inject(
        Fault("status", status=429, retry_after=0.2, times=None, workspace="W-A", method="post")
    )
    # max_attempts=1: if a 429 counted as an attempt, the row would be dead-lettered.
    worker = DeliveryWorker(database, port, settings(max_attempts=1), clock=clock, instance="w1")

    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(a_dm + b_post)
            await receiver.wait_until(lambda: limit.hits >= 1)
        assert not set(a_post) & set(receiver.keys())  # still paused, nothing dropped yet
        limit.clear()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(a_post)
    finally:
        await worker.stop()

    assert receiver.duplicates() == 0
    assert [k for k in receiver.keys() if k.startswith("a-post")] == a_post  # order survived
    stored = await rows(database)
    assert all(row.status == OutboxStatus.SENT for row in stored.values())
    assert stored["a-post-0"].rate_limited == limit.hits >= 1
    assert stored["a-post-0"].attempts == 1  # only the send that went through counts
    # After a 429 the bucket stops for the round: later rows were never sent into the pause.
    assert all(stored[k].rate_limited == 0 for k in a_post[1:])
    assert all(stored[k].rate_limited == 0 for k in a_dm + b_post)


async def test_token_bucket_paces_bursts_and_pauses() -> None:
    now = 100.0
    slept: list[float] = []

    def time() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        slept.append(seconds)
        now += seconds

    bucket = TokenBucket(rate=2.0, burst=3, time=time, sleep=sleep)
    for _ in range(3):
        await bucket.acquire()
    assert slept == []  # the burst goes at once
    await bucket.acquire()
    assert slept == [pytest.approx(0.5)]  # then one per 1/rate

    slept.clear()
    bucket.pause(10.0)
    assert bucket.is_paused()
    await bucket.acquire()
    assert sum(slept) == pytest.approx(10.0)  # held for the whole pause ...
    slept.clear()
    await bucket.acquire()
    assert slept == [pytest.approx(0.5)]  # ... then one at once and back to the rate
    assert not bucket.is_paused()


async def test_registry_uses_adapter_rates_overridden_by_config() -> None:
    adapter = {Method.POST: RateLimit(1.0, 1), Method.DM: RateLimit(2.0, 4)}
    registry = RateLimiterRegistry(adapter, {"dm": RateSetting(rate=0.5, burst=2)})
    assert registry.limit_for(Method.POST) == RateLimit(1.0, 1)
    assert registry.limit_for(Method.DM) == RateLimit(0.5, 2)

    a_post = registry.bucket(1, Method.POST)
    assert registry.bucket(1, Method.POST) is a_post
    assert registry.bucket(2, Method.POST) is not a_post
    a_post.pause(60)
    assert registry.paused() == [(1, Method.POST)]  # one workspace, one method

    with pytest.raises(ValueError, match="pots"):
        effective_limits(adapter, {"pots": RateSetting(rate=1, burst=1)})


# --- failures, backoff, dead letters, admin ------------------------------------------------------


async def test_backoff_then_dead_letter_keeps_the_error(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = await add_workspace(database, "W-1")
    row_id = await put(database, clock, ws, "doomed", text="my secret blocker")
    receiver.inject(Fault("status", status=500, times=None, key="doomed"))
    worker = DeliveryWorker(
        database,
        port,
        settings(max_attempts=3, backoff_base_seconds=10, backoff_max_seconds=15),
        clock=clock,
        instance="w1",
    )
    caplog.set_level(logging.WARNING, logger="bot.delivery")

    before = clock.now()
    assert await worker.run_once() == 0
    row = (await rows(database))["doomed"]
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert row.last_error == "DeliveryError: HTTP 500"
    assert (
        before + timedelta(seconds=5) <= row.next_attempt_at <= clock.now() + timedelta(seconds=10)
    )

    assert await worker.run_once() == 0  # not due yet: no request
    assert len(receiver.requests) == 1

    clock.advance(10)
    before = clock.now()
    assert await worker.run_once() == 0
    row = (await rows(database))["doomed"]
    assert row.attempts == 2
    # 10 * 2 = 20 is capped at 15, then drawn from [7.5, 15].
    assert before + timedelta(seconds=7.5) <= row.next_attempt_at
    assert row.next_attempt_at <= clock.now() + timedelta(seconds=15)

    clock.advance(15)
    assert await worker.run_once() == 1
    row = (await rows(database))["doomed"]
    assert (row.status, row.attempts) == (OutboxStatus.DEAD, 3)
    assert row.last_error == "DeliveryError: HTTP 500"
    assert len(receiver.requests) == 3
    # A 5xx may come after the platform created the message: retries go out flagged.
    assert [d.maybe_sent for d in port.deliveries] == [False, True, True]

    failures = [r for r in caplog.records if r.name == "bot.delivery.sending"]
    assert len(failures) == 3
    assert all(f"outbox {row_id} (workspace W-1, post)" in r.getMessage() for r in failures)
    assert "dead-lettered" in failures[-1].getMessage()
    assert "secret" not in caplog.text


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(7)
    for attempts, full in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (60, 60.0)]:
        delays = [backoff_delay(attempts, 2.0, 60.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered


async def test_permanent_error_dead_at_once_then_retry_dead_delivers(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    ok_id = await put(database, clock, ws, "fine")
    bad_id = await put(database, clock, ws, "refused")
    receiver.inject(Fault("status", status=403, key="refused"))
    worker = DeliveryWorker(database, port, settings(max_attempts=5), clock=clock, instance="w1")

    assert await worker.run_once() == 2
    row = (await rows(database))["refused"]
    assert (row.status, row.attempts) == (OutboxStatus.DEAD, 1)
    assert row.last_error == "PermanentDeliveryError: HTTP 403: injected 403"

    dead = await list_messages(database, "dead", 10)
    assert [(e.id, e.workspace, e.method, e.status) for e in dead] == [
        (bad_id, "W-1", "post", "dead")
    ]
    assert dead[0].last_error == row.last_error

    result = await retry_dead(database, [bad_id, ok_id, 9999], clock.now())
    assert (result.retried, result.retried_ids) == (1, (bad_id,))
    assert result.not_dead == (ok_id, 9999)  # refused and reported
    assert result.missing == (9999,)
    row = (await rows(database))["refused"]
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 0, None)

    assert await worker.run_once() == 1
    assert receiver.counts() == {"fine": 1, "refused": 1}
    assert (await rows(database))["refused"].status == OutboxStatus.SENT
    again = await retry_dead(database, [ok_id], clock.now())
    assert int(again) == 0 and again.not_dead == (ok_id,)  # sent rows are left alone


async def test_admin_lists_by_status_and_retries_all_dead(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    for key in ("a", "b", "c", "d"):
        await put(database, clock, ws, key)
    for key in ("b", "c"):
        receiver.inject(Fault("status", status=400, key=key))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    assert await worker.run_once() == 4
    await put(database, clock, ws, "e")
    stored = await rows(database)

    listed = await list_messages(database, "all", 10)  # pending and dead, oldest first
    assert [(e.id, e.status) for e in listed] == [
        (stored["b"].id, "dead"),
        (stored["c"].id, "dead"),
        (stored["e"].id, "pending"),
    ]
    assert [e.id for e in await list_messages(database, "all", 2)] == [e.id for e in listed[:2]]
    assert [e.id for e in await list_messages(database, "pending", 10)] == [stored["e"].id]
    with pytest.raises(ValueError, match="Unknown status"):
        await list_messages(database, "sent", 10)  # type: ignore[arg-type]

    assert (await retry_dead(database, None, clock.now())).retried == 2
    assert await list_messages(database, "dead", 10) == []
    assert await worker.run_once() == 3
    assert receiver.duplicates() == 0
    assert set(receiver.counts()) == {"a", "b", "c", "d", "e"}


# --- stopping, cancellation, crashes -------------------------------------------------------------


async def test_stop_mid_batch_records_the_send_in_flight_and_a_new_worker_resumes(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = [f"m{i}" for i in range(8)]
    for key in keys:
        await put(database, clock, ws, key)
    hold = receiver.inject(Fault("hold", key="m2"))
    first = DeliveryWorker(database, port, settings(), clock=clock, instance="first")

    await first.start()
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)  # m2 is on the wire
    stopping = asyncio.create_task(first.stop())
    await asyncio.sleep(0)  # let stop() begin: from here on nothing new may start
    assert not stopping.done()  # it waits for the send in flight
    hold.release()
    async with asyncio.timeout(SAFETY):
        await stopping

    stored = await rows(database)
    assert receiver.keys() == ["m0", "m1", "m2"]  # nothing started after stop()
    assert stored["m2"].status == OutboxStatus.SENT  # the send in flight was recorded
    assert stored["m2"].platform_message_id == receiver.by_key("m2").message_id
    for key in keys[3:]:
        assert stored[key].status == OutboxStatus.PENDING
        assert stored[key].attempts == 0
        assert stored[key].leased_by is None  # released: the next worker need not wait

    second = DeliveryWorker(database, port, settings(), clock=clock, instance="second")
    await deliver_all(second, receiver, keys)
    assert receiver.keys() == keys
    assert receiver.duplicates() == 0
    assert all(row.status == OutboxStatus.SENT for row in (await rows(database)).values())


@pytest.mark.parametrize("entry", ["run", "run_once"])
async def test_cancelled_mid_batch_records_the_send_in_flight_and_a_new_worker_resumes(
    entry: str, database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = [f"m{i}" for i in range(8)]
    for key in keys:
        await put(database, clock, ws, key)
    hold = receiver.inject(Fault("hold", key="m2"))
    first = DeliveryWorker(database, port, settings(), clock=clock, instance="first")

    task = asyncio.create_task(first.run() if entry == "run" else first.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    task.cancel()
    hold.release()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(SAFETY):
            await task

    stored = await rows(database)
    assert receiver.keys() == ["m0", "m1", "m2"]
    assert stored["m2"].status == OutboxStatus.SENT  # shielded from the cancellation
    assert all(stored[k].status == OutboxStatus.PENDING for k in keys[3:])
    assert all(stored[k].leased_by is None for k in keys[3:])

    second = DeliveryWorker(database, port, settings(), clock=clock, instance="second")
    await deliver_all(second, receiver, keys)
    assert receiver.keys() == keys
    assert receiver.duplicates() == 0


class Crash(BaseException):
    """The process dying between the platform's answer and the database write."""


class CrashAfterSend:
    """Delivers for real, then "crashes" before the worker can record the outcome."""

    platform = "fake"

    def __init__(self, inner: HttpPort) -> None:
        self.inner = inner

    def rate_limits(self) -> dict[Method, RateLimit]:
        return dict(self.inner.rate_limits())

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:
        await self.inner.deliver(delivery)
        raise Crash


async def crash_after_send(
    database: Database, receiver: FakeReceiver, clock: JumpClock, port: HttpPort
) -> None:
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "report")
    crashing = DeliveryWorker(
        database, CrashAfterSend(port), settings(lease_seconds=30), clock=clock, instance="gone"
    )
    with pytest.raises(Crash):
        await crashing.run_once()
    row = (await rows(database))["report"]
    assert row.status == OutboxStatus.PENDING
    assert row.sending_since is not None and row.leased_by == "gone"
    assert receiver.counts() == {"report": 1}


async def test_crash_between_send_and_record_resends_with_maybe_sent_and_no_duplicate(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    await crash_after_send(database, receiver, clock, port)
    survivor = DeliveryWorker(database, port, settings(), clock=clock, instance="survivor")
    assert await survivor.run_once() == 0  # the dead worker's lease still holds
    clock.advance(31)  # ... until it expires

    assert await survivor.run_once() == 1
    retry = port.deliveries[-1]
    assert retry.maybe_sent and retry.attempt == 2
    assert receiver.requests[-1].idempotent and receiver.requests[-1].outcome == "existing"
    assert receiver.counts() == {"report": 1}  # the platform did not create it twice
    row = (await rows(database))["report"]
    assert row.status == OutboxStatus.SENT
    assert row.platform_message_id == receiver.by_key("report").message_id


async def test_without_maybe_sent_the_crash_would_duplicate(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """The control: an adapter that ignores maybe_sent posts twice, and the fake sees it."""
    await crash_after_send(database, receiver, clock, port)
    blind = HttpPort(receiver.url, idempotency="never")
    try:
        clock.advance(31)
        survivor = DeliveryWorker(database, blind, settings(), clock=clock, instance="survivor")
        assert await survivor.run_once() == 1
    finally:
        await blind.aclose()
    assert receiver.counts() == {"report": 2}
    assert receiver.duplicates() == 1


async def test_connection_dropped_after_the_platform_accepted_is_not_doubled(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "kudos")
    receiver.inject(Fault("accept_then_disconnect", key="kudos"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")

    assert await worker.run_once() == 0
    row = (await rows(database))["kudos"]
    assert row.status == OutboxStatus.PENDING and row.last_error is not None
    clock.advance(5)
    assert await worker.run_once() == 1
    assert [d.maybe_sent for d in port.deliveries] == [False, True]
    assert receiver.counts() == {"kudos": 1}


# --- several workers -----------------------------------------------------------------------------


async def test_two_workers_on_one_database_never_send_a_row_twice(
    database: Database, db_url: str, receiver: FakeReceiver, clock: JumpClock
) -> None:
    """Two replicas, each with its own engine, claiming concurrently round after round."""
    keys: list[str] = []
    for ws_name in ("W-1", "W-2", "W-3"):
        ws = await add_workspace(database, ws_name)
        for i in range(40):
            method = Method.POST if i % 2 else Method.DM
            keys.append(f"{ws_name}-{i}")
            await put(database, clock, ws, keys[-1], method=method)
    other_db = Database(db_url)
    port_a, port_b = HttpPort(receiver.url), HttpPort(receiver.url)
    a = DeliveryWorker(database, port_a, settings(batch_size=7), clock=clock, instance="a")
    b = DeliveryWorker(other_db, port_b, settings(batch_size=7), clock=clock, instance="b")
    rounds: list[tuple[int, int]] = []
    try:
        async with asyncio.timeout(SAFETY):
            while len(receiver.counts()) < len(keys):
                done_a, done_b = await asyncio.gather(a.run_once(), b.run_once())
                rounds.append((done_a, done_b))
    finally:
        await port_a.aclose()
        await port_b.aclose()
        await other_db.dispose()

    assert receiver.duplicates() == 0
    assert set(receiver.counts()) == set(keys)
    sent_by_a = {d.outbox_id for d in port_a.deliveries}
    sent_by_b = {d.outbox_id for d in port_b.deliveries}
    assert not sent_by_a & sent_by_b  # never the same row
    assert len(port_a.deliveries) + len(port_b.deliveries) == len(keys)
    # Concurrent claims take disjoint full batches (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE
    # on SQLite): no worker loses rows it claimed to the other one.
    full = len(keys) // 14
    assert rounds[:full] == [(7, 7)] * full
    assert sum(done_a + done_b for done_a, done_b in rounds) == len(keys)
    assert all(row.status == OutboxStatus.SENT for row in (await rows(database)).values())


async def test_rows_leased_by_another_worker_are_left_alone(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = [f"m{i}" for i in range(10)]
    for key in keys:
        await put(database, clock, ws, key)
    hold = receiver.inject(Fault("hold", key="m0"))
    a = DeliveryWorker(database, port, settings(batch_size=5), clock=clock, instance="a")
    b = DeliveryWorker(database, port, settings(batch_size=5), clock=clock, instance="b")

    first = asyncio.create_task(a.run_once())  # claims m0..m4, stuck sending m0
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
        assert await b.run_once() == 5  # takes m5..m9 only
    hold.release()
    assert await first == 5
    assert receiver.counts() == dict.fromkeys(keys, 1)
    by_worker = {d.outbox_id: d for d in port.deliveries}
    assert len(by_worker) == len(port.deliveries) == 10


async def test_a_row_another_worker_took_over_is_skipped(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """Our lease on m1 ran out while m0 was slow and worker b claimed m1: we must not send it."""
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "m0")
    m1 = await put(database, clock, ws, "m1")
    hold = receiver.inject(Fault("hold", key="m0"))
    a = DeliveryWorker(database, port, settings(), clock=clock, instance="a")

    task = asyncio.create_task(a.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    async with database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == m1)
            .values(leased_by="b", lease_until=clock.now() + timedelta(seconds=30))
        )
    hold.release()
    assert await task == 1
    assert receiver.keys() == ["m0"]
    row = (await rows(database))["m1"]
    assert (row.status, row.attempts, row.leased_by) == (OutboxStatus.PENDING, 0, "b")


# --- dependencies --------------------------------------------------------------------------------


async def test_thread_reply_and_update_wait_for_their_parent_and_point_at_it(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    report = await put(database, clock, ws, "report", target=Target(channel_id="C-team"))
    await put(database, clock, ws, "reply", target=Target(), depends_on=report)
    await put(database, clock, ws, "edit", method=Method.UPDATE, target=Target(), depends_on=report)
    receiver.inject(Fault("status", status=502, key="report"))
    worker = DeliveryWorker(
        database, port, settings(backoff_base_seconds=1, backoff_max_seconds=1), clock=clock
    )

    assert await worker.run_once() == 0
    stored = await rows(database)
    assert stored["report"].attempts == 1
    for key in ("reply", "edit"):  # waiting is not an attempt
        assert (stored[key].status, stored[key].attempts) == (OutboxStatus.PENDING, 0)
    assert receiver.keys() == []

    clock.advance(1)
    assert await worker.run_once() == 3
    parent = receiver.by_key("report")
    assert receiver.keys()[0] == "report"  # reply and edit are in two buckets: any order
    assert sorted(receiver.keys()[1:]) == ["edit", "reply"]
    reply = receiver.by_key("reply")
    assert (reply.thread_of, reply.channel_id) == (parent.message_id, "C-team")
    edit = receiver.by_key("edit")
    assert (edit.method, edit.message_id, edit.channel_id) == (
        "update",
        parent.message_id,
        "C-team",
    )
    stored = await rows(database)
    assert all(row.status == OutboxStatus.SENT for row in stored.values())
    assert stored["reply"].attempts == 1


async def test_a_dead_parent_dead_letters_its_children(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    report = await put(database, clock, ws, "report")
    await put(database, clock, ws, "reply", target=Target(), depends_on=report)
    await put(database, clock, ws, "edit", method=Method.UPDATE, target=Target(), depends_on=report)
    receiver.inject(Fault("status", status=404, key="report"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")

    assert await worker.run_once() == 3
    stored = await rows(database)
    for key in ("reply", "edit"):
        assert stored[key].status == OutboxStatus.DEAD
        assert stored[key].last_error == f"depends on outbox #{report}, which is dead"
        assert stored[key].attempts == 0
    assert receiver.requests and {r.key for r in receiver.requests} == {"report"}


async def test_a_child_whose_parent_is_pending_elsewhere_waits(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    report = await put(database, clock, ws, "report")
    await put(database, clock, ws, "edit", method=Method.UPDATE, target=Target(), depends_on=report)
    async with database.transaction() as session:  # another replica holds the parent
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == report)
            .values(leased_by="other", lease_until=clock.now() + timedelta(seconds=30))
        )
    worker = DeliveryWorker(
        database, port, settings(poll_interval_seconds=5), clock=clock, instance="w1"
    )

    before = clock.now()
    assert await worker.run_once() == 0
    edit = (await rows(database))["edit"]
    assert (edit.status, edit.attempts, edit.leased_by) == (OutboxStatus.PENDING, 0, None)
    assert edit.next_attempt_at >= before + timedelta(seconds=1)  # looked at again shortly
    assert receiver.requests == []


async def test_the_dm_channel_the_platform_opened_is_kept_on_the_member(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """Ports open a member's DM channel on the first DM (Slack's D..., Discord's DM channel);
    the worker keeps it on the member, so later DMs, and a restarted bot, use it directly."""
    ws = await add_workspace(database, "W-dm")
    async with database.transaction() as session:
        session.add(
            Member(
                workspace_id=ws,
                platform_user_id="U1",
                display_name="one",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    await put(database, clock, ws, "dm-1", method=Method.DM, target=Target(user_id="U1"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w-dm")
    await deliver_all(worker, receiver, ["dm-1"])
    async with database.transaction() as session:
        member = await session.scalar(select(Member).where(Member.platform_user_id == "U1"))
    assert member is not None and member.dm_channel_id == "D-U1"
    assert (await rows(database))["dm-1"].platform_channel_id == "D-U1"
