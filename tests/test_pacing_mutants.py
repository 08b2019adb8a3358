"""What pacing promises at its edges, found by mutation testing (docs/testing.md, issue 17).

The learned rate (:mod:`bot.delivery.adaptive`): a rate that held for its rounds becomes the one
a later 429 goes back to, and the search then goes halfway up, stops within 3 % and probes again
after 300 rounds; a measurement between two 429s needs a second and five sends (exactly those are
enough), never starts with an idle bucket, and is trusted up to 97 % of the rate that drew the
429; a method slower than one a second (Slack's tier 1) learns and holds a rate under one a
second; a 429 once the pause is over is a new overshoot; a rate that grew, and a 429 that cut
nothing, are kept at the next save (``syncup outbox rates``).

The buckets replicas share on PostgreSQL (:mod:`bot.delivery.shared_pacing`), driven through
:class:`RateLimiterRegistry` as the worker builds them: the burst then the rate across replicas,
a 429's or an empty window's pause for every replica, the learned rate as one row, a channel's
slot and its method's at one instant, a lowered ``[delivery.rates]`` obeyed from the first send,
and a periodic save that never writes over the row. The database's clock (``clock_timestamp()``)
and the replica's loop clock are the test's, and the waits a bucket asks for are recorded instead
of slept, so every slot is checked exactly. SQLite has one process and keeps its buckets in
memory: those checks are PostgreSQL's only.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import Float, bindparam, select

from bot.config import RateSetting
from bot.delivery import shared_pacing
from bot.delivery.adaptive import CONVERGED, DECREASE, MARGIN, Pace
from bot.delivery.admin import learned_rates
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket
from bot.delivery.shared_pacing import SharedBucket
from bot.port import Method, Quota, RateLimit
from storage.db import Database
from storage.pacing import DeliveryRate
from tests.test_adaptive_pacing import Stepped
from tests.test_delivery import add_workspace

# --- the learned rate ------------------------------------------------------------------------


def saturated_429(rate: float, resume: float) -> Pace:
    """A pace at ``rate`` (its ceiling) whose saturated sending drew a 429 at 0.0, paused
    until ``resume``."""
    pace = Pace(rate=rate, ceiling=rate, floor=rate * 0.01)
    pace.on_send(0.0, waited=True)
    pace.on_429(0.0, resume=resume)
    assert pace.rate == pytest.approx(rate * DECREASE)
    return pace


def test_a_rate_that_held_ten_rounds_is_where_the_next_429_goes_back_to() -> None:
    """After a 429 the cut rate must last ten saturated rounds without another to count as
    held (at most the limit); the search then goes halfway to the rate that drew the 429, and
    a 429 there goes back to the held rate, not another multiplicative cut."""
    pace = saturated_429(4.0, resume=1.0)  # 4/s drew it: 2.8/s, a round is 3 sends
    sends = [1.0 + n / 2.8 for n in range(30)]
    for at in sends[:29]:
        pace.on_send(at, waited=True)
    assert (pace.rate, pace.low) == (pytest.approx(2.8), None)  # 29 sends: not yet ten rounds
    pace.on_send(sends[29], waited=True)
    assert pace.low == pytest.approx(2.8)  # held
    assert pace.rate == pytest.approx((2.8 + 4.0) / 2)  # halfway to the rate that drew the 429
    pace.on_429(sends[29] + 0.1, resume=sends[29] + 1.1)
    assert pace.rate == pytest.approx(2.8)
    assert pace.high == pytest.approx(3.4)


def test_a_window_of_exactly_a_second_and_five_sends_is_a_measurement() -> None:
    pace = saturated_429(10.0, resume=1.0)  # cut to 7/s
    for n in range(6):  # 5 go through from the end of the pause, the 6th is refused at 2.0
        pace.on_send(1.0 + n * 0.2, waited=True)
    pace.on_429(2.0, resume=3.0)
    assert pace.measured == pytest.approx(5.0)  # 5 sends in 1.0 s
    assert pace.rate == pytest.approx(5.0) and pace.low == pytest.approx(5.0)


def test_sending_that_began_with_an_idle_bucket_is_no_measurement() -> None:
    """Only the sends between two 429s show a rate the platform allowed (its bucket was empty
    at both ends); a bucket that was idle may have met a full platform bucket, so saturated
    sending that began idle teaches nothing when its first 429 comes: a plain cut."""
    pace = Pace(rate=10.0, ceiling=10.0, floor=0.5)
    pace.on_send(0.0, waited=False)  # idle: sent at once
    for n in range(12):  # then held back for 1.2 s
        pace.on_send(0.1 + n * 0.1, waited=True)
    pace.on_429(1.3, resume=2.3)
    assert (pace.measured, pace.low) == (None, None)
    assert pace.rate == pytest.approx(10.0 * DECREASE)


def test_a_measurement_is_trusted_up_to_97_percent_of_the_rate_that_drew_the_429() -> None:
    pace = saturated_429(10.0, resume=1.0)  # cut to 7/s
    for n in range(8):  # 7 go through at 7/s, the 8th is refused
        pace.on_send(1.0 + n / 7.0, waited=True)
    pace.on_429(1.0 + 7 / 6.9, resume=3.0)  # 6.9/s measured: under 7/s, but over 97 % of it
    assert pace.measured == pytest.approx(6.9)
    assert pace.low == pytest.approx(7.0 * MARGIN)
    assert pace.rate == pytest.approx(7.0 * MARGIN)


def test_a_method_slower_than_one_a_second_learns_a_rate_under_one_a_second() -> None:
    """Slack's tier 1 methods allow about one call a minute: a measured 0.5/s is kept as it
    is, not raised to 1/s (which would be above the 0.56/s that drew the 429)."""
    pace = saturated_429(0.8, resume=2.0)  # cut to 0.56/s
    for n in range(6):  # 5 go through, one every 2 s, the 6th is refused at 12.0
        pace.on_send(2.0 + 2.0 * n, waited=True)
    pace.on_429(12.0, resume=14.0)
    assert pace.measured == pytest.approx(0.5)
    assert pace.low == pytest.approx(0.5) and pace.rate == pytest.approx(0.5)


def test_a_rate_under_one_a_second_that_held_is_kept_as_it_is() -> None:
    pace = saturated_429(0.8, resume=2.0)  # cut to 0.56/s: a round is one send
    for n in range(10):
        pace.on_send(2.0 + n / 0.56, waited=True)
    assert pace.low == pytest.approx(0.56)  # held, not raised to 1/s
    assert pace.rate == pytest.approx((0.56 + 0.8) / 2)  # and the search goes on


def rounds(pace: Pace, count: int, start: float = 0.0) -> float:
    """``count`` learned rounds of saturated sends (a second's worth each); the time after."""
    at = start
    for _ in range(count):
        for _ in range(max(1, round(pace.rate))):
            pace.on_send(at, waited=True)
            at += 1 / pace.rate
    return at


def test_the_search_stops_within_3_percent_and_probes_upwards_after_300_rounds() -> None:
    """As a restart reads it from its row: 3.0/s is on trial, 3.05/s drew a 429. Once 3.0
    holds, the two are within 3 %: the rate stays (and the new low is stored), then after
    300 rounds it probes upwards again by 10 %, as a learned rate does (not slow start)."""
    pace = Pace(rate=3.0, ceiling=10.0, floor=0.1, learned=True, low=2.9, high=3.05, hold=1)
    at = rounds(pace, 1)
    assert (pace.low, pace.high, pace.hold, pace.rate) == (3.0, None, 300, 3.0)
    assert pace.dirty  # the new low is kept at the next save
    at = rounds(pace, 299, at)
    assert pace.rate == 3.0
    rounds(pace, 1, at)
    assert pace.rate == pytest.approx(3.3)
    assert pace.low == 3.0


def test_a_rate_3_percent_under_the_one_that_drew_the_429_ends_the_search() -> None:
    pace = Pace(rate=2.0, ceiling=10.0, floor=0.1, learned=True, high=2.0 * (1 + CONVERGED), hold=1)
    rounds(pace, 1)
    assert (pace.low, pace.high, pace.rate) == (2.0, None, 2.0)


async def test_a_429_once_the_pause_is_over_is_a_new_overshoot_and_cuts_again() -> None:
    clock = Stepped()
    pace = Pace(rate=10.0, ceiling=100.0, floor=0.5)
    bucket = TokenBucket(10.0, 1, time=clock.time, sleep=clock.sleep, pace=pace)
    for _ in range(3):
        await bucket.acquire()  # saturated: each waits for its token
    await bucket.rate_limited(0.5)
    await bucket.rate_limited(0.5)  # an echo: the same overshoot
    assert bucket.rate == pytest.approx(10.0 * DECREASE)
    clock.now += 0.5  # the pause is over: nothing more was sent, and a 429 comes
    assert not bucket.is_paused()
    await bucket.rate_limited(0.5)
    assert bucket.rate == pytest.approx(10.0 * DECREASE * DECREASE)
    assert pace.rate_limited == 3


async def test_a_rate_that_grew_is_kept_at_the_next_save(database: Database) -> None:
    """On SQLite the learned rates live in memory and are written when they changed: a rate
    that grew without any 429 is one of those (a restart starts from it)."""
    ws = await add_workspace(database, "W-1")
    clock = Stepped()
    registry = RateLimiterRegistry(
        {Method.DM: RateLimit(4.0, 1)}, adaptive=True, time=clock.time, sleep=clock.sleep
    )
    bucket = registry.bucket(ws, Method.DM)
    assert await registry.save(database) == 1  # a new bucket is shown from the start
    assert await registry.save(database) == 0  # nothing changed since
    await bucket.acquire()
    await bucket.acquire()  # held back for its token: a slow-start round at 4/s
    assert bucket.rate == 8.0
    assert await registry.save(database) == 1
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.learned, shown.rate_limited) == (8.0, False, 0)


async def test_a_429_that_cuts_nothing_is_still_counted_for_outbox_rates(
    database: Database,
) -> None:
    """A 429 that came from another limit (the bucket was not at its pace), or echoed an
    earlier one, leaves the rate alone but counts in ``syncup outbox rates``: it is kept at
    the next save like a change of rate."""
    ws = await add_workspace(database, "W-1")
    registry = RateLimiterRegistry({Method.DM: RateLimit(4.0, 8)}, adaptive=True)
    bucket = registry.bucket(ws, Method.DM)
    assert isinstance(bucket, TokenBucket)
    assert await registry.save(database) == 1  # a new bucket is shown from the start
    await bucket.acquire()  # from a full bucket: not at its pace
    await bucket.rate_limited(1.0)
    assert bucket.rate == 4.0
    assert await registry.save(database) == 1
    await bucket.rate_limited(1.0)  # during the pause: an echo
    assert await registry.save(database) == 1
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.rate_limited) == (4.0, 2)


# --- buckets shared through PostgreSQL --------------------------------------------------------

T0 = 1_800_000_000.0  # the database's clock (epoch seconds) when a test starts


class Clocks:
    """The database's clock and the replica's loop clock, moved together by the test. A
    bucket's wait for its slot is recorded, not slept: time stays put, as if the replicas
    reserved their slots side by side."""

    def __init__(self) -> None:
        self.db = T0
        self.loop = 500.0
        self.waits: list[float] = []

    def advance(self, seconds: float) -> None:
        self.db += seconds
        self.loop += seconds

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(self.db - T0 + seconds, 6))

    def taken(self) -> list[float]:
        """When the sends that had to wait for their slot go (seconds after T0 on the
        database's clock), since the last call."""
        waits, self.waits = self.waits, []
        return waits


@pytest.fixture
def clocks(database: Database, monkeypatch: pytest.MonkeyPatch) -> Clocks:
    if database.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (buckets are shared rows only there)")
    clocks = Clocks()
    now = bindparam("db_now", callable_=lambda: clocks.db, type_=Float)
    monkeypatch.setattr(shared_pacing, "_CLOCK", select(now))
    loop = SimpleNamespace(time=lambda: clocks.loop)
    monkeypatch.setattr(
        shared_pacing,
        "asyncio",
        SimpleNamespace(get_running_loop=lambda: loop, sleep=clocks.sleep),
    )
    return clocks


def replica(
    db: Database,
    limits: dict[Method, RateLimit],
    *,
    adaptive: bool = False,
    channel: RateLimit | None = None,
    rates: dict[str, RateSetting] | None = None,
) -> RateLimiterRegistry:
    """One replica's buckets, as its worker builds them on PostgreSQL."""
    return RateLimiterRegistry(limits, rates, adaptive=adaptive, channel_limit=channel, shared=db)


def shared(registry: RateLimiterRegistry, ws: int, method: Method = Method.POST) -> SharedBucket:
    bucket = registry.bucket(ws, method)
    assert isinstance(bucket, SharedBucket)
    return bucket


async def stored(db: Database, ws: int, bucket: str) -> DeliveryRate:
    async with db.transaction() as session:
        row = await session.get(DeliveryRate, (ws, bucket))
        assert row is not None
        session.expunge(row)
        return row


async def test_a_shared_bucket_heeds_only_a_window_with_nothing_left_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 3)}
    one, two = shared(replica(database, limits), ws), shared(replica(database, limits), ws)
    await one.observe(None)
    await one.observe(Quota(limit=5, remaining=3, reset_after=2.0))
    await one.observe(Quota(limit=5, remaining=1, reset_after=2.0))
    await one.observe(Quota(limit=5, remaining=0, reset_after=0.0))  # reset already
    assert not one.is_paused()
    for _ in range(3):
        await one.acquire()
    assert clocks.taken() == []  # the burst, whole

    await one.observe(Quota(limit=5, remaining=0, reset_after=0.5))
    assert one.pause_remaining() == 0.5
    await two.acquire()
    await one.acquire()
    await two.acquire()
    # Every replica waits for the reset; then one send, and the rest at 4/s.
    assert clocks.taken() == [0.5, 0.75, 1.0]

    await one.rate_limited(3.0)
    await one.observe(Quota(limit=5, remaining=0, reset_after=1.0))
    assert one.pause_remaining() == 3.0  # a reset never shortens a pause in force


async def test_replicas_take_one_burst_at_once_then_the_rate_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 2)}
    one, two = shared(replica(database, limits), ws), shared(replica(database, limits), ws)
    assert (one.rate, one.pause_remaining(), one.is_paused()) == (4.0, 0.0, False)
    for bucket in (one, two, one, two):
        await bucket.acquire()
    # Two at once (the burst), then one every quarter second, whichever replica sends.
    assert clocks.taken() == [0.25, 0.5]
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.burst, shown.learned, shown.rate_limited) == (4.0, 2, False, 0)
    assert shown.measured is None

    clocks.advance(10.0)  # idle for ten seconds: no more than the burst was saved up
    for bucket in (one, two, one):
        await bucket.acquire()
    assert clocks.taken() == [10.25]
    assert one.rate == two.rate == 4.0 and not one.is_paused()


async def test_a_429_pauses_every_replica_then_one_goes_and_the_rest_at_the_rate_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 3)}
    one, two = shared(replica(database, limits), ws), shared(replica(database, limits), ws)
    await one.acquire()
    await one.rate_limited(2.0)
    assert one.pause_remaining() == 2.0 and one.is_paused()
    for bucket in (two, one, two):
        await bucket.acquire()
    # The other replica waits for the pause too; then one send, and the rest at 4/s.
    assert clocks.taken() == [2.0, 2.25, 2.5]
    assert two.pause_remaining() == 2.0

    clocks.advance(1.0)
    await two.rate_limited(0.5)  # a shorter Retry-After does not shorten the pause
    assert two.pause_remaining() == 1.0
    clocks.advance(0.5)
    assert one.pause_remaining() == 0.5 and one.is_paused()
    clocks.advance(0.5)
    assert one.pause_remaining() == 0.0 and not one.is_paused()

    clocks.advance(10.0)
    await one.rate_limited(-1.0)  # Retry-After in the past: no pause, one send at once
    assert one.pause_remaining() == 0.0
    await one.acquire()
    await two.acquire()
    assert clocks.taken() == [12.25]
    assert (await stored(database, ws, "post")).rate_limited == 0  # a fixed rate counts none


async def test_a_channel_send_takes_both_slots_at_one_instant_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    """A post reserves its method's slot and its channel's at the same instant; the method
    counts as held back (and learns) only when its own pace held the send, not its channel's."""
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 2)}
    one = replica(database, limits, adaptive=True, channel=RateLimit(1.0, 1))
    two = replica(database, limits, adaptive=True, channel=RateLimit(1.0, 1))
    method = shared(one, ws)

    async def post(registry: RateLimiterRegistry, channel: str) -> None:
        bucket = registry.channel_bucket(ws, channel)
        assert isinstance(bucket, SharedBucket)
        await bucket.acquire_with(shared(registry, ws))

    await post(one, "C1")
    await post(two, "C1")  # the channel's next second; the method had room
    assert clocks.taken() == [1.0]
    assert method.rate == 4.0 and shared(two, ws).rate == 4.0  # held by the channel: no lesson
    await post(one, "C2")  # another channel, but the method's slots are taken until 1.0
    assert clocks.taken() == [1.0]
    assert method.rate == 8.0  # held back by its own pace: a slow-start round
    channel = await stored(database, ws, "channel:C1")
    assert (channel.rate, channel.burst, channel.learned) == (1.0, 1, False)

    # A pause of the method holds a channel's send, and the replica knows the method is paused.
    await shared(two, ws).rate_limited(3.0)
    await post(one, "C3")
    assert clocks.taken() == [3.0]
    assert method.pause_remaining() == 3.0


async def test_a_learned_rate_is_one_row_every_replica_paces_at_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    """Slow start through the shared row: a round is a quarter second's worth of sends that
    had to wait for their slot (one at 4/s), whichever replica sent them; a send the bucket did
    not hold back teaches nothing."""
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 1)}
    one = shared(replica(database, limits, adaptive=True), ws)
    two = shared(replica(database, limits, adaptive=True), ws)
    rates = []
    for bucket in (one, two, one, two):
        await bucket.acquire()
        rates.append(bucket.rate)
    assert rates == [4.0, 8.0, 8.0, 16.0]
    assert clocks.taken() == [0.25, 0.5, 0.625]
    assert (one.rate, two.rate) == (8.0, 16.0)  # each as it last read the row
    row = await stored(database, ws, "post")
    assert (row.rate, row.learned, row.low, row.high, row.hold) == (16.0, False, None, None, 0)

    # A window with nothing left is no 429: a pause for every replica, and no cut.
    await one.observe(Quota(limit=5, remaining=0, reset_after=1.0))
    assert one.pause_remaining() == 1.0
    assert one.rate == 16.0
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.rate_limited) == (16.0, 0)


async def test_a_shared_429_cuts_once_per_pause_and_a_later_one_again_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(10.0, 1)}
    one = shared(replica(database, limits, adaptive=True), ws)
    two = shared(replica(database, limits, adaptive=True), ws)
    await one.acquire()  # from a full bucket: not at its pace
    await one.rate_limited(1.0)  # another limit refused it: the rate stays
    assert one.rate == 10.0
    clocks.advance(1.0)
    await one.acquire()  # at the end of the pause, at once: still not held back
    await two.acquire()  # held back for its slot: at the bucket's pace
    assert two.last_waited
    await two.rate_limited(1.0)
    assert two.rate == pytest.approx(7.0)  # cut by 0.7
    clocks.advance(0.5)
    await one.rate_limited(1.0)  # while the pause is in force: an echo, no second cut
    assert one.rate == pytest.approx(7.0)
    assert one.pause_remaining() == 1.0  # but the pause runs to its own Retry-After
    clocks.advance(1.0)  # exactly the end of the pause: a 429 now is a new overshoot
    await two.rate_limited(1.0)
    assert two.rate == pytest.approx(7.0 * DECREASE)
    row = await stored(database, ws, "post")
    assert (row.learned, row.rate_limited, row.high) == (True, 4, pytest.approx(7.0))


async def test_a_shared_bucket_measures_from_the_end_of_the_pause_and_keeps_it_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(10.0, 2)}
    one = shared(replica(database, limits, adaptive=True), ws)
    two = shared(replica(database, limits, adaptive=True), ws)
    for _ in range(3):
        await one.acquire()  # the burst, then one held back
    await one.rate_limited(1.0)  # cut to 7/s, paused for a second
    clocks.taken()
    for n in range(8):  # 7 go through at 7/s after the pause (both replicas), the 8th refused
        await (one, two)[n % 2].acquire()
    # After the pause one send at once, then 7/s (the burst is not saved up during a pause).
    assert clocks.taken() == pytest.approx([1.0 + n / 7.0 for n in range(8)], abs=1e-6)
    clocks.advance(2.1)
    await two.rate_limited(1.0)
    row = await stored(database, ws, "post")
    assert row.measured == pytest.approx(7 / 1.1)  # 7 in 1.1 s, not in the 2.1 s since the 429
    assert row.low == pytest.approx(7 / 1.1) and two.rate == pytest.approx(7 / 1.1)

    await one.acquire()  # its slot is the end of the pause
    clocks.advance(1.0)  # the measured rate draws a 429 at once
    await one.rate_limited(1.0)
    assert one.rate == pytest.approx(7 / 1.1 * MARGIN)  # back under the rate that held


async def test_a_shared_rate_that_held_ten_rounds_sends_the_search_halfway_up_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 1)}
    rates = {"post": RateSetting(rate=4.0, burst=1)}  # [delivery.rates]: also the ceiling
    one = shared(replica(database, limits, adaptive=True, rates=rates), ws)
    two = shared(replica(database, limits, adaptive=True, rates=rates), ws)
    await one.acquire()
    await one.acquire()  # held back: saturated
    await one.rate_limited(1.0)  # cut to 2.8/s: a round is 3 sends
    for n in range(30):  # ten rounds, the replicas taking turns
        await (one, two)[n % 2].acquire()
    row = await stored(database, ws, "post")
    assert row.low == pytest.approx(2.8)  # held
    assert (row.high, row.hold) == (4.0, 10)
    assert two.rate == pytest.approx(3.4)  # halfway to the rate that drew the 429


async def test_a_first_empty_window_teaches_a_new_shared_bucket_nothing_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    """The first thing a new bucket hears is that the window is empty (Discord's headers):
    it pauses, then starts learning from nothing: slow start from the first sends after the
    pause, and the first 429 a plain cut (no rate has held, nothing was measured)."""
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(8.0, 1)}
    one = shared(replica(database, limits, adaptive=True), ws)
    await one.observe(Quota(limit=5, remaining=0, reset_after=1.0))
    for _ in range(10):
        await one.acquire()
    # Two sends at 8/s make a slow-start round; then 16/s (four sends), then 32/s.
    assert clocks.taken()[:7] == [1.0, 1.125, 1.25, 1.3125, 1.375, 1.4375, 1.5]
    assert one.rate == 32.0
    clocks.advance(2.0)
    await one.rate_limited(1.0)
    row = await stored(database, ws, "post")
    assert (row.measured, row.low) == (None, None)
    assert one.rate == pytest.approx(32.0 * DECREASE)


async def test_a_lowered_ceiling_paces_every_send_at_the_new_rate_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    """The row still holds 40/s from before [delivery.rates] was lowered to 4/s (a rolling
    deploy: the old replica has just sent three). The new replica paces at 4/s from its first
    send, its burst of two counted at 4/s too: for a plain send, a channel's, and the sends
    after a window's reset; and it waits out a pause the old replica's 429 set."""
    limits = {Method.POST: RateLimit(40.0, 2)}
    lowered = {"post": RateSetting(rate=4.0, burst=2)}
    for first in ("plain", "channel", "reset", "paused"):
        ws = await add_workspace(database, f"W-{first}")
        old = shared(replica(database, limits, adaptive=True), ws)
        for _ in range(3):
            await old.acquire()  # 40/s, two at once: at 0, 0 and 0.025
        assert clocks.taken() == [0.025]
        new = replica(database, limits, adaptive=True, rates=lowered, channel=RateLimit(1.0, 1))
        if first == "paused":
            await old.rate_limited(2.0)  # cut to 28/s, paused for 2 s
            await shared(new, ws).acquire()
            assert clocks.taken() == [2.0]  # not a moment before the pause ends
            continue
        if first == "reset":
            await shared(new, ws).observe(Quota(limit=5, remaining=0, reset_after=1.0))
            await shared(new, ws).acquire()
            await shared(new, ws).acquire()
            assert clocks.taken() == [1.0, 1.25]  # one at the reset, then 4/s
            continue
        if first == "plain":
            await shared(new, ws).acquire()
        else:
            channel = new.channel_bucket(ws, "C1")
            assert isinstance(channel, SharedBucket)
            await channel.acquire_with(shared(new, ws))
        assert clocks.taken() == []  # at once: the second of a burst of two at 4/s
        assert shared(new, ws).rate == 4.0
        await shared(new, ws).acquire()
        await shared(new, ws).acquire()
        assert clocks.taken() == [0.075, 0.325]


async def test_the_in_memory_save_never_writes_over_a_shared_row_postgresql_only(
    database: Database, clocks: Clocks
) -> None:
    """On PostgreSQL the row is the bucket, written as each send reserves its slot. The
    periodic save (for SQLite's in-memory buckets) writes nothing: a replica's copy of what it
    last read would undo what another replica learned since."""
    ws = await add_workspace(database, "W-1")
    limits = {Method.POST: RateLimit(4.0, 1)}
    first = replica(database, limits, adaptive=True)
    await shared(first, ws).acquire()
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.learned, shown.measured, shown.rate_limited) == (4.0, False, None, 0)
    await shared(first, ws).acquire()  # held back: a slow-start round, 8/s
    assert shared(first, ws).rate == 8.0
    await shared(replica(database, limits, adaptive=True), ws).rate_limited(1.0)  # cut to 5.6/s
    assert await first.save(database) == 0
    (shown,) = await learned_rates(database)
    assert (shown.rate, shown.rate_limited) == (pytest.approx(5.6), 1)
