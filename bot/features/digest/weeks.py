"""What every section of a digest counts over: a team (:class:`Scope`), the weeks ending at the
digest's time on its zone's wall clock, and a figure per week with its change against the weeks
before it (:class:`Trend`). See :mod:`bot.features.digest.figures`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, and_, or_, select

from bot.timezones import zone as zone_info
from storage.models import Blocker, StandupParticipant, StandupPrompt, StandupRun
from storage.raci import RaciAssignment

WEEKS = 5  # the week shown and the four it is compared with


@dataclass(frozen=True)
class Scope:
    """A team of a digest: ``kind`` "standup" or "area", the row's id and name."""

    workspace_id: int
    kind: str
    id: int
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    def members(self) -> Select[tuple[int]]:
        """The team's member ids, as a subquery."""
        if self.kind == "standup":
            return select(StandupParticipant.member_id).where(
                StandupParticipant.standup_id == self.id
            )
        return select(RaciAssignment.member_id).where(
            RaciAssignment.area_id == self.id, RaciAssignment.member_id.is_not(None)
        )  # type: ignore[return-value]

    def prompts(self) -> object:
        """Which standup prompts count: the standup's own, or any of the area's people."""
        if self.kind == "standup":
            return StandupRun.standup_id == self.id
        return StandupPrompt.member_id.in_(self.members())

    def blockers(self) -> object:
        """Which blockers are the team's: raised by its people, or filed under its area."""
        by_people = Blocker.member_id.in_(self.members())
        mine = or_(by_people, Blocker.area_id == self.id) if self.kind == "area" else by_people
        return and_(Blocker.workspace_id == self.workspace_id, mine)


@dataclass(frozen=True)
class Week:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    first_day: date  # in the digest's zone, inclusive
    last_day: date  # exclusive


def weeks_before(end: datetime, zone: str, count: int = WEEKS) -> list[Week]:
    """``count`` weeks of 7 wall-clock days in ``zone`` ending at ``end``, oldest first."""
    local = end.astimezone(zone_info(zone))
    out = []
    for k in range(count, 0, -1):
        start, stop = local - timedelta(days=7 * k), local - timedelta(days=7 * (k - 1))
        out.append(
            Week(start.astimezone(end.tzinfo), stop.astimezone(end.tzinfo), start.date(),
                 stop.date())
        )  # fmt: skip
    return out


def week_of(weeks: Sequence[Week], at: datetime) -> int | None:
    for n, week in enumerate(weeks):
        if week.start <= at < week.end:
            return n
    return None


def day_week(weeks: Sequence[Week], day: date) -> int | None:
    for n, week in enumerate(weeks):
        if week.first_day <= day < week.last_day:
            return n
    return None


def mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class Trend:
    """A figure per week (oldest first, the shown week last) and its change against the mean
    of the weeks before it."""

    values: tuple[float | None, ...]

    @property
    def now(self) -> float | None:
        return self.values[-1] if self.values else None

    @property
    def before(self) -> float | None:
        return mean(self.values[:-1])

    @property
    def change(self) -> float | None:
        if self.now is None or self.before is None:
            return None
        return self.now - self.before
