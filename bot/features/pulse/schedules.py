"""When pulse checks happen: rounds and digests in the team's zone, and each round's one-shots.

What is scheduled comes from the database every reconcile (invariant 1: every occurrence is
claimed by its key before it does anything):

* **Rounds.** One schedule per pulse, a cron trigger on ``day_of_week`` at ``time_of_day`` in the
  team's zone that leaves out the off-weeks of ``every_weeks`` (counted from ``anchor_date``),
  keyed by the team-local date (``pulse:3:round@2026-03-11``), so a DST change neither skips nor
  doubles a round (see :class:`~bot.features.standups.schedules.StandupTrigger`). Its grace is
  the round's open period less :data:`MIN_OPEN`: after downtime a missed round is still sent if
  people would have at least that long to answer, and it closes when it would have.
* **Digest.** One schedule per pulse on ``digest_day`` at ``digest_time`` in the team's zone,
  keyed ``pulse:3:digest@2026-03-16``: once per week. After downtime only the latest missed
  digest is posted, and only within a day.
* **Reminder.** A one-shot per open round, :data:`REMIND_BEFORE` its close
  (``pulse:3:round:12:remind``), when that leaves the round at least :data:`MIN_REMIND_GAP` of
  quiet after it went out; never after the round closed.
* **Close.** A one-shot per round not closed yet, at ``closes_at`` (``pulse:3:round:12:close``),
  with a long grace: a round's answers are sealed and its results posted however late.

Paused pulses schedule no rounds, reminders or digests; a round already out still closes.
Workspaces that uninstalled the app schedule nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.standups.schedules import (
    LocalDateSchedule,
    OnceSchedule,
    StandupTrigger,
    parse_time_of_day,
)
from bot.scheduling.scheduler import Schedule
from storage.models import Team, Workspace
from storage.polls import Pulse, PulseRound

log = logging.getLogger(__name__)

ROUND_HANDLER = "pulse-round"
REMIND_HANDLER = "pulse-remind"
CLOSE_HANDLER = "pulse-close"
DIGEST_HANDLER = "pulse-digest"

# A round sent late (after downtime) must leave at least this long to answer.
MIN_OPEN = timedelta(hours=12)
REMIND_BEFORE = timedelta(hours=24)
MIN_REMIND_GAP = timedelta(hours=12)
DIGEST_GRACE = timedelta(days=1)
CLOSE_GRACE = timedelta(days=366)


def round_trigger(pulse: Pulse, zone: str) -> StandupTrigger:
    return StandupTrigger(
        days=[pulse.day_of_week],
        at=parse_time_of_day(pulse.time_of_day),
        zone=zone,
        every_weeks=pulse.every_weeks,
        anchor=pulse.anchor_date,
    )


def digest_trigger(pulse: Pulse, zone: str) -> StandupTrigger:
    return StandupTrigger(
        days=[pulse.digest_day], at=parse_time_of_day(pulse.digest_time), zone=zone
    )


def round_key(pulse_id: int) -> str:
    return f"pulse:{pulse_id}:round"


def digest_key(pulse_id: int) -> str:
    return f"pulse:{pulse_id}:digest"


def remind_at(round_: PulseRound) -> datetime | None:
    """When a round's reminder goes: a day before it closes, if that is not too soon after it
    went out (a round open one day gets none)."""
    at = round_.closes_at - REMIND_BEFORE
    return at if at >= round_.sent_at + MIN_REMIND_GAP else None


class PulseSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of pulse checks."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        out: list[Schedule] = []
        rows = await session.execute(
            select(Pulse, Team.timezone)
            .join(Team, Team.id == Pulse.team_id)
            .join(Workspace, Workspace.id == Pulse.workspace_id)
            .where(Pulse.paused.is_(False), Workspace.uninstalled_at.is_(None))
            .order_by(Pulse.id)
        )
        for pulse, zone in rows.all():
            try:
                out.append(
                    LocalDateSchedule(
                        round_key(pulse.id),
                        ROUND_HANDLER,
                        round_trigger(pulse, zone),
                        grace=max(timedelta(minutes=5), timedelta(days=pulse.open_days) - MIN_OPEN),
                        payload={"pulse_id": pulse.id, "zone": zone},
                        zone=zone,
                    )
                )
                out.append(
                    LocalDateSchedule(
                        digest_key(pulse.id),
                        DIGEST_HANDLER,
                        digest_trigger(pulse, zone),
                        grace=DIGEST_GRACE,
                        payload={"pulse_id": pulse.id, "zone": zone},
                        zone=zone,
                    )
                )
            except (ValueError, KeyError) as exc:  # a row the setup form should have refused
                log.error("pulse %s has an unusable schedule: %s", pulse.id, exc)
        rounds = await session.execute(
            select(PulseRound, Pulse.paused)
            .join(Pulse, Pulse.id == PulseRound.pulse_id)
            .join(Workspace, Workspace.id == Pulse.workspace_id)
            .where(PulseRound.closed_at.is_(None), Workspace.uninstalled_at.is_(None))
            .order_by(PulseRound.id)
        )
        for round_, paused in rounds.all():
            base = f"pulse:{round_.pulse_id}:round:{round_.id}"
            payload = {"round_id": round_.id}
            out.append(
                OnceSchedule(
                    f"{base}:close",
                    CLOSE_HANDLER,
                    DateTrigger(run_date=round_.closes_at, timezone=UTC),
                    grace=CLOSE_GRACE,
                    payload=payload,
                )
            )
            at = remind_at(round_)
            if not paused and at is not None and round_.closes_at > now:
                out.append(
                    OnceSchedule(
                        f"{base}:remind",
                        REMIND_HANDLER,
                        DateTrigger(run_date=at, timezone=UTC),
                        grace=round_.closes_at - at,
                        payload=payload,
                    )
                )
        return out
