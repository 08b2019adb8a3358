"""What the delivery worker itself guarantees around its sends (invariant 2), beyond one attempt.

:mod:`tests.test_delivery_mutants` drives a claim and one attempt directly; these drive the
whole :class:`DeliveryWorker` against the fake platform over HTTP (``tests/fakes``), on both
databases: what a caller that ends it may rely on (nothing in flight is left unrecorded, nothing
claimed is left leased), what it counts and tells about each send, and how it orders and shares
the sends between targets and workspaces.

They close the gaps mutation testing of ``bot/delivery/worker.py`` found (docs/testing.md,
issue 17). As in the other delivery tests, every wait is for a state (a request held on the
wire, a row recorded, a task done); ``asyncio.timeout`` is only a safety net against a hang. The
one exception, a short grace for a send that must not come, is marked where it is. Two tests
showed bugs the mutation run found, fixed since: a stop while a drain claims more after a 429
gave those rows back due at once, and stop() could return before that claim was given back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import update

from bot.delivery.dead_letters import DeadLetter
from bot.delivery.worker import DeliveryWorker
from bot.port import Delivery, Method, Quota, RateLimit, Receipt, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from storage.outages import DatabaseUnavailable, Outage
from storage.pacing import DeliveryRate
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault
from tests.test_delivery import (
    SAFETY,
    JumpClock,
    add_workspace,
    deliver_all,
    put,
    rows,
    settings,
)


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (polling: no event tells of it) until ``predicate()`` holds."""
    async with asyncio.timeout(SAFETY):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def sends(worker: DeliveryWorker) -> dict[tuple[str, str], float]:
    """syncup_sends_total as the worker counted it: (method, result) -> count, the non-zero."""
    found = {}
    for metric in worker.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "syncup_sends_total" and sample.value:
                found[(sample.labels["method"], sample.labels["result"])] = sample.value
    return found


# --- ending a round: nothing in flight left unrecorded -------------------------------------------


@pytest.mark.parametrize("entry", ["run_once", "run"])
async def test_a_cancelled_round_ends_only_once_every_bucket_has_recorded_its_send_in_flight(
    entry: str, database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """Two buckets each with a send on the wire when ``run_once`` (or the loop) is cancelled:
    it ends only after both sends are recorded (and the rows behind them given back), not as
    soon as the first bucket has finished."""
    ws = await add_workspace(database, "W-1")
    for key in ("post-0", "post-1"):
        await put(database, clock, ws, key)
    for key in ("dm-0", "dm-1"):
        await put(database, clock, ws, key, method=Method.DM)
    post_hold = receiver.inject(Fault("hold", key="post-0"))
    dm_hold = receiver.inject(Fault("hold", key="dm-0"))
    worker = worker_of(database, port, clock, max_in_flight_per_bucket=1)
    held_when_done: list[list[int]] = []

    task = asyncio.create_task(worker.run_once() if entry == "run_once" else worker.run())
    task.add_done_callback(lambda _: held_when_done.append(worker.held()))
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: post_hold.hits == 1 and dm_hold.hits == 1)
    task.cancel()
    post_hold.release()  # the post bucket finishes; the DM is still on the wire
    stored = await rows(database)
    await until(lambda: stored["post-0"].id not in worker.held())
    dm_hold.release()
    async with asyncio.timeout(SAFETY):
        await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()
    assert held_when_done == [[]]  # nothing in flight or leased when the round ended
    stored = await rows(database)
    assert {k: r.status for k, r in stored.items()} == {
        "post-0": OutboxStatus.SENT,
        "post-1": OutboxStatus.PENDING,
        "dm-0": OutboxStatus.SENT,
        "dm-1": OutboxStatus.PENDING,
    }
    assert all(stored[k].leased_by is None for k in ("post-1", "dm-1"))
    assert sorted(receiver.keys()) == ["dm-0", "post-0"]


# --- what the worker counts and tells ------------------------------------------------------------


def worker_of(database: Database, port: HttpPort, clock: JumpClock, **knobs: Any) -> DeliveryWorker:
    """The worker under test ("w1"), with these ``settings``."""
    return DeliveryWorker(database, port, settings(**knobs), clock=clock, instance="w1")


ClaimHook = Callable[[object], Awaitable[None]]


def around_claims(
    worker: DeliveryWorker,
    monkeypatch: pytest.MonkeyPatch,
    *,
    before: ClaimHook | None = None,
    after: ClaimHook | None = None,
) -> None:
    """Run ``before`` (it may wait, or raise in the claim's place) and ``after`` around each of
    the worker's claims, given its ``only``: None for a main claim, the bucket for a drain's
    claim for more."""
    real = worker.leases.claim

    async def claim(exclude: object, only: object = None) -> object:
        if before is not None:
            await before(only)
        found = await real(exclude, only=only)  # type: ignore[arg-type]
        if after is not None:
            await after(only)
        return found

    monkeypatch.setattr(worker.leases, "claim", claim)


async def test_each_send_is_counted_by_method_and_result_and_a_dead_row_is_told(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "sent")
    await put(database, clock, ws, "refused", target=Target(channel_id="C2"))
    await put(database, clock, ws, "flaky", method=Method.DM)
    await put(
        database,
        clock,
        ws,
        "limited",
        method=Method.UPDATE,
        target=Target(channel_id="C1", message_id="m0"),
    )
    receiver.inject(Fault("status", status=400, key="refused"))
    receiver.inject(Fault("status", status=500, key="flaky"))
    receiver.inject(Fault("status", status=429, retry_after=0.5, key="limited"))
    worker = worker_of(database, port, clock)
    told: dict[str, list[DeadLetter]] = {"first": [], "second": []}

    async def first(dead: DeadLetter) -> None:
        told["first"].append(dead)

    async def second(dead: DeadLetter) -> None:
        told["second"].append(dead)

    worker.on_dead_letter.extend([first, second])

    assert await worker.run_once() == 2  # sent and dead end; retried and rate limited do not
    assert sends(worker) == {
        ("post", "sent"): 1,
        ("post", "dead"): 1,
        ("dm", "retried"): 1,
        ("update", "rate_limited"): 1,
    }
    stored = await rows(database)
    for callback in ("first", "second"):  # every callback, once, after the row ended dead
        assert [(d.outbox_id, d.idempotency_key) for d in told[callback]] == [
            (stored["refused"].id, "refused")
        ]
    assert stored["refused"].status == OutboxStatus.DEAD


async def test_a_row_no_longer_ours_is_counted_as_skipped(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "m0")
    await put(database, clock, ws, "m1")
    hold = receiver.inject(Fault("hold", key="m0"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="a")

    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    # m1's lease ran out while m0 was slow, and another worker took it.
    async with database.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key == "m1")
            .values(leased_by="b", lease_until=clock.now().replace(year=2100))
        )
    hold.release()
    async with asyncio.timeout(SAFETY):
        assert await task == 1
    assert sends(worker) == {("post", "sent"): 1, ("post", "skipped"): 1}


# --- taking more of a bucket's rows while it drains ----------------------------------------------


async def dm_fan_out(
    db: Database, clock: JumpClock, ws: int, prefix: str, members: int
) -> list[str]:
    """One DM to each of ``members`` members (each its own lane)."""
    keys = []
    for m in range(members):
        keys.append(f"{prefix}-{m}")
        await put(db, clock, ws, keys[-1], method=Method.DM, target=Target(user_id=f"U{m}"))
    return keys


@pytest.mark.parametrize("failure", ["bug", "outage"])
async def test_a_failed_claim_for_more_is_not_retried_by_that_drain_and_loses_nothing(
    failure: str,
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 10)
    worker = worker_of(database, port, clock, batch_size=10, max_in_flight_per_bucket=2)
    refills: list[object] = []

    async def fail_claims_for_more(only: object) -> None:
        if only is not None:  # a drain taking more of its own rows
            refills.append(only)
            if failure == "bug":
                raise RuntimeError("boom")
            raise DatabaseUnavailable(Outage.UNREACHABLE, "gone")

    around_claims(worker, monkeypatch, before=fail_claims_for_more)
    caplog.set_level(logging.INFO, logger="bot.delivery")

    await deliver_all(worker, receiver, keys)

    # The full batch made the drain look for more once; it failed, so the drain did not try
    # again with every send (the next poll claims instead), and the batch went out whole.
    assert refills == [(ws, Method.DM)]
    assert sorted(receiver.keys()) == sorted(keys) and receiver.duplicates() == 0
    assert worker.held() == []
    told = [r for r in caplog.records if r.name == "bot.delivery.worker"]
    if failure == "bug":
        assert [(r.levelno, r.getMessage()) for r in told] == [
            (logging.ERROR, f"delivery: claiming more outbox rows for {(ws, Method.DM)} failed")
        ]
        assert told[0].exc_info is not None and told[0].exc_info[0] is RuntimeError
    else:
        assert told == []  # the database's health tells of an outage, once


def hold_claims_for_more(
    worker: DeliveryWorker, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event, asyncio.Event]:
    """A drain's claims for more wait for ``gate``: returns (set when one is asked for, the
    gate, set once one has committed). The main claims go as usual."""
    refilling, gate, claimed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def before(only: object) -> None:
        if only is not None:
            refilling.set()
            await gate.wait()

    async def after(only: object) -> None:
        if only is not None:
            claimed.set()

    around_claims(worker, monkeypatch, before=before, after=after)
    return refilling, gate, claimed


@pytest.mark.parametrize("how", ["cancel", "stop"])
async def test_ending_the_loop_while_a_drain_claims_more_waits_for_those_rows_to_go_back(
    how: str,
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop is ended (its task cancelled, or stop()) while the drain's claim for more is
    under way: it ends only after that claim committed and its rows went back unleased (not
    left to their leases), none of them sent. The claim is let go only once the sends in
    flight are recorded, so a drain that stopped waiting after its lanes shows."""
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 20)
    hold = receiver.inject(Fault("hold", times=None))
    worker = worker_of(database, port, clock, batch_size=10)
    refilling, gate, claimed = hold_claims_for_more(worker, monkeypatch)
    if how == "cancel":
        task = asyncio.create_task(worker.run())
    else:
        await worker.start()
    async with asyncio.timeout(SAFETY):
        await refilling.wait()
        await receiver.wait_until(lambda: hold.hits == 8)  # the bucket's cap on the wire
    in_flight = set(worker.held())
    if how == "cancel":
        task.cancel()
        ending = task
    else:
        ending = asyncio.create_task(worker.stop())
    when_ended: list[tuple[bool, list[int]]] = []
    ending.add_done_callback(lambda _: when_ended.append((claimed.is_set(), worker.held())))
    await asyncio.sleep(0)  # the end has begun
    hold.clear()
    hold.release()
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: len(receiver.keys()) == 8)
    await until(lambda: not in_flight & set(worker.held()))  # all recorded or given back
    gate.set()  # the claim for more goes ahead and commits ten more rows
    async with asyncio.timeout(SAFETY):
        await asyncio.gather(ending, return_exceptions=True)

    assert when_ended == [(True, [])]  # it waited for that claim and its give-back
    assert len(receiver.keys()) == 8  # the sends in flight, nothing after the end
    stored = await rows(database)
    unsent = [k for k in keys if k not in receiver.keys()]
    assert len(unsent) == 12
    for key in unsent:
        row = stored[key]
        assert (row.status, row.leased_by, row.attempts) == (OutboxStatus.PENDING, None, 0)


async def test_rows_claimed_for_more_for_a_target_whose_lane_has_ended_still_go_out(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """U0 and U1 get one DM each in the first batch and one more in the drain's claim for
    more, which commits only after their first DMs are sent (their lanes closed): the later
    DMs start lanes of their own and go out, nothing is left held."""
    ws = await add_workspace(database, "W-1")
    keys = []
    for n in range(2):
        for member in ("U0", "U1"):
            keys.append(f"{member}-{n}")
            await put(
                database, clock, ws, keys[-1], method=Method.DM, target=Target(user_id=member)
            )
    worker = worker_of(database, port, clock, batch_size=2)
    gate = asyncio.Event()

    async def hold_claims_for_more(only: object) -> None:
        if only is not None:
            await gate.wait()

    around_claims(worker, monkeypatch, before=hold_claims_for_more)
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys[:2])
        await until(lambda: worker.held() == [])  # both recorded, their lanes done
        gate.set()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()
    assert sorted(receiver.keys()) == sorted(keys) and worker.held() == []
    for member in ("U0", "U1"):  # each member's in order
        assert [k for k in receiver.keys() if k.startswith(member)] == [
            f"{member}-0",
            f"{member}-1",
        ]


async def test_a_drain_claims_more_once_at_most_twice_its_cap_is_left_unsent(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cap 3, batches of 10 (half a batch: 5): the claim for more goes out when 6 rows are left
    unstarted, not earlier (7 left: three sends on the wire) and not later."""
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 20)
    holds = {key: receiver.inject(Fault("hold", key=key)) for key in keys}
    worker = worker_of(database, port, clock, batch_size=10, max_in_flight_per_bucket=3)
    refills: list[object] = []

    async def note_claims_for_more(only: object) -> None:
        if only is not None:
            refills.append(only)

    around_claims(worker, monkeypatch, before=note_claims_for_more)
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: sum(h.hits for h in holds.values()) == 3)
        assert refills == []  # seven of the batch still unstarted
        holds["dm-0"].release()  # its slot goes to dm-3: six left unstarted
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: holds["dm-3"].hits == 1)
        assert refills == [(ws, Method.DM)]
        for hold in holds.values():
            hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()
    assert receiver.duplicates() == 0


async def test_ephemerals_are_not_paced_by_their_channel(
    database: Database, receiver: FakeReceiver, clock: JumpClock
) -> None:
    """Per-channel pacing is for posts and updates: an ephemeral in a channel whose one token
    (for a long while) a post has just taken still goes out at once."""
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "post", target=Target(channel_id="C1"))
    await put(
        database,
        clock,
        ws,
        "ephemeral",
        method=Method.EPHEMERAL,
        target=Target(channel_id="C1", user_id="U1"),
    )
    port = SlowChannelPort(receiver.url)
    try:
        worker = worker_of(database, port, clock)
        async with asyncio.timeout(SAFETY):
            assert await worker.run_once() == 2
    finally:
        await port.aclose()
    assert sorted(receiver.keys()) == ["ephemeral", "post"]


async def test_a_drain_takes_more_of_its_own_bucket_only_never_a_paused_one(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """W-2's DMs are paused by a 429 (and already due by the database's clock, which jumped)
    while W-1's long fan-out takes more of its rows: none of W-2's goes out into its pause."""
    w2 = await add_workspace(database, "W-2")
    paused = ["w2-0", "w2-1"]  # to one member: one after the other
    for key in paused:
        await put(database, clock, w2, key, method=Method.DM, target=Target(user_id="U0"))
    limit = receiver.inject(Fault("status", status=429, retry_after=3600, key=paused[0]))
    worker = worker_of(database, port, clock, batch_size=10)
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: limit.hits == 1)
        await until(lambda: worker.held() == [])  # both rows back, not due for an hour
        assert worker.limits.bucket(w2, Method.DM).is_paused()
        clock.advance(7200)  # due by the database; the bucket's own pause still holds
        w1 = await add_workspace(database, "W-1")
        keys = await dm_fan_out(database, clock, w1, "w1", 30)
        worker.wake()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()

    assert not set(paused) & set(receiver.keys())
    assert receiver.duplicates() == 0
    stored = await rows(database)
    assert all(stored[k].status == OutboxStatus.PENDING for k in paused)


# --- lanes: one target's sends in order, never overlapping; different targets side by side -------


@pytest.fixture
async def patient(receiver: FakeReceiver) -> AsyncIterator[HttpPort]:
    """A port that never gives up on a request held on the wire (the default 10 s would end it
    and send the next row of the same lane, which then looks like two lanes overlapping)."""
    http = HttpPort(receiver.url, timeout=SAFETY * 4)
    yield http
    await http.aclose()


@pytest.mark.parametrize("method", [Method.POST, Method.UPDATE])
async def test_sends_to_two_channels_go_side_by_side_each_channels_in_order(
    method: Method,
    database: Database,
    receiver: FakeReceiver,
    patient: HttpPort,
    clock: JumpClock,
) -> None:
    ws = await add_workspace(database, "W-1")
    if method is Method.UPDATE:  # the messages the updates edit, already sent
        for channel in ("C1", "C2"):
            await put(database, clock, ws, f"{channel}-parent", target=Target(channel_id=channel))
        first = DeliveryWorker(database, patient, settings(), clock=clock, instance="w0")
        assert await first.run_once() == 2
    keys = []
    for n in range(4):
        for channel in ("C1", "C2"):
            keys.append(f"{channel}-{n}")
            target = Target(channel_id=channel)
            if method is Method.UPDATE:
                message_id = receiver.by_key(f"{channel}-parent").message_id
                target = Target(channel_id=channel, message_id=message_id)
            await put(database, clock, ws, keys[-1], method=method, target=target)
    hold = receiver.inject(Fault("hold", times=None))
    worker = DeliveryWorker(database, patient, settings(), clock=clock, instance="w1")

    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 2)  # one send of each channel at once
    assert sorted(d.idempotency_key for d in patient.deliveries[-2:]) == ["C1-0", "C2-0"]
    hold.clear()
    hold.release()
    async with asyncio.timeout(SAFETY):
        assert await task == len(keys)

    assert receiver.max_target_in_flight == 1
    sent = [k for k in receiver.keys() if k in keys]
    assert [k for k in sent if k.startswith("C1")] == [k for k in keys if k.startswith("C1")]
    assert [k for k in sent if k.startswith("C2")] == [k for k in keys if k.startswith("C2")]
    stored = await rows(database)
    assert all(stored[k].status == OutboxStatus.SENT and stored[k].attempts == 1 for k in keys)


async def test_a_round_cancelled_while_it_claims_ends_after_its_drains_give_their_rows_back(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run_once`` is cancelled while its claim is under way: the claim commits, and the
    round ends only once the drains it started are done (a send already on the wire recorded,
    every other row given back), in both buckets."""
    ws = await add_workspace(database, "W-1")
    for key in ("post-0", "post-1"):
        await put(database, clock, ws, key)
    for key in ("dm-0", "dm-1"):
        await put(database, clock, ws, key, method=Method.DM)
    hold = receiver.inject(Fault("hold", key="dm-0"))
    worker = worker_of(database, port, clock, max_in_flight_per_bucket=1)
    claiming, gate = asyncio.Event(), asyncio.Event()

    async def hold_claims(only: object) -> None:
        claiming.set()
        await gate.wait()

    around_claims(worker, monkeypatch, before=hold_claims)
    held_when_done: list[list[int]] = []
    task = asyncio.create_task(worker.run_once())
    task.add_done_callback(lambda _: held_when_done.append(worker.held()))
    async with asyncio.timeout(SAFETY):
        await claiming.wait()
    task.cancel()
    await asyncio.sleep(0)
    gate.set()
    stored = await rows(database)
    posts = {stored["post-0"].id, stored["post-1"].id}
    await until(lambda: len(worker.held()) > 0)  # the claim committed
    await until(lambda: not posts & set(worker.held()) or task.done())
    hold.release()
    async with asyncio.timeout(SAFETY):
        await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()
    assert held_when_done == [[]]  # every row recorded or given back when the round ended
    stored = await rows(database)
    for key, row in stored.items():
        if key in receiver.keys():
            assert row.status == OutboxStatus.SENT
        else:
            assert (row.status, row.leased_by, row.attempts) == (OutboxStatus.PENDING, None, 0)
    assert receiver.duplicates() == 0


async def test_a_child_claimed_with_more_rows_waits_here_for_its_parent_then_goes_at_once(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """A DM that depends on another DM of the bucket, both taken by the drain's claim for
    more: the child's lane waits for the parent here and sends right after it, on its first
    look (not put back to look again later as if the parent were held elsewhere)."""
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 2)  # the first claim: a full batch
    parent = await put(database, clock, ws, "parent", method=Method.DM, target=Target(user_id="P"))
    await put(
        database,
        clock,
        ws,
        "child",
        method=Method.DM,
        target=Target(user_id="C"),
        depends_on=parent,
    )
    hold = receiver.inject(Fault("hold", key="parent"))
    worker = worker_of(database, port, clock, batch_size=2)
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: hold.hits == 1)
        hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys([*keys, "parent", "child"])
    finally:
        await worker.stop()

    sent = receiver.keys()
    assert sent.index("parent") < sent.index("child")
    assert sends(worker) == {("dm", "sent"): 4}  # nothing deferred, nothing retried
    stored = await rows(database)
    assert (stored["child"].attempts, stored["child"].status) == (1, OutboxStatus.SENT)


async def refused_while_claiming_more(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[DeliveryWorker, list[str], asyncio.Event, asyncio.Event]:
    """Eight DMs in batches of four: the drain's claim for more is held back until the test
    lets it go (``gate``), and the first DM is answered 429 (an hour) meanwhile. Returns the
    running worker, the keys, the gate, and an event set once the claim for more committed."""
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 8)
    limit = receiver.inject(Fault("status", status=429, retry_after=3600, key=keys[0]))
    worker = worker_of(database, port, clock, batch_size=4)
    refilling, gate, claimed = hold_claims_for_more(worker, monkeypatch)
    refused = (await rows(database))[keys[0]].id
    await worker.start()
    async with asyncio.timeout(SAFETY):
        await refilling.wait()
        await receiver.wait_until(lambda: limit.hits == 1)
    await until(lambda: refused not in worker.held())  # the 429 is recorded
    return worker, keys, gate, claimed


async def assert_given_back_after_the_pause(
    database: Database, receiver: FakeReceiver, keys: list[str]
) -> None:
    stored = await rows(database)
    refused = stored[keys[0]]
    assert refused.rate_limited == 1 and refused.status == OutboxStatus.PENDING
    for key in keys[4:]:  # the claim for more
        row = stored[key]
        assert (row.status, row.leased_by, row.attempts) == (OutboxStatus.PENDING, None, 0)
        assert row.next_attempt_at >= refused.next_attempt_at
    assert not set(keys[4:]) & set(receiver.keys())


async def test_rows_claimed_for_more_after_a_429_go_back_not_due_before_the_pause_ends(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The drain's claim for more commits after a 429 paused the bucket: those rows go back at
    once (not left leased), due no earlier than the refused row, like the drain's own."""
    worker, keys, gate, claimed = await refused_while_claiming_more(
        database, receiver, port, clock, monkeypatch
    )
    try:
        gate.set()  # the claim for more commits now, the bucket paused
        async with asyncio.timeout(SAFETY):
            await claimed.wait()
            while True:  # no event tells of a release
                stored = await rows(database)
                if all(stored[k].leased_by is None for k in keys[4:]):
                    break
                await asyncio.sleep(0.01)
        await until(lambda: worker.held() == [])
    finally:
        await worker.stop()
    await assert_given_back_after_the_pause(database, receiver, keys)


async def test_a_stop_while_claiming_more_after_a_429_gives_those_rows_back_after_the_pause(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As above, but a stop lands while the claim for more is under way: its rows go back
    unleased, and still not due before the refused row (the pause is in memory only: after a
    restart they would go out before it, out of order)."""
    worker, keys, gate, _ = await refused_while_claiming_more(
        database, receiver, port, clock, monkeypatch
    )
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # the stop has begun
    gate.set()
    async with asyncio.timeout(SAFETY):
        await stopping
    assert worker.held() == []
    await assert_given_back_after_the_pause(database, receiver, keys)


async def test_a_stop_during_a_round_returns_once_its_send_in_flight_is_recorded(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    for key in ("m0", "m1", "m2"):
        await put(database, clock, ws, key)
    hold = receiver.inject(Fault("hold", key="m0"))
    worker = worker_of(database, port, clock)
    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 1)
    held_when_stopped: list[list[int]] = []
    stopping = asyncio.create_task(worker.stop())
    stopping.add_done_callback(lambda _: held_when_stopped.append(worker.held()))
    await asyncio.sleep(0)  # the stop has begun
    hold.release()
    async with asyncio.timeout(SAFETY):
        await stopping
        await asyncio.gather(task, return_exceptions=True)

    assert held_when_stopped == [[]]  # m0 recorded, m1 and m2 given back, before stop returned
    stored = await rows(database)
    assert receiver.keys() == ["m0"] and stored["m0"].status == OutboxStatus.SENT
    for key in ("m1", "m2"):
        assert (stored[key].status, stored[key].leased_by) == (OutboxStatus.PENDING, None)


# --- the background loop: polling, claim failures, stopping --------------------------------------


async def test_a_row_enqueued_without_a_wake_is_found_by_the_poll(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = await add_workspace(database, "W-1")
    worker = worker_of(database, port, clock, poll_interval_seconds=0.05)
    looked = asyncio.Event()

    async def after(only: object) -> None:
        looked.set()

    around_claims(worker, monkeypatch, after=after)
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await looked.wait()  # the first look found nothing
        await put(database, clock, ws, "quiet")  # nobody calls wake()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(["quiet"])
    finally:
        await worker.stop()
    assert (await rows(database))["quiet"].status == OutboxStatus.SENT


@pytest.mark.parametrize("failure", ["bug", "outage"])
async def test_a_failed_claim_waits_for_the_next_poll_or_wake_then_delivers(
    failure: str,
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The claim fails once: the loop goes on (no crash), does not claim again at once (even
    with a batch of one, where a full claim would), and delivers once woken."""
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "later")
    worker = worker_of(database, port, clock, batch_size=1, poll_interval_seconds=3600)
    claims: list[object] = []
    failed = asyncio.Event()

    async def fail_the_first_claim(only: object) -> None:
        claims.append(only)
        if len(claims) == 1:
            failed.set()
            if failure == "bug":
                raise RuntimeError("boom")
            raise DatabaseUnavailable(Outage.UNREACHABLE, "gone")

    around_claims(worker, monkeypatch, before=fail_the_first_claim)
    caplog.set_level(logging.INFO, logger="bot.delivery")
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await failed.wait()
        for _ in range(50):  # the loop has every chance to claim again by itself
            await asyncio.sleep(0)
        assert claims == [None]  # it waits for the poll (an hour) or a wake
        worker.wake()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(["later"])
    finally:
        await worker.stop()

    told = [r for r in caplog.records if r.name == "bot.delivery.worker"]
    if failure == "bug":
        assert [(r.levelno, r.getMessage()) for r in told] == [
            (logging.ERROR, "delivery: claiming outbox rows failed; retrying")
        ]
        assert told[0].exc_info is not None and told[0].exc_info[0] is RuntimeError
    else:
        assert told == []  # the database's health tells of an outage, once


async def test_a_stop_while_the_loop_claims_returns_once_that_claim_is_given_back(
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = await add_workspace(database, "W-1")
    for key in ("a", "b"):
        await put(database, clock, ws, key)
    worker = worker_of(database, port, clock)
    claiming, gate = asyncio.Event(), asyncio.Event()

    async def hold_claims(only: object) -> None:
        claiming.set()
        await gate.wait()

    around_claims(worker, monkeypatch, before=hold_claims)
    await worker.start()
    async with asyncio.timeout(SAFETY):
        await claiming.wait()
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # the stop has begun
    gate.set()
    async with asyncio.timeout(SAFETY):
        await stopping

    running = [
        t for t in asyncio.all_tasks() if t.get_name() == "delivery-worker w1" and not t.done()
    ]
    assert running == []  # the loop has ended, not left behind to finish its claim
    assert worker.held() == [] and receiver.keys() == []
    stored = await rows(database)
    assert {(r.status, r.leased_by, r.attempts) for r in stored.values()} == {
        (OutboxStatus.PENDING, None, 0)
    }


async def test_learned_rates_kept_before_a_restart_pace_the_new_worker_sqlite_only(
    sqlite_database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """On SQLite the learned rates live in memory and are kept in the database; a new worker
    reads them before its first sends. (PostgreSQL's replicas share their buckets' rows.)"""
    ws = await add_workspace(sqlite_database, "W-1")
    async with sqlite_database.transaction() as session:
        session.add(
            DeliveryRate(
                workspace_id=ws,
                bucket="dm",
                rate=600.0,
                burst=1000,
                learned=True,
                measured=600.0,
                rate_limited=1,
                updated_at=clock.now(),
            )
        )
    await put(sqlite_database, clock, ws, "dm", method=Method.DM)
    worker = DeliveryWorker(sqlite_database, port, settings(), clock=clock, instance="w1")
    assert await worker.run_once() == 1
    bucket = worker.limits.bucket(ws, Method.DM)
    assert bucket.pace is not None and bucket.pace.learned
    assert bucket.pace.rate == 600.0


class SlowChannelPort(HttpPort):
    """The fake platform with one send per channel every ~17 minutes (one token to start)."""

    def channel_rate_limit(self) -> RateLimit | None:
        return RateLimit(rate=0.001, burst=1)


class ChannelPacedPort(HttpPort):
    """The fake platform with a per-channel limit (as Slack's), generous enough not to wait."""

    def channel_rate_limit(self) -> RateLimit | None:
        return RateLimit(rate=1000.0, burst=1000)


async def test_channel_lanes_overlap_even_with_one_send_in_flight_per_bucket(
    database: Database, receiver: FakeReceiver, clock: JumpClock
) -> None:
    """``max_in_flight_per_bucket = 1`` keeps a bucket's sends one at a time, except for the
    channel lanes of a platform that paces per channel: two channels still go side by side."""
    ws = await add_workspace(database, "W-1")
    keys = []
    for n in range(3):
        for channel in ("C1", "C2"):
            keys.append(f"{channel}-{n}")
            await put(database, clock, ws, keys[-1], target=Target(channel_id=channel))
    hold = receiver.inject(Fault("hold", times=None))
    port = ChannelPacedPort(receiver.url, timeout=SAFETY * 4)
    try:
        worker = worker_of(database, port, clock, max_in_flight_per_bucket=1)
        task = asyncio.create_task(worker.run_once())
        async with asyncio.timeout(SAFETY):
            await receiver.wait_until(lambda: hold.hits == 2)
        hold.clear()
        hold.release()
        async with asyncio.timeout(SAFETY):
            assert await task == len(keys)
    finally:
        await port.aclose()
    assert receiver.max_in_flight == 2 and receiver.max_target_in_flight == 1
    assert [k for k in receiver.keys() if k.startswith("C1")] == ["C1-0", "C1-1", "C1-2"]


async def test_a_cap_of_two_holds_the_third_target_until_a_send_ends(
    database: Database, receiver: FakeReceiver, patient: HttpPort, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 3)
    hold = receiver.inject(Fault("hold", times=None))
    worker = DeliveryWorker(
        database, patient, settings(max_in_flight_per_bucket=2), clock=clock, instance="w1"
    )
    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: hold.hits == 2)
    # The one check here that waits a while for something not to happen: a third send beside
    # the two held would reach the fake at once; this grace cannot make the test fail.
    for _ in range(50):
        if hold.hits > 2:
            break
        await asyncio.sleep(0.01)
    assert (hold.hits, receiver.in_flight) == (2, 2)  # the third target waits for a slot
    hold.clear()
    hold.release()
    async with asyncio.timeout(SAFETY):
        assert await task == 3
    assert receiver.max_in_flight == 2
    assert sorted(receiver.keys()) == keys


async def test_a_429_among_concurrent_sends_ends_the_round_normally(
    database: Database, receiver: FakeReceiver, port: HttpPort, clock: JumpClock
) -> None:
    """The 429 stops the drain's lanes still waiting for a slot; ``run_once`` still returns
    (nobody cancelled it), with the rows the pause held back given back after it."""
    ws = await add_workspace(database, "W-1")
    keys = await dm_fan_out(database, clock, ws, "dm", 4)
    receiver.inject(Fault("status", status=429, retry_after=3600, key="dm-0"))
    hold = receiver.inject(Fault("hold", key="dm-1"))
    worker = worker_of(database, port, clock, max_in_flight_per_bucket=2)
    task = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: receiver.rate_limited == 1)
    hold.release()  # dm-1 went out beside dm-0, or was held back by the pause
    async with asyncio.timeout(SAFETY):
        assert await task == len(receiver.keys())  # returned, not cancelled
    assert set(receiver.keys()) <= {"dm-1"}
    stored = await rows(database)
    for key in keys[2:]:  # waiting for a slot when the 429 came
        assert (stored[key].status, stored[key].leased_by) == (OutboxStatus.PENDING, None)
        assert stored[key].next_attempt_at >= stored["dm-0"].next_attempt_at
    assert worker.held() == []


async def test_a_full_claim_looks_again_at_once_so_other_workspaces_are_not_held_up(
    database: Database, receiver: FakeReceiver, patient: HttpPort, clock: JumpClock
) -> None:
    """A batch of two fills up with W-1's and W-2's posts, both stuck on the wire; W-3's post
    goes out meanwhile (the loop claims again at once after a full batch, not at the poll)."""
    keys = []
    for name in ("W-1", "W-2", "W-3"):
        ws = await add_workspace(database, name)
        keys.append(f"{name}-post")
        await put(database, clock, ws, keys[-1])
    holds = [receiver.inject(Fault("hold", key=key)) for key in keys[:2]]
    worker = DeliveryWorker(
        database,
        patient,
        settings(batch_size=2, poll_interval_seconds=3600),
        clock=clock,
        instance="w1",
    )
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys[2:])
        assert all(hold.hits == 1 for hold in holds)
        for hold in holds:
            hold.release()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        await worker.stop()
    assert receiver.keys()[0] == "W-3-post" and receiver.duplicates() == 0


class QuotaPort(ChannelPacedPort):
    """Says, in the receipt of the post keyed ``spent``, that its channel's window is used up
    for an hour (Discord's ``X-RateLimit-Remaining: 0``)."""

    async def deliver(self, delivery: Delivery) -> Receipt:
        receipt = await super().deliver(delivery)
        if delivery.idempotency_key == "spent":
            return replace(receipt, quota=Quota(limit=5, remaining=0, reset_after=3600))
        return receipt


async def test_a_channels_spent_window_holds_that_channel_only_not_the_method(
    database: Database, receiver: FakeReceiver, clock: JumpClock
) -> None:
    ws = await add_workspace(database, "W-1")
    await put(database, clock, ws, "spent", target=Target(channel_id="C1"))
    port = QuotaPort(receiver.url)
    try:
        worker = worker_of(database, port, clock)
        async with asyncio.timeout(SAFETY):
            assert await worker.run_once() == 1
        assert worker.limits.channel_bucket(ws, "C1").is_paused()  # type: ignore[union-attr]
        assert not worker.limits.bucket(ws, Method.POST).is_paused()
        await put(database, clock, ws, "elsewhere", target=Target(channel_id="C2"))
        async with asyncio.timeout(SAFETY):
            assert await worker.run_once() == 1  # another channel is not held for the hour
    finally:
        await port.aclose()
    assert receiver.keys() == ["spent", "elsewhere"]


@pytest.mark.parametrize("failure", ["bug", "outage"])
async def test_a_lane_that_fails_gives_its_rows_back_and_says_so_once(
    failure: str,
    database: Database,
    receiver: FakeReceiver,
    port: HttpPort,
    clock: JumpClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Something fails around the first send (here: counting it): the lane stops, its other
    rows go back unleased at once, nothing stays held; a bug is logged with its traceback, an
    outage is not (the database's health tells of it)."""
    ws = await add_workspace(database, "W-1")
    for key in ("m0", "m1", "m2"):
        await put(database, clock, ws, key)
    worker = worker_of(database, port, clock)
    counted = worker.metrics.sent

    def sent(method: str, result: str) -> None:
        monkeypatch.setattr(worker.metrics, "sent", counted)  # once
        if failure == "bug":
            raise RuntimeError("boom")
        raise DatabaseUnavailable(Outage.UNREACHABLE, "gone")

    monkeypatch.setattr(worker.metrics, "sent", sent)
    caplog.set_level(logging.INFO, logger="bot.delivery")
    async with asyncio.timeout(SAFETY):
        assert await worker.run_once() == 0

    assert worker.held() == [] and receiver.keys() == ["m0"]
    stored = await rows(database)
    assert stored["m0"].status == OutboxStatus.SENT  # recorded before the failure
    for key in ("m1", "m2"):
        assert (stored[key].status, stored[key].leased_by) == (OutboxStatus.PENDING, None)
    told = [r for r in caplog.records if r.name == "bot.delivery.worker"]
    if failure == "bug":
        assert [(r.levelno, r.getMessage()) for r in told] == [
            (logging.ERROR, "delivery: draining workspace W-1, post failed")
        ]
        assert told[0].exc_info is not None and told[0].exc_info[0] is RuntimeError
    else:
        assert told == []
