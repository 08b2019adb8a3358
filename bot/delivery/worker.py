"""The delivery worker: drains the outbox to the platform (invariant 2).

Life of a row::

    pending --claim (lease)--> [mark: attempts+1, sending_since] --deliver--> record:
        sent          status sent, platform ids, sending_since cleared
        429           back to pending at now+Retry-After, not an attempt; bucket paused
        error         pending with exponential backoff, or dead after max_attempts
        permanent     dead at once

Rows are claimed in id order with a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas
never take the same row; on SQLite ``BEGIN IMMEDIATE`` already serialises the claim. The claimed
rows are grouped by (workspace, method) bucket: buckets drain concurrently, each one sequentially
in id order behind its token bucket.

Per-channel pacing (the port's ``channel_rate_limit()``, e.g. Slack's one message a second per
channel) applies to posts and updates. Inside one bucket's drain the rows are split into *lanes*,
one per channel: lanes run concurrently, each sequentially in id order, and a send takes a token
from the method bucket and the channel bucket at the same instant. So a row waiting for its busy
channel never holds up a row for another channel behind it, the per-method rate still bounds
the bucket as a whole, and order is kept where it matters (within a channel: a thread's parent
before its replies). Lanes inside the drain rather than a drainer per channel keep the claim's
bookkeeping per (workspace, method): the channel lives in the row's JSON target, which the claim
query cannot exclude by. A 429 pauses the method bucket and ends every lane of the drain, whose
rows go back not due before the pause ends, as with one lane.

A row that ends dead (a permanent refusal, ``max_attempts`` failures, a dead parent) is reported
to the :attr:`DeliveryWorker.on_dead_letter` callbacks once its state is committed, as a
:class:`DeadLetter`; ``unreachable`` says the platform refused because the member cannot be
messaged at all (:class:`~bot.port.RecipientUnreachable`), which features act on (a standup marks
the member unreachable). A callback's error is logged, never the worker's problem.

``sending_since`` is committed *before* the send. If it is still set when a row is tried again,
the last attempt's outcome was never learnt (a crash, a timeout, a 5xx after the request left),
so the adapter gets ``maybe_sent=True`` and must not post blindly (Discord: enforced nonce).

All database times come from the injected clock (the console's demo clock jumps); pacing and
pauses run on the event loop's monotonic time.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import and_, case, func, literal, not_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Message
from bot.clock import Clock
from bot.config import DeliverySection
from bot.delivery.outbox import decode_message, decode_target
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket
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
from storage.models import Member, OutboxMessage, OutboxStatus, Workspace
from storage.types import UTCDateTime

log = logging.getLogger(__name__)

T = TypeVar("T")
BucketKey = tuple[int, Method]
# An outcome applied to the locked row; returns whether it was recorded.
_Apply = Callable[[OutboxMessage], bool]

# A child whose parent is pending elsewhere is looked at again after this long (at most).
DEPENDENCY_RECHECK_SECONDS = 1.0
# Wake a little after a pause ends so the rows it pushed back are due by then.
PAUSE_WAKE_MARGIN_SECONDS = 0.01
# Recording an outcome is retried this often before giving up; a row left with sending_since set
# is then retried later with maybe_sent=True, so nothing is lost or blindly doubled.
RECORD_TRIES = 3
MAX_ERROR_CHARS = 1000
# A dead-letter callback that takes longer than this is given up on (and logged): it runs in the
# bucket's drain, and a hung one must not stop the bucket.
DEAD_LETTER_CALLBACK_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """An outbox row that ended dead, as told to :attr:`DeliveryWorker.on_dead_letter`."""

    outbox_id: int
    idempotency_key: str
    workspace_id: int  # ours (``workspaces.id``)
    platform_workspace_id: str  # the platform's
    method: Method
    target: Target
    error: str  # as kept on the row: "RecipientUnreachable: ..."
    # The platform said the member cannot be messaged at all (closed DMs, deactivated account).
    unreachable: bool = False


DeadLetterCallback = Callable[[DeadLetter], Awaitable[None]]


def default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``base * 2**(attempts-1)``
    capped at ``cap``, then drawn between half and all of it so that retries spread out."""
    full = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 64))
    return rng.uniform(full / 2, full)


async def _complete(aw: Awaitable[T]) -> T:
    """Await ``aw`` to the end even if the caller is cancelled meanwhile, then re-raise the
    cancellation: a send that has started must finish and have its outcome recorded."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        break
    if cancelled:
        raise asyncio.CancelledError
    return result


class _Kind(enum.Enum):
    FINISHED = "finished"  # sent or dead
    RETRY = "retry"  # back to pending: backoff, or waiting for the message it depends on
    RATE_LIMITED = "rate_limited"
    SKIPPED = "skipped"  # no longer ours (lease lost, already sent) or outcome not recorded


@dataclass(frozen=True)
class _Result:
    kind: _Kind
    # For a 429: the bucket's other rows must not become due before this.
    not_before: datetime | None = None
    # Set when this attempt dead-lettered the row (committed): the callbacks are told.
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True)
class _Claimed:
    id: int
    workspace_id: int
    workspace: str  # the platform's id
    method: Method
    depends_on_id: int | None
    channel_id: str | None = None  # the target's channel, for per-channel pacing

    @property
    def bucket(self) -> BucketKey:
        return (self.workspace_id, self.method)


@dataclass
class _Drain:
    """What the lanes of one bucket's drain share."""

    finished: int = 0
    # Set by a 429: every lane stops, and its rows go back not due before this.
    not_before: datetime | None = None
    lanes: list[asyncio.Task[None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    delivery: Delivery
    # sending_since before this attempt: still uncertain after a 429 or a 4xx of this attempt.
    prior_sending_since: datetime | None


class DeliveryWorker:
    """Sends outbox rows through a :class:`PlatformPort`; several may share one database.

    ``instance`` names this worker in ``leased_by`` and must differ between workers sharing a
    database. ``lease_seconds`` must exceed the adapter's send timeout: a lease that runs out
    mid-send lets another worker take the row (it is then sent with ``maybe_sent``).
    :meth:`start`/:meth:`stop` run it in the background; :meth:`run_once` steps it by hand
    (tests, the console) and should not be mixed with a running :meth:`start`.
    """

    def __init__(
        self,
        db: Database,
        port: PlatformPort,
        settings: DeliverySection,
        *,
        clock: Clock,
        instance: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._port = port
        self._settings = settings
        self._clock = clock
        self.instance = instance or default_instance()
        self._rng = rng or random.Random()
        self._limits = RateLimiterRegistry(
            port.rate_limits(), settings.rates, channel_limit=port.channel_rate_limit()
        )
        # Told of every row that ends dead, after that is committed (see DeadLetter).
        self.on_dead_letter: list[DeadLetterCallback] = []
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._recheck = timedelta(
            seconds=min(DEPENDENCY_RECHECK_SECONDS, settings.poll_interval_seconds)
        )
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drainers: dict[BucketKey, asyncio.Task[int]] = {}
        self._pending_rows: dict[int, asyncio.Event] = {}  # claimed here, outcome not known yet
        self._in_flight = 0
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def limits(self) -> RateLimiterRegistry:
        return self._limits

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Run :meth:`run` in a background task (no-op when already running)."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"delivery-worker {self.instance}")

    async def stop(self) -> None:
        """Stop gracefully: a send in flight completes and its outcome is recorded; nothing new
        starts; claimed rows not yet started are released for the next worker."""
        self._stopping = True
        self._wake.set()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        drainers = list(self._drainers.values())
        for drainer in drainers:
            drainer.cancel()  # interrupts waits for tokens; an in-flight row is shielded
        if drainers:
            await _complete(asyncio.gather(*drainers, return_exceptions=True))
        if self._task is not None:
            task, self._task = self._task, None
            await _complete(asyncio.gather(task, return_exceptions=True))

    def wake(self) -> None:
        """Look for due rows now (call after an enqueue commits) instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until :meth:`stop`; cancelling it stops just as gracefully."""
        poll = self._settings.poll_interval_seconds
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    claimed, _ = await self._claim_and_spawn()
                except Exception:
                    log.exception("delivery: claiming outbox rows failed; retrying")
                    claimed = 0
                if claimed >= self._settings.batch_size:
                    continue  # more may be due
                try:
                    async with asyncio.timeout(poll):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            drainers = list(self._drainers.values())
            for drainer in drainers:
                drainer.cancel()
            if drainers:
                await _complete(asyncio.gather(*drainers, return_exceptions=True))

    async def run_once(self) -> int:
        """One round: claim due rows, drain them, and return how many ended sent or dead."""
        _, tasks = await self._claim_and_spawn()
        if not tasks:
            return 0
        try:
            results = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            await _complete(asyncio.gather(*tasks, return_exceptions=True))
            raise
        return sum(results)

    async def idle(self) -> bool:
        """True when nothing is in flight here and no pending row is due now."""
        if self._in_flight or self._drainers:
            return False
        now = self._clock.now()
        async with self._db.transaction() as session:
            due = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                )
            )
        return not due and not self._in_flight and not self._drainers

    # --- claiming ------------------------------------------------------------------------------

    async def _claim_and_spawn(self) -> tuple[int, list[asyncio.Task[int]]]:
        """Claim and start a drainer per bucket. A cancellation is held off until the claim has
        committed, then the new drainers are stopped too (releasing their rows), so no lease is
        left behind without a drainer."""
        if self._stopping:
            return 0, []
        claiming = asyncio.ensure_future(self._claim_and_spawn_now())
        try:
            return await _complete(claiming)
        except asyncio.CancelledError:
            if claiming.done() and not claiming.cancelled() and claiming.exception() is None:
                _, spawned = claiming.result()
                for task in spawned:
                    task.cancel()
                await _complete(asyncio.gather(*spawned, return_exceptions=True))
            raise

    async def _claim_and_spawn_now(self) -> tuple[int, list[asyncio.Task[int]]]:
        exclude = set(self._drainers) | {
            (ws, method) for ws, method in self._limits.paused() if isinstance(ws, int)
        }
        rows = await self._claim(exclude)
        groups: dict[BucketKey, list[_Claimed]] = {}
        for row in rows:
            groups.setdefault(row.bucket, []).append(row)
            self._pending_rows[row.id] = asyncio.Event()
        tasks = []
        for key, group in groups.items():
            task = asyncio.create_task(self._drain(key, group))
            self._drainers[key] = task
            task.add_done_callback(functools.partial(self._drainer_done, key))
            tasks.append(task)
        return len(rows), tasks

    def _drainer_done(self, key: BucketKey, _task: asyncio.Task[int]) -> None:
        self._drainers.pop(key, None)
        self._wake.set()  # its bucket may have more rows due

    async def _claim(self, exclude: set[BucketKey]) -> list[_Claimed]:
        now = self._clock.now()
        due = [
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        ]
        due += [
            not_(and_(OutboxMessage.workspace_id == ws, OutboxMessage.method == method.value))
            for ws, method in sorted(exclude)
        ]
        pick = (
            select(OutboxMessage.id)
            .where(*due)
            .order_by(OutboxMessage.id)
            .limit(self._settings.batch_size)
        )
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        async with self._db.transaction() as session:
            ids = list((await session.scalars(pick)).all())
            if not ids:
                return []
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(lease_until=now + self._lease, leased_by=self.instance)
                .execution_options(synchronize_session=False)
            )
            result = await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.workspace_id,
                    Workspace.external_id,
                    OutboxMessage.method,
                    OutboxMessage.depends_on_id,
                    OutboxMessage.target,
                )
                .join(Workspace, Workspace.id == OutboxMessage.workspace_id)
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.id)
            )
            claimed: list[_Claimed] = []
            unknown: list[int] = []
            for row_id, ws_id, external, method, depends_on, target in result.all():
                try:
                    kind = Method(method)
                except ValueError:
                    unknown.append(row_id)
                    continue
                channel = (target or {}).get("channel_id")
                claimed.append(
                    _Claimed(
                        row_id,
                        ws_id,
                        external,
                        kind,
                        depends_on,
                        str(channel) if channel is not None else None,
                    )
                )
            if unknown:
                log.error("outbox %s: unknown method; dead-lettered", unknown)
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(unknown))
                    .values(
                        status=OutboxStatus.DEAD,
                        last_error="unknown delivery method",
                        lease_until=None,
                        leased_by=None,
                    )
                    .execution_options(synchronize_session=False)
                )
        return claimed

    # --- draining one bucket -------------------------------------------------------------------

    async def _drain(self, key: BucketKey, rows: list[_Claimed]) -> int:
        """Send one bucket's claimed rows; returns how many ended sent or dead."""
        bucket = self._limits.bucket(*key)
        drain = _Drain()
        if not self._limits.paces_channels(key[1]):
            await self._drain_lane(key, bucket, None, rows, drain)
            return drain.finished
        lanes: dict[str | None, list[_Claimed]] = {}
        for row in rows:
            lanes.setdefault(row.channel_id, []).append(row)
        if len(lanes) == 1:
            ((channel_id, lane),) = lanes.items()
            await self._drain_lane(key, bucket, self._channel_bucket(key, channel_id), lane, drain)
            return drain.finished
        drain.lanes = [
            asyncio.create_task(
                self._drain_lane(key, bucket, self._channel_bucket(key, channel_id), lane, drain)
            )
            for channel_id, lane in lanes.items()
        ]
        # Cancelling this drain cancels the lanes and waits for them (each gives its rows back).
        await asyncio.gather(*drain.lanes, return_exceptions=True)
        return drain.finished

    def _channel_bucket(self, key: BucketKey, channel_id: str | None) -> TokenBucket | None:
        # A post or update without a channel of its own (filled in from its parent) is paced
        # by its method bucket only.
        return None if channel_id is None else self._limits.channel_bucket(key[0], channel_id)

    async def _drain_lane(
        self,
        key: BucketKey,
        bucket: TokenBucket,
        channel: TokenBucket | None,
        rows: list[_Claimed],
        drain: _Drain,
    ) -> None:
        """Send ``rows`` one after the other in id order, each behind the method ``bucket`` and,
        for a channel-paced lane, the ``channel`` bucket too."""
        queue = deque(rows)
        try:
            while queue and not self._stopping and drain.not_before is None:
                row = queue[0]
                parent = self._pending_rows.get(row.depends_on_id or -1)
                if parent is not None:
                    await parent.wait()  # claimed here too: no need to defer, it is coming
                if channel is None:
                    await bucket.acquire()
                else:
                    await channel.acquire_with(bucket)
                if self._stopping or drain.not_before is not None:
                    break
                queue.popleft()
                try:
                    result = await _complete(self._process_in(row, bucket, drain))
                except Exception:
                    queue.appendleft(row)  # nothing was committed for it: give it back
                    raise
                if result.kind is _Kind.RATE_LIMITED:
                    current = asyncio.current_task()
                    for lane in drain.lanes:
                        if lane is not current:
                            lane.cancel()  # waiting for a token; a send in flight completes
                    break
        except Exception:
            # A database outage or a bug: stop this lane for now; the rows go back below.
            log.exception(
                "delivery: draining workspace %s, %s failed", rows[0].workspace, key[1].value
            )
        finally:
            if queue:
                await _complete(self._release([r.id for r in queue], drain.not_before))

    async def _release(self, ids: list[int], not_before: datetime | None) -> None:
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
        except (SQLAlchemyError, OSError):
            log.exception("delivery: releasing outbox %s failed; their leases will expire", ids)
        finally:
            for row_id in ids:
                self._row_settled(row_id)

    async def _process_in(self, row: _Claimed, bucket: TokenBucket, drain: _Drain) -> _Result:
        """:meth:`_process`, counted in the drain's shared state (kept even if the lane is
        cancelled meanwhile: the send itself is shielded)."""
        result = await self._process(row, bucket)
        if result.kind is _Kind.FINISHED:
            drain.finished += 1
        elif result.kind is _Kind.RATE_LIMITED and result.not_before is not None:
            if drain.not_before is None or result.not_before > drain.not_before:
                drain.not_before = result.not_before
        return result

    def _row_settled(self, row_id: int) -> None:
        event = self._pending_rows.pop(row_id, None)
        if event is not None:
            event.set()

    # --- one row -------------------------------------------------------------------------------

    async def _process(self, row: _Claimed, bucket: TokenBucket) -> _Result:
        self._in_flight += 1
        try:
            result = await self._attempt(row, bucket)
            if result.dead_letter is not None:
                await self._tell_dead_letter(result.dead_letter)
            return result
        finally:
            self._in_flight -= 1
            self._row_settled(row.id)

    async def _attempt(self, row: _Claimed, bucket: TokenBucket) -> _Result:
        prepared = await self._prepare(row)
        if isinstance(prepared, _Result):
            return prepared
        try:
            receipt = await self._port.deliver(prepared.delivery)
        except RateLimited as exc:
            return await self._rate_limited(row, prepared, exc, bucket)
        except Exception as exc:
            return await self._failed(row, prepared, exc)
        return await self._sent(row, prepared, receipt)

    async def _tell_dead_letter(self, dead: DeadLetter) -> None:
        """Run the dead-letter callbacks, one after the other; their errors are only logged."""
        for callback in self.on_dead_letter:
            try:
                async with asyncio.timeout(DEAD_LETTER_CALLBACK_SECONDS):
                    await callback(dead)
            except Exception:
                log.exception(
                    "outbox %d (%s): a dead-letter callback failed", dead.outbox_id, dead.error
                )

    def _dead_letter(
        self, row: _Claimed, msg: OutboxMessage, target: Target, error: str, unreachable: bool
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

    async def _prepare(self, row: _Claimed) -> _Prepared | _Result:
        """Check the row is still ours and its parent is sent, then commit the attempt."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            msg = await self._locked(session, row.id)
            if msg is None or msg.status != OutboxStatus.PENDING or msg.leased_by != self.instance:
                return _Result(_Kind.SKIPPED)
            target = decode_target(msg.target)
            if msg.depends_on_id is not None:
                parent = await session.get(OutboxMessage, msg.depends_on_id)
                if parent is not None and parent.status == OutboxStatus.DEAD:
                    error = f"depends on outbox #{parent.id}, which is dead"
                    self._dead(msg, error)
                    log.warning(
                        "outbox %d (workspace %s, %s): dead-lettered, outbox #%d it depends on "
                        "is dead",
                        row.id,
                        row.workspace,
                        row.method.value,
                        parent.id,
                    )
                    dead = self._dead_letter(row, msg, target, error, unreachable=False)
                    return _Result(_Kind.FINISHED, dead_letter=dead)
                if parent is not None and parent.status == OutboxStatus.PENDING:
                    msg.next_attempt_at = max(parent.next_attempt_at, now + self._recheck)
                    msg.lease_until = None
                    msg.leased_by = None
                    return _Result(_Kind.RETRY)
                if parent is not None:
                    target = _from_parent(target, row.method, parent)
            try:
                message: Message = decode_message(msg.payload)
            except ValidationError as exc:
                error = f"undecodable message: {exc.error_count()} validation errors"
                self._dead(msg, error)
                log.error("outbox %d: payload does not decode; dead-lettered", row.id)
                dead = self._dead_letter(row, msg, target, error, unreachable=False)
                return _Result(_Kind.FINISHED, dead_letter=dead)
            prior = msg.sending_since
            msg.attempts += 1
            msg.sending_since = now
            msg.lease_until = now + self._lease
            delivery = Delivery(
                outbox_id=row.id,
                workspace_id=row.workspace,
                method=row.method,
                target=target,
                message=message,
                idempotency_key=msg.idempotency_key,
                attempt=msg.attempts,
                maybe_sent=prior is not None,
            )
        return _Prepared(delivery, prior)

    async def _sent(self, row: _Claimed, prepared: _Prepared, receipt: Receipt) -> _Result:
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
        return _Result(_Kind.FINISHED if recorded else _Kind.SKIPPED)

    async def _rate_limited(
        self, row: _Claimed, prepared: _Prepared, exc: RateLimited, bucket: TokenBucket
    ) -> _Result:
        # Pause and compute the due time at the same instant, so the wake-up finds the row due.
        retry_after = max(0.0, exc.retry_after)
        now = self._clock.now()
        bucket.pause(retry_after)
        due = now + timedelta(seconds=retry_after)
        self._schedule_wake(retry_after + PAUSE_WAKE_MARGIN_SECONDS)
        log.warning(
            "outbox %d (workspace %s, %s): rate limited, bucket paused for %.3gs",
            row.id,
            row.workspace,
            row.method.value,
            retry_after,
        )

        def apply(msg: OutboxMessage) -> bool:
            if msg.status != OutboxStatus.PENDING or msg.leased_by != self.instance:
                return False
            msg.attempts = max(0, msg.attempts - 1)  # a 429 is pacing, not a failed attempt
            msg.rate_limited += 1
            msg.next_attempt_at = due
            msg.sending_since = prepared.prior_sending_since  # a 429 proves this one not sent
            msg.lease_until = None
            msg.leased_by = None
            return True

        await self._record(row, apply)
        return _Result(_Kind.RATE_LIMITED, not_before=due)

    async def _failed(self, row: _Claimed, prepared: _Prepared, exc: Exception) -> _Result:
        now = self._clock.now()
        permanent = isinstance(exc, PermanentDeliveryError)
        error = _describe(exc)
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
        if dead:
            log.warning(
                "outbox %d (workspace %s, %s): attempt %d/%d failed (%s); dead-lettered",
                row.id,
                row.workspace,
                row.method.value,
                attempts,
                max_attempts,
                error,
                exc_info=not isinstance(exc, DeliveryError),
            )
        else:
            log.warning(
                "outbox %d (workspace %s, %s): attempt %d/%d failed (%s); retry in %.1fs",
                row.id,
                row.workspace,
                row.method.value,
                attempts,
                max_attempts,
                error,
                delay,
                exc_info=not isinstance(exc, DeliveryError),
            )

        def apply(msg: OutboxMessage) -> bool:
            if msg.status != OutboxStatus.PENDING or msg.leased_by != self.instance:
                return False
            msg.last_error = error
            if permanent:
                # A refusal proves this attempt created nothing; an earlier doubt remains.
                msg.sending_since = prepared.prior_sending_since
            # Otherwise sending_since stays set: a 5xx or a dropped connection may come after
            # the platform created the message, so the next try goes out with maybe_sent.
            if dead:
                self._dead(msg, error)
            else:
                msg.next_attempt_at = now + timedelta(seconds=delay)
                msg.lease_until = None
                msg.leased_by = None
            return True

        recorded = await self._record(row, apply)
        if not recorded:
            return _Result(_Kind.SKIPPED)
        if not dead:
            return _Result(_Kind.RETRY)
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
        return _Result(_Kind.FINISHED, dead_letter=dead_letter)

    @staticmethod
    def _dead(msg: OutboxMessage, error: str) -> None:
        msg.status = OutboxStatus.DEAD
        msg.last_error = error[:MAX_ERROR_CHARS]
        msg.lease_until = None
        msg.leased_by = None

    async def _locked(self, session: AsyncSession, row_id: int) -> OutboxMessage | None:
        stmt = select(OutboxMessage).where(OutboxMessage.id == row_id)
        if self._db.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return (await session.execute(stmt)).scalar_one_or_none()

    async def _record(
        self,
        row: _Claimed,
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

    def _schedule_wake(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._wake.set()

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)


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


def _describe(exc: BaseException) -> str:
    """The error kept on the row and logged: its type and message, never the payload."""
    detail = exc.message if isinstance(exc, DeliveryError) else str(exc)
    return f"{type(exc).__name__}: {detail}"[:MAX_ERROR_CHARS]
