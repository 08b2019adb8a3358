"""Adaptive pacing (bot.delivery.adaptive) on a clock the test steps, against a model of the
platform's own token bucket: the rate rises while sends succeed, falls on a 429, settles just
under a limit it was never told, and never passes its ceiling. Nothing here reads the wall
clock: the platform's answers and the bucket's sleeps run on the same stepped time."""

from __future__ import annotations

import pytest

from bot.config import RateSetting
from bot.delivery.adaptive import DECREASE, SLOW_START, SLOW_START_ROUND_SECONDS, Pace, bounds
from bot.delivery.admin import learned_rates
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket
from bot.port import Method, RateLimit
from storage.db import Database
from tests.test_delivery import add_workspace


class Platform:
    """The platform's limit: ``rate`` a second, ``burst`` at once; answers 429 with the time
    until its next token (its Retry-After) beyond that."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = 0.0
        self.accepted = 0
        self.refused = 0

    def send(self, now: float) -> float | None:
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.accepted += 1
            return None
        self.refused += 1
        return (1.0 - self.tokens) / self.rate


class Stepped:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # A real sleep never takes less than a microsecond; a float nudge below the clock's
        # resolution would leave the bucket waiting for a token that never fills.
        self.now += max(seconds, 1e-6)


async def drive(bucket: TokenBucket, clock: Stepped, platform: Platform, sends: int) -> None:
    """Send ``sends`` messages back to back through ``bucket`` (a backlog, as a fan-out is),
    each taking 5 ms on the wire; a 429 pauses the bucket and the message is sent again."""
    done = 0
    while done < sends:
        await bucket.acquire()
        clock.now += 0.005
        retry_after = platform.send(clock.now)
        if retry_after is None:
            done += 1
        else:
            await bucket.rate_limited(retry_after)


def adaptive(clock: Stepped, rate: float, burst: int, ceiling: float) -> TokenBucket:
    pace = Pace(rate=rate, ceiling=ceiling, floor=rate * 0.05)
    return TokenBucket(rate, burst, time=clock.time, sleep=clock.sleep, pace=pace)


async def test_the_rate_rises_while_saturated_sends_succeed() -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=4.0, burst=2, ceiling=100.0)
    platform = Platform(rate=1000.0, burst=1000)  # never refuses
    # The burst, then one slow-start round of waited-for sends (a quarter second's worth).
    await drive(bucket, clock, platform, 2 + int(4.0 * SLOW_START_ROUND_SECONDS))
    assert bucket.rate == pytest.approx(4.0 * SLOW_START)
    await drive(bucket, clock, platform, 200)
    assert bucket.rate > 40.0  # slow start multiplies round after round
    assert platform.refused == 0


async def test_sends_the_bucket_never_held_back_do_not_raise_it() -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=4.0, burst=2, ceiling=100.0)
    for _ in range(50):  # one send every second: the work is slower than the rate
        await bucket.acquire()
        clock.now += 1.0
    assert bucket.rate == 4.0
    assert bucket.pace is not None and not bucket.pace.dirty


async def test_a_429_cuts_the_rate_and_an_echo_of_it_does_not_cut_again() -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=10.0, burst=1, ceiling=100.0)
    for _ in range(3):
        await bucket.acquire()  # saturated: each waits for its token
    await bucket.rate_limited(0.5)
    assert bucket.rate == pytest.approx(10.0 * DECREASE)
    assert bucket.is_paused()
    # Another send that left before the first 429 came back: the same overshoot.
    await bucket.rate_limited(0.5)
    assert bucket.rate == pytest.approx(10.0 * DECREASE)
    assert bucket.pace is not None and bucket.pace.rate_limited == 2


async def test_a_429_when_the_bucket_was_not_at_its_pace_leaves_the_rate() -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=10.0, burst=5, ceiling=100.0)
    await bucket.acquire()  # from a full bucket: it held nothing back
    await bucket.rate_limited(1.0)  # another limit (a channel's) refused it
    assert bucket.rate == 10.0
    assert bucket.is_paused()


@pytest.mark.parametrize(("told", "limit"), [(4.0, 20.0), (60.0, 20.0), (5.0, 7.0)])
async def test_an_untold_limit_is_learned_from_the_sends_between_two_429s(
    told: float, limit: float
) -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=told, burst=3, ceiling=told * 16)
    platform = Platform(rate=limit, burst=5)
    await drive(bucket, clock, platform, int(limit * 60))  # a minute's worth at the limit
    pace = bucket.pace
    assert pace is not None and pace.learned
    assert pace.low is not None and 0.9 * limit <= pace.low <= limit * 1.01
    assert 0.9 * limit <= bucket.rate <= limit * 1.05
    # At the limit nearly all the time: the minute's work took little more than a minute.
    assert clock.now <= 60.0 / 0.9
    assert platform.refused <= 8  # a handful, not one per send

    # Then it holds: another minute at the learned rate draws at most one probe's 429s.
    refused = platform.refused
    await drive(bucket, clock, platform, int(limit * 60))
    assert platform.refused - refused <= 3


async def test_the_ceiling_holds_against_a_platform_that_would_allow_more() -> None:
    clock = Stepped()
    bucket = adaptive(clock, rate=5.0, burst=1, ceiling=8.0)
    platform = Platform(rate=50.0, burst=10)
    await drive(bucket, clock, platform, 400)
    assert bucket.rate == 8.0
    assert platform.refused == 0
    # 400 sends at no more than 8 a second (one at once) take at least 399 / 8 s.
    assert clock.now >= 399 / 8.0


def test_delivery_rates_is_the_ceiling_and_the_start_when_set() -> None:
    floor, ceiling = bounds(documented=4.0, configured=2.0, ceiling=None)
    assert ceiling == 2.0 and floor < 2.0
    _, ceiling = bounds(documented=4.0, configured=None, ceiling=None)
    assert ceiling == 32.0  # DEFAULT_HEADROOM times the documented rate
    _, ceiling = bounds(documented=4.0, configured=None, ceiling=5.0)
    assert ceiling == 5.0  # the adapter's own ceiling

    from bot.config import RateSetting

    registry = RateLimiterRegistry(
        {Method.DM: RateLimit(4.0, 8)}, {"dm": RateSetting(rate=2.0, burst=2)}, adaptive=True
    )
    bucket = registry.bucket(1, Method.DM)
    assert isinstance(bucket, TokenBucket) and bucket.pace is not None
    assert (bucket.rate, bucket.pace.ceiling) == (2.0, 2.0)


def test_a_stored_rate_above_todays_ceiling_is_brought_under_it() -> None:
    pace = Pace(rate=30.0, ceiling=10.0, floor=0.5)
    assert pace.rate == 10.0


def test_discords_rate_limit_headers_become_a_quota() -> None:
    from adapters.discord.rest import quota_of
    from bot.port import Quota

    headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": "1.250",
        "X-RateLimit-Bucket": "abcd1234",
        "X-RateLimit-Scope": "user",
    }
    assert quota_of(headers) == Quota(5, 0, 1.25, bucket="abcd1234", scope="user")
    assert quota_of({"X-RateLimit-Limit": "5"}) is None  # incomplete: nothing to go by
    assert quota_of({**headers, "X-RateLimit-Remaining": "many"}) is None


async def test_a_window_with_nothing_left_pauses_until_its_reset_without_a_cut() -> None:
    from bot.port import Quota

    clock = Stepped()
    bucket = adaptive(clock, rate=10.0, burst=1, ceiling=100.0)
    await bucket.observe(Quota(limit=5, remaining=3, reset_after=2.0))
    assert not bucket.is_paused()  # something left: go on at the rate
    await bucket.observe(Quota(limit=5, remaining=0, reset_after=2.0))
    assert bucket.pause_remaining() == pytest.approx(2.0)
    assert bucket.rate == 10.0 and bucket.pace is not None and bucket.pace.rate_limited == 0
    await bucket.acquire()
    assert clock.now == pytest.approx(2.0)  # the next send waits for the reset, no 429 drawn


def test_the_sends_between_two_429s_are_measured_from_the_end_of_the_pause() -> None:
    """The window of a measurement starts when the first 429's pause ends, not when the 429
    came: counting the pause, in which nothing could be sent, would find a rate far below
    what the platform allowed and drag the learned rate down with it."""
    pace = Pace(rate=10.0, ceiling=100.0, floor=0.5)
    pace.on_send(0.0, waited=True)  # saturated
    pace.on_429(0.0, resume=1.0)  # paused for a second; cut to 7/s
    assert pace.rate == pytest.approx(10.0 * DECREASE)
    for n in range(8):  # 8 sends at 7/s after the pause, the last of them refused
        pace.on_send(1.0 + n / 7.0, waited=True)
    pace.on_429(2.1, resume=3.1)
    assert pace.measured == pytest.approx(7 / 1.1)  # 7 went through in 1.1 s (not 2.1 s)


async def test_a_rate_brought_under_a_lowered_ceiling_is_shown_as_it_paces(
    database: Database,
) -> None:
    """A restart with ``[delivery.rates]`` lowered under the rate a bucket had learned paces at
    the new ceiling, and ``syncup outbox rates`` shows that rate, not the old one (it was kept
    as stored until the rate changed again, which a bucket at its ceiling never does)."""
    ws = await add_workspace(database, "W-1")
    before = RateLimiterRegistry({Method.POST: RateLimit(40.0, 2)}, adaptive=True)
    before.bucket(ws, Method.POST)
    assert await before.save(database) == 1  # stored at 40/s
    after = RateLimiterRegistry(
        {Method.POST: RateLimit(40.0, 2)}, {"post": RateSetting(rate=4.0, burst=2)}, adaptive=True
    )
    await after.load(database)
    assert after.bucket(ws, Method.POST).rate == 4.0
    await after.save(database)
    (shown,) = await learned_rates(database)
    assert shown.rate == 4.0
