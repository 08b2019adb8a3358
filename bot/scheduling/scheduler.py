"""Scheduled work: APScheduler times it, the database decides what exists and what ran.

* Features describe their recurring work as :class:`Schedule` objects read from the database
  (a :class:`ScheduleSource`). At start, every ``reconcile_interval`` and whenever a feature says
  settings changed, :meth:`Scheduler.reconcile` rebuilds the APScheduler jobs from them.
* Each schedule has one APScheduler job at a time: a one-shot job for its next occurrence, whose
  arguments carry the occurrence's own time. Firing it runs the occurrence and books the next.
* Invariant 1: an occurrence runs inside the transaction that inserts its unique key into
  ``occurrence_claims``, before any other statement. Whoever inserts first (another replica, a
  second firing, the reconcile pass) runs it; the rest see the key and do nothing. A handler that
  fails rolls its claim back with everything else, so the occurrence may be tried again.
* Missed occurrences (the bot was down, or the console's demo clock jumped): for each schedule
  only the most recent missed occurrence runs, and only if it is younger than the schedule's
  ``grace``; older ones are skipped with a log line, never replayed. Due occurrences run in the
  order of their times. The same holds for a job that fires late (a paused process).
* An occurrence that creates work for later (a prompt that books its reminder) sets
  :attr:`Occurrence.schedules_changed`; once it has committed, the scheduler reads its sources
  again (in the same reconcile pass, or right after a job fired), so the new one-shots are booked
  before anything later runs. A handler cannot reconcile itself: it runs inside the claim's
  transaction and, during a reconcile, under its lock.
* Time zones (invariant 7): triggers compute in their zone's wall-clock time; an occurrence is
  one local wall-clock time. A time that a DST change skips (02:30 on a spring-forward night)
  runs once, shifted by the gap; a time that a fall-back repeats (01:30 EDT, then 01:30 EST)
  runs once, at its first instant. See :func:`next_fire_time`.

APScheduler 3 cannot share a job store between processes, so every replica keeps its own
in-memory jobs; correctness across replicas comes from the claims, not from APScheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Message
from bot.clock import Clock
from bot.delivery.outbox import enqueue
from bot.metrics import Metrics
from bot.port import Method, Target
from storage.db import Database
from storage.models import OccurrenceClaim
from storage.outages import DatabaseUnavailable
from storage.upsert import insert_unless_exists

log = logging.getLogger(__name__)

# How far back a missed-occurrence search walks at most; bounds work for dense triggers.
MAX_MISSED_STEPS = 10_000
# How often one reconcile re-reads the sources because its occurrences changed what is scheduled.
MAX_RELOADS = 10
RECONCILE_JOB_ID = "__reconcile__"


def next_fire_time(trigger: BaseTrigger, after: datetime) -> datetime | None:
    """The trigger's first occurrence strictly after ``after``, in UTC; None if there is none.

    APScheduler's ``CronTrigger`` matches wall-clock fields, so on a DST fall-back it fires a
    repeated time twice (01:30 EDT, then 01:30 EST): two instants, two occurrence keys, two
    runs. For a cron trigger the second instant of a repeated wall-clock time (``fold=1`` where
    the zone is ambiguous) is skipped, so each local time is one occurrence; an interval
    trigger counts elapsed time and keeps both. Asking with no previous fire time also lets
    one-shot triggers (``DateTrigger``) answer.
    """
    wall_clock = isinstance(trigger, CronTrigger)
    after = after.astimezone(UTC)
    while True:
        fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
        if fire is None:
            return None
        fire_utc = fire.astimezone(UTC)
        if fire_utc <= after:  # a one-shot trigger whose time has passed
            return None
        if wall_clock and fire.fold and fire.utcoffset() != fire.replace(fold=0).utcoffset():
            after = fire_utc  # the repeat of an ambiguous local time: already had its turn
            continue
        return fire_utc


@dataclass(frozen=True)
class Schedule:
    """A recurring piece of work. ``key`` must be stable and unique across all sources."""

    key: str
    handler: str
    trigger: BaseTrigger
    grace: timedelta = timedelta(hours=1)
    payload: Mapping[str, Any] = field(default_factory=dict)

    def occurrence_key(self, fire_at: datetime) -> str:
        return f"{self.key}@{fire_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


class ScheduleSource(Protocol):
    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]: ...


@dataclass
class Occurrence:
    """What an occurrence handler gets: the claiming transaction and the occurrence's time."""

    session: AsyncSession
    schedule: Schedule
    fire_at: datetime
    now: datetime
    key: str
    sent_something: bool = False
    # Set by a handler whose writes add or change schedules (e.g. a reminder row).
    schedules_changed: bool = False
    _after_commit: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once this occurrence's transaction has committed; never if it
        fails and rolls back."""
        self._after_commit.append(callback)

    async def send(
        self,
        workspace_id: int,
        method: Method,
        target: Target,
        msg: Message,
        *,
        key: str,
        depends_on: int | None = None,
    ) -> int:
        """Queue a message in this occurrence's transaction; ``key`` should derive from
        :attr:`key` so that a rerun can never queue it twice."""
        self.sent_something = True
        return await enqueue(
            self.session,
            workspace_id=workspace_id,
            method=method,
            target=target,
            message=msg,
            key=key,
            now=self.now,
            depends_on=depends_on,
        )


OccurrenceHandler = Callable[[Occurrence], Awaitable[None]]


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        instance: str,
        reconcile_interval: float = 60.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.instance = instance
        self.reconcile_interval = reconcile_interval
        self.sources: list[ScheduleSource] = []
        self.handlers: dict[str, OccurrenceHandler] = {}
        self.on_outbox: list[Callable[[], None]] = []
        self._schedules: dict[str, Schedule] = {}
        self._aps: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Occurrences this process knows are done (ran here or claimed elsewhere), by time.
        self._settled: dict[str, datetime] = {}
        # An occurrence changed what is scheduled: the sources must be read again.
        self._sources_stale = False
        self.metrics = Metrics()  # the app's (bot.app sets it)

    def add_source(self, source: ScheduleSource) -> None:
        self.sources.append(source)

    def add_handler(self, name: str, handler: OccurrenceHandler) -> None:
        self.handlers[name] = handler

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._aps = AsyncIOScheduler(timezone=UTC, job_defaults={"misfire_grace_time": None})
        self._aps.start()
        await self.reconcile()
        self._aps.add_job(
            self._reconcile_job,
            "interval",
            seconds=self.reconcile_interval,
            id=RECONCILE_JOB_ID,
            coalesce=True,
            max_instances=1,
        )

    async def stop(self) -> None:
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
        self._aps = None
        await self._idle.wait()

    def busy(self) -> bool:
        """Whether an occurrence is running or a job is due right now (for the console)."""
        if self._running or self._lock.locked():
            return True
        if self._aps is None:
            return False
        real_now = datetime.now(UTC)
        return any(
            job.next_run_time is not None
            and job.next_run_time <= real_now
            and job.id != RECONCILE_JOB_ID
            for job in self._aps.get_jobs()
        )

    def next_runs(self) -> list[tuple[str, datetime]]:
        """The next occurrence of every schedule, by the (possibly demo) clock's time; those
        due at the same time in the order of their keys, so a listing is the same every time."""
        if self._aps is None:
            return []
        return sorted(
            ((job.id, job.args[1]) for job in self._aps.get_jobs() if job.id in self._schedules),
            key=lambda item: (item[1], item[0]),
        )

    # -- reconcile ----------------------------------------------------------------------------

    async def _reconcile_job(self) -> None:
        """The periodic reconcile: an outage is told once by the database's health, and the
        database's return reconciles at once (see App), so no traceback every minute here."""
        try:
            await self.reconcile()
        except DatabaseUnavailable:
            pass

    async def reconcile(self) -> None:
        """Rebuild jobs from the database; run what is due now, within the missed policy."""
        async with self._lock:
            for _ in range(MAX_RELOADS):
                self._sources_stale = False
                now = self.clock.now()
                async with self.db.transaction() as session:
                    schedules: dict[str, Schedule] = {}
                    for source in self.sources:
                        for schedule in await source.schedules(session, now):
                            schedules[schedule.key] = schedule
                self._schedules = schedules
                horizon = now - max((s.grace for s in schedules.values()), default=timedelta(0))
                self._settled = {k: t for k, t in self._settled.items() if t >= horizon}
                due = sorted(
                    (fire_at, key)
                    for key, schedule in schedules.items()
                    if (fire_at := self._latest_due(schedule, now)) is not None
                    and schedule.occurrence_key(fire_at) not in self._settled
                )
                for fire_at, key in due:
                    await self.run_occurrence(schedules[key], fire_at)
                if not self._sources_stale:
                    break
            self._book_all(self.clock.now())

    def _latest_due(self, schedule: Schedule, now: datetime) -> datetime | None:
        """The most recent occurrence at or before ``now`` inside the grace window."""
        start = now - schedule.grace
        fire = next_fire_time(schedule.trigger, start - timedelta(microseconds=1))
        latest: datetime | None = None
        skipped = 0
        for _ in range(MAX_MISSED_STEPS):
            if fire is None or fire > now:
                break
            if latest is not None:
                skipped += 1
            latest = fire
            fire = next_fire_time(schedule.trigger, fire)
        if skipped:
            log.info("schedule %s: %d missed occurrence(s) skipped", schedule.key, skipped)
        return latest

    def _book_all(self, now: datetime) -> None:
        if self._aps is None:
            return
        for job in self._aps.get_jobs():
            if job.id != RECONCILE_JOB_ID and job.id not in self._schedules:
                job.remove()
        for schedule in self._schedules.values():
            self._book_next(schedule, now)

    def _book_next(self, schedule: Schedule, after: datetime) -> None:
        if self._aps is None:
            return
        fire_at = next_fire_time(schedule.trigger, after)
        if fire_at is None:
            existing = self._aps.get_job(schedule.key)
            if existing is not None:
                existing.remove()
            return
        # A demo clock may run ahead of real time; APScheduler waits in real time.
        real_at = fire_at - (self.clock.now() - datetime.now(UTC))
        self._aps.add_job(
            self._fire,
            DateTrigger(run_date=real_at, timezone=UTC),
            args=[schedule.key, fire_at],
            id=schedule.key,
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _fire(self, key: str, fire_at: datetime) -> None:
        schedule = self._schedules.get(key)
        if schedule is None:
            return
        now = self.clock.now()
        if now - fire_at > schedule.grace:
            # APScheduler runs a late job however late it is (a paused process, a demo clock
            # that jumped); the missed policy decides instead, as in reconcile.
            log.info("occurrence %s fired outside its grace", schedule.occurrence_key(fire_at))
            due = self._latest_due(schedule, now)
            if due is not None and schedule.occurrence_key(due) not in self._settled:
                await self.run_occurrence(schedule, due)
        else:
            await self.run_occurrence(schedule, fire_at)
        if self._sources_stale:
            try:
                await self.reconcile()  # books every job, this schedule's next one included
            except DatabaseUnavailable:
                return  # the database's return reconciles
        elif self._schedules.get(key) is schedule:
            self._book_next(schedule, max(fire_at, self.clock.now()))

    # -- running one occurrence -----------------------------------------------------------

    async def run_occurrence(self, schedule: Schedule, fire_at: datetime) -> bool:
        """Claim and run one occurrence; True if this call ran it."""
        key = schedule.occurrence_key(fire_at)
        handler = self.handlers.get(schedule.handler)
        if handler is None:
            log.error("schedule %s names unknown handler %s", schedule.key, schedule.handler)
            return False
        self._running += 1
        self._idle.clear()
        try:
            now = self.clock.now()
            async with self.db.transaction() as session:
                claimed = await insert_unless_exists(
                    session,
                    OccurrenceClaim,
                    {
                        "key": key,
                        "handler": schedule.handler,
                        "scheduled_for": fire_at,
                        "claimed_at": now,
                        "claimed_by": self.instance,
                    },
                    OccurrenceClaim.key,
                )
                if claimed is None:
                    self._settled[key] = fire_at
                    self.metrics.occurrence(schedule.handler, "claimed_elsewhere")
                    return False
                occurrence = Occurrence(session, schedule, fire_at, now, key)
                await handler(occurrence)
        except DatabaseUnavailable:
            # Told once by the database's health; its return reconciles, which runs this
            # occurrence if it is still within its grace.
            log.debug("occurrence %s waits for the database", key)
            return False
        except Exception:
            log.exception("occurrence %s failed; it will be retried within its grace", key)
            self.metrics.occurrence(schedule.handler, "failed")
            return False
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()
        self._settled[key] = fire_at
        self.metrics.occurrence(schedule.handler, "ran", (now - fire_at).total_seconds())
        for callback in occurrence._after_commit:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback of occurrence %s failed", key)
        if occurrence.schedules_changed:
            self._sources_stale = True
        if occurrence.sent_something:
            for wake in self.on_outbox:
                wake()
        return True
