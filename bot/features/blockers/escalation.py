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

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Context, Fields, Header, Message, Section, Text, text
from bot.core import Core
from bot.delivery.outbox import enqueue
from bot.features.blockers import cards, ladder, timeline
from bot.features.blockers.business_time import BusinessCalendar, CalendarError
from bot.features.blockers.ladder import LadderState
from bot.features.blockers.lookup import local, name_of, span
from bot.features.blockers.policy import DEFAULT_POLICY, Level, Policy, PolicyError, parse
from bot.features.blockers.timeline import Kind
from bot.features.raci import people
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
from storage.raci import BlockerSettings, RaciArea, RaciAssignment, RaciRole
from storage.upsert import insert_unless_exists

log = logging.getLogger(__name__)

SWEEP_KEY = "blockers:escalation"
SWEEP_HANDLER = "blocker-escalation"
BATCH_SIZE = 200
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
    if plan is None:
        blocker.next_escalation_at = None
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
        await _withdraw_held(session, blocker, now, keep_generation=blocker.escalation_generation)
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


async def earliest_due(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Blocker.next_escalation_at)))


# -- the sweep ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What one step queued, for its timeline entry."""

    targets: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # member id -> held until (ISO)
    messages: int = 0


class Escalations:
    def __init__(self, core: Core, instance: str, batch_size: int = BATCH_SIZE) -> None:
        self.core = core
        self.instance = instance
        self.batch_size = batch_size

    async def sweep(self, occurrence: Occurrence) -> None:
        """Fire the due steps of one batch of blockers; book the next sweep."""
        session, now = occurrence.session, occurrence.now
        blockers = list(await session.scalars(due_query(now, self.batch_size)))
        if not blockers:
            return
        plans = Plans(session)
        await plans.load(i for b in blockers if (i := ladder_area_id(b)) is not None)
        sent = 0
        for blocker in blockers:
            sent += await self.advance(session, plans, blocker, now)
        occurrence.schedules_changed = True  # the earliest due time moved on
        if sent:
            occurrence.sent_something = True

    async def advance(
        self, session: AsyncSession, plans: Plans, blocker: Blocker, now: datetime
    ) -> int:
        """Fire the blocker's due step (if any) and set its next due time; returns the number
        of messages queued."""
        plan = await plans.plan(blocker) if blocker.status in ACTIVE else None
        if plan is None or blocker.escalation_anchor_at is None:
            # Closed, without an area, or never scheduled by this version: start afresh.
            await schedule_after_change(session, blocker, now)
            return 0
        firing = ladder.due(plan.policy, plan.calendar, state_of(blocker), now)
        queued = 0
        if firing is not None:
            step = firing.step
            key = step_key(blocker, step.round, step.level)
            claimed = await insert_unless_exists(
                session,
                OccurrenceClaim,
                {
                    "key": key,
                    "handler": SWEEP_HANDLER,
                    "scheduled_for": step.due,
                    "claimed_at": now,
                    "claimed_by": self.instance,
                },
                OccurrenceClaim.key,
            )
            if claimed is not None:
                queued = await self.fire(session, plan, blocker, firing, key, now)
            blocker.escalation_level, blocker.escalation_round = step.level, step.round
        following = ladder.next_step(plan.policy, plan.calendar, state_of(blocker))
        next_at = following.due if following is not None else None
        if next_at is not None and next_at <= now:
            next_at = now + timedelta(minutes=1)  # never spin on one blocker
        blocker.next_escalation_at = next_at
        return queued

    async def fire(
        self,
        session: AsyncSession,
        plan: Plan,
        blocker: Blocker,
        firing: ladder.Firing,
        key: str,
        now: datetime,
    ) -> int:
        step = firing.step
        recipients = await self.recipients(session, plan, blocker, step.target)
        sent = Sent()
        msg: Message | None = None
        for member in recipients:
            msg = msg or await self.message(session, plan, blocker, firing, now)
            await self.dm(session, plan, blocker, member, msg, f"{key}:dm:{member.id}", now, sent)
        channel = self.channel_of(plan, step.target)
        if channel is not None:
            msg = msg or await self.message(session, plan, blocker, firing, now)
            await enqueue(
                session,
                workspace_id=blocker.workspace_id,
                method=Method.POST,
                target=Target(channel_id=channel),
                message=msg,
                key=f"{key}:post",
                now=now,
            )
            sent.labels.append(f"#{channel}")
            sent.messages += 1
        if step.target.kind == "webhook":
            sent.labels.append(f"webhook #{step.target.ref}")
        detail: dict[str, Any] = {
            "level": step.level,
            "round": step.round,
            "targets": sent.targets,
            "target": step.target.target,
            "label": ", ".join(sent.labels) or step.target.describe(),
            "delayed": firing.delayed,
        }
        if firing.skipped:
            detail["skipped"] = firing.skipped
        if sent.held:
            detail["held"] = sent.held
        await timeline.record(session, blocker, Kind.ESCALATED, now, detail=detail)
        return sent.messages

    async def dm(
        self,
        session: AsyncSession,
        plan: Plan,
        blocker: Blocker,
        member: Member,
        msg: Message,
        key: str,
        now: datetime,
        sent: Sent,
    ) -> None:
        outbox_id = await enqueue(
            session,
            workspace_id=blocker.workspace_id,
            method=Method.DM,
            target=Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id),
            message=msg,
            key=key,
            now=now,
        )
        sent.targets.append(member.id)
        sent.labels.append(f"@{name_of(member)}")
        sent.messages += 1
        if blocker.severity == BlockerSeverity.CRITICAL:
            return
        hours = plan.calendar.in_zone(member.timezone or plan.calendar.zone)
        if hours.is_open(now):
            return
        until = hours.next_open(now)
        row = await session.get(OutboxMessage, outbox_id)
        if row is not None and row.status == OutboxStatus.PENDING and row.attempts == 0:
            row.next_attempt_at = until
            sent.held[str(member.id)] = until.isoformat()

    async def recipients(
        self, session: AsyncSession, plan: Plan, blocker: Blocker, target: Level
    ) -> list[Member]:
        """The members a level DMs. The Responsible of a blocker that waits on a member is that
        member; otherwise the area's Responsible (groups expanded by the platform)."""
        kind = target.kind
        if kind == "responsible" and blocker.waiting_on_member_id is not None:
            member = await session.get(Member, blocker.waiting_on_member_id)
            return [member] if member is not None else []
        if kind in ("responsible", "accountable"):
            role = RaciRole.RESPONSIBLE if kind == "responsible" else RaciRole.ACCOUNTABLE
            return await people.role_members(session, self.core, plan.area, role)
        if kind == "member":
            member = await session.get(Member, int(target.ref))
            if member is None or member.workspace_id != blocker.workspace_id:
                log.warning("blocker %s: policy names unknown member %s", blocker.id, target.ref)
                return []
            return [member]
        return []

    @staticmethod
    def channel_of(plan: Plan, target: Level) -> str | None:
        if target.kind == "channel":
            return plan.area.channel_id
        if target.kind == "channel_id":
            return target.ref
        return None

    async def message(
        self,
        session: AsyncSession,
        plan: Plan,
        blocker: Blocker,
        firing: ladder.Firing,
        now: datetime,
    ) -> Message:
        """The step's message: the blocker, who is blocked and since when, the area's RACI, the
        buttons. Names are plain text (no mention pings anyone in a channel post)."""
        step = firing.step
        reporter = await session.get(Member, blocker.member_id)
        zone = plan.calendar.zone
        age = plan.calendar.between(blocker.created_at, now)
        fields: list[tuple[str, Text]] = [
            ("Blocked", text(f"@{name_of(reporter)} since {local(blocker.created_at, zone)}")),
            ("Age", text(f"{span(now - blocker.created_at)} ({span(age)} in business hours)")),
            ("Area", text(plan.area.name)),
            ("Severity", text(BlockerSeverity(blocker.severity).value)),
        ]
        if blocker.waiting_on_member_id is not None:
            waiting = await session.get(Member, blocker.waiting_on_member_id)
            fields.append(("Waiting on", text(f"@{name_of(waiting)}")))
        blocks: list[Any] = [
            Header(f"Blocker #{blocker.id} escalated (level {step.level})"),
            Section(text(blocker.text)),
            Fields(tuple(fields)),
            Context(text(await raci_line(session, plan.area))),
        ]
        if firing.delayed:
            late = "syncup was not running" if firing.skipped else "escalation ran late"
            blocks.append(
                Context(
                    text(
                        f"Escalation was delayed ({late}); this is the step due at "
                        f"{local(step.due, zone)}."
                    )
                )
            )
        if blocker.status == BlockerStatus.ACKNOWLEDGED:
            blocks.append(Context(text("It was acknowledged, but is still not resolved.")))
        blocks.append(cards.buttons(blocker))
        return Message(
            tuple(blocks), summary=f"Blocker #{blocker.id} escalated to you: {blocker.text[:80]}"
        )


async def raci_line(session: AsyncSession, area: RaciArea) -> str:
    """``R: @dana · A: @erin · C: @sam`` (the Informed get the weekly digest, not this)."""
    cells = list(
        await session.scalars(
            select(RaciAssignment)
            .where(RaciAssignment.area_id == area.id)
            .order_by(RaciAssignment.id)
        )
    )
    ids = {c.member_id for c in cells if c.member_id is not None}
    names: dict[int, Member] = {}
    if ids:
        names = {m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}
    parts = []
    for role in ("R", "A", "C"):
        who = [
            f"@{name_of(names.get(c.member_id))}" if c.member_id is not None else c.label or c.who
            for c in cells
            if c.role == role
        ]
        if who:
            parts.append(f"{role}: {', '.join(who)}")
    return f"{area.name}: " + (" · ".join(parts) if parts else "no RACI set yet")


def register(core: Core, scheduler: Scheduler, *, batch_size: int = BATCH_SIZE) -> Escalations:
    """Book the sweep, handle its occurrences, and add ``/raci policy`` (``/raci`` must be
    registered first: ``bot.features.raci.register``)."""
    from bot.features.blockers import policy_commands

    escalations = Escalations(core, scheduler.instance, batch_size)
    scheduler.add_source(EscalationSchedules())
    scheduler.add_handler(SWEEP_HANDLER, escalations.sweep)
    policy_commands.register(core)
    return escalations
