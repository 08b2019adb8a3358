"""Countdowns and the overdue DM, from the database, each exactly once (invariant 1).

* **Countdowns.** For each open milestone and each ``d`` in its ``countdown_days``, a one-shot
  at 09:00 in the milestone's zone on ``due_on - d``, keyed
  ``milestone:<id>:t-<d>:<due_on>`` (:class:`OnceSchedule`: the key is the occurrence). The key
  is claimed before the post is queued, so two replicas or a second firing post once; a changed
  date makes new keys (the countdowns are re-armed), and a date moved back to one already
  counted down does not post again. A countdown whose time was before the milestone was added
  is not booked (added three days before its date: no T-7). Missed ones (downtime) are posted
  within :data:`COUNTDOWN_GRACE`, never later.
* **Overdue.** An open milestone whose date has passed and whose owner was not told yet gets a
  one-shot at the first 09:00 of the owner's zone (else the milestone's) after its day ended in
  the milestone's zone, keyed ``milestone:<id>:overdue:<due_on>``: one DM, and
  ``overdue_notified_at`` set in the same transaction.

The handlers read the milestone again inside the claim's transaction and do nothing when it is
done, cancelled, moved to another date, or its countdown no longer has that day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.milestones import render
from bot.features.standups.schedules import OnceSchedule
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from bot.timezones import zone
from storage.milestones import Milestone, MilestoneStatus
from storage.models import Member, Workspace

COUNTDOWN_HANDLER = "milestone-countdown"
OVERDUE_HANDLER = "milestone-overdue"
AT = time(9, 0)
COUNTDOWN_GRACE = timedelta(hours=12)
OVERDUE_GRACE = timedelta(hours=14)
OPEN = MilestoneStatus.OPEN.value


def at_nine(day: date, zone_name: str) -> datetime:
    """09:00 on ``day`` in the zone, in UTC (09:00 exists on every DST change day)."""
    return datetime.combine(day, AT, zone(zone_name)).astimezone(UTC)


def countdown_at(milestone: Milestone, days: int) -> datetime:
    return at_nine(milestone.due_on - timedelta(days=days), milestone.timezone)


def overdue_at(milestone: Milestone, recipient_zone: str) -> datetime:
    """The first 09:00 in ``recipient_zone`` once ``due_on`` has ended in the milestone's zone."""
    ended = datetime.combine(
        milestone.due_on + timedelta(days=1), time(0), zone(milestone.timezone)
    ).astimezone(UTC)
    local = ended.astimezone(zone(recipient_zone))
    fire = at_nine(local.date(), recipient_zone)
    return fire if fire >= ended else at_nine(local.date() + timedelta(days=1), recipient_zone)


def countdown_key(milestone: Milestone, days: int) -> str:
    return f"milestone:{milestone.id}:t-{days}:{milestone.due_on.isoformat()}"


def overdue_key(milestone: Milestone) -> str:
    return f"milestone:{milestone.id}:overdue:{milestone.due_on.isoformat()}"


async def recipient(session: AsyncSession, milestone: Milestone) -> Member | None:
    """Who hears that it is overdue: the owner, else whoever added it."""
    for member_id in (milestone.owner_id, milestone.created_by_id):
        if member_id is not None:
            member = await session.get(Member, member_id)
            if member is not None:
                return member
    return None


class MilestoneSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of milestones."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        # Open ones not long past their date (a countdown is always before it; the overdue DM
        # the day after); longer-past ones have nothing left to send.
        since = (now - timedelta(days=3)).date()
        rows = await session.scalars(
            select(Milestone)
            .join(Workspace, Workspace.id == Milestone.workspace_id)
            .where(
                Milestone.status == OPEN,
                Milestone.due_on >= since,
                Workspace.uninstalled_at.is_(None),
            )
            .order_by(Milestone.id)
        )
        found = list(rows)
        ids = {m.owner_id for m in found} | {m.created_by_id for m in found}
        ids.discard(None)
        members = {m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}
        out: list[Schedule] = []
        for milestone in found:
            payload = {"milestone_id": milestone.id, "due_on": milestone.due_on.isoformat()}
            for days in milestone.countdown_days or ():
                fire = countdown_at(milestone, int(days))
                if fire < milestone.created_at or fire < now - COUNTDOWN_GRACE:
                    continue
                out.append(
                    OnceSchedule(
                        countdown_key(milestone, int(days)),
                        COUNTDOWN_HANDLER,
                        DateTrigger(run_date=fire, timezone=UTC),
                        grace=COUNTDOWN_GRACE,
                        payload={**payload, "days": int(days)},
                    )
                )
            if milestone.overdue_notified_at is None:
                member = members.get(milestone.owner_id or 0) or members.get(
                    milestone.created_by_id or 0
                )
                if member is None:
                    continue
                fire = overdue_at(milestone, member.timezone or milestone.timezone)
                if fire < now - OVERDUE_GRACE:
                    continue
                out.append(
                    OnceSchedule(
                        overdue_key(milestone),
                        OVERDUE_HANDLER,
                        DateTrigger(run_date=fire, timezone=UTC),
                        grace=OVERDUE_GRACE,
                        payload=payload,
                    )
                )
        return out


async def _still_due(occurrence: Occurrence) -> Milestone | None:
    payload = occurrence.schedule.payload
    milestone = await occurrence.session.get(Milestone, payload["milestone_id"])
    if milestone is None or milestone.status != OPEN:
        return None
    if milestone.due_on.isoformat() != payload["due_on"]:
        return None  # moved: the new date has occurrences of its own
    return milestone


async def on_countdown(occurrence: Occurrence) -> None:
    milestone = await _still_due(occurrence)
    days = int(occurrence.schedule.payload["days"])
    if milestone is None or days not in list(milestone.countdown_days or ()):
        return
    if milestone.channel_id is None:
        return
    owner = await occurrence.session.get(Member, milestone.owner_id) if milestone.owner_id else None
    await occurrence.send(
        milestone.workspace_id,
        Method.POST,
        Target(channel_id=milestone.channel_id),
        render.countdown(milestone, days, owner),
        key=f"{occurrence.key}:post",
    )


async def on_overdue(occurrence: Occurrence) -> None:
    milestone = await _still_due(occurrence)
    if milestone is None or milestone.overdue_notified_at is not None:
        return
    member = await recipient(occurrence.session, milestone)
    if member is None:
        return
    milestone.overdue_notified_at = occurrence.now
    await occurrence.send(
        milestone.workspace_id,
        Method.DM,
        Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id),
        render.overdue_dm(milestone),
        key=f"{occurrence.key}:dm",
    )


def register(scheduler: Scheduler) -> None:
    scheduler.add_source(MilestoneSchedules())
    scheduler.add_handler(COUNTDOWN_HANDLER, on_countdown)
    scheduler.add_handler(OVERDUE_HANDLER, on_overdue)
