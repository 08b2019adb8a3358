"""Escalation: the ladder's steps, fired exactly once from database schedules.

**One schedule, not one per blocker.** A company has 100,000 open blockers; an APScheduler job
each would be 100,000 jobs per replica, rebuilt on every reconcile. Instead every blocker keeps
its next due time in ``blockers.next_escalation_at`` (indexed), and :class:`EscalationSchedules`
books *one* occurrence at the earliest of them (an index lookup). When it fires, the sweep
(:meth:`Escalations.sweep`) takes the due blockers in batches of :data:`BATCH_SIZE`, oldest
first, row-locked with ``SKIP LOCKED`` on PostgreSQL so that two replicas sweeping at once take
different blockers, and for each one:

1. asks the ladder (:mod:`~bot.features.blockers.ladder`) which step is due: after downtime
   that spanned several levels only the highest due one, flagged as delayed;
2. inserts the step's own key ``blocker:<id>:esc:<generation>:<round>:<level>`` into
   ``occurrence_claims`` before any side effect (invariant 1): a second replica, a rerun after a
   crash or a restart never sends a step twice, and a newer ladder (another generation) never
   matches an older one's keys;
3. queues the notifications (a DM to each target member, a post for a channel target; a webhook
   target is sent by the webhooks' timeline listener), writes the timeline entry
   ``escalated`` (the card's "escalated to @acc, level 2" line), and stores the next due time.

A batch is one transaction: the claim, the messages, the timeline and the next due time commit
together or not at all. When a batch ends the scheduler reads the earliest due time again and
books the next sweep, at once if more are due; an overdue sweep's occurrence key names its first
blocker and its time, so a later sweep never collides with an earlier one.

**Working hours of the people paged.** A DM never reaches a member outside the area's working
hours *read in the member's own zone* (their profile's, else the area's), unless the blocker is
critical. Such a DM is still queued by the step (same claim, same key) but held in the outbox
until the member's next working time (its ``next_attempt_at``): the step itself is not delayed
for the other targets, and the DM is durable across restarts. If the blocker is resolved,
cancelled or its ladder restarts before then, the held DM is withdrawn (:func:`_withdraw_held`).

**Acknowledgements** pause escalation for the policy's ``reack`` (business time); the ladder
then starts again with its first level at once. Resolving or cancelling stops it. The blocker
service calls :func:`schedule_after_change` after every change (contract 7).

The Informed are never pinged: they read about blockers in the weekly digest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Core
from bot.delivery.outbox import Outgoing, enqueue_many
from bot.features.blockers import ladder, timeline
from bot.features.blockers.business_time import BusinessCalendar, CalendarError
from bot.features.blockers.escalation_people import People, message
from bot.features.blockers.ladder import LadderState
from bot.features.blockers.lookup import name_of
from bot.features.blockers.policy import DEFAULT_POLICY, Level, Policy, PolicyError, parse
from bot.features.blockers.timeline import Kind
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.models import (
    Blocker,
    BlockerSeverity,
    BlockerStatus,
    Member,
    OccurrenceClaim,
    OutboxMessage,
    OutboxStatus,
)
from storage.outages import DatabaseUnavailable
from storage.raci import BlockerSettings, RaciArea, RaciRole
from storage.upsert import insert_do_nothing

log = logging.getLogger(__name__)

SWEEP_KEY = "blockers:escalation"
SWEEP_HANDLER = "blocker-escalation"
BATCH_SIZE = 50
# The sweep's occurrence is booked at or after now; a short grace keeps the scheduler's memory
# of settled occurrences small (a new sweep is booked after each one anyway).
SWEEP_GRACE = timedelta(hours=1)
ACTIVE = (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED)
ROLE_LABELS = {"R": "Responsible", "A": "Accountable", "C": "Consulted", "I": "Informed"}


def step_key(blocker: Blocker, round_: int, level: int) -> str:
    return f"blocker:{blocker.id}:esc:{blocker.escalation_generation}:{round_}:{level}"


def ladder_area_id(blocker: Blocker) -> int | None:
    """The area whose policy and people a blocker escalates to: the area it waits on (a
    cross-team dependency), else its own."""
    return blocker.waiting_on_area_id or blocker.area_id


# -- plans: an area's calendar and policy ----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    area: RaciArea
    calendar: BusinessCalendar
    policy: Policy


@dataclass
class Plans:
    """Areas, calendars and policies, loaded once per sweep batch."""

    session: AsyncSession
    areas: dict[int, RaciArea] = field(default_factory=dict)
    defaults: dict[int, Policy] = field(default_factory=dict)
    plans: dict[int, Plan | None] = field(default_factory=dict)

    async def load(self, area_ids: Iterable[int]) -> None:
        wanted = {i for i in area_ids if i not in self.areas}
        if wanted:
            rows = await self.session.scalars(select(RaciArea).where(RaciArea.id.in_(wanted)))
            self.areas.update({area.id: area for area in rows})

    async def default_policy(self, workspace_id: int, day: timedelta) -> Policy:
        if workspace_id not in self.defaults:
            settings = await self.session.get(BlockerSettings, workspace_id)
            self.defaults[workspace_id] = _checked_policy(
                settings.default_policy if settings else None, day, f"workspace {workspace_id}"
            )
        return self.defaults[workspace_id]

    async def plan(self, blocker: Blocker) -> Plan | None:
        area_id = ladder_area_id(blocker)
        if area_id is None:
            return None
        if area_id not in self.plans:
            await self.load([area_id])
            area = self.areas.get(area_id)
            self.plans[area_id] = None if area is None else await self._plan(area)
        return self.plans[area_id]

    async def _plan(self, area: RaciArea) -> Plan:
        try:
            calendar = BusinessCalendar.for_area(area)
        except CalendarError as exc:  # saved before a check existed: escalate in UTC hours
            log.warning("area %s has an unusable calendar (%s); using UTC 09-17", area.id, exc)
            calendar = BusinessCalendar()
        if area.policy:
            policy = _checked_policy(area.policy, calendar.day_length, f"area {area.id}")
        else:
            policy = await self.default_policy(area.workspace_id, calendar.day_length)
        return Plan(area, calendar, policy)


def _checked_policy(data: dict[str, Any] | None, day: timedelta, where: str) -> Policy:
    try:
        return parse(data, day_length=day)
    except PolicyError as exc:  # stored by hand or by an older version: never stop escalating
        log.warning("%s has an unusable escalation policy (%s); using the default", where, exc)
        return DEFAULT_POLICY


def state_of(blocker: Blocker) -> LadderState:
    assert blocker.escalation_anchor_at is not None
    return LadderState(
        anchor=blocker.escalation_anchor_at,
        level=blocker.escalation_level,
        round=blocker.escalation_round,
        severity=BlockerSeverity(blocker.severity),
        acknowledged=blocker.status == BlockerStatus.ACKNOWLEDGED,
        snoozed_until=blocker.snoozed_until,
    )


# -- contract 7: after every change ---------------------------------------------------------------


async def schedule_after_change(session: AsyncSession, blocker: Blocker, now: datetime) -> bool:
    """Set the blocker's next due step after a change (contract 7), in the change's transaction.

    A resolved or cancelled blocker, or one without an area, stops escalating. A change that
    bumped ``escalation_generation`` restarts the ladder: from ``now``, or for an acknowledged
    blocker from the end of the policy's re-escalation pause. Other changes (a snooze, another
    area) keep the ladder's start and recompute the next step. Returns whether a step is booked
    (the caller may then ask the scheduler to reconcile: ``Context.schedules_changed``)."""
    plan = await Plans(session).plan(blocker) if blocker.status in ACTIVE else None
    # Only a step that fired can have left a DM held; a new blocker (most changes: a standup
    # answer) skips the outbox search.
    fired = blocker.escalation_level > 0 or blocker.escalation_round > 0
    if plan is None:
        blocker.next_escalation_at = None
        if fired:
            await _withdraw_held(session, blocker, now, keep_generation=None)
        return False
    stale = blocker.escalation_anchor_generation != blocker.escalation_generation
    if blocker.escalation_anchor_at is None or stale:
        anchor = now
        if blocker.status == BlockerStatus.ACKNOWLEDGED:
            clock = ladder.clock_for(plan.calendar, blocker.severity)
            anchor = clock.add(now, plan.policy.reack.business(plan.calendar.day_length))
        blocker.escalation_anchor_at = anchor
        blocker.escalation_anchor_generation = blocker.escalation_generation
        blocker.escalation_level = 0
        blocker.escalation_round = 0
        if fired:
            await _withdraw_held(
                session, blocker, now, keep_generation=blocker.escalation_generation
            )
    step = ladder.next_step(plan.policy, plan.calendar, state_of(blocker))
    blocker.next_escalation_at = step.due if step is not None else None
    return step is not None


async def _withdraw_held(
    session: AsyncSession, blocker: Blocker, now: datetime, *, keep_generation: int | None
) -> None:
    """Delete escalation DMs still held for a member's working hours (never leased, due later)
    that belong to a ladder that stopped, or to an older one."""
    query = delete(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.PENDING,
        OutboxMessage.next_attempt_at > now,
        OutboxMessage.leased_by.is_(None),
        OutboxMessage.idempotency_key.like(f"blocker:{blocker.id}:esc:%"),
    )
    if keep_generation is not None:
        keep = f"blocker:{blocker.id}:esc:{keep_generation}:%"
        query = query.where(OutboxMessage.idempotency_key.not_like(keep))
    await session.execute(query)


# -- the schedule -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSchedule(Schedule):
    """One sweep at the earliest due time. Its occurrence key names the first due blocker and
    the time to the microsecond: every sweep after a batch is a new occurrence, while two
    replicas booking the same earliest time share one."""

    def occurrence_key(self, fire_at: datetime) -> str:
        first = self.payload.get("first", 0)
        return f"{self.key}:{first}@{fire_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


class EscalationSchedules:
    """The :class:`~bot.scheduling.scheduler.ScheduleSource`: one index lookup."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        first = (
            await session.execute(
                select(Blocker.id, Blocker.next_escalation_at)
                .where(Blocker.next_escalation_at.is_not(None))
                .order_by(Blocker.next_escalation_at)
                .limit(1)
            )
        ).first()
        if first is None:
            return []
        blocker_id, due_at = first
        # Overdue (downtime, a batch left over): due now. Each batch sets ``schedules_changed``,
        # so the scheduler reads this again and runs the next batch in the same reconcile
        # pass (up to its MAX_RELOADS; the rest at the next reconcile).
        at = max(due_at, now)
        trigger = DateTrigger(run_date=at, timezone=UTC)
        return [
            SweepSchedule(
                SWEEP_KEY, SWEEP_HANDLER, trigger, grace=SWEEP_GRACE, payload={"first": blocker_id}
            )
        ]


def due_query(now: datetime, limit: int = BATCH_SIZE) -> Any:
    """The due blockers, oldest first, locked (PostgreSQL skips those another replica holds)."""
    return (
        select(Blocker)
        .where(Blocker.next_escalation_at <= now)
        .order_by(Blocker.next_escalation_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


# -- the sweep ----------------------------------------------------------------------------------


@dataclass
class Step:
    """One step being fired in a batch: what it queued, for its timeline entry."""

    blocker: Blocker
    plan: Plan
    firing: ladder.Firing
    key: str
    targets: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # member id -> held until (ISO)
    messages: list[Outgoing] = field(default_factory=list)


class Escalations:
    def __init__(self, core: Core, scheduler: Scheduler, batch_size: int = BATCH_SIZE) -> None:
        self.core = core
        self.scheduler = scheduler
        self.instance = scheduler.instance
        self.batch_size = batch_size
        self._more: asyncio.Task[None] | None = None
        self._again = False

    def _continue(self) -> None:
        """A full batch: more may be due. The scheduler runs the next batches in the same
        reconcile pass, up to its reload limit; fresh passes (one at a time, as long as batches
        come back full) take over from there instead of waiting for the periodic reconcile."""
        self._again = True
        if self._more is None or self._more.done():
            self._more = self.core.spawn(self._carry_on(), name="escalation-sweep")

    async def _carry_on(self) -> None:
        while self._again:
            self._again = False
            try:
                await self.scheduler.reconcile()
            except DatabaseUnavailable:
                return  # the database's return reconciles

    async def sweep(self, occurrence: Occurrence) -> None:
        """Fire the due steps of one batch of blockers and set their next due times, in the
        occurrence's transaction: the claims first (one statement), then the messages (one
        statement), the timeline entries and the next due times."""
        session, now = occurrence.session, occurrence.now
        blockers = list(await session.scalars(due_query(now, self.batch_size)))
        if not blockers:
            return
        occurrence.schedules_changed = True  # the earliest due time moves on
        if len(blockers) == self.batch_size:
            occurrence.after_commit(self._continue)
        plans = Plans(session)
        await plans.load(i for b in blockers if (i := ladder_area_id(b)) is not None)
        due: list[Step] = []
        for blocker in blockers:
            plan = await plans.plan(blocker) if blocker.status in ACTIVE else None
            if plan is None or blocker.escalation_anchor_at is None:
                # Closed, without an area, or never scheduled by this version: start afresh.
                await schedule_after_change(session, blocker, now)
                continue
            firing = ladder.due(plan.policy, plan.calendar, state_of(blocker), now)
            if firing is not None:
                key = step_key(blocker, firing.step.round, firing.step.level)
                due.append(Step(blocker, plan, firing, key))
            else:
                _set_next(blocker, plan, now)
        if not due:
            return
        claimed = await self.claim(session, due, now)
        fired = [step for step in due if step.key in claimed]
        found = await People.load(
            session, [s.blocker for s in fired], {s.plan.area.id for s in fired}
        )
        for step in fired:
            await self.compose(session, found, step, now)
        outgoing = [m for step in fired for m in step.messages]
        ids, _new = await enqueue_many(session, outgoing, now)
        await self.hold(session, fired, ids)
        for step in due:
            blocker = step.blocker
            blocker.escalation_level = step.firing.step.level
            blocker.escalation_round = step.firing.step.round
            _set_next(blocker, step.plan, now)  # before the entry: its card shows what is next
            if step.key in claimed:
                await timeline.record(session, blocker, Kind.ESCALATED, now, detail=_detail(step))
        if outgoing:
            occurrence.sent_something = True

    async def claim(self, session: AsyncSession, steps: list[Step], now: datetime) -> set[str]:
        """Insert every step's key into ``occurrence_claims``; the keys this call inserted
        (a key already there was fired by another replica or an earlier run)."""
        stmt = insert_do_nothing(session, OccurrenceClaim, ["key"]).returning(OccurrenceClaim.key)
        rows = [
            {
                "key": step.key,
                "handler": SWEEP_HANDLER,
                "scheduled_for": step.firing.step.due,
                "claimed_at": now,
                "claimed_by": self.instance,
            }
            for step in steps
        ]
        return set((await session.scalars(stmt, rows)).all())

    async def compose(
        self, session: AsyncSession, found: People, step: Step, now: datetime
    ) -> None:
        """The step's messages: a DM to each target member, a post for a channel target."""
        blocker, plan, level = step.blocker, step.plan, step.firing.step.target
        recipients = await self.recipients(session, found, plan, blocker, level)
        channel = channel_of(plan, level)
        if level.kind == "webhook":
            step.labels.append(f"webhook #{level.ref}")  # sent by the webhooks' listener
        if not recipients and channel is None:
            return
        msg = message(found, plan, blocker, step.firing, now)
        for member in recipients:
            target = Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id)
            key = f"{step.key}:dm:{member.id}"
            step.messages.append(Outgoing(blocker.workspace_id, Method.DM, target, msg, key))
            step.targets.append(member.id)
            step.labels.append(f"@{name_of(member)}")
            hours = plan.calendar.in_zone(member.timezone or plan.calendar.zone)
            if blocker.severity != BlockerSeverity.CRITICAL and not hours.is_open(now):
                step.held[str(member.id)] = hours.next_open(now).isoformat()
        if channel is not None:
            post = Outgoing(
                blocker.workspace_id,
                Method.POST,
                Target(channel_id=channel),
                msg,
                f"{step.key}:post",
            )
            step.messages.append(post)
            step.labels.append(f"#{channel}")

    @staticmethod
    async def hold(session: AsyncSession, steps: list[Step], ids: dict[str, int]) -> None:
        """DMs to members outside their working hours wait in the outbox until then."""
        until: dict[str, list[int]] = {}
        for step in steps:
            for member_id, when in step.held.items():
                until.setdefault(when, []).append(ids[f"{step.key}:dm:{member_id}"])
        for when, rows in until.items():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(rows), OutboxMessage.attempts == 0)
                .values(next_attempt_at=datetime.fromisoformat(when))
                .execution_options(synchronize_session=False)
            )

    async def recipients(
        self, session: AsyncSession, found: People, plan: Plan, blocker: Blocker, target: Level
    ) -> list[Member]:
        """The members a level DMs. The Responsible of a blocker that waits on a member is that
        member; otherwise the area's Responsible (groups expanded by the platform)."""
        kind = target.kind
        if kind == "responsible" and blocker.waiting_on_member_id is not None:
            waiting = found.members.get(blocker.waiting_on_member_id)
            return [waiting] if waiting is not None else []
        if kind in ("responsible", "accountable"):
            role = RaciRole.RESPONSIBLE if kind == "responsible" else RaciRole.ACCOUNTABLE
            return await found.role(session, self.core, plan.area, role)
        if kind == "member":
            await found.add(session, {int(target.ref)})
            member = found.members.get(int(target.ref))
            if member is None or member.workspace_id != blocker.workspace_id:
                log.warning("blocker %s: policy names unknown member %s", blocker.id, target.ref)
                return []
            return [member]
        return []


def _set_next(blocker: Blocker, plan: Plan, now: datetime) -> None:
    following = ladder.next_step(plan.policy, plan.calendar, state_of(blocker))
    next_at = following.due if following is not None else None
    if next_at is not None and next_at <= now:
        next_at = now + timedelta(minutes=1)  # never spin on one blocker
    blocker.next_escalation_at = next_at


def _detail(step: Step) -> dict[str, Any]:
    """The ``escalated`` entry (contract 5)."""
    level = step.firing.step
    detail: dict[str, Any] = {
        "level": level.level,
        "round": level.round,
        "targets": step.targets,
        "target": level.target.target,
        "label": ", ".join(step.labels) or level.target.describe(),
        "delayed": step.firing.delayed,
    }
    if step.firing.skipped:
        detail["skipped"] = step.firing.skipped
    if step.held:
        detail["held"] = step.held
    return detail


def channel_of(plan: Plan, target: Level) -> str | None:
    if target.kind == "channel":
        return plan.area.channel_id
    if target.kind == "channel_id":
        return target.ref
    return None


def register(core: Core, scheduler: Scheduler, *, batch_size: int = BATCH_SIZE) -> Escalations:
    """Book the sweep, handle its occurrences, and add ``/raci policy`` (``/raci`` must be
    registered first: ``bot.features.raci.register``)."""
    from bot.features.blockers import policy_commands

    escalations = Escalations(core, scheduler, batch_size)
    scheduler.add_source(EscalationSchedules())
    scheduler.add_handler(SWEEP_HANDLER, escalations.sweep)
    policy_commands.register(core)
    return escalations
