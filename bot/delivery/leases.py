"""Outbox leases: which worker holds which rows, for how long (invariant 9).

A worker claims due rows in id order and leases them to itself (``leased_by``, ``lease_until``);
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas never take the same row, on SQLite
``BEGIN IMMEDIATE`` already serialises the claim. Leases are short (``[delivery]
lease_seconds``, 10 s by default) and a :class:`Heartbeat` renews the ones a worker still holds
every third of that while they wait for their turn or are being sent. So a worker that dies (a
kill -9, a lost host) leaves its rows for at most one lease before another replica takes them
over, and a live one never loses rows however long its batch takes. A worker that stops gives
its rows back at once (:meth:`Leases.release`); a process that starts under the name of a dead
one, or the only process of a SQLite file, takes the dead one's rows over at once
(:meth:`Leases.take_over`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, bindparam, case, func, literal, not_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.port import Method
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Workspace
from storage.outages import DatabaseUnavailable
from storage.types import UTCDateTime

log = logging.getLogger(__name__)

BucketKey = tuple[int, Method]
# The heartbeat renews held leases this many times per lease.
RENEWALS_PER_LEASE = 3


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds."""

    id: int
    workspace_id: int
    workspace: str  # the platform's id
    method: Method
    depends_on_id: int | None
    channel_id: str | None = None  # the target's channel, for per-channel pacing
    user_id: str | None = None  # a DM's recipient (or its DM channel), for the target's lane

    @property
    def bucket(self) -> BucketKey:
        return (self.workspace_id, self.method)


# The claim's statements, built once: building and keying them cost the worker more CPU than
# running them (a claim that finds nothing was 1.6 ms, most of it here).
_IDS = bindparam("ids", expanding=True)
_LEASE = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(_IDS))
    .values(lease_until=bindparam("until"), leased_by=bindparam("by"))
    .execution_options(synchronize_session=False)
)
_CLAIMED = (
    select(
        OutboxMessage.id,
        OutboxMessage.workspace_id,
        Workspace.external_id,
        OutboxMessage.method,
        OutboxMessage.depends_on_id,
        OutboxMessage.target,
    )
    .join(Workspace, Workspace.id == OutboxMessage.workspace_id)
    .where(OutboxMessage.id.in_(_IDS))
    .order_by(OutboxMessage.id)
)
_UNKNOWN = (
    update(OutboxMessage)
    .where(OutboxMessage.id.in_(_IDS))
    .values(
        status=OutboxStatus.DEAD,
        last_error="unknown delivery method",
        lease_until=None,
        leased_by=None,
    )
    .execution_options(synchronize_session=False)
)


@dataclass(frozen=True)
class _Picks:
    fair: Select[tuple[int]]
    # PostgreSQL only: the fair pick locked SKIP LOCKED, and the plain id order if that is empty.
    locked: Select[tuple[int]] | None
    plain: Select[tuple[int]] | None


@functools.lru_cache(maxsize=256)
def _picks(
    exclude: tuple[BucketKey, ...],
    batch_size: int,
    postgresql: bool,
    only: BucketKey | None = None,
) -> _Picks:
    """The statements that pick due rows (``:now`` bound at each claim): every (workspace,
    method) bucket's first row, then every bucket's second, ... each bucket in id order. So a
    workspace with thousands of rows queued cannot fill the batch while another waits; the
    worker drains the buckets side by side, each at its own pace. A window function cannot be
    locked in the same query, hence PostgreSQL's second statement. ``only``: that bucket's
    rows alone (a drain taking more of its own rows before it runs dry)."""
    now = bindparam("now", type_=UTCDateTime())
    due = [
        OutboxMessage.status == OutboxStatus.PENDING,
        OutboxMessage.next_attempt_at <= now,
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
    ]
    due += [
        not_(and_(OutboxMessage.workspace_id == ws, OutboxMessage.method == method.value))
        for ws, method in exclude
    ]
    if only is not None:
        due += [OutboxMessage.workspace_id == only[0], OutboxMessage.method == only[1].value]
    turn = (
        func.row_number()
        .over(
            partition_by=(OutboxMessage.workspace_id, OutboxMessage.method),
            order_by=OutboxMessage.id,
        )
        .label("turn")
    )
    ranked = select(OutboxMessage.id.label("id"), turn).where(*due).subquery()
    fair = select(ranked.c.id).order_by(ranked.c.turn, ranked.c.id).limit(batch_size)
    if not postgresql:
        return _Picks(fair, None, None)
    locked = (
        select(OutboxMessage.id)
        .where(OutboxMessage.id.in_(fair), *due)
        .order_by(OutboxMessage.id)
        .with_for_update(skip_locked=True)
    )
    plain = (
        select(OutboxMessage.id)
        .where(*due)
        .order_by(OutboxMessage.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    return _Picks(fair, locked, plain)


class Leases:
    def __init__(
        self, db: Database, clock: Clock, instance: str, lease: timedelta, batch_size: int
    ) -> None:
        self._db = db
        self._clock = clock
        self.instance = instance
        self.lease = lease
        self._batch_size = batch_size

    def until(self, now: datetime) -> datetime:
        return now + self.lease

    async def claim(
        self, exclude: Collection[BucketKey], only: BucketKey | None = None
    ) -> list[Claimed]:
        """Lease up to a batch of due rows, not of the ``exclude``d buckets (or of bucket
        ``only`` alone), in turns across buckets (:func:`_picks`); each bucket's rows in id
        order."""
        now = self._clock.now()
        postgresql = self._db.dialect == "postgresql"
        picks = _picks(tuple(sorted(exclude)), self._batch_size, postgresql, only)
        async with self._db.transaction() as session:
            ids = await self._pick(session, picks, now)
            if not ids:
                return []
            await session.execute(
                _LEASE, {"ids": ids, "until": self.until(now), "by": self.instance}
            )
            result = await session.execute(_CLAIMED, {"ids": ids})
            claimed: list[Claimed] = []
            unknown: list[int] = []
            for row_id, ws_id, external, method, depends_on, target in result.all():
                try:
                    kind = Method(method)
                except ValueError:
                    unknown.append(row_id)
                    continue
                channel = (target or {}).get("channel_id")
                channel_id = str(channel) if channel is not None else None
                user = (target or {}).get("user_id") or (target or {}).get("dm_channel_id")
                user_id = str(user) if user is not None else None
                claimed.append(
                    Claimed(row_id, ws_id, external, kind, depends_on, channel_id, user_id)
                )
            if unknown:
                log.error("outbox %s: unknown method; dead-lettered", unknown)
                await session.execute(_UNKNOWN, {"ids": unknown})
        return claimed

    async def _pick(self, session: AsyncSession, picks: _Picks, now: datetime) -> list[int]:
        """Up to a batch of due ids, taken in turns across buckets (see :func:`_picks`). On
        PostgreSQL the rows are locked ``SKIP LOCKED``: rows another replica is claiming at
        this instant are left to it, and if it holds them all the claim falls back to the
        plain id order."""
        if picks.locked is None or picks.plain is None:
            return list((await session.scalars(picks.fair, {"now": now})).all())
        ids = list((await session.scalars(picks.locked, {"now": now})).all())
        if ids:
            return ids
        return list((await session.scalars(picks.plain, {"now": now})).all())

    async def renew(self, ids: Collection[int]) -> int:
        """Extend the leases this worker still holds among ``ids``; returns how many it holds."""
        if not ids:
            return 0
        async with self._db.transaction() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(sorted(ids)),
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.leased_by == self.instance,
                )
                .values(lease_until=self.until(self._clock.now()))
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def release(self, ids: list[int], not_before: datetime | None) -> None:
        """Give claimed rows back (no attempt made); after a 429 none may be due before the
        rate-limited one, so the bucket's order survives the pause."""
        values: dict[str, object] = {"lease_until": None, "leased_by": None}
        if not_before is not None:
            bound = literal(not_before, UTCDateTime())
            values["next_attempt_at"] = case(
                (OutboxMessage.next_attempt_at < bound, bound),
                else_=OutboxMessage.next_attempt_at,
            )
        try:
            async with self._db.transaction() as session:
                await session.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id.in_(ids),
                        OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.leased_by == self.instance,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning(
                "delivery: releasing outbox %s failed (%s); their leases will expire",
                ids,
                type(exc).__name__,
                exc_info=not isinstance(exc, DatabaseUnavailable),
            )

    async def take_over(self, *, every_lease: bool) -> int:
        """Free the leases a dead process left: those under this worker's own name (a restart
        under a fixed ``instance_name``: no live replica may share it), or with ``every_lease``
        all of them (the only process of a SQLite file). Returns how many were freed."""
        stmt = update(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.leased_by.is_not(None)
        )
        if not every_lease:
            stmt = stmt.where(OutboxMessage.leased_by == self.instance)
        async with self._db.transaction() as session:
            result = await session.execute(
                stmt.values(lease_until=None, leased_by=None).execution_options(
                    synchronize_session=False
                )
            )
        freed = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if freed:
            log.info("delivery: took over %d outbox row(s) a stopped process had leased", freed)
        return freed


class Heartbeat:
    """Renews the leases of the rows ``held()`` names, every third of a lease, while any are
    held. Started when rows are claimed; it ends by itself once none are held."""

    def __init__(self, leases: Leases, held: Callable[[], Collection[int]]) -> None:
        self._leases = leases
        self._held = held
        self._every = leases.lease.total_seconds() / RENEWALS_PER_LEASE
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._beat(), name=f"leases {self._leases.instance}")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def renew_now(self) -> int:
        held = list(self._held())
        try:
            return await self._leases.renew(held)
        except DatabaseUnavailable:
            return 0  # told once by the database's health
        except (SQLAlchemyError, OSError) as exc:
            # The rows stay ours until their leases run out; by then a send still checks under
            # a row lock that the row is ours (see sending).
            log.warning(
                "delivery: renewing %d outbox lease(s) failed (%s)", len(held), type(exc).__name__
            )
            return 0

    async def _beat(self) -> None:
        while self._held():
            await asyncio.sleep(self._every)
            if self._held():
                await self.renew_now()
