"""A token bucket's pause (a 429's Retry-After) at its edges, on a clock the test steps.

What an operator relies on: nothing goes before the pause's deadline, something goes at it, a
``Retry-After: 0`` holds nothing back, a pause never hands out more than the one send the reopened
window allows, and after it the bucket is back at its rate, counted from the deadline. The same
holds for a send that takes a token from a channel's bucket and its method's bucket together
(:meth:`TokenBucket.acquire_with`), whichever of the two is paused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.config import RateSetting
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket, effective_limits
from bot.port import Method, RateLimit

START = 100.0


class SteppedClock:
    """Loop time that only moves when a bucket sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []
        self.during_sleep: Callable[[], None] = lambda: None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        # A bucket that sleeps without the clock moving would spin for ever: fail instead.
        assert len(self.slept) < 100, f"the bucket keeps sleeping: {self.slept[-5:]}"
        self.now += seconds
        self.during_sleep()

    def bucket(self, rate: float = 1.0, burst: int = 1) -> TokenBucket:
        return TokenBucket(rate, burst, time=self.time, sleep=self.sleep)


async def test_a_paused_channel_holds_a_send_until_the_deadline_and_no_longer() -> None:
    clock = SteppedClock()
    method, channel = clock.bucket(rate=10.0, burst=2), clock.bucket()
    channel.pause(5.0)
    await channel.acquire_with(method)
    assert clock.now == pytest.approx(START + 5.0)  # held for the whole pause, not longer
    assert not channel.is_paused()
    # The wait took one of the method's two tokens, no more: other channels were not held up.
    clock.slept.clear()
    await method.acquire()
    assert clock.slept == []
    # The channel's token is spent: its next send waits for the channel's rate.
    await channel.acquire_with(method)
    assert sum(clock.slept) == pytest.approx(1.0)


async def test_a_pause_extended_while_a_send_waits_costs_the_method_nothing() -> None:
    """A second 429 during a channel's pause moves its deadline on; the waiting send takes one
    token of its method when it goes, not one for each deadline it waited for."""
    clock = SteppedClock()
    method, channel = clock.bucket(rate=0.01, burst=2), clock.bucket()
    channel.pause(5.0)

    def extend() -> None:
        clock.during_sleep = lambda: None
        channel.pause_until(START + 10.0)

    clock.during_sleep = extend
    await channel.acquire_with(method)
    assert clock.now == pytest.approx(START + 10.0)
    clock.slept.clear()
    await method.acquire()  # the method's second token is still there
    assert clock.slept == []


@pytest.mark.parametrize("paused", ["method", "channel"])
async def test_a_send_at_the_exact_end_of_a_pause_goes_at_once(paused: str) -> None:
    clock = SteppedClock()
    method, channel = clock.bucket(), clock.bucket()
    deadline = (method if paused == "method" else channel).pause(3.0)
    clock.now = deadline
    await channel.acquire_with(method)
    assert clock.slept == []
    # It took one token from each bucket: both are empty now.
    clock.slept.clear()
    await method.acquire()
    assert clock.slept == [pytest.approx(1.0)]


@pytest.mark.parametrize("retry_after", [0.0, -2.0])
async def test_retry_after_zero_holds_nothing_back(retry_after: float) -> None:
    clock = SteppedClock()
    bucket = clock.bucket()
    bucket.pause(retry_after)
    assert not bucket.is_paused()
    assert bucket.pause_remaining() == 0.0
    await bucket.acquire()
    assert clock.slept == []


async def test_the_same_deadline_reported_again_opens_the_window_only_once() -> None:
    """Two refused requests can report the same deadline; the reopened window still has room
    for one send, then the bucket's rate applies."""
    clock = SteppedClock()
    bucket = clock.bucket()
    deadline = bucket.pause(2.0)
    await bucket.acquire()  # held until the deadline, then the one send
    assert clock.now == pytest.approx(deadline)
    bucket.pause_until(deadline)  # the same deadline again
    clock.slept.clear()
    await bucket.acquire()
    assert clock.slept == [pytest.approx(1.0)]


async def test_after_a_pause_the_bucket_refills_at_its_rate_from_the_deadline() -> None:
    clock = SteppedClock()
    bucket = clock.bucket(rate=1.0, burst=3)
    deadline = bucket.pause(2.0)
    clock.now = deadline + 2.0  # two seconds after the window reopened: its slot and two more
    for _ in range(3):
        await bucket.acquire()
    assert clock.slept == []
    await bucket.acquire()
    assert clock.slept == [pytest.approx(1.0)]


async def test_a_bucket_counts_as_paused_to_the_last_fraction_of_a_second() -> None:
    """The worker claims no rows of a paused (workspace, method): that holds until the deadline,
    not until the last second of it."""
    clock = SteppedClock()
    registry = RateLimiterRegistry(
        {Method.POST: RateLimit(rate=1.0, burst=1)}, time=clock.time, sleep=clock.sleep
    )
    deadline = registry.bucket(1, Method.POST).pause(2.0)
    clock.now = deadline - 0.25
    assert registry.paused() == [(1, Method.POST)]
    clock.now = deadline
    assert registry.paused() == []


async def test_a_send_part_way_through_the_interval_waits_only_for_the_rest() -> None:
    clock = SteppedClock()
    bucket = clock.bucket(rate=2.0, burst=1)
    await bucket.acquire()
    clock.now += 0.2  # 0.2 s of the 0.5 s interval have passed
    await bucket.acquire()
    assert clock.slept == [pytest.approx(0.3)]


def test_a_method_with_no_rate_anywhere_is_paced_at_one_a_second_and_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = RateLimiterRegistry({Method.POST: RateLimit(rate=5.0, burst=5)})
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    for _ in range(3):
        assert registry.limit_for(Method.DM) == RateLimit(rate=1.0, burst=1)
    assert registry.limit_for(Method.POST) == RateLimit(rate=5.0, burst=5)
    assert [r.getMessage() for r in caplog.records] == [
        "no rate limit for method dm from the adapter or [delivery.rates]; using 1/s"
    ]


# --- the limits themselves ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "error"),
    [
        (0.0, 1, "rate must be positive"),
        (-1.0, 1, "rate must be positive"),
        (1.0, 0, "burst must be at least 1"),
    ],
)
def test_a_bucket_that_could_never_send_is_refused(rate: float, burst: int, error: str) -> None:
    with pytest.raises(ValueError) as refused:
        TokenBucket(rate, burst)
    assert str(refused.value) == error


def test_an_unknown_method_in_the_rates_config_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError) as refused:
        effective_limits(
            {}, {"pots": RateSetting(rate=1, burst=1), "dms": RateSetting(rate=1, burst=1)}
        )
    known = ", ".join(m.value for m in Method)
    assert str(refused.value) == (
        f"Unknown method 'dms', 'pots' in [delivery.rates]; known methods: {known}."
    )
    assert "post, " in known  # each method by its config name, comma-separated
