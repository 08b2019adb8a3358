"""What celebrations schedule, read from the database at every reconcile.

* **Birthdays and anniversaries**: one yearly schedule per member and kind, at 09:00 in the
  member's zone (UTC until they set one) on the day, for members who set the date, have not
  opted out, in workspaces that celebrate that kind and have a celebrations channel. The
  occurrence key carries the local year (``celebrate:birthday:7@2027``): one post per member per
  year, whatever the scheduler or the replicas do. Grace: 12 hours, so after downtime a
  birthday is still posted later that day, never on another day.
* **Streak checks**: one one-shot per open scheduled standup run, at the end of its answer
  window, in workspaces that celebrate streaks (see :mod:`.streaks`). Its grace lasts until the
  run closes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.celebrations.dates import YearlyTrigger
from bot.features.standups.schedules import MIN_REMINDER_GRACE, OnceSchedule, run_times
from bot.scheduling.scheduler import Schedule
from bot.timezones import zone as zone_info
from storage.celebrations import CelebrationProfile, CelebrationSettings
from storage.models import Member, Standup, StandupRun, Workspace

log = logging.getLogger(__name__)

BIRTHDAY_HANDLER = "celebrate-birthday"
ANNIVERSARY_HANDLER = "celebrate-anniversary"
STREAK_HANDLER = "celebrate-streaks"
YEARLY_GRACE = timedelta(hours=12)


@dataclass(frozen=True)
class YearlySchedule(Schedule):
    """A schedule whose occurrences are keyed by their local year in ``zone``."""

    zone: str = "UTC"

    def occurrence_key(self, fire_at: datetime) -> str:
        return f"{self.key}@{fire_at.astimezone(zone_info(self.zone)).year}"


class CelebrationSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of celebrations."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        return [*await self._yearly(session), *await self._streak_checks(session, now)]

    async def _yearly(self, session: AsyncSession) -> list[Schedule]:
        rows = await session.execute(
            select(CelebrationProfile, Member.timezone, CelebrationSettings)
            .join(Member, Member.id == CelebrationProfile.member_id)
            .join(Workspace, Workspace.id == CelebrationProfile.workspace_id)
            .join(
                CelebrationSettings,
                CelebrationSettings.workspace_id == CelebrationProfile.workspace_id,
            )
            .where(
                Workspace.uninstalled_at.is_(None),
                CelebrationProfile.opted_out.is_(False),
                CelebrationSettings.channel_id.is_not(None),
                or_(
                    and_(
                        CelebrationSettings.birthdays.is_(True),
                        CelebrationProfile.birthday_month.is_not(None),
                    ),
                    and_(
                        CelebrationSettings.anniversaries.is_(True),
                        CelebrationProfile.started_on.is_not(None),
                    ),
                ),
            )
        )
        out: list[Schedule] = []
        for profile, timezone, settings in rows.all():
            zone = timezone or "UTC"
            payload = {"member_id": profile.member_id, "zone": zone}
            try:
                if settings.birthdays and profile.birthday_month and profile.birthday_day:
                    out.append(
                        YearlySchedule(
                            f"celebrate:birthday:{profile.member_id}",
                            BIRTHDAY_HANDLER,
                            YearlyTrigger(profile.birthday_month, profile.birthday_day, zone),
                            grace=YEARLY_GRACE,
                            payload=payload,
                            zone=zone,
                        )
                    )
                started = profile.started_on
                if settings.anniversaries and started is not None:
                    out.append(
                        YearlySchedule(
                            f"celebrate:anniversary:{profile.member_id}",
                            ANNIVERSARY_HANDLER,
                            YearlyTrigger(started.month, started.day, zone, started.year + 1),
                            grace=YEARLY_GRACE,
                            payload=payload,
                            zone=zone,
                        )
                    )
            except (KeyError, ValueError) as exc:  # a zone that no longer exists
                log.error("member %s: unusable celebration schedule: %s", profile.member_id, exc)
        return out

    async def _streak_checks(self, session: AsyncSession, now: datetime) -> list[Schedule]:
        rows = await session.execute(
            select(StandupRun, Standup)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .join(Workspace, Workspace.id == Standup.workspace_id)
            .outerjoin(
                CelebrationSettings, CelebrationSettings.workspace_id == Standup.workspace_id
            )
            .where(
                StandupRun.closes_at > now,
                StandupRun.occasion == "",
                Workspace.uninstalled_at.is_(None),
                or_(CelebrationSettings.streaks.is_(None), CelebrationSettings.streaks.is_(True)),
            )
        )
        out: list[Schedule] = []
        for run, standup in rows.all():
            times = await run_times(session, standup, run)
            out.append(
                OnceSchedule(
                    f"celebrate:streaks:run:{run.id}",
                    STREAK_HANDLER,
                    DateTrigger(run_date=times.cutoff_at, timezone=UTC),
                    grace=max(MIN_REMINDER_GRACE, run.closes_at - times.cutoff_at),
                    payload={"run_id": run.id},
                )
            )
        return out
