"""When standups happen: prompt triggers in local time, and the one-shots a run books.

What is scheduled comes from the database every reconcile:

* **Prompts.** Member-local mode (``team_timezone`` None): one schedule per (standup,
  participant), a cron trigger at ``time_of_day`` on the standup's weekdays in that member's zone.
  Team mode: one schedule per standup in the team zone that prompts everyone. The trigger
  (:class:`StandupTrigger`) also leaves out off-weeks (``every_weeks`` counted from
  ``anchor_date``) and holidays, so ``next_runs()`` tells the truth. An occurrence's key is the
  **local date** (``standup:3:m:7@2026-03-09``): exactly one prompt per member per local date,
  whatever DST does and even if the time of day is edited after that day's prompt went out.
  The grace is the answer window: after downtime a prompt whose window is still open goes out
  once; a passed one does not.
* **Reminders.** One-shot schedules read from ``standup_prompts`` rows still pending with a
  ``remind_at`` and no ``reminded_at``. Their grace is what is left of the answer window, so a
  reminder is never sent after the window closed and a week of downtime replays none.
* **Nudge and close.** One-shots per open run (``closes_at`` ahead): the channel nudge at 80% of
  the window (if the standup has it) and the close at the end of the window, which posts the
  cutoff report, or in "each" mode makes sure a report exists even if nobody answered. Both are
  keyed on the run, not on their time, so they run once even if the participants (and so the
  time) change.

The run's window is measured from its latest prompt: the latest scheduled local time among the
participants (member-local mode spreads one date over many zones) or a later actual prompt (a
prompt sent after downtime, ``/standup run``), so everyone gets a whole window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.scheduler import Schedule
from bot.timezones import zone as zone_info
from storage.models import (
    Member,
    PromptStatus,
    Standup,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Workspace,
)

log = logging.getLogger(__name__)

PROMPT_HANDLER = "standup-prompt"
REMIND_HANDLER = "standup-remind"
NUDGE_HANDLER = "standup-nudge"
CLOSE_HANDLER = "standup-close"
REFRESH_HANDLER = "standup-refresh"

# Answers can be edited until a day after the (latest) prompt, or the window's end if later.
EDIT_PERIOD = timedelta(hours=24)
# The channel nudge goes out at this share of the window.
NUDGE_SHARE = 0.8
# A reminder's grace is what is left of the window, but never less than this.
MIN_REMINDER_GRACE = timedelta(minutes=5)
# A report marked out of date longer ago than this was not refreshed by the process that marked
# it (it died, or the refresh failed): the sweep refreshes it.
SWEEP_AFTER = timedelta(seconds=5)
# How long after a run closes a forgotten mark is still swept.
SWEEP_GRACE = timedelta(days=2)
# A skipped weekday (off-week, holiday) search gives up after this many days.
MAX_SKIPPED_DAYS = 3_700

_CRON_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def member_zone(standup: Standup, member: Member) -> str:
    """The zone a member's prompts follow: the team's, else their own, else UTC."""
    return standup.team_timezone or member.timezone or "UTC"


def parse_time_of_day(value: str) -> time:
    hour, _, minute = value.partition(":")
    return time(int(hour), int(minute or 0))


def runs_on(standup: Standup, day: date) -> bool:
    """Whether ``day`` (a local date) is a standup day: a chosen weekday of an on-week that is
    not a holiday."""
    if day.isoweekday() not in standup.days:
        return False
    if standup.every_weeks > 1 and ((day - standup.anchor_date).days // 7) % standup.every_weeks:
        return False
    return day.isoformat() not in set(standup.holidays or ())


def prompt_time(standup: Standup, zone: str, run_date: date) -> datetime:
    """The UTC instant of ``time_of_day`` on ``run_date`` in ``zone``. A time that a DST change
    skips is shifted forward by the gap; a repeated one is its first instant (as the trigger)."""
    local = datetime.combine(run_date, parse_time_of_day(standup.time_of_day), zone_info(zone))
    return local.astimezone(UTC)


class StandupTrigger(CronTrigger):
    """A cron trigger at the standup's time on its weekdays that skips off-weeks and holidays.

    It stays a :class:`CronTrigger` so that the scheduler's wall-clock rules apply (a time
    repeated by a fall-back fires once).
    """

    def __init__(
        self,
        *,
        days: Iterable[int],
        at: time,
        zone: str,
        every_weeks: int = 1,
        anchor: date | None = None,
        holidays: Iterable[str] = (),
        not_before: datetime | None = None,
    ) -> None:
        weekdays = sorted(set(days))
        if not weekdays or any(d not in range(1, 8) for d in weekdays):
            raise ValueError(f"standup days must be ISO weekdays 1..7, got {weekdays}")
        super().__init__(
            day_of_week=",".join(_CRON_DAYS[d - 1] for d in weekdays),
            hour=at.hour,
            minute=at.minute,
            timezone=zone_info(zone),
        )
        self.every_weeks = max(1, every_weeks)
        self.anchor = anchor or date(2000, 1, 3)  # a Monday
        self.holidays = frozenset(holidays)
        # Nothing fires before this (the standup's creation): a standup created inside today's
        # answer window does not prompt anyone at once, unless its owner asks (see
        # ``first_prompts.py``).
        self.not_before = not_before

    def allows(self, day: date) -> bool:
        if self.every_weeks > 1 and ((day - self.anchor).days // 7) % self.every_weeks:
            return False
        return day.isoformat() not in self.holidays

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        for _ in range(MAX_SKIPPED_DAYS):
            fire = super().get_next_fire_time(previous_fire_time, now)
            if fire is not None and self.not_before is not None and fire < self.not_before:
                previous_fire_time = None
                now = self.not_before
                continue
            if fire is None or self.allows(fire.date()):
                return fire
            # Not this day: look again from the next local midnight.
            previous_fire_time = None
            now = datetime.combine(fire.date() + timedelta(days=1), time(0), self.timezone)
        return None

    def __str__(self) -> str:
        return f"standup {super().__str__()} every {self.every_weeks} week(s)"


@dataclass(frozen=True)
class LocalDateSchedule(Schedule):
    """A schedule whose occurrences are keyed by their local date in ``zone``."""

    zone: str = "UTC"

    def occurrence_key(self, fire_at: datetime) -> str:
        return f"{self.key}@{fire_at.astimezone(zone_info(self.zone)).date().isoformat()}"

    def local_date(self, fire_at: datetime) -> date:
        return fire_at.astimezone(zone_info(self.zone)).date()


@dataclass(frozen=True)
class OnceSchedule(Schedule):
    """A one-shot whose key is the occurrence key: it runs once even if its time moves."""

    def occurrence_key(self, fire_at: datetime) -> str:
        return self.key


def trigger_for(standup: Standup, zone: str) -> StandupTrigger:
    return StandupTrigger(
        days=standup.days,
        at=parse_time_of_day(standup.time_of_day),
        zone=zone,
        every_weeks=standup.every_weeks,
        anchor=standup.anchor_date,
        holidays=standup.holidays or (),
        not_before=standup.created_at,
    )


def prompt_schedule_key(standup: Standup, member: Member | None) -> str:
    if member is None:
        return f"standup:{standup.id}:team"
    return f"standup:{standup.id}:m:{member.id}"


# -- a run's window -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunTimes:
    last_prompt: datetime  # the latest prompt (scheduled or sent) of the run
    nudge_at: datetime
    cutoff_at: datetime


async def run_times(session: AsyncSession, standup: Standup, run: StandupRun) -> RunTimes:
    """The run's nudge and cutoff, from its latest prompt; see the module docstring."""
    zones: set[str] = set()
    if standup.team_timezone:
        zones.add(standup.team_timezone)
    else:
        roster = select(StandupParticipant.member_id).where(
            StandupParticipant.standup_id == standup.id
        )
        prompted = select(StandupPrompt.member_id).where(StandupPrompt.run_id == run.id)
        rows = await session.scalars(
            select(Member.timezone).where(Member.id.in_(roster.union(prompted)))
        )
        zones.update(zone or "UTC" for zone in rows)
    if not zones:
        zones.add("UTC")
    sent = await session.scalar(
        select(func.max(StandupPrompt.prompted_at)).where(StandupPrompt.run_id == run.id)
    )
    if run.occasion:  # a run by hand: everyone was asked at once, when it started
        last = sent if sent is not None else run.created_at
    else:
        scheduled = max(prompt_time(standup, zone, run.run_date) for zone in zones)
        last = max(scheduled, sent) if sent is not None else scheduled
    window = timedelta(minutes=standup.window_minutes)
    return RunTimes(last, last + window * NUDGE_SHARE, last + window)


def edit_deadline(standup: Standup, prompted: datetime) -> datetime:
    return prompted + max(EDIT_PERIOD, timedelta(minutes=standup.window_minutes))


# -- the source ------------------------------------------------------------------------------


class StandupSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of standups."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        out: list[Schedule] = []
        out.extend(await self._prompts(session))
        out.extend(await self._reminders(session, now))
        out.extend(await self._run_one_shots(session, now))
        out.extend(await self._stale_reports(session, now))
        return out

    async def _prompts(self, session: AsyncSession) -> list[Schedule]:
        # Not in a workspace that uninstalled the app: its data waits out the grace period
        # (bot.workspace_removal), and prompts could not be sent anyway.
        standups = list(
            await session.scalars(
                select(Standup)
                .join(Workspace, Workspace.id == Standup.workspace_id)
                .where(Standup.paused.is_(False), Workspace.uninstalled_at.is_(None))
            )
        )
        if not standups:
            return []
        out: list[Schedule] = []
        local = [s for s in standups if not s.team_timezone]
        members: dict[int, list[Member]] = {}
        if local:
            rows = await session.execute(
                select(StandupParticipant.standup_id, Member)
                .join(Member, Member.id == StandupParticipant.member_id)
                .where(StandupParticipant.standup_id.in_([s.id for s in local]))
                .order_by(Member.id)
            )
            for standup_id, member in rows.all():
                members.setdefault(standup_id, []).append(member)
        for standup in standups:
            grace = timedelta(minutes=standup.window_minutes)
            try:
                if standup.team_timezone:
                    zone = standup.team_timezone
                    out.append(
                        LocalDateSchedule(
                            prompt_schedule_key(standup, None),
                            PROMPT_HANDLER,
                            trigger_for(standup, zone),
                            grace=grace,
                            payload=_payload(standup_id=standup.id, zone=zone),
                            zone=zone,
                        )
                    )
                    continue
                for member in members.get(standup.id, ()):
                    zone = member_zone(standup, member)
                    out.append(
                        LocalDateSchedule(
                            prompt_schedule_key(standup, member),
                            PROMPT_HANDLER,
                            trigger_for(standup, zone),
                            grace=grace,
                            payload=_payload(standup_id=standup.id, member_id=member.id, zone=zone),
                            zone=zone,
                        )
                    )
            except (ValueError, KeyError) as exc:  # a row the setup form should have refused
                log.error("standup %s has an unusable schedule: %s", standup.id, exc)
        return out

    async def _reminders(self, session: AsyncSession, now: datetime) -> list[Schedule]:
        rows = await session.execute(
            select(StandupPrompt, Standup)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .where(
                StandupPrompt.status == PromptStatus.PENDING,
                StandupPrompt.remind_at.is_not(None),
                StandupPrompt.reminded_at.is_(None),
                # Older ones are past every grace: never replayed, not even looked at.
                StandupPrompt.remind_at > now - timedelta(days=2),
            )
        )
        out: list[Schedule] = []
        for prompt, standup in rows.all():
            assert prompt.remind_at is not None
            window_end = (prompt.prompted_at or prompt.remind_at) + timedelta(
                minutes=standup.window_minutes
            )
            grace = max(MIN_REMINDER_GRACE, window_end - prompt.remind_at)
            out.append(
                OnceSchedule(
                    f"standup:{standup.id}:remind:{prompt.id}",
                    REMIND_HANDLER,
                    DateTrigger(run_date=prompt.remind_at, timezone=UTC),
                    grace=grace,
                    payload=_payload(prompt_id=prompt.id),
                )
            )
        return out

    async def _run_one_shots(self, session: AsyncSession, now: datetime) -> list[Schedule]:
        rows = await session.execute(
            select(StandupRun, Standup)
            .join(Standup, Standup.id == StandupRun.standup_id)
            .where(StandupRun.closes_at > now)
        )
        out: list[Schedule] = []
        for run, standup in rows.all():
            times = await run_times(session, standup, run)
            base = f"standup:{standup.id}:run:{run.id}"
            if standup.channel_nudge:
                out.append(
                    OnceSchedule(
                        f"{base}:nudge",
                        NUDGE_HANDLER,
                        DateTrigger(run_date=times.nudge_at, timezone=UTC),
                        grace=max(MIN_REMINDER_GRACE, times.cutoff_at - times.nudge_at),
                        payload=_payload(run_id=run.id),
                    )
                )
            # A report that is late is still better than none (after downtime, say).
            close_grace = max(MIN_REMINDER_GRACE, run.closes_at - times.cutoff_at)
            out.append(
                OnceSchedule(
                    f"{base}:close",
                    CLOSE_HANDLER,
                    DateTrigger(run_date=times.cutoff_at, timezone=UTC),
                    grace=close_grace,
                    payload=_payload(run_id=run.id),
                )
            )
        return out

    async def _stale_reports(self, session: AsyncSession, now: datetime) -> list[Schedule]:
        """A one-shot refresh, due at once, for each run whose report was marked out of date
        more than SWEEP_AFTER ago: by ``report_dirty_since``, or by a marked prompt's
        ``updated_at`` (a mark set while a refresh was taking the run's). Keyed by the mark's
        time, so a later mark gets a sweep of its own. Marks younger than that are the
        refresher's business and schedule nothing (nothing is booked for later)."""
        stale = now - SWEEP_AFTER
        marks: dict[int, datetime] = {}
        runs = await session.execute(
            select(StandupRun.id, StandupRun.report_dirty_since).where(
                StandupRun.report_dirty_since <= stale
            )
        )
        for run_id, since in runs.all():
            marks[run_id] = since
        prompts = await session.execute(
            select(StandupPrompt.run_id, func.min(StandupPrompt.updated_at))
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .where(
                StandupRun.closes_at > now - SWEEP_GRACE,
                StandupPrompt.report_dirty.is_(True),
                StandupPrompt.updated_at <= stale,
            )
            .group_by(StandupPrompt.run_id)
        )
        for run_id, since in prompts.all():
            marks[run_id] = min(since, marks.get(run_id, since))
        out: list[Schedule] = []
        for run_id, since in sorted(marks.items()):
            out.append(
                OnceSchedule(
                    f"standup:run:{run_id}:refresh@{since.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}",
                    REFRESH_HANDLER,
                    DateTrigger(run_date=since + SWEEP_AFTER, timezone=UTC),
                    grace=SWEEP_GRACE,
                    payload=_payload(run_id=run_id),
                )
            )
        return out


def _payload(**values: Any) -> dict[str, Any]:
    return dict(values)
