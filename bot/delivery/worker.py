"""The delivery worker: drains the outbox to the platform (invariant 2).

The worker claims due rows with short, heartbeat-renewed leases (:mod:`bot.delivery.leases`),
sends each one and records its outcome (:mod:`bot.delivery.sending`), and tells the dead-letter
callbacks about rows that ended dead (:mod:`bot.delivery.dead_letters`). This module paces them.

The claimed rows are grouped by (workspace, method) bucket: buckets drain concurrently, each one
behind its token bucket. Inside a bucket's drain the rows are split into *lanes*, one per target
(a channel for posts, updates and ephemerals, a recipient for DMs): each lane sends its rows one
after the other in id order, and up to ``[delivery] max_in_flight_per_bucket`` lanes have a send
in flight at once. So DMs to different members overlap (a bucket is no longer held to one send
per round trip), while one target's sends keep their order and never overlap. The pacing still
gates every send's start; with the setting at 1 the bucket sends strictly one after another, in
id order, except for the channel lanes below.

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

All database times come from the injected clock (the console's demo clock jumps); pacing and
pauses run on the event loop's monotonic time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import Clock
from bot.config import DeliverySection
from bot.delivery.dead_letters import DeadLetter, DeadLetterCallback, tell
from bot.delivery.leases import BucketKey, Claimed, Heartbeat, Leases
from bot.delivery.ratelimit import Bucket, RateLimiterRegistry
from bot.delivery.sending import Kind, Result, RowSender, backoff_delay
from bot.delivery.uninterrupted import complete
from bot.metrics import Metrics
from bot.port import Method, PlatformPort
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from storage.outages import DatabaseUnavailable

__all__ = ["DeadLetter", "DeadLetterCallback", "DeliveryWorker", "backoff_delay"]

log = logging.getLogger(__name__)

# Learned rates (SQLite: kept in memory) are written at most this often while sending, and when
# the worker stops: a write per drain would queue behind, and delay, the sends' own writes.
SAVE_RATES_EVERY_SECONDS = 30.0


def default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _label(result: Result) -> str:
    """A send's result as syncup_sends_total labels it (bot.metrics)."""
    if result.kind is Kind.FINISHED:
        return "dead" if result.dead_letter is not None else "sent"
    return {Kind.RETRY: "retried", Kind.RATE_LIMITED: "rate_limited"}.get(result.kind, "skipped")


@dataclass
class _Drain:
    """What the lanes of one bucket's drain share."""

    finished: int = 0
    # Set by a 429: every lane stops, and its rows go back not due before this.
    not_before: datetime | None = None
    lanes: list[asyncio.Task[None]] = field(default_factory=list)
    # The rows of each lane still sending, by target: rows claimed later for that target join
    # its queue (so one target's rows still go one at a time, in order).
    open: dict[str | None, deque[Claimed]] = field(default_factory=dict)
    # The bucket's sends in flight at once (None: no cap beyond one per lane). Taken before a
    # token, so the waiters queue in the order their lanes started (about id order).
    slots: asyncio.Semaphore | None = None
    # Taking more of the bucket's rows before it runs dry (see DeliveryWorker._refill).
    more: bool = False  # the last claim was a full batch: there may be more due
    refill: asyncio.Task[None] | None = None

    def unstarted(self) -> int:
        return sum(len(queue) for queue in self.open.values())


class DeliveryWorker:
    """Sends outbox rows through a :class:`PlatformPort`; several may share one database.

    ``instance`` names this worker in ``leased_by`` and must differ between workers sharing a
    database. Its leases last ``lease_seconds`` and are renewed while it holds the rows, so a
    send may take longer than a lease; a worker that dies leaves its rows for one lease.
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
        self._settings = settings
        self._clock = clock
        self.instance = instance or default_instance()
        self._limits = RateLimiterRegistry(
            port.rate_limits(),
            settings.rates,
            channel_limit=port.channel_rate_limit(),
            adaptive=settings.adaptive_rates,
            ceilings=getattr(port, "rate_ceilings", None),
            # Replicas share one PostgreSQL: they share its buckets too (one budget per
            # workspace). SQLite has one process: its buckets stay in memory.
            shared=db if db.dialect == "postgresql" else None,
        )
        self._rates_loaded = False
        self._rates_saved = float("-inf")  # loop time of the last save
        # Told of every row that ends dead, after that is committed (see DeadLetter).
        self.on_dead_letter: list[DeadLetterCallback] = []
        self.metrics = Metrics()  # the app's (bot.app sets it)
        self.leases = Leases(
            db, clock, self.instance, timedelta(seconds=settings.lease_seconds), settings.batch_size
        )
        self._sender = RowSender(
            db,
            port,
            settings,
            self.leases,
            clock=clock,
            rng=rng or random.Random(),
            wake_in=self._schedule_wake,
        )
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drainers: dict[BucketKey, asyncio.Task[int]] = {}
        self._pending_rows: dict[int, asyncio.Event] = {}  # claimed here, outcome not known yet
        self._heartbeat = Heartbeat(self.leases, lambda: self._pending_rows.keys())
        self._in_flight = 0
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def limits(self) -> RateLimiterRegistry:
        return self._limits

    def held(self) -> list[int]:
        """The rows this worker holds now (claimed, outcome not recorded yet)."""
        return sorted(self._pending_rows)

    async def renew_leases(self) -> int:
        """What the heartbeat does every third of a lease; returns how many leases it renewed."""
        return await self._heartbeat.renew_now()

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
            await complete(asyncio.gather(*drainers, return_exceptions=True))
        if self._task is not None:
            task, self._task = self._task, None
            await complete(asyncio.gather(task, return_exceptions=True))
        await self._heartbeat.stop()
        await complete(self.save_rates())

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
                    claimed, _ = await self._claim_and_spawn(refill=True)
                except DatabaseUnavailable:
                    claimed = 0  # told once by the database's health; the poll retries
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
                await complete(asyncio.gather(*drainers, return_exceptions=True))

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
            await complete(asyncio.gather(*tasks, return_exceptions=True))
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

    async def _claim_and_spawn(self, refill: bool = False) -> tuple[int, list[asyncio.Task[int]]]:
        """Claim and start a drainer per bucket. A cancellation is held off until the claim has
        committed, then the new drainers are stopped too (releasing their rows), so no lease is
        left behind without a drainer."""
        if self._stopping:
            return 0, []
        claiming = asyncio.ensure_future(self._claim_and_spawn_now(refill))
        try:
            return await complete(claiming)
        except asyncio.CancelledError:
            if claiming.done() and not claiming.cancelled() and claiming.exception() is None:
                _, spawned = claiming.result()
                for task in spawned:
                    task.cancel()
                await complete(asyncio.gather(*spawned, return_exceptions=True))
            raise

    async def _claim_and_spawn_now(self, refill: bool) -> tuple[int, list[asyncio.Task[int]]]:
        if not self._rates_loaded and self._limits.shared is None:
            await self._limits.load(self._db)  # what this process learned before a restart
            self._rates_loaded = True
            self._rates_saved = asyncio.get_running_loop().time()
        exclude = set(self._drainers) | {
            (ws, method) for ws, method in self._limits.paused() if isinstance(ws, int)
        }
        rows = await self.leases.claim(exclude)
        groups: dict[BucketKey, list[Claimed]] = {}
        for row in rows:
            groups.setdefault(row.bucket, []).append(row)
            self._pending_rows[row.id] = asyncio.Event()
        if rows:
            self._heartbeat.ensure_running()
        # The background loop keeps a bucket's drain going while it has more due (run_once
        # drains one batch).
        full = refill and len(rows) >= self._settings.batch_size
        tasks = []
        for key, group in groups.items():
            task = asyncio.create_task(self._drain(key, group, full))
            self._drainers[key] = task
            task.add_done_callback(functools.partial(self._drainer_done, key))
            tasks.append(task)
        return len(rows), tasks

    def _drainer_done(self, key: BucketKey, task: asyncio.Task[int]) -> None:
        self._drainers.pop(key, None)
        # The background loop never awaits its drainers: retrieve a failure here, so that it
        # is logged once instead of as "Task exception was never retrieved".
        failure = None if task.cancelled() else task.exception()
        if isinstance(failure, Exception) and not isinstance(failure, DatabaseUnavailable):
            log.error("delivery: draining %s failed", key, exc_info=failure)
        self._wake.set()  # its bucket may have more rows due

    # --- draining one bucket -------------------------------------------------------------------

    async def _drain(self, key: BucketKey, rows: list[Claimed], full: bool = False) -> int:
        """Send one bucket's claimed rows (``full``: the claim was a full batch, so more of the
        bucket's rows may be due); returns how many ended sent or dead."""
        try:
            return await self._drain_lanes(key, rows, full)
        finally:
            now = asyncio.get_running_loop().time()
            if now - self._rates_saved >= SAVE_RATES_EVERY_SECONDS:
                self._rates_saved = now
                await complete(self.save_rates())

    async def _drain_lanes(self, key: BucketKey, rows: list[Claimed], full: bool) -> int:
        bucket = self._limits.bucket(*key)
        drain = _Drain(more=full)
        if self._settings.max_in_flight_per_bucket > 1:
            drain.slots = asyncio.Semaphore(self._settings.max_in_flight_per_bucket)
        self._add_to_lanes(key, bucket, drain, rows)
        try:
            while waiting := [t for t in (*drain.lanes, drain.refill) if t and not t.done()]:
                # A refill may start new lanes meanwhile: look again once these are done. Not
                # gather: cancelled, it would wait for its own tasks only, while lanes a refill
                # started after it began went on sending.
                await asyncio.wait(waiting)
                for task in waiting:
                    failure = None if task.cancelled() else task.exception()
                    if failure is not None and not isinstance(failure, Exception):
                        raise failure  # the process is going down (SystemExit and the like)
        except BaseException:
            # Cancelling this drain cancels the lanes and waits for them (each gives its rows
            # back), and any refill (whose rows go back too).
            # One wait for all of them: a second cancellation (stop() and the loop's end both
            # cancel drains) landing between two waits skipped the refill's, and stop() returned
            # with its claim still to commit and its rows to go back.
            tasks = [t for t in (*drain.lanes, drain.refill) if t is not None]
            for task in tasks:
                task.cancel()
            await complete(asyncio.gather(*tasks, return_exceptions=True))
            raise
        return drain.finished

    def _lane_of(self, key: BucketKey, row: Claimed) -> str | None:
        if self._limits.paces_channels(key[1]):
            return row.channel_id
        if self._settings.max_in_flight_per_bucket == 1:
            return None  # one lane: the bucket's rows strictly one after another
        return _target(row)

    def _add_to_lanes(
        self, key: BucketKey, bucket: Bucket, drain: _Drain, rows: list[Claimed]
    ) -> None:
        """Rows join the queue of their target's lane while it is still sending, else start a
        lane of their own."""
        new: dict[str | None, deque[Claimed]] = {}
        for row in rows:
            lane = self._lane_of(key, row)
            queue = drain.open.get(lane)
            if queue is None:
                queue = drain.open[lane] = new[lane] = deque()
            queue.append(row)
        paced = self._limits.paces_channels(key[1])
        for lane, queue in new.items():
            channel = self._channel_bucket(key, queue[0].channel_id) if paced else None
            drain.lanes.append(
                asyncio.create_task(self._drain_lane(key, bucket, channel, queue, drain, lane))
            )

    def _maybe_refill(self, key: BucketKey, bucket: Bucket, drain: _Drain) -> None:
        """Claim more of this bucket's rows while its last ones are still being sent, so a long
        fan-out has no pause between batches (a claim waited for every send of the batch
        before, then for the claim itself)."""
        low = max(2 * self._settings.max_in_flight_per_bucket, self._settings.batch_size // 2)
        if (
            drain.more
            and (drain.refill is None or drain.refill.done())
            and drain.not_before is None
            and not self._stopping
            and drain.unstarted() <= low
        ):
            drain.refill = asyncio.create_task(self._refill(key, bucket, drain))

    async def _refill(self, key: BucketKey, bucket: Bucket, drain: _Drain) -> None:
        claiming = asyncio.ensure_future(self.leases.claim((), only=key))
        try:
            # As the main claim: a stop waits for the claim's commit, then gives its rows back.
            rows = await complete(claiming)
        except asyncio.CancelledError:
            if not claiming.cancelled() and claiming.exception() is None:
                # Not due before a 429's pause ends, as the lanes' own rows.
                ids = [r.id for r in claiming.result()]
                await complete(self._release(ids, drain.not_before))
            raise
        except DatabaseUnavailable:
            drain.more = False  # told once by the database's health; the poll claims later
            return
        except Exception:
            drain.more = False
            log.exception("delivery: claiming more outbox rows for %s failed", key)
            return
        drain.more = len(rows) >= self._settings.batch_size
        for row in rows:
            self._pending_rows[row.id] = asyncio.Event()
        if not rows:
            return
        self._heartbeat.ensure_running()
        if drain.not_before is not None or self._stopping:
            await complete(self._release([r.id for r in rows], drain.not_before))
            return
        self._add_to_lanes(key, bucket, drain, rows)

    async def save_rates(self) -> None:
        """Keep the rates learned in memory (SQLite); shared buckets are rows already."""
        try:
            await self._limits.save(self._db)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("delivery: keeping the learned rates failed (%s)", type(exc).__name__)

    def _channel_bucket(self, key: BucketKey, channel_id: str | None) -> Bucket | None:
        # A post or update without a channel of its own (filled in from its parent) is paced
        # by its method bucket only.
        return None if channel_id is None else self._limits.channel_bucket(key[0], channel_id)

    async def _drain_lane(
        self,
        key: BucketKey,
        bucket: Bucket,
        channel: Bucket | None,
        queue: deque[Claimed],
        drain: _Drain,
        lane: str | None = None,
    ) -> None:
        """Send the ``queue``'s rows one after the other in id order, each behind the method
        ``bucket`` and, for a channel-paced lane, the ``channel`` bucket too; rows that join
        the queue meanwhile are sent too."""
        workspace = queue[0].workspace
        try:
            while queue and not self._stopping and drain.not_before is None:
                row = queue[0]
                parent = self._pending_rows.get(row.depends_on_id or -1)
                if parent is not None:
                    await parent.wait()  # claimed here too: no need to defer, it is coming
                if drain.slots is not None:
                    await drain.slots.acquire()
                try:
                    if channel is None:
                        await bucket.acquire()
                    else:
                        await channel.acquire_with(bucket)
                    if self._stopping or drain.not_before is not None:
                        break
                    queue.popleft()
                    self._maybe_refill(key, bucket, drain)
                    try:
                        result = await complete(self._process_in(row, bucket, channel, drain))
                    except Exception:
                        queue.appendleft(row)  # nothing was committed for it: give it back
                        raise
                finally:
                    if drain.slots is not None:
                        drain.slots.release()
                if result.kind is Kind.RATE_LIMITED:
                    current = asyncio.current_task()
                    for lane in drain.lanes:
                        if lane is not current:
                            lane.cancel()  # waiting for a token; a send in flight completes
                    break
        except DatabaseUnavailable:
            pass  # told once by the database's health; the rows go back below
        except Exception:
            # A bug: stop this lane for now; the rows go back below.
            log.exception("delivery: draining workspace %s, %s failed", workspace, key[1].value)
        finally:
            if drain.open.get(lane) is queue:
                del drain.open[lane]  # closed: later rows of this target start a new lane
            if queue:
                await complete(self._release([r.id for r in queue], drain.not_before))

    async def _release(self, ids: list[int], not_before: datetime | None) -> None:
        try:
            await self.leases.release(ids, not_before)
        finally:
            for row_id in ids:
                self._row_settled(row_id)

    async def _process_in(
        self, row: Claimed, bucket: Bucket, channel: Bucket | None, drain: _Drain
    ) -> Result:
        """:meth:`_process`, counted in the drain's shared state (kept even if the lane is
        cancelled meanwhile: the send itself is shielded)."""
        result = await self._process(row, bucket, channel)
        if result.kind is Kind.FINISHED:
            drain.finished += 1
        elif result.kind is Kind.RATE_LIMITED and result.not_before is not None:
            if drain.not_before is None or result.not_before > drain.not_before:
                drain.not_before = result.not_before
        return result

    def _row_settled(self, row_id: int) -> None:
        event = self._pending_rows.pop(row_id, None)
        if event is not None:
            event.set()

    async def _process(self, row: Claimed, bucket: Bucket, channel: Bucket | None) -> Result:
        self._in_flight += 1
        try:
            result = await self._sender.attempt(row, bucket, channel)
            self.metrics.sent(row.method.value, _label(result))
            if result.dead_letter is not None:
                await tell(self.on_dead_letter, result.dead_letter)
            return result
        finally:
            self._in_flight -= 1
            self._row_settled(row.id)

    def _schedule_wake(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            self._wake.set()

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)


def _target(row: Claimed) -> str | None:
    """A row's lane inside its bucket: rows to one target go one at a time, in id order. A DM's
    recipient, else its channel (a post, an update of a message there, an ephemeral); None (one
    lane of its own) when the row names neither, e.g. a webhook's."""
    if row.method is Method.DM:
        return f"user:{row.user_id}" if row.user_id is not None else None
    if row.method is Method.WEBHOOK:
        return None
    return f"channel:{row.channel_id}" if row.channel_id is not None else None
