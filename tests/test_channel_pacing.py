"""Per-channel pacing on top of the per-(workspace, method) buckets (Slack: about one message a
second in one channel), for posts and updates, never for DMs.

Two levels:

* the buckets on a virtual clock: two channels at 1/s each take 10 sends apiece in 9 s of
  virtual time, not 19; each channel's sends are at least 1 s apart and the method bucket's at
  least its own spacing;
* the real worker through a port that records when each send arrives (the event loop's clock):
  10 posts to each of two channels, at 4/s per channel, interleave (a busy channel does not hold
  the other one up), each channel's sends keep their spacing and their order; posts and updates
  of one channel share its bucket; a 429 in one channel pauses the bucket and loses nothing.

Nothing asserts how long the test took: the spacing asserted is the one the fake port recorded,
allowing one send to arrive late by the database work between taking a token and sending.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine, Mapping
from typing import Any

import pytest

from bot.delivery.ratelimit import RateLimiterRegistry
from bot.delivery.worker import DeliveryWorker
from bot.port import Delivery, Method, RateLimit, RateLimited, Receipt, Target
from storage.db import Database
from storage.models import OutboxStatus
from tests.test_delivery import JumpClock, add_workspace, put, rows, settings

SAFETY = 30  # seconds before a hung test fails instead of hanging


# -- the buckets, on a virtual clock ------------------------------------------------------------


class VirtualTime:
    """A clock that jumps to the next sleeper's wake-up once every task is blocked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # At least a microsecond: a bucket a rounding error short of a token sleeps for ~1e-17 s,
        # which added to ``now`` would change nothing, and it would sleep again forever.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(1e-6, seconds), next(self._seq), future))
        await future

    async def run(self, *work: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(w) for w in work]
        while True:
            for _ in range(100):  # let every task run until it sleeps or ends
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                break
            assert self._sleepers, "deadlock: every task waits and nobody sleeps"
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            future.set_result(None)
        for task in tasks:
            task.result()


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_two_channels_at_one_a_second_take_ten_seconds_not_twenty() -> None:
    clock = VirtualTime()
    registry = RateLimiterRegistry(
        {Method.POST: RateLimit(rate=10.0, burst=1)},
        channel_limit=RateLimit(rate=1.0, burst=1),
        time=clock.time,
        sleep=clock.sleep,
    )
    method = registry.bucket(1, Method.POST)
    sent: dict[str, list[float]] = {"C1": [], "C2": []}

    async def lane(channel_id: str) -> None:
        bucket = registry.channel_bucket(1, channel_id)
        assert bucket is not None
        for _ in range(10):
            await bucket.acquire_with(method)
            sent[channel_id].append(clock.now)

    await clock.run(lane("C1"), lane("C2"))
    for times in sent.values():
        assert len(times) == 10
        assert min(gaps(times)) >= 1.0 - 1e-9  # never faster than 1/s in one channel
    everything = sorted(sent["C1"] + sent["C2"])
    assert min(gaps(everything)) >= 0.1 - 1e-9  # the method bucket's spacing holds too
    assert everything[-1] == pytest.approx(9.1)  # ~10 s for both channels, not ~20


async def test_the_method_bucket_still_bounds_all_channels() -> None:
    clock = VirtualTime()
    registry = RateLimiterRegistry(
        {Method.POST: RateLimit(rate=1.0, burst=1)},
        channel_limit=RateLimit(rate=1.0, burst=1),
        time=clock.time,
        sleep=clock.sleep,
    )
    method = registry.bucket(1, Method.POST)
    sent: dict[str, list[float]] = {"C1": [], "C2": [], "C3": []}

    async def lane(channel_id: str) -> None:
        bucket = registry.channel_bucket(1, channel_id)
        assert bucket is not None
        for _ in range(4):
            await bucket.acquire_with(method)
            sent[channel_id].append(clock.now)

    await clock.run(lane("C1"), lane("C2"), lane("C3"))
    everything = sorted(t for times in sent.values() for t in times)
    assert min(gaps(everything)) >= 1.0 - 1e-9  # one a second across the three channels
    assert everything[-1] == pytest.approx(11.0)
    for times in sent.values():
        assert min(gaps(times)) >= 1.0 - 1e-9


def test_only_posts_and_updates_are_paced_per_channel() -> None:
    registry = RateLimiterRegistry({}, channel_limit=RateLimit(rate=1.0, burst=1))
    assert registry.paces_channels(Method.POST) and registry.paces_channels(Method.UPDATE)
    assert not registry.paces_channels(Method.DM)
    assert not registry.paces_channels(Method.EPHEMERAL)
    assert registry.channel_bucket(1, "C1") is registry.channel_bucket(1, "C1")
    assert registry.channel_bucket(1, "C1") is not registry.channel_bucket(2, "C1")
    unpaced = RateLimiterRegistry({})
    assert unpaced.channel_bucket(1, "C1") is None and not unpaced.paces_channels(Method.POST)


# -- the worker, through a recording port -------------------------------------------------------

CHANNEL_RATE = 4.0  # per second: 250 ms between two sends in one channel
# How late a send may arrive after its token was taken: the attempt is committed in between (a
# new pooled connection, the SQLite writer queue). A late send shortens the gap to the next one
# by that much, but lateness never adds up: sends i and k are (k - i) intervals apart, less one
# lateness. Sends without channel pacing would come a few milliseconds apart.
LATENESS = 0.15


class RecordingPort:
    """Accepts everything and records when each send arrived, by channel."""

    platform = "test"

    def __init__(self, channel_limit: RateLimit | None) -> None:
        self._channel_limit = channel_limit
        self.arrivals: list[tuple[float, str, str, Method]] = []  # time, channel, key, method
        self.rate_limit_keys: set[str] = set()
        self._changed = asyncio.Condition()

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.arrivals) >= count)

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return dict.fromkeys(Method, RateLimit(rate=1000.0, burst=1000))

    def channel_rate_limit(self) -> RateLimit | None:
        return self._channel_limit

    async def deliver(self, delivery: Delivery) -> Receipt:
        key = delivery.idempotency_key
        if key in self.rate_limit_keys:
            self.rate_limit_keys.discard(key)
            raise RateLimited(0.2)
        channel = delivery.target.channel_id or f"D-{delivery.target.user_id}"
        now = asyncio.get_running_loop().time()
        self.arrivals.append((now, channel, key, delivery.method))
        async with self._changed:
            self._changed.notify_all()
        return Receipt(channel_id=channel, message_id=delivery.target.message_id or key)

    def times(self, channel: str) -> list[float]:
        return [t for t, c, _, _ in self.arrivals if c == channel]

    def keys(self, channel: str) -> list[str]:
        return [k for _, c, k, _ in self.arrivals if c == channel]


@pytest.fixture
def port() -> RecordingPort:
    return RecordingPort(RateLimit(rate=CHANNEL_RATE, burst=1))


async def run_until_sent(worker: DeliveryWorker, port: RecordingPort, count: int) -> None:
    """Run the worker until the port has ``count`` sends, then stop it (outcomes recorded)."""
    await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await port.wait_for(count)
    finally:
        await worker.stop()


def assert_paced(times: list[float]) -> None:
    for i, k in itertools.combinations(range(len(times)), 2):
        assert times[k] - times[i] >= (k - i) / CHANNEL_RATE - LATENESS, (i, k, gaps(times))


async def test_a_busy_channel_does_not_hold_up_another(
    database: Database, port: RecordingPort
) -> None:
    clock = JumpClock()
    ws = await add_workspace(database, "W-1")
    # All of #one first, then all of #two: one queue in id order would send #two last.
    one = [f"one-{i}" for i in range(10)]
    two = [f"two-{i}" for i in range(10)]
    for key in one:
        await put(database, clock, ws, key, target=Target(channel_id="C-one"))
    for key in two:
        await put(database, clock, ws, key, target=Target(channel_id="C-two"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    await run_until_sent(worker, port, 20)

    assert port.keys("C-one") == one and port.keys("C-two") == two  # order within a channel
    assert_paced(port.times("C-one"))
    assert_paced(port.times("C-two"))
    # The channels went side by side: most of #two was sent before #one was done.
    last_of_one = port.times("C-one")[-1]
    assert sum(t < last_of_one for t in port.times("C-two")) >= 5


async def test_posts_and_updates_of_one_channel_share_its_pace(
    database: Database, port: RecordingPort
) -> None:
    clock = JumpClock()
    ws = await add_workspace(database, "W-1")
    for i in range(5):
        await put(database, clock, ws, f"post-{i}", target=Target(channel_id="C-one"))
        await put(
            database,
            clock,
            ws,
            f"update-{i}",
            method=Method.UPDATE,
            target=Target(channel_id="C-one", message_id=f"m{i}"),
        )
    for i in range(5):  # DMs are not channel posts: no channel pacing for them
        await put(database, clock, ws, f"dm-{i}", method=Method.DM, target=Target(user_id="U1"))
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    await run_until_sent(worker, port, 15)

    times = port.times("C-one")
    assert len(times) == 10
    assert_paced(times)
    methods = {m for _, c, _, m in port.arrivals if c == "C-one"}
    assert methods == {Method.POST, Method.UPDATE}
    assert len(port.times("D-U1")) == 5
    assert port.times("D-U1")[-1] < times[-1]  # the DMs did not wait behind the channel


async def test_a_429_in_one_channel_loses_nothing(database: Database, port: RecordingPort) -> None:
    clock = JumpClock()
    ws = await add_workspace(database, "W-1")
    keys: dict[str, list[str]] = {"C-one": [], "C-two": []}
    for i in range(5):
        for channel in keys:
            key = f"{channel}-{i}"
            keys[channel].append(key)
            await put(database, clock, ws, key, target=Target(channel_id=channel))
    port.rate_limit_keys.add("C-two-1")
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    await run_until_sent(worker, port, 10)

    for channel, wanted in keys.items():
        assert port.keys(channel) == wanted  # each once, in order
        assert_paced(port.times(channel))
    found = await rows(database)
    assert found["C-two-1"].rate_limited == 1 and found["C-two-1"].attempts == 1
    assert {r.status for r in found.values()} == {OutboxStatus.SENT}


async def test_without_a_channel_limit_nothing_changes(database: Database) -> None:
    port = RecordingPort(None)
    clock = JumpClock()
    ws = await add_workspace(database, "W-1")
    for i in range(6):
        await put(database, clock, ws, f"k-{i}", target=Target(channel_id=f"C-{i % 2}"))
    # One send in flight per bucket (docs/operations.md, "Several sends in flight"): the
    # workspace's posts go out one after another, in id order, across both channels.
    worker = DeliveryWorker(
        database, port, settings(max_in_flight_per_bucket=1), clock=clock, instance="w1"
    )
    async with asyncio.timeout(SAFETY):
        assert await worker.run_once() == 6
    assert [k for _, _, k, _ in port.arrivals] == [f"k-{i}" for i in range(6)]  # id order
    assert not worker.limits.paces_channels(Method.POST)
    # One attempt each, no 429, no backoff, and no bucket left paused.
    found = await rows(database)
    assert {(r.status, r.attempts, r.rate_limited) for r in found.values()} == {
        (OutboxStatus.SENT, 1, 0)
    }
    assert worker.limits.paused() == []
