"""Buckets every replica on one PostgreSQL shares: a workspace's limit is one budget.

Each bucket is a ``delivery_rates`` row. A send reserves its slot under the row's lock with the
generic cell rate algorithm (GCRA): the row keeps ``tat``, the theoretical arrival time of the
next send; a send may go at ``max(now, tat - tolerance, paused_until)`` and moves ``tat`` on by
one interval (``1 / rate``); the tolerance, ``(burst - 1)`` intervals, is the burst. The replica
then sleeps until its slot on its own monotonic clock. ``now`` is the database's clock
(``clock_timestamp()``), so replicas on hosts whose clocks disagree still agree on the slots.
A 429 sets ``paused_until`` for every replica and cuts the learned rate in the same row
(:class:`~bot.delivery.adaptive.Pace`), once per pause: the 429s of sends already on their way
when the first one came back are echoes of the same overshoot. A send on a channel-paced method
reserves its method's and its channel's slots in one transaction, at the same instant, locking
the two rows in a fixed order (no deadlock between replicas).

Why a shared row rather than a bucket one replica owns through a lease, or Redis: see
docs/operations.md, "Pacing".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.adaptive import Pace
from bot.port import Quota, RateLimit
from storage.db import Database
from storage.pacing import DeliveryRate

NewPace = Callable[[DeliveryRate | None], Pace | None]
# Built once: every send on PostgreSQL runs them (building them cost more CPU than running them).
_ROW = (
    select(DeliveryRate)
    .where(
        DeliveryRate.workspace_id == bindparam("workspace_id"),
        DeliveryRate.bucket == bindparam("bucket"),
    )
    .with_for_update()
    .execution_options(populate_existing=True)
)
_CLOCK = select(func.extract("epoch", func.clock_timestamp()))


def new_row(workspace_id: int, bucket: str, rate: float, burst: int) -> dict[str, Any]:
    """The columns of a bucket's row before anything was learned or reserved."""
    return {
        "workspace_id": workspace_id,
        "bucket": bucket,
        "rate": rate,
        "burst": burst,
        "learned": False,
        "rate_limited": 0,
        "updated_at": datetime.now(UTC),
        "tat": 0.0,
        "paused_until": 0.0,
        "window_sends": 0,
        "window_after_429": False,
        "round_sends": 0,
        "hold": 0,
    }


def keep(row: DeliveryRate, pace: Pace) -> None:
    """Write what ``pace`` learned into its row (what a restart starts from)."""
    row.rate = pace.rate
    row.learned = pace.learned
    row.measured = pace.measured
    row.low = pace.low
    row.high = pace.high
    row.hold = pace.hold
    row.rate_limited = pace.rate_limited


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _sleep_until(deadline: float) -> None:
    wait = deadline - _loop_time()
    if wait > 0:
        await asyncio.sleep(wait)


class SharedBucket:
    """One (workspace, bucket) row used as a token bucket by every replica.

    ``new_pace`` gives the adaptive state for a row (None: a fixed rate, as a channel's)."""

    def __init__(
        self, db: Database, workspace_id: int, name: str, limit: RateLimit, new_pace: NewPace
    ) -> None:
        self._db = db
        self.workspace_id = workspace_id
        self.name = name
        self.limit = limit
        self.burst = limit.burst
        self._new_pace = new_pace
        self.pace: Pace | None = None  # as last read, for `rate` and the metrics
        self._paused_until_local = float("-inf")  # loop time
        self.last_waited = False

    @property
    def rate(self) -> float:
        return self.pace.rate if self.pace is not None else self.limit.rate

    def pause_remaining(self) -> float:
        return max(0.0, self._paused_until_local - _loop_time())

    def is_paused(self) -> bool:
        return self.pause_remaining() > 0

    # --- the row -------------------------------------------------------------------------------

    async def _lock(self, session: AsyncSession) -> tuple[DeliveryRate, Pace | None]:
        row = await self._select(session)
        if row is None:
            pace = self._new_pace(None)
            rate = pace.rate if pace is not None else self.limit.rate
            values = new_row(self.workspace_id, self.name, rate, self.burst)
            await session.execute(insert(DeliveryRate).values(**values).on_conflict_do_nothing())
            row = await self._select(session)
            assert row is not None
        pace = self._new_pace(row)
        if pace is not None:
            pace.low = row.low
            pace.high = row.high
            pace.window_start = row.window_start
            pace.window_sends = row.window_sends
            pace.window_after_429 = row.window_after_429
            pace.round_sends = row.round_sends
            pace.hold = row.hold
        return row, pace

    async def _select(self, session: AsyncSession) -> DeliveryRate | None:
        key = {"workspace_id": self.workspace_id, "bucket": self.name}
        return (await session.execute(_ROW, key)).scalar_one_or_none()

    def _store(self, row: DeliveryRate, pace: Pace | None) -> None:
        self.pace = pace
        if pace is None:
            return
        keep(row, pace)
        row.window_start = pace.window_start
        row.window_sends = pace.window_sends
        row.window_after_429 = pace.window_after_429
        row.round_sends = pace.round_sends
        if pace.dirty:
            row.updated_at = datetime.now(UTC)
            pace.dirty = False

    @staticmethod
    async def _now(session: AsyncSession) -> tuple[float, float]:
        """The database's clock (after the row locks were granted) and the loop's time then:
        the wait for a slot runs on the loop's clock from there, so the time the reservation
        takes to commit is not added to it."""
        now = float(await session.scalar(_CLOCK))
        return now, _loop_time()

    def _interval(self, row: DeliveryRate, pace: Pace | None) -> float:
        return 1.0 / (pace.rate if pace is not None else row.rate)

    def _earliest(self, row: DeliveryRate, pace: Pace | None, now: float) -> float:
        tolerance = (row.burst - 1) * self._interval(row, pace)
        return max(now, row.paused_until, row.tat - tolerance)

    def _take(self, row: DeliveryRate, pace: Pace | None, slot: float, waited: bool) -> None:
        row.tat = max(row.tat, slot) + self._interval(row, pace)
        self.last_waited = waited
        if pace is not None:
            pace.on_send(slot, waited)
        self._store(row, pace)

    def _remember_pause(self, row: DeliveryRate, now: float) -> None:
        self._paused_until_local = _loop_time() + (row.paused_until - now)

    # --- the bucket's interface ----------------------------------------------------------------

    async def acquire(self) -> None:
        async with self._db.transaction() as session:
            row, pace = await self._lock(session)
            now, local = await self._now(session)
            slot = self._earliest(row, pace, now)
            self._take(row, pace, slot, slot > now)
            self._remember_pause(row, now)
        await _sleep_until(local + (slot - now))

    async def acquire_with(self, first: SharedBucket) -> None:
        """This bucket's (a channel's) slot and ``first``'s (its method's) at one instant."""
        async with self._db.transaction() as session:
            if (first.workspace_id, first.name) < (self.workspace_id, self.name):
                first_row, first_pace = await first._lock(session)
                row, pace = await self._lock(session)
            else:
                row, pace = await self._lock(session)
                first_row, first_pace = await first._lock(session)
            now, local = await self._now(session)
            first_at = first._earliest(first_row, first_pace, now)
            slot = max(first_at, self._earliest(row, pace, now))
            # The method counts as saturated only when its own pace held the send back.
            first._take(first_row, first_pace, slot, first_at > now)
            self._take(row, pace, slot, slot > now)
            first._remember_pause(first_row, now)
            self._remember_pause(row, now)
        await _sleep_until(local + (slot - now))

    async def rate_limited(self, retry_after: float) -> None:
        async with self._db.transaction() as session:
            row, pace = await self._lock(session)
            now, _ = await self._now(session)
            echo = now < row.paused_until  # a pause is already in force: the same overshoot
            deadline = now + max(0.0, retry_after)
            if deadline > row.paused_until:
                row.paused_until = deadline
            if pace is not None:
                saturated = pace.window_start is not None
                pace.on_429(now, saturated=saturated, echo=echo, resume=row.paused_until)
            # After the pause one send at once, then the rate (as TokenBucket.pause_until).
            tolerance = (row.burst - 1) * self._interval(row, pace)
            row.tat = max(row.tat, row.paused_until + tolerance)
            self._store(row, pace)
            self._remember_pause(row, now)

    async def observe(self, quota: Quota | None) -> None:
        if quota is None or quota.remaining > 0 or quota.reset_after <= 0:
            return
        async with self._db.transaction() as session:
            row, pace = await self._lock(session)
            now, _ = await self._now(session)
            deadline = now + quota.reset_after
            if deadline > row.paused_until:
                row.paused_until = deadline
                row.tat = max(row.tat, deadline + (row.burst - 1) * self._interval(row, pace))
            self._store(row, pace)
            self._remember_pause(row, now)
