"""What a claim hands the worker and what one attempt at a row records (invariants 2 and 9).

These drive :meth:`Leases.claim` and :class:`RowSender` directly, against the real outbox on
both databases, with a platform that answers as each test scripts it (a receipt, a 429, an
error). The database's clock is a :class:`FakeClock` the test moves by hand; a pause is on the
bucket's own clock, which the test also sets. So every due time, lease and pause is checked
exactly, and nothing depends on how fast the machine is.

They close the gaps mutation testing found (docs/testing.md, issue 17): a claim that says the
wrong channel or recipient (the pacing lanes), claims a row a moment early or leaves a paused
bucket's rows in; an attempt that counts a 429 as a failure, forgets an earlier doubt about a
send, retries a row that should be dead, or records the send wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot.config import DeliverySection
from bot.delivery import dead_letters, sending
from bot.delivery.adaptive import Pace
from bot.delivery.dead_letters import DeadLetter
from bot.delivery.leases import Claimed, Leases
from bot.delivery.ratelimit import TokenBucket
from bot.delivery.sending import (
    DEPENDENCY_RECHECK_SECONDS,
    PAUSE_WAKE_MARGIN_SECONDS,
    Kind,
    RowSender,
    backoff_delay,
)
from bot.delivery.uninterrupted import complete
from bot.port import (
    Delivery,
    DeliveryError,
    Method,
    PermanentDeliveryError,
    Quota,
    RateLimited,
    Receipt,
    RecipientUnreachable,
    Target,
)
from storage.db import Database
from storage.models import Member, OutboxMessage, OutboxStatus
from tests.fakes.clock import FakeClock
from tests.test_delivery import add_workspace, put

LEASE = timedelta(seconds=10)
START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def row(db: Database, row_id: int) -> OutboxMessage:
    async with db.transaction() as session:
        found = await session.get(OutboxMessage, row_id)
        assert found is not None
        return found


async def set_row(db: Database, row_id: int, **values: object) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values)
        )


# --- Leases.claim -------------------------------------------------------------------------------


async def test_a_claim_leases_each_due_row_to_this_worker_for_one_lease_and_says_where_it_goes(
    database: Database, clock: FakeClock
) -> None:
    ws = await add_workspace(database, "W-1")
    post = await put(database, clock, ws, "post", target=Target(channel_id="C1"))  # type: ignore[arg-type]
    dm = await put(
        database,
        clock,  # type: ignore[arg-type]
        ws,
        "dm",
        method=Method.DM,
        target=Target(user_id="U1", dm_channel_id="D1"),
    )
    dm_channel = await put(
        database,
        clock,  # type: ignore[arg-type]
        ws,
        "dm-channel",
        method=Method.DM,
        target=Target(dm_channel_id="D2"),
    )
    reply = await put(
        database,
        clock,  # type: ignore[arg-type]
        ws,
        "reply",
        target=Target(channel_id="C2"),
        depends_on=post,
    )
    # A channel id stored as a number (an old row) is still a channel lane.
    await set_row(database, reply, target={"channel_id": 42})
    # Rewritten after the others (on PostgreSQL it now lies after them): still handed first.
    await set_row(database, post, target={"channel_id": "C1"})
    leases = Leases(database, clock, "A", LEASE, batch_size=10)

    claimed = await leases.claim(())

    assert claimed == [
        Claimed(post, ws, "W-1", Method.POST, None, channel_id="C1", user_id=None),
        # A DM's lane is its member; a DM channel stands for the member when there is no id.
        Claimed(dm, ws, "W-1", Method.DM, None, channel_id=None, user_id="U1"),
        Claimed(dm_channel, ws, "W-1", Method.DM, None, channel_id=None, user_id="D2"),
        Claimed(reply, ws, "W-1", Method.POST, post, channel_id="42", user_id=None),
    ]
    for row_id in (post, dm, dm_channel, reply):
        leased = await row(database, row_id)
        assert (leased.leased_by, leased.lease_until) == ("A", START + LEASE)
        assert leased.status is OutboxStatus.PENDING


async def test_a_claim_takes_rows_due_now_and_leases_run_out_now_but_nothing_a_moment_later(
    database: Database, clock: FakeClock
) -> None:
    ws = await add_workspace(database, "W-1")
    ids = {}
    for key in ("due-now", "due-later", "lease-out-now", "lease-out-later", "sent", "dead"):
        ids[key] = await put(database, clock, ws, key)  # type: ignore[arg-type]
    await set_row(database, ids["due-later"], next_attempt_at=START + TICK)
    await set_row(database, ids["lease-out-now"], leased_by="B", lease_until=START)
    await set_row(database, ids["lease-out-later"], leased_by="B", lease_until=START + TICK)
    await set_row(database, ids["sent"], status=OutboxStatus.SENT)
    await set_row(database, ids["dead"], status=OutboxStatus.DEAD)
    leases = Leases(database, clock, "A", LEASE, batch_size=10)

    claimed = await leases.claim(())

    assert [c.id for c in claimed] == [ids["due-now"], ids["lease-out-now"]]
    assert (await row(database, ids["lease-out-later"])).leased_by == "B"
    assert (await row(database, ids["due-later"])).leased_by is None
    # A moment later the other two are due, and held by no one else.
    clock.advance(TICK)
    assert [c.id for c in await leases.claim(())] == [ids["due-later"], ids["lease-out-later"]]


async def test_nothing_due_claims_nothing_and_leases_nothing(
    database: Database, clock: FakeClock
) -> None:
    ws = await add_workspace(database, "W-1")
    later = await put(database, clock, ws, "later")  # type: ignore[arg-type]
    await set_row(database, later, next_attempt_at=START + timedelta(seconds=5))
    leases = Leases(database, clock, "A", LEASE, batch_size=10)

    assert await leases.claim(()) == []
    assert (await row(database, later)).leased_by is None


async def test_a_claim_leaves_out_exactly_the_paused_buckets(
    database: Database, clock: FakeClock
) -> None:
    one = await add_workspace(database, "W-1")
    two = await add_workspace(database, "W-2")
    keys = {}
    for ws in (one, two):
        for method in (Method.POST, Method.DM):
            key = f"{ws}-{method.value}"
            keys[ws, method] = await put(database, clock, ws, key, method=method)  # type: ignore[arg-type]
    leases = Leases(database, clock, "A", LEASE, batch_size=10)

    claimed = await leases.claim({(one, Method.POST), (two, Method.DM)})

    assert sorted(c.id for c in claimed) == sorted([keys[one, Method.DM], keys[two, Method.POST]])
    for paused in ((one, Method.POST), (two, Method.DM)):
        assert (await row(database, keys[paused])).leased_by is None


async def test_a_row_of_an_unknown_method_is_dead_lettered_and_the_rest_are_claimed(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await add_workspace(database, "W-1")
    first = await put(database, clock, ws, "first")  # type: ignore[arg-type]
    odd = await put(database, clock, ws, "odd")  # type: ignore[arg-type]
    last = await put(database, clock, ws, "last")  # type: ignore[arg-type]
    await set_row(database, odd, method="pigeon")
    leases = Leases(database, clock, "A", LEASE, batch_size=10)
    caplog.set_level(logging.ERROR, logger="bot.delivery")

    claimed = await leases.claim(())

    assert [c.id for c in claimed] == [first, last]
    dead = await row(database, odd)
    assert dead.status is OutboxStatus.DEAD
    assert dead.last_error == "unknown delivery method"
    assert (dead.leased_by, dead.lease_until) == (None, None)
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox [{odd}]: unknown method; dead-lettered"
    ]
    # The others are leased as usual.
    assert (await row(database, last)).leased_by == "A"


# --- RowSender: one attempt at one row ----------------------------------------------------------

Answer = Callable[[Delivery], Awaitable[Receipt]]


class ScriptedPlatform:
    """A platform port that answers each delivery as the test scripted it, and keeps them."""

    platform = "fake"

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.deliveries: list[Delivery] = []

    def rate_limits(self) -> dict[Method, Any]:
        return {}

    def channel_rate_limit(self) -> None:
        return None

    def answer(self, answer: Answer) -> None:
        self.answers.append(answer)

    def answer_with(self, outcome: Receipt | Exception) -> None:
        async def scripted(delivery: Delivery) -> Receipt:
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        self.answer(scripted)

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.deliveries.append(delivery)
        return await self.answers.pop(0)(delivery)


class LoopTime:
    """The buckets' monotonic clock, set by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SEED = 7


class World:
    def __init__(self, db: Database, clock: FakeClock, **overrides: object) -> None:
        values: dict[str, object] = {
            "max_attempts": 3,
            "poll_interval_seconds": 5.0,
            "backoff_base_seconds": 4.0,
            "backoff_max_seconds": 60.0,
        }
        values.update(overrides)
        self.settings = DeliverySection.model_validate(values)
        self.db = db
        self.clock = clock
        self.platform = ScriptedPlatform()
        self.leases = Leases(db, clock, "A", LEASE, batch_size=10)
        self.wakes: list[float] = []
        self.sender = RowSender(
            db,
            self.platform,
            self.settings,
            self.leases,
            clock=clock,
            rng=random.Random(SEED),
            wake_in=self.wakes.append,
        )
        self.time = LoopTime()
        self.bucket = TokenBucket(100.0, 100, time=self.time)
        self.ws = 0

    async def claim_one(self, row_id: int) -> Claimed:
        """Claim the due rows and keep only ``row_id`` (the rest are given back)."""
        claimed = await self.leases.claim(())
        await self.leases.release([c.id for c in claimed if c.id != row_id], None)
        [mine] = [c for c in claimed if c.id == row_id]
        return mine

    async def attempt(self, row_id: int, channel: TokenBucket | None = None) -> Any:
        return await self.sender.attempt(await self.claim_one(row_id), self.bucket, channel)


@pytest.fixture
async def world(database: Database, clock: FakeClock) -> World:
    return World(database, clock)


async def one_post(world: World, **target: str) -> int:
    """A post queued in a new workspace W-1 (``world.ws``); returns its row's id."""
    ws = world.ws = await add_workspace(world.db, "W-1")
    return await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        ws,
        "post",
        target=Target(**target) if target else Target(channel_id="C1"),
        text="hello team",
    )


def later(world: World, seconds: float, receipt: Receipt | Exception) -> Answer:
    """An answer that comes ``seconds`` after the send left (by the database's clock)."""

    async def answer(delivery: Delivery) -> Receipt:
        world.clock.advance(timedelta(seconds=seconds))
        if isinstance(receipt, Exception):
            raise receipt
        return receipt

    return answer


async def test_a_sent_row_records_the_platform_ids_and_ends_its_lease_and_doubt(
    world: World,
) -> None:
    row_id = await one_post(world)
    await set_row(world.db, row_id, last_error="DeliveryError: earlier")
    world.platform.answer(later(world, 2, Receipt(channel_id="C1-real", message_id="m-1")))

    result = await world.attempt(row_id)

    assert (result.kind, result.dead_letter, result.not_before) == (Kind.FINISHED, None, None)
    [delivery] = world.platform.deliveries
    assert delivery.outbox_id == row_id
    assert (delivery.workspace_id, delivery.method) == ("W-1", Method.POST)
    assert delivery.target == Target(channel_id="C1")
    assert delivery.message.fallback() == "hello team"
    assert (delivery.idempotency_key, delivery.attempt, delivery.maybe_sent) == ("post", 1, False)
    assert delivery.data is None
    sent = await row(world.db, row_id)
    assert sent.status is OutboxStatus.SENT
    assert sent.sent_at == START + timedelta(seconds=2)  # when the answer came
    assert (sent.platform_channel_id, sent.platform_message_id) == ("C1-real", "m-1")
    assert (sent.sending_since, sent.lease_until, sent.leased_by, sent.last_error) == (
        None,
        None,
        None,
        None,
    )
    assert sent.attempts == 1
    assert "part_ids" not in sent.target


async def test_a_send_without_a_channel_in_its_receipt_keeps_the_targets(world: World) -> None:
    ws = await add_workspace(world.db, "W-1")
    post = await put(world.db, world.clock, ws, "post", target=Target(channel_id="C1"))  # type: ignore[arg-type]
    dm = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        ws,
        "dm",
        method=Method.DM,
        target=Target(dm_channel_id="D1"),
    )
    for row_id in (post, dm):
        world.platform.answer_with(Receipt(message_id=f"m-{row_id}"))
        assert (await world.attempt(row_id)).kind is Kind.FINISHED
    assert (await row(world.db, post)).platform_channel_id == "C1"
    assert (await row(world.db, dm)).platform_channel_id == "D1"


async def test_the_parts_a_post_went_out_as_are_kept_for_its_edits(world: World) -> None:
    post = await one_post(world)
    ws = world.ws
    world.platform.answer_with(Receipt(channel_id="C1", message_id="m-1", part_ids=("m-1", "m-2")))
    assert (await world.attempt(post)).kind is Kind.FINISHED
    assert (await row(world.db, post)).target == {"channel_id": "C1", "part_ids": ["m-1", "m-2"]}

    edit = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        ws,
        "edit",
        method=Method.UPDATE,
        target=Target(channel_id="C1"),
        depends_on=post,
    )
    world.platform.answer_with(
        Receipt(channel_id="C1", message_id="m-1", part_ids=("m-1", "m-2", "m-3"))
    )
    assert (await world.attempt(edit)).kind is Kind.FINISHED
    # The edit pointed at the original and its parts; the new parts are kept on the original.
    edited = world.platform.deliveries[-1].target
    assert (edited.message_id, edited.channel_id, edited.part_ids) == ("m-1", "C1", ("m-1", "m-2"))
    assert (await row(world.db, post)).target["part_ids"] == ["m-1", "m-2", "m-3"]
    assert "part_ids" not in (await row(world.db, edit)).target


async def test_a_row_another_worker_recorded_as_sent_meanwhile_is_left_as_it_recorded(
    world: World,
) -> None:
    row_id = await one_post(world)

    async def recorded_elsewhere(delivery: Delivery) -> Receipt:
        await set_row(
            world.db,
            row_id,
            status=OutboxStatus.SENT,
            platform_message_id="theirs",
            leased_by=None,
            lease_until=None,
        )
        return Receipt(channel_id="C1", message_id="ours")

    world.platform.answer(recorded_elsewhere)
    assert (await world.attempt(row_id)).kind is Kind.SKIPPED
    assert (await row(world.db, row_id)).platform_message_id == "theirs"


async def test_a_row_no_longer_ours_is_not_sent(world: World) -> None:
    row_id = await one_post(world)
    claimed = await world.claim_one(row_id)
    await set_row(world.db, row_id, leased_by="B")  # our lease ran out; B took it over
    assert (await world.sender.attempt(claimed, world.bucket)).kind is Kind.SKIPPED
    assert world.platform.deliveries == []
    await set_row(world.db, row_id, leased_by="A", status=OutboxStatus.SENT)
    assert (await world.sender.attempt(claimed, world.bucket)).kind is Kind.SKIPPED
    assert world.platform.deliveries == []
    assert (await row(world.db, row_id)).attempts == 0


async def test_a_send_whose_outcome_was_never_learnt_goes_out_with_maybe_sent(
    world: World,
) -> None:
    row_id = await one_post(world)
    crashed_at = START - timedelta(minutes=1)
    await set_row(world.db, row_id, sending_since=crashed_at, attempts=1)
    world.platform.answer_with(Receipt(channel_id="C1", message_id="m-1"))

    await world.attempt(row_id)

    [delivery] = world.platform.deliveries
    assert (delivery.attempt, delivery.maybe_sent) == (2, True)


async def test_a_send_in_flight_holds_its_row_for_a_lease_from_when_it_went_out(
    world: World,
) -> None:
    row_id = await one_post(world)
    mine = await world.claim_one(row_id)
    world.clock.advance(timedelta(seconds=3))  # it waited its turn in the bucket
    went_out = START + timedelta(seconds=3)
    other = Leases(world.db, world.clock, "B", LEASE, batch_size=10)
    seen: dict[str, object] = {}

    async def in_flight(delivery: Delivery) -> Receipt:
        held = await row(world.db, row_id)
        seen["row"] = (held.leased_by, held.lease_until, held.sending_since, held.attempts)
        seen["claimed"] = await other.claim(())
        # Past the lease the claim gave, but not a lease past the send: still A's.
        world.clock.advance(LEASE - TICK)
        seen["claimed later"] = await other.claim(())
        return Receipt(channel_id="C1", message_id="m-1")

    world.platform.answer(in_flight)

    assert (await world.sender.attempt(mine, world.bucket)).kind is Kind.FINISHED
    assert seen == {
        "row": ("A", went_out + LEASE, went_out, 1),
        "claimed": [],
        "claimed later": [],
    }
    assert (await row(world.db, row_id)).platform_message_id == "m-1"


# --- a 429 --------------------------------------------------------------------------------------


async def test_a_429_puts_the_row_back_due_after_retry_after_uncounted_and_pauses_the_bucket(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    world.platform.answer(later(world, 1, RateLimited(2.5)))

    result = await world.attempt(row_id)

    refused_at = START + timedelta(seconds=1)
    due = refused_at + timedelta(seconds=2.5)
    assert (result.kind, result.not_before, result.dead_letter) == (Kind.RATE_LIMITED, due, None)
    back = await row(world.db, row_id)
    assert back.status is OutboxStatus.PENDING
    assert back.next_attempt_at == due
    assert (back.attempts, back.rate_limited) == (0, 1)  # pacing, not a failed attempt
    assert back.sending_since is None  # a 429 proves it was not sent
    assert (back.lease_until, back.leased_by) == (None, None)
    assert world.bucket.pause_remaining() == 2.5
    assert world.wakes == [2.5 + PAUSE_WAKE_MARGIN_SECONDS]
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {row_id} (workspace W-1, post): rate limited, bucket paused for 2.5s"
    ]


async def test_a_429_keeps_the_doubt_an_earlier_attempt_left(world: World) -> None:
    row_id = await one_post(world)
    crashed_at = START - timedelta(minutes=1)
    await set_row(world.db, row_id, sending_since=crashed_at, attempts=2, rate_limited=4)
    world.platform.answer_with(RateLimited(1.0))

    await world.attempt(row_id)

    back = await row(world.db, row_id)
    assert back.sending_since == crashed_at
    assert (back.attempts, back.rate_limited) == (2, 5)


async def test_a_negative_retry_after_is_read_as_no_wait(world: World) -> None:
    row_id = await one_post(world)
    world.platform.answer_with(RateLimited(-3.0))

    result = await world.attempt(row_id)

    assert result.not_before == START
    assert (await row(world.db, row_id)).next_attempt_at == START
    assert world.bucket.pause_remaining() == 0
    assert world.wakes == [PAUSE_WAKE_MARGIN_SECONDS]


async def test_a_429_of_a_shared_resource_pauses_the_bucket_but_does_not_cut_its_pace(
    world: World,
) -> None:
    row_id = await one_post(world)
    pace = Pace(rate=10.0, ceiling=20.0, floor=1.0)
    world.bucket = TokenBucket(10.0, 1, time=world.time, pace=pace)
    shared = Quota(limit=5, remaining=3, reset_after=0.5, scope="shared")
    world.platform.answer_with(RateLimited(4.0, quota=shared))

    result = await world.attempt(row_id)

    assert result.not_before == START + timedelta(seconds=4)
    assert world.bucket.pause_remaining() == 4.0
    assert (pace.rate_limited, pace.rate) == (0, 10.0)

    # Our own bucket's 429 (no scope, or "user") is one the pace learns from.
    world.platform.answer_with(RateLimited(4.0, quota=Quota(5, 0, 4.0, scope="user")))
    world.time.now += 4.0
    world.clock.advance(timedelta(seconds=4))
    await world.attempt(row_id)
    assert pace.rate_limited == 1


async def test_a_send_held_back_by_a_pause_is_undone_without_counting_it(world: World) -> None:
    row_id = await one_post(world)
    crashed_at = START - timedelta(minutes=1)
    await set_row(world.db, row_id, sending_since=crashed_at, attempts=1)
    world.bucket.pause(3.0)  # a 429 beside it came back while it was being prepared

    result = await world.attempt(row_id)

    due = START + timedelta(seconds=3)
    assert (result.kind, result.not_before) == (Kind.RATE_LIMITED, due)
    assert world.platform.deliveries == []
    back = await row(world.db, row_id)
    assert back.next_attempt_at == due
    assert (back.attempts, back.rate_limited) == (1, 0)
    assert back.sending_since == crashed_at
    assert (back.lease_until, back.leased_by) == (None, None)
    assert world.wakes == [3.0 + PAUSE_WAKE_MARGIN_SECONDS]


async def test_the_platforms_quota_paces_the_channel_when_there_is_one(world: World) -> None:
    row_id = await one_post(world)
    empty = Quota(limit=5, remaining=0, reset_after=2.0)
    channel = TokenBucket(1.0, 1, time=world.time)
    world.platform.answer_with(Receipt(channel_id="C1", message_id="m-1", quota=empty))
    await world.attempt(row_id, channel)
    assert (channel.pause_remaining(), world.bucket.pause_remaining()) == (2.0, 0)

    second = await put(world.db, world.clock, world.ws, "second")  # type: ignore[arg-type]
    world.platform.answer_with(Receipt(channel_id="C1", message_id="m-2", quota=empty))
    await world.attempt(second)
    assert world.bucket.pause_remaining() == 2.0


# --- failures -----------------------------------------------------------------------------------


async def test_a_failed_send_is_retried_after_a_backoff_and_keeps_its_doubt(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    world.platform.answer(later(world, 1, DeliveryError("502 from the platform")))

    result = await world.attempt(row_id)

    assert (result.kind, result.dead_letter) == (Kind.RETRY, None)
    delay = backoff_delay(1, 4.0, 60.0, random.Random(SEED))
    back = await row(world.db, row_id)
    assert back.status is OutboxStatus.PENDING
    assert back.last_error == "DeliveryError: 502 from the platform"
    assert back.next_attempt_at == START + timedelta(seconds=1 + delay)
    assert back.attempts == 1
    # The platform may have created it before failing: the next try says maybe_sent.
    assert back.sending_since == START
    assert (back.lease_until, back.leased_by) == (None, None)
    [record] = caplog.records
    assert record.getMessage() == (
        f"outbox {row_id} (workspace W-1, post): attempt 1/3 failed "
        f"(DeliveryError: 502 from the platform); retry in {delay:.1f}s"
    )
    assert not record.exc_info  # an expected failure, no traceback


async def test_an_unexpected_error_is_retried_and_logged_with_its_traceback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    world.platform.answer_with(RuntimeError("adapter bug"))

    assert (await world.attempt(row_id)).kind is Kind.RETRY
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert (await row(world.db, row_id)).last_error == "RuntimeError: adapter bug"


async def test_the_last_allowed_attempt_that_fails_dead_letters_the_row(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    await set_row(world.db, row_id, attempts=2)  # max_attempts is 3
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    world.platform.answer_with(DeliveryError("timeout"))

    result = await world.attempt(row_id)

    assert result.kind is Kind.FINISHED
    assert result.dead_letter is not None
    assert result.dead_letter.outbox_id == row_id
    assert result.dead_letter.idempotency_key == "post"
    assert (result.dead_letter.workspace_id, result.dead_letter.platform_workspace_id) == (
        world.ws,
        "W-1",
    )
    assert result.dead_letter.method is Method.POST
    assert result.dead_letter.target == Target(channel_id="C1")
    assert result.dead_letter.error == "DeliveryError: timeout"
    assert result.dead_letter.unreachable is False
    dead = await row(world.db, row_id)
    assert (dead.status, dead.last_error, dead.attempts) == (
        OutboxStatus.DEAD,
        "DeliveryError: timeout",
        3,
    )
    assert (dead.lease_until, dead.leased_by) == (None, None)
    assert (
        caplog.records[0]
        .getMessage()
        .endswith("attempt 3/3 failed (DeliveryError: timeout); dead-lettered")
    )


async def test_a_refusal_dead_letters_at_once_and_proves_this_attempt_created_nothing(
    world: World,
) -> None:
    row_id = await one_post(world)
    world.platform.answer_with(PermanentDeliveryError("channel_not_found"))

    result = await world.attempt(row_id)

    assert result.kind is Kind.FINISHED and result.dead_letter is not None
    assert result.dead_letter.unreachable is False
    dead = await row(world.db, row_id)
    assert (dead.status, dead.attempts) == (OutboxStatus.DEAD, 1)
    assert dead.last_error == "PermanentDeliveryError: channel_not_found"
    assert dead.sending_since is None


async def test_a_refusal_keeps_the_doubt_an_earlier_attempt_left(world: World) -> None:
    row_id = await one_post(world)
    crashed_at = START - timedelta(minutes=1)
    await set_row(world.db, row_id, sending_since=crashed_at, attempts=1)
    world.platform.answer_with(RecipientUnreachable("cannot DM this member"))

    result = await world.attempt(row_id)

    assert result.dead_letter is not None and result.dead_letter.unreachable is True
    assert (await row(world.db, row_id)).sending_since == crashed_at


async def test_a_failure_for_a_row_taken_over_meanwhile_records_nothing(world: World) -> None:
    row_id = await one_post(world)

    async def taken_over(delivery: Delivery) -> Receipt:
        await set_row(world.db, row_id, leased_by="B")
        raise PermanentDeliveryError("gone")

    world.platform.answer(taken_over)
    result = await world.attempt(row_id)
    assert (result.kind, result.dead_letter) == (Kind.SKIPPED, None)
    back = await row(world.db, row_id)
    assert (back.status, back.last_error, back.leased_by) == (OutboxStatus.PENDING, None, "B")

    # Nor does a 429 put back a row that is not ours.
    world.platform.answer_with(RateLimited(9.0))
    await set_row(world.db, row_id, leased_by=None, lease_until=None)
    claimed = await world.claim_one(row_id)

    async def taken_over_429(delivery: Delivery) -> Receipt:
        await set_row(world.db, row_id, leased_by="B")
        raise RateLimited(9.0)

    world.platform.answers = [taken_over_429]
    await world.sender.attempt(claimed, world.bucket)
    back = await row(world.db, row_id)
    assert (back.rate_limited, back.next_attempt_at, back.leased_by) == (0, START, "B")


# --- what a row waits for, and rows that cannot be sent -----------------------------------------


async def test_a_child_of_a_parent_pending_elsewhere_waits_for_it_and_is_not_sent(
    database: Database, clock: FakeClock
) -> None:
    world = World(database, clock, poll_interval_seconds=0.25)
    parent = await one_post(world)
    child = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        world.ws,
        "reply",
        target=Target(channel_id="C1"),
        depends_on=parent,
    )
    # The parent is due only in a minute: the child is looked at again then, not before.
    await set_row(world.db, parent, next_attempt_at=START + timedelta(minutes=1))

    result = await world.attempt(child)

    assert result.kind is Kind.RETRY
    assert world.platform.deliveries == []
    waiting = await row(world.db, child)
    assert waiting.next_attempt_at == START + timedelta(minutes=1)
    assert (waiting.lease_until, waiting.leased_by, waiting.attempts) == (None, None, 0)
    assert waiting.sending_since is None

    # A parent due now (held by another worker): the child looks again after the poll interval,
    # here shorter than the recheck's second.
    await set_row(world.db, parent, next_attempt_at=START, leased_by="B", lease_until=START + LEASE)
    clock.advance(timedelta(minutes=1))
    assert (await world.attempt(child)).kind is Kind.RETRY
    rechecked = START + timedelta(minutes=1, seconds=0.25)
    assert (await row(world.db, child)).next_attempt_at == rechecked


async def test_a_child_waits_a_second_at_most_with_a_slow_poll(world: World) -> None:
    parent = await one_post(world)
    child = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        world.ws,
        "reply",
        target=Target(channel_id="C1"),
        depends_on=parent,
    )
    await set_row(world.db, parent, leased_by="B", lease_until=START + LEASE)
    assert (await world.attempt(child)).kind is Kind.RETRY
    second = timedelta(seconds=DEPENDENCY_RECHECK_SECONDS)
    assert (await row(world.db, child)).next_attempt_at == START + second


async def test_a_child_of_a_dead_parent_is_dead_lettered_and_says_why(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    parent = await one_post(world)
    child = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        world.ws,
        "reply",
        target=Target(channel_id="C1"),
        depends_on=parent,
    )
    await set_row(world.db, parent, status=OutboxStatus.DEAD)
    caplog.set_level(logging.WARNING, logger="bot.delivery")

    result = await world.attempt(child)

    error = f"depends on outbox #{parent}, which is dead"
    assert result.kind is Kind.FINISHED
    assert result.dead_letter is not None
    assert (result.dead_letter.outbox_id, result.dead_letter.idempotency_key) == (child, "reply")
    assert (result.dead_letter.workspace_id, result.dead_letter.platform_workspace_id) == (
        world.ws,
        "W-1",
    )
    assert (result.dead_letter.method, result.dead_letter.target) == (
        Method.POST,
        Target(channel_id="C1"),
    )
    assert (result.dead_letter.error, result.dead_letter.unreachable) == (error, False)
    assert world.platform.deliveries == []
    dead = await row(world.db, child)
    assert (dead.status, dead.last_error, dead.leased_by) == (OutboxStatus.DEAD, error, None)
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {child} (workspace W-1, post): dead-lettered, outbox #{parent} it depends on "
        "is dead"
    ]


async def test_replies_and_edits_point_at_what_their_parent_became_and_dms_only_wait(
    world: World,
) -> None:
    parent = await one_post(world)
    await set_row(
        world.db,
        parent,
        status=OutboxStatus.SENT,
        platform_channel_id="C9",
        platform_message_id="m-9",
        target={"channel_id": "C1", "part_ids": ["m-9", "m-10"]},
    )
    children = {}
    for method, target in (
        (Method.POST, Target(channel_id="C1", thread_of="old")),
        (Method.UPDATE, Target(channel_id="C1", message_id="old")),
        (Method.DM, Target(user_id="U1")),
    ):
        children[method] = await put(
            world.db,
            world.clock,  # type: ignore[arg-type]
            world.ws,
            f"child-{method.value}",
            method=method,
            target=target,
            depends_on=parent,
        )
    for method, child in children.items():
        world.platform.answer_with(Receipt(channel_id="C9", message_id=f"m-{method.value}"))
        assert (await world.attempt(child)).kind is Kind.FINISHED
    reply, edit, dm = (d.target for d in world.platform.deliveries)
    assert reply == Target(channel_id="C9", thread_of="m-9")
    assert edit == Target(channel_id="C9", message_id="m-9", part_ids=("m-9", "m-10"))
    assert dm == Target(user_id="U1")


async def test_a_parent_the_platform_gave_no_ids_leaves_the_childs_own(world: World) -> None:
    parent = await one_post(world)
    await set_row(world.db, parent, status=OutboxStatus.SENT)
    children = {}
    for method, target in (
        (Method.POST, Target(channel_id="C1", thread_of="t-1")),
        (Method.UPDATE, Target(channel_id="C1", message_id="m-1")),
    ):
        children[method] = await put(
            world.db,
            world.clock,  # type: ignore[arg-type]
            world.ws,
            f"child-{method.value}",
            method=method,
            target=target,
            depends_on=parent,
        )
    for child in children.values():
        world.platform.answer_with(Receipt(channel_id="C1", message_id="m-x"))
        await world.attempt(child)
    reply, edit = (d.target for d in world.platform.deliveries)
    assert reply == Target(channel_id="C1", thread_of="t-1")
    assert edit == Target(channel_id="C1", message_id="m-1")


async def test_a_payload_that_no_longer_decodes_is_dead_lettered_unsent(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    await set_row(world.db, row_id, payload={"blocks": [{"kind": "nonsense"}]})
    caplog.set_level(logging.WARNING, logger="bot.delivery")

    result = await world.attempt(row_id)

    assert result.kind is Kind.FINISHED and result.dead_letter is not None
    assert world.platform.deliveries == []
    dead = await row(world.db, row_id)
    assert dead.status is OutboxStatus.DEAD
    assert dead.last_error is not None
    assert dead.last_error.startswith("undecodable message: ")
    assert dead.last_error.endswith(" validation errors")
    assert result.dead_letter.error == dead.last_error
    assert (result.dead_letter.outbox_id, result.dead_letter.unreachable) == (row_id, False)
    # The dead letter says what was lost and where it was to go, like any other.
    assert (result.dead_letter.idempotency_key, result.dead_letter.target) == (
        "post",
        Target(channel_id="C1"),
    )
    assert (
        result.dead_letter.workspace_id,
        result.dead_letter.platform_workspace_id,
        result.dead_letter.method,
    ) == (world.ws, "W-1", Method.POST)
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {row_id}: payload does not decode; dead-lettered"
    ]


async def test_a_webhook_row_goes_out_as_its_stored_event(world: World) -> None:
    ws = world.ws = await add_workspace(world.db, "W-1")
    event = {"url": "https://hooks.example/x", "event": {"type": "blocker.opened", "id": 7}}
    hook = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        ws,
        "hook",
        method=Method.WEBHOOK,
        target=Target(),
    )
    await set_row(world.db, hook, payload=event)
    world.platform.answer_with(Receipt())

    assert (await world.attempt(hook)).kind is Kind.FINISHED
    [delivery] = world.platform.deliveries
    assert delivery.data == event
    assert delivery.message.fallback() == ""


# --- recording the outcome ----------------------------------------------------------------------


def hiccups(world: World, failures: list[Exception]) -> None:
    """Make the database's next transactions fail with ``failures``, one each, in order."""
    real = world.db.transaction

    @contextlib.asynccontextmanager
    async def flaky(**kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        async with real(**kwargs) as session:
            yield session

    world.db.transaction = flaky  # type: ignore[method-assign]


async def test_an_outcome_is_recorded_through_two_database_hiccups(world: World) -> None:
    row_id = await one_post(world)

    async def sent_then_hiccups(delivery: Delivery) -> Receipt:
        hiccups(world, [OperationalError("UPDATE outbox", {}, Exception("locked")), OSError()])
        return Receipt(channel_id="C1", message_id="m-1")

    world.platform.answer(sent_then_hiccups)
    assert (await world.attempt(row_id)).kind is Kind.FINISHED
    assert (await row(world.db, row_id)).status is OutboxStatus.SENT


async def test_an_outcome_not_recorded_after_three_tries_is_told_and_left_to_maybe_sent(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    row_id = await one_post(world)
    caplog.set_level(logging.WARNING, logger="bot.delivery")

    async def sent_then_down(delivery: Delivery) -> Receipt:
        hiccups(world, [OSError(), OSError(), OSError()])
        return Receipt(channel_id="C1", message_id="m-1")

    world.platform.answer(sent_then_down)
    assert (await world.attempt(row_id)).kind is Kind.SKIPPED
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {row_id} (workspace W-1, post): could not record the outcome (OSError); it "
        "will be retried with maybe_sent once its lease expires"
    ]
    left = await row(world.db, row_id)
    assert (left.status, left.sending_since, left.leased_by) == (OutboxStatus.PENDING, START, "A")


async def test_a_database_hiccup_is_retried_after_0_2_then_0_4_seconds(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording retries after short, growing pauses: about half a second in all, well within
    the lease, so the row is still this worker's when the outcome is finally written."""
    row_id = await one_post(world)
    waits: list[float] = []

    async def pause(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(sending, "asyncio", SimpleNamespace(sleep=pause))

    async def sent_then_hiccups(delivery: Delivery) -> Receipt:
        hiccups(world, [OSError(), OSError()])
        return Receipt(channel_id="C1", message_id="m-1")

    world.platform.answer(sent_then_hiccups)
    assert (await world.attempt(row_id)).kind is Kind.FINISHED
    assert waits == [0.2, 0.4]

    # Three failures: the same two pauses, then it gives up (no pause after the last try).
    second = await put(world.db, world.clock, world.ws, "second")  # type: ignore[arg-type]

    async def sent_then_down(delivery: Delivery) -> Receipt:
        hiccups(world, [OSError(), OSError(), OSError()])
        return Receipt(channel_id="C1", message_id="m-2")

    world.platform.answer(sent_then_down)
    waits.clear()
    assert (await world.attempt(second)).kind is Kind.SKIPPED
    assert waits == [0.2, 0.4]


def _member(workspace_id: int, user: str, dm_channel: str) -> Member:
    return Member(
        workspace_id=workspace_id,
        platform_user_id=user,
        display_name=user,
        dm_channel_id=dm_channel,
        created_at=START,
        updated_at=START,
    )


async def test_the_dm_channel_a_send_opened_is_kept_on_that_member_only(world: World) -> None:
    one = world.ws = await add_workspace(world.db, "W-1")
    two = await add_workspace(world.db, "W-2")
    members = {(one, "U1"): "D-old", (one, "U2"): "D-U2", (two, "U1"): "D-elsewhere"}
    async with world.db.transaction() as session:
        session.add_all(_member(ws, user, channel) for (ws, user), channel in members.items())
    dm = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        one,
        "dm",
        method=Method.DM,
        target=Target(user_id="U1", dm_channel_id="D-old"),
    )
    # The platform answered from another DM channel than the one kept (it was reopened).
    world.platform.answer_with(Receipt(channel_id="D-new", message_id="m-1"))

    assert (await world.attempt(dm)).kind is Kind.FINISHED

    async with world.db.transaction() as session:
        kept = {
            (m.workspace_id, m.platform_user_id): m.dm_channel_id
            for m in await session.scalars(select(Member))
        }
    assert kept == {**members, (one, "U1"): "D-new"}


async def test_a_dm_through_the_channel_it_was_queued_with_changes_no_member(world: World) -> None:
    ws = world.ws = await add_workspace(world.db, "W-1")
    async with world.db.transaction() as session:
        # The member's DM channel was reopened after this DM was queued.
        session.add(_member(ws, "U1", "D-since"))
    dm = await put(
        world.db,
        world.clock,  # type: ignore[arg-type]
        ws,
        "dm",
        method=Method.DM,
        target=Target(user_id="U1", dm_channel_id="D-queued"),
    )
    world.platform.answer_with(Receipt(channel_id="D-queued", message_id="m-1"))

    assert (await world.attempt(dm)).kind is Kind.FINISHED

    async with world.db.transaction() as session:
        assert await session.scalar(select(Member.dm_channel_id)) == "D-since"


# --- two replicas and one row (PostgreSQL's row locks) ------------------------------------------


async def test_a_row_taken_over_while_its_attempt_is_prepared_goes_out_once_postgresql_only(
    world: World,
) -> None:
    """PostgreSQL: two replicas contend for one row. Replica A's lease ran out just as it began
    its attempt, and replica B claims due rows at that very moment, between A's check that the
    row is still its own and A's commit of the attempt. A holds the row locked from that check
    to its commit, so B's claim passes over it (``SKIP LOCKED``) and the platform gets the
    message once. SQLite cannot see this: it has no row locks (one writer at a time), and B's
    claim there would wait for A's transaction to end."""
    if world.db.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (row locks)")
    row_id = await one_post(world)
    mine = await world.claim_one(row_id)
    world.clock.advance(LEASE)  # A's lease runs out now: the row is due for a claim again
    b_leases = Leases(world.db, world.clock, "B", LEASE, batch_size=10)
    b_sender = RowSender(
        world.db,
        world.platform,
        world.settings,
        b_leases,
        clock=world.clock,
        rng=random.Random(SEED),
        wake_in=world.wakes.append,
    )
    b_claimed: list[Claimed] = []
    real = world.db.transaction
    armed = [True]

    @contextlib.asynccontextmanager
    async def b_claims_after_the_check(**kwargs: Any) -> Any:
        """A's next transaction: right after its first statement (reading the row to check
        it), B claims, in a transaction of its own."""
        async with real(**kwargs) as session:
            if armed:
                armed.clear()
                execute = session.execute

                async def then_b_claims(*args: Any, **kw: Any) -> Any:
                    session.execute = execute  # type: ignore[method-assign]
                    result = await execute(*args, **kw)
                    b_claimed.extend(await b_leases.claim(()))
                    return result

                session.execute = then_b_claims  # type: ignore[method-assign]
            yield session

    world.db.transaction = b_claims_after_the_check  # type: ignore[method-assign]

    async def b_sends_meanwhile(delivery: Delivery) -> Receipt:
        """While A's send is in flight, B sends what its claim gave it."""
        for theirs in b_claimed:
            await b_sender.attempt(theirs, world.bucket)
        return Receipt(channel_id="C1", message_id="m-A")

    world.platform.answer(b_sends_meanwhile)
    world.platform.answer_with(Receipt(channel_id="C1", message_id="m-B"))

    result = await world.sender.attempt(mine, world.bucket)

    assert [d.outbox_id for d in world.platform.deliveries] == [row_id]
    assert b_claimed == []
    assert result.kind is Kind.FINISHED
    sent = await row(world.db, row_id)
    assert (sent.status, sent.platform_message_id, sent.attempts) == (OutboxStatus.SENT, "m-A", 1)
    assert await b_leases.claim(()) == []


# --- dead-letter callbacks and sends that a cancellation must not cut short ------------------


def dead_letter(outbox_id: int = 7) -> DeadLetter:
    return DeadLetter(
        outbox_id=outbox_id,
        idempotency_key="k",
        workspace_id=1,
        platform_workspace_id="T1",
        method=Method.DM,
        target=Target(user_id="U1"),
        error="RecipientUnreachable: closed DMs",
        unreachable=True,
    )


async def test_a_failing_or_hung_dead_letter_callback_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dead_letters, "DEAD_LETTER_CALLBACK_SECONDS", 0.05)
    told: list[str] = []

    async def failing(dead: DeadLetter) -> None:
        told.append("failing")
        raise RuntimeError("feature bug")

    async def hung(dead: DeadLetter) -> None:
        told.append("hung")
        await asyncio.Event().wait()  # never set: given up after the limit

    async def fine(dead: DeadLetter) -> None:
        told.append(f"fine {dead.outbox_id}")

    caplog.set_level(logging.ERROR, logger="bot.delivery.dead_letters")
    async with asyncio.timeout(30):  # a safety net: without the limit, tell() never returns
        await dead_letters.tell([failing, hung, fine], dead_letter())
    assert told == ["failing", "hung", "fine 7"]
    failures = [r for r in caplog.records if r.name == "bot.delivery.dead_letters"]
    assert [r.getMessage() for r in failures] == [
        "outbox 7 (RecipientUnreachable: closed DMs): a dead-letter callback failed"
    ] * 2
    assert [type(r.exc_info[1]) for r in failures if r.exc_info] == [RuntimeError, TimeoutError]


async def test_a_cancelled_caller_waits_for_its_send_to_finish_before_it_stops() -> None:
    """complete(): a send under way is awaited to its end even when its caller is cancelled
    (twice here); the caller then stops with the cancellation, never before the send ends."""
    release, started = asyncio.Event(), asyncio.Event()
    events: list[str] = []

    async def send() -> str:
        events.append("send started")
        started.set()
        await release.wait()
        events.append("send ended")
        return "sent"

    async def caller() -> str:
        try:
            return await complete(send())
        finally:
            events.append("caller stopped")

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert events == ["send started"] and not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["send started", "send ended", "caller stopped"]
