"""Sending one claimed outbox row and recording its outcome.

Life of a row::

    pending --claim (lease)--> [mark: attempts+1, sending_since] --deliver--> record:
        sent          status sent, platform ids, sending_since cleared
        429           back to pending at now+Retry-After, not an attempt; bucket paused
        error         pending with exponential backoff, or dead after max_attempts
        permanent     dead at once

``sending_since`` is committed *before* the send. If it is still set when a row is tried again,
the last attempt's outcome was never learnt (a crash, a timeout, a 5xx after the request left),
so the adapter gets ``maybe_sent=True`` and must not post blindly (Discord: enforced nonce).
Every write checks, under a row lock, that the row is still pending and leased here: a row whose
lease ran out and that another worker took over is left to it.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Message
from bot.clock import Clock
from bot.config import DeliverySection
from bot.delivery.dead_letters import MAX_ERROR_CHARS, DeadLetter, describe, mark_dead
from bot.delivery.leases import Claimed, Leases
from bot.delivery.outbox import decode_message, decode_target
from bot.delivery.ratelimit import Bucket
from bot.port import (
    Delivery,
    DeliveryError,
    Method,
    PermanentDeliveryError,
    PlatformPort,
    RateLimited,
    Receipt,
    RecipientUnreachable,
    Target,
)
from storage.db import Database
from storage.models import Member, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

# An outcome applied to the locked row; returns whether it was recorded.
_Apply = Callable[[OutboxMessage], bool]

# A child whose parent is pending elsewhere is looked at again after this long (at most).
DEPENDENCY_RECHECK_SECONDS = 1.0
# Wake a little after a pause ends so the rows it pushed back are due by then.
PAUSE_WAKE_MARGIN_SECONDS = 0.01
# Recording an outcome is retried this often before giving up; a row left with sending_since set
# is then retried later with maybe_sent=True, so nothing is lost or blindly doubled.
RECORD_TRIES = 3
# An attempt reads its row twice (before and after the send): built once, not each time (the
# building cost more CPU than the query on a busy worker, benchmarks/webhooks.py).
_ROW = select(OutboxMessage).where(OutboxMessage.id == bindparam("row_id"))
_ROW_FOR_UPDATE = _ROW.with_for_update()


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``base * 2**(attempts-1)``
    capped at ``cap``, then drawn between half and all of it so that retries spread out."""
    full = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 64))
    return rng.uniform(full / 2, full)


class Kind(enum.Enum):
    FINISHED = "finished"  # sent or dead
    RETRY = "retry"  # back to pending: backoff, or waiting for the message it depends on
    RATE_LIMITED = "rate_limited"
    SKIPPED = "skipped"  # no longer ours (lease lost, already sent) or outcome not recorded


@dataclass(frozen=True)
class Result:
    kind: Kind
    # For a 429: the bucket's other rows must not become due before this.
    not_before: datetime | None = None
    # Set when this attempt dead-lettered the row (committed): the callbacks are told.
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True)
class _Prepared:
    delivery: Delivery
    # sending_since before this attempt: still uncertain after a 429 or a 4xx of this attempt.
    prior_sending_since: datetime | None


class RowSender:
    """One attempt at one row: check it is still ours, commit the attempt, deliver, record.

    ``wake_in(seconds)`` asks the worker to look for due rows again after a 429's pause."""

    def __init__(
        self,
        db: Database,
        port: PlatformPort,
        settings: DeliverySection,
        leases: Leases,
        *,
        clock: Clock,
        rng: random.Random,
        wake_in: Callable[[float], None],
    ) -> None:
        self._db = db
        self._port = port
        self._settings = settings
        self._leases = leases
        self._clock = clock
        self._rng = rng
        self._wake_in = wake_in
        self._recheck = timedelta(
            seconds=min(DEPENDENCY_RECHECK_SECONDS, settings.poll_interval_seconds)
        )

    @property
    def instance(self) -> str:
        return self._leases.instance

    async def attempt(self, row: Claimed, bucket: Bucket, channel: Bucket | None = None) -> Result:
        """``bucket`` is the row's method bucket, ``channel`` its channel's when it is channel
        paced: the platform's own rate-limit headers (a per-route window, e.g. Discord's per
        channel) pace the channel when there is one."""
        prepared = await self._prepare(row)
        if isinstance(prepared, Result):
            return prepared
        if bucket.is_paused():
            # A 429 to a send in flight beside this one came back while this one was being
            # prepared: it must not start before the pause ends.
            return await self._held_back(row, prepared, bucket)
        try:
            receipt = await self._port.deliver(prepared.delivery)
        except RateLimited as exc:
            return await self._rate_limited(row, prepared, exc, bucket)
        except Exception as exc:
            return await self._failed(row, prepared, exc)
        if receipt.quota is not None:
            await (channel or bucket).observe(receipt.quota)
        return await self._sent(row, prepared, receipt)

    def _ours(self, msg: OutboxMessage | None) -> bool:
        return (
            msg is not None
            and msg.status == OutboxStatus.PENDING
            and msg.leased_by == self.instance
        )

    async def _prepare(self, row: Claimed) -> _Prepared | Result:
        """Check the row is still ours and its parent is sent, then commit the attempt."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            msg = await self._locked(session, row.id)
            if msg is None or not self._ours(msg):
                return Result(Kind.SKIPPED)
            target = decode_target(msg.target)
            if msg.depends_on_id is not None:
                parent = await session.get(OutboxMessage, msg.depends_on_id)
                if parent is not None and parent.status == OutboxStatus.DEAD:
                    error = f"depends on outbox #{parent.id}, which is dead"
                    mark_dead(msg, error)
                    log.warning(
                        "outbox %d (workspace %s, %s): dead-lettered, outbox #%d it depends on "
                        "is dead",
                        row.id,
                        row.workspace,
                        row.method.value,
                        parent.id,
                    )
                    dead = _dead_letter(row, msg, target, error, unreachable=False)
                    return Result(Kind.FINISHED, dead_letter=dead)
                if parent is not None and parent.status == OutboxStatus.PENDING:
                    msg.next_attempt_at = max(parent.next_attempt_at, now + self._recheck)
                    msg.lease_until = None
                    msg.leased_by = None
                    return Result(Kind.RETRY)
                if parent is not None:
                    target = _from_parent(target, row.method, parent)
            data = None
            try:
                if row.method is Method.WEBHOOK:
                    # An event for an HTTP endpoint, not a chat message: sent as it is stored.
                    message, data = Message(()), dict(msg.payload)
                else:
                    message = decode_message(msg.payload)
            except ValidationError as exc:
                error = f"undecodable message: {exc.error_count()} validation errors"
                mark_dead(msg, error)
                log.error("outbox %d: payload does not decode; dead-lettered", row.id)
                dead = _dead_letter(row, msg, target, error, unreachable=False)
                return Result(Kind.FINISHED, dead_letter=dead)
            prior = msg.sending_since
            msg.attempts += 1
            msg.sending_since = now
            msg.lease_until = self._leases.until(now)
            delivery = Delivery(
                outbox_id=row.id,
                workspace_id=row.workspace,
                method=row.method,
                target=target,
                message=message,
                idempotency_key=msg.idempotency_key,
                attempt=msg.attempts,
                maybe_sent=prior is not None,
                data=data,
            )
        return _Prepared(delivery, prior)

    async def _sent(self, row: Claimed, prepared: _Prepared, receipt: Receipt) -> Result:
        now = self._clock.now()
        target = prepared.delivery.target

        def apply(msg: OutboxMessage) -> bool:
            if msg.status == OutboxStatus.SENT:
                return False  # another worker recorded it after our lease ran out
            msg.status = OutboxStatus.SENT
            msg.sent_at = now
            msg.platform_channel_id = (
                receipt.channel_id or target.channel_id or target.dm_channel_id
            )
            msg.platform_message_id = receipt.message_id
            if receipt.part_ids is not None and row.method != Method.UPDATE:
                msg.target = {**msg.target, "part_ids": list(receipt.part_ids)}
            msg.sending_since = None
            msg.lease_until = None
            msg.leased_by = None
            msg.last_error = None
            return True

        also = None
        if (
            row.method == Method.DM
            and target.user_id
            and receipt.channel_id
            and receipt.channel_id != target.dm_channel_id
        ):
            also = functools.partial(
                _remember_dm_channel, row.workspace_id, target.user_id, receipt.channel_id
            )
        if row.method == Method.UPDATE and receipt.part_ids is not None and row.depends_on_id:
            also = functools.partial(_remember_parts, row.depends_on_id, receipt.part_ids)
        recorded = await self._record(row, apply, also)
        return Result(Kind.FINISHED if recorded else Kind.SKIPPED)

    async def _rate_limited(
        self, row: Claimed, prepared: _Prepared, exc: RateLimited, bucket: Bucket
    ) -> Result:
        # Pause and compute the due time at the same instant, so the wake-up finds the row due.
        retry_after = max(0.0, exc.retry_after)
        now = self._clock.now()
        if exc.quota is not None and exc.quota.scope == "shared":
            # A resource's own limit, shared with others: wait, but our pace is not to blame.
            await bucket.observe(replace(exc.quota, remaining=0, reset_after=retry_after))
        else:
            await bucket.rate_limited(retry_after)
        due = now + timedelta(seconds=retry_after)
        self._wake_in(retry_after + PAUSE_WAKE_MARGIN_SECONDS)
        log.warning(
            "outbox %d (workspace %s, %s): rate limited, bucket paused for %.3gs",
            row.id,
            row.workspace,
            row.method.value,
            retry_after,
        )

        await self._record(row, functools.partial(self._put_back, prepared, due, 1))
        return Result(Kind.RATE_LIMITED, not_before=due)

    async def _held_back(self, row: Claimed, prepared: _Prepared, bucket: Bucket) -> Result:
        """Undo the attempt of a send that did not start because its bucket is paused."""
        remaining = bucket.pause_remaining()
        due = self._clock.now() + timedelta(seconds=remaining)
        self._wake_in(remaining + PAUSE_WAKE_MARGIN_SECONDS)
        await self._record(row, functools.partial(self._put_back, prepared, due, 0))
        return Result(Kind.RATE_LIMITED, not_before=due)

    def _put_back(
        self, prepared: _Prepared, due: datetime, rate_limited: int, msg: OutboxMessage
    ) -> bool:
        if not self._ours(msg):
            return False
        msg.attempts = max(0, msg.attempts - 1)  # a 429 is pacing, not a failed attempt
        msg.rate_limited += rate_limited
        msg.next_attempt_at = due
        msg.sending_since = prepared.prior_sending_since  # a 429 proves this one not sent
        msg.lease_until = None
        msg.leased_by = None
        return True

    async def _failed(self, row: Claimed, prepared: _Prepared, exc: Exception) -> Result:
        now = self._clock.now()
        permanent = isinstance(exc, PermanentDeliveryError)
        error = describe(exc)
        attempts = prepared.delivery.attempt
        max_attempts = self._settings.max_attempts
        dead = permanent or attempts >= max_attempts
        delay = 0.0
        if not dead:
            delay = backoff_delay(
                attempts,
                self._settings.backoff_base_seconds,
                self._settings.backoff_max_seconds,
                self._rng,
            )
        outcome = "dead-lettered" if dead else f"retry in {delay:.1f}s"
        log.warning(
            "outbox %d (workspace %s, %s): attempt %d/%d failed (%s); %s",
            row.id,
            row.workspace,
            row.method.value,
            attempts,
            max_attempts,
            error,
            outcome,
            exc_info=not isinstance(exc, DeliveryError),
        )

        def apply(msg: OutboxMessage) -> bool:
            if not self._ours(msg):
                return False
            msg.last_error = error
            if permanent:
                # A refusal proves this attempt created nothing; an earlier doubt remains.
                msg.sending_since = prepared.prior_sending_since
            # Otherwise sending_since stays set: a 5xx or a dropped connection may come after
            # the platform created the message, so the next try goes out with maybe_sent.
            if dead:
                mark_dead(msg, error)
            else:
                msg.next_attempt_at = now + timedelta(seconds=delay)
                msg.lease_until = None
                msg.leased_by = None
            return True

        recorded = await self._record(row, apply)
        if not recorded:
            return Result(Kind.SKIPPED)
        if not dead:
            return Result(Kind.RETRY)
        delivery = prepared.delivery
        dead_letter = DeadLetter(
            outbox_id=row.id,
            idempotency_key=delivery.idempotency_key,
            workspace_id=row.workspace_id,
            platform_workspace_id=row.workspace,
            method=row.method,
            target=delivery.target,
            error=error,
            unreachable=isinstance(exc, RecipientUnreachable),
        )
        return Result(Kind.FINISHED, dead_letter=dead_letter)

    async def _locked(self, session: AsyncSession, row_id: int) -> OutboxMessage | None:
        stmt = _ROW_FOR_UPDATE if self._db.dialect == "postgresql" else _ROW
        return (await session.execute(stmt, {"row_id": row_id})).scalar_one_or_none()

    async def _record(
        self,
        row: Claimed,
        apply: _Apply,
        also: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> bool:
        """Apply an outcome in its own transaction, retrying briefly if the database hiccups;
        ``also`` runs in the same transaction when the outcome was applied."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                async with self._db.transaction() as session:
                    msg = await self._locked(session, row.id)
                    applied = msg is not None and apply(msg)
                    if applied and also is not None:
                        await also(session)
                    return applied
            except (SQLAlchemyError, OSError) as exc:
                if attempt == RECORD_TRIES:
                    log.error(
                        "outbox %d (workspace %s, %s): could not record the outcome (%s); it "
                        "will be retried with maybe_sent once its lease expires",
                        row.id,
                        row.workspace,
                        row.method.value,
                        type(exc).__name__,
                    )
                    return False
                await asyncio.sleep(0.2 * attempt)
        return False


def _dead_letter(
    row: Claimed, msg: OutboxMessage, target: Target, error: str, unreachable: bool
) -> DeadLetter:
    return DeadLetter(
        outbox_id=row.id,
        idempotency_key=msg.idempotency_key,
        workspace_id=row.workspace_id,
        platform_workspace_id=row.workspace,
        method=row.method,
        target=target,
        error=error[:MAX_ERROR_CHARS],
        unreachable=unreachable,
    )


async def _remember_dm_channel(
    workspace_id: int, user_id: str, channel_id: str, session: AsyncSession
) -> None:
    """Keep the DM channel the platform opened (Slack's ``D...``, Discord's DM channel) on the
    member, so later DMs and updates of DMs use it instead of opening it again, even after a
    restart. In the transaction that records the send."""
    await session.execute(
        update(Member)
        .where(
            Member.workspace_id == workspace_id,
            Member.platform_user_id == user_id,
            or_(Member.dm_channel_id.is_(None), Member.dm_channel_id != channel_id),
        )
        .values(dm_channel_id=channel_id)
    )


async def _remember_parts(outbox_id: int, part_ids: tuple[str, ...], session: AsyncSession) -> None:
    """An edit changed the messages the original is on the platform (Discord's parts): later
    edits read them from the original's row."""
    parent = await session.get(OutboxMessage, outbox_id)
    if parent is not None:
        parent.target = {**parent.target, "part_ids": list(part_ids)}


def _from_parent(target: Target, method: Method, parent: OutboxMessage) -> Target:
    """Point an update or a thread reply at the message its parent became on the platform."""
    if method is Method.UPDATE:
        return replace(
            target,
            message_id=parent.platform_message_id or target.message_id,
            channel_id=parent.platform_channel_id or target.channel_id,
            part_ids=tuple(parent.target.get("part_ids") or ()),
        )
    if method is Method.POST:
        return replace(
            target,
            thread_of=parent.platform_message_id or target.thread_of,
            channel_id=parent.platform_channel_id or target.channel_id,
        )
    return target  # DMs and ephemerals only wait for their parent
