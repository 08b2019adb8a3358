"""Client-side pacing: one token bucket per (workspace, method), and optionally per channel.

Platforms scope their limits per method and workspace (Slack) or per route bucket (Discord); a 429
for one of them must not slow the others down, so each (workspace, method) gets its own bucket and
a 429 pauses only that bucket. Buckets run on the event loop's monotonic clock, never on the
injected :class:`~bot.clock.Clock`: the console's demo clock jumps forward, and pacing must not.

Some platforms also limit each channel (Slack: about one message a second per channel), whatever
the method: the adapter's :meth:`~bot.port.PlatformPort.channel_rate_limit` gives one bucket per
(workspace, channel), shared by posts and updates. A send to a channel takes a token from both
its method bucket and its channel bucket *at the same instant* (:meth:`TokenBucket.acquire_with`),
so waiting for one never squeezes the spacing of the other.

A (workspace, method) bucket learns its rate (:mod:`bot.delivery.adaptive`): it starts from the
adapter's documented rate (or ``[delivery.rates]``, which is also its ceiling), grows while its
sends succeed and is cut on a 429. The learned rates are kept in ``delivery_rates``
(:meth:`RateLimiterRegistry.load` / :meth:`RateLimiterRegistry.save`). With several replicas on
PostgreSQL the buckets are shared through that table instead (:mod:`bot.delivery.shared_pacing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Union

from sqlalchemy import select

from bot.config import RateSetting
from bot.delivery.adaptive import Pace, bounds
from bot.delivery.shared_pacing import SharedBucket, keep, new_row
from bot.port import Method, Quota, RateLimit
from storage.db import Database
from storage.pacing import DeliveryRate

log = logging.getLogger(__name__)

# Pacing for a method the adapter does not list and config does not set: Slack's advice of
# "1 request per second for any given API call".
DEFAULT_RATE_LIMIT = RateLimit(rate=1.0, burst=1)
# The methods a per-channel limit applies to (DMs and ephemeral replies are not channel posts).
CHANNEL_PACED = frozenset({Method.POST, Method.UPDATE})

TimeFn = Callable[[], float]
Bucket = Union["TokenBucket", SharedBucket]
SleepFn = Callable[[float], Awaitable[None]]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`acquire` takes one.

    Waiters are served one at a time in arrival order. :meth:`pause` (a 429) holds every waiter
    until the deadline; afterwards exactly one send may go at once (the platform's window has just
    reopened) and the rest follow at ``rate``.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        time: TimeFn | None = None,
        sleep: SleepFn | None = None,
        pace: Pace | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = float(rate)
        # When set, the rate is learned (``pace.rate``) instead of fixed.
        self.pace = pace
        self.last_waited = False  # whether the last token taken had to be waited for
        self.burst = int(burst)
        self._time = time or _loop_time
        self._sleep = sleep or asyncio.sleep
        self._tokens: float = float(burst)
        self._updated: float | None = None  # set on first use: the loop may not exist yet
        self._paused_until: float = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        return self.pace.rate if self.pace is not None else self._rate

    def _refill(self, now: float) -> None:
        if self._updated is None:
            self._updated = now
            return
        if now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    @property
    def paused_until(self) -> float:
        """The loop time until which the bucket is paused (in the past when it is not)."""
        return self._paused_until

    def pause_remaining(self) -> float:
        """Seconds left in the current pause, 0 when not paused."""
        return max(0.0, self._paused_until - self._time())

    def is_paused(self) -> bool:
        return self.pause_remaining() > 0

    def pause(self, seconds: float) -> float:
        """Hold all sends for ``seconds`` (a 429's Retry-After); returns the loop-time deadline."""
        return self.pause_until(self._time() + max(0.0, seconds))

    def pause_until(self, deadline: float) -> float:
        """Hold all sends until loop time ``deadline``; an earlier deadline never shortens a
        pause already in force."""
        if deadline > self._paused_until:
            self._paused_until = deadline
            # After the pause the platform's window has one slot: one send at once, then `rate`.
            self._tokens = 1.0
            self._updated = deadline
        return self._paused_until

    async def acquire(self) -> None:
        """Wait for a token and take it."""
        async with self._lock:
            waited = False
            while True:
                now = self._time()
                if now < self._paused_until:
                    waited = True
                    await self._sleep(self._paused_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self._took(now, waited)
                    return
                waited = True
                await self._sleep((1.0 - self._tokens) / self.rate)

    def _took(self, now: float, waited: bool) -> None:
        self.last_waited = waited
        if self.pace is not None:
            self.pace.on_send(now, waited)

    async def rate_limited(self, retry_after: float) -> None:
        """A 429 with ``retry_after``: pause, and cut the learned rate if this bucket was the
        one sending at its limit (its last token was waited for)."""
        echo = self.is_paused()
        resume = self.pause(retry_after)
        if self.pace is not None:
            saturated = self.pace.window_start is not None
            self.pace.on_429(self._time(), saturated=saturated, echo=echo, resume=resume)

    async def observe(self, quota: Quota | None) -> None:
        """The platform said what is left of its window (Discord's ``X-RateLimit-*``): with
        nothing left, wait for the reset instead of drawing a 429."""
        if quota is not None and quota.remaining == 0 and quota.reset_after > 0:
            self.pause(quota.reset_after)

    async def acquire_with(self, first: TokenBucket) -> None:
        """Take a token from ``first`` and one from this bucket at the same instant.

        This bucket's waiters queue first; the one at the front waits until this bucket has a
        token, then for ``first`` (in ``first``'s own queue), then takes this bucket's token with
        no wait in between. Taking them one after the other would not do: a token taken here and
        then a wait for ``first`` would let this bucket's next send follow too closely (the
        platform counts sends when they arrive). Only this bucket's queue takes its tokens, so the
        token seen ready is still there after the wait, unless a pause came meanwhile; then
        ``first``'s token is spent and the wait starts over (rare: channel buckets are not paused).
        """
        async with self._lock:
            while True:
                await self._ready()
                await first.acquire()
                now = self._time()
                if now >= self._paused_until:
                    self._refill(now)
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        self._took(now, True)
                        return

    async def _ready(self) -> None:
        """Wait until a token is available (not taking it); the caller holds the lock."""
        while True:
            now = self._time()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            self._refill(now)
            if self._tokens >= 1.0:
                return
            await self._sleep((1.0 - self._tokens) / self.rate)


def effective_limits(
    adapter: Mapping[Method, RateLimit], overrides: Mapping[str, RateSetting] | None = None
) -> dict[Method, RateLimit]:
    """The adapter's limits with ``[delivery.rates]`` applied on top (keys are method names)."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {m.value for m in Method})
    if unknown:
        known = ", ".join(m.value for m in Method)
        raise ValueError(
            f"Unknown method {', '.join(repr(u) for u in unknown)} in [delivery.rates]; "
            f"known methods: {known}."
        )
    limits = dict(adapter)
    for name, setting in overrides.items():
        limits[Method(name)] = RateLimit(rate=setting.rate, burst=setting.burst)
    return limits


def bucket_name(method: Method) -> str:
    """A (workspace, method) bucket's name in ``delivery_rates``."""
    return method.value


class RateLimiterRegistry:
    """Builds and keeps the bucket of each (workspace, method), and of each (workspace,
    channel) when there is a ``channel_limit``, on first use.

    ``adaptive``: method buckets learn their rate (see the module docstring); ``ceilings`` are
    the adapter's own ceilings per method (``[delivery.rates]`` overrides them)."""

    def __init__(
        self,
        limits: Mapping[Method, RateLimit],
        overrides: Mapping[str, RateSetting] | None = None,
        *,
        channel_limit: RateLimit | None = None,
        time: TimeFn | None = None,
        sleep: SleepFn | None = None,
        adaptive: bool = False,
        ceilings: Mapping[Method, float] | None = None,
        shared: Database | None = None,
    ) -> None:
        self._documented = dict(limits)
        self._limits = effective_limits(limits, overrides)
        self._configured = {Method(name): s.rate for name, s in (overrides or {}).items()}
        self._ceilings = dict(ceilings or {})
        self.adaptive = adaptive
        self.channel_limit = channel_limit
        self._time = time
        self._sleep = sleep
        self._buckets: dict[tuple[Hashable, Method], Bucket] = {}
        self._channel_buckets: dict[tuple[Hashable, str], Bucket] = {}
        self._warned: set[Method] = set()
        self._stored: dict[tuple[int, str], DeliveryRate] = {}
        # PostgreSQL: buckets are rows every replica shares (bot.delivery.shared_pacing).
        self.shared = shared

    def paces_channels(self, method: Method) -> bool:
        """Whether sends of ``method`` also wait for their channel's bucket."""
        return self.channel_limit is not None and method in CHANNEL_PACED

    def channel_bucket(self, workspace: Hashable, channel_id: str) -> Bucket | None:
        """The bucket of one channel, None when the platform has no per-channel limit. One
        bucket per channel the worker has posted to since it started (a few per team)."""
        if self.channel_limit is None:
            return None
        key = (workspace, channel_id)
        bucket = self._channel_buckets.get(key)
        if bucket is None:
            limit = self.channel_limit
            if self.shared is not None and isinstance(workspace, int):
                bucket = SharedBucket(
                    self.shared, workspace, f"channel:{channel_id}", limit, lambda _: None
                )
            else:
                bucket = TokenBucket(limit.rate, limit.burst, time=self._time, sleep=self._sleep)
            self._channel_buckets[key] = bucket
        return bucket

    def limit_for(self, method: Method) -> RateLimit:
        limit = self._limits.get(method)
        if limit is None:
            if method not in self._warned:
                self._warned.add(method)
                log.warning(
                    "no rate limit for method %s from the adapter or [delivery.rates]; using %g/s",
                    method.value,
                    DEFAULT_RATE_LIMIT.rate,
                )
            return DEFAULT_RATE_LIMIT
        return limit

    def new_pace(self, method: Method, stored: DeliveryRate | None = None) -> Pace:
        """A bucket's adaptive state: the stored one when there is one (within today's
        ceiling), else at the documented or configured rate."""
        limit = self.limit_for(method)
        documented = self._documented.get(method, limit).rate
        floor, ceiling = bounds(
            documented, self._configured.get(method), self._ceilings.get(method)
        )
        if stored is None:
            # Dirty from the start: stored at the first save, so `syncup outbox rates` shows it.
            return Pace(rate=limit.rate, ceiling=ceiling, floor=floor, dirty=True)
        return Pace(
            rate=stored.rate,
            ceiling=ceiling,
            floor=floor,
            learned=stored.learned,
            measured=stored.measured,
            low=stored.low,
            high=stored.high,
            hold=stored.hold,
            rate_limited=stored.rate_limited,
        )

    def bucket(self, workspace: Hashable, method: Method) -> Bucket:
        key = (workspace, method)
        bucket = self._buckets.get(key)
        if bucket is None and self.shared is not None and isinstance(workspace, int):
            adaptive = self.adaptive and method is not Method.WEBHOOK
            bucket = SharedBucket(
                self.shared,
                workspace,
                bucket_name(method),
                self.limit_for(method),
                (lambda row: self.new_pace(method, row)) if adaptive else (lambda _: None),
            )
            self._buckets[key] = bucket
        if bucket is None:
            limit = self.limit_for(method)
            pace = None
            if self.adaptive and method is not Method.WEBHOOK:
                stored = (
                    self._stored.get((workspace, bucket_name(method)))
                    if isinstance(workspace, int)
                    else None
                )
                pace = self.new_pace(method, stored)
            bucket = TokenBucket(
                pace.rate if pace else limit.rate,
                limit.burst,
                time=self._time,
                sleep=self._sleep,
                pace=pace,
            )
            self._buckets[key] = bucket
        return bucket

    def paused(self) -> list[tuple[Hashable, Method]]:
        """The (workspace, method) keys whose bucket is paused right now."""
        return [key for key, bucket in self._buckets.items() if bucket.is_paused()]

    def rates(self) -> dict[tuple[Hashable, Method], float]:
        """The rate each bucket paces at now."""
        return {key: bucket.rate for key, bucket in self._buckets.items()}

    # --- kept across restarts ------------------------------------------------------------------

    async def load(self, db: Database) -> None:
        """Read the learned rates (before the first bucket is built)."""
        async with db.transaction() as session:
            rows = (await session.scalars(select(DeliveryRate))).all()
            for row in rows:
                session.expunge(row)
        self._stored = {(row.workspace_id, row.bucket): row for row in rows}

    async def save(self, db: Database) -> int:
        """Write the rates that changed since the last save; returns how many."""
        changed = [
            (key, bucket.pace)
            for key, bucket in self._buckets.items()
            if bucket.pace is not None and bucket.pace.dirty and isinstance(key[0], int)
        ]
        if not changed:
            return 0
        now = datetime.now(UTC)
        async with db.transaction() as session:
            for (workspace, method), pace in changed:
                name = bucket_name(method)
                row = await session.get(DeliveryRate, (workspace, name))
                if row is None:
                    burst = self.limit_for(method).burst
                    row = DeliveryRate(**new_row(workspace, name, pace.rate, burst))
                    session.add(row)
                keep(row, pace)
                row.updated_at = now
        for _, pace in changed:
            pace.dirty = False
        return len(changed)
