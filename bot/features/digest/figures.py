"""The numbers of a weekly digest, section by section, as plain data.

Each section is one async function over the database returning a frozen dataclass; nothing here
renders or sends, so the web dashboard computes the same figures. Every query is set-based (a
team of 5,000 members is a subquery, never a loop of per-member queries) and reads through an
index: prompts by run, runs by standup and date, blockers by workspace and time or by reporter,
kudos by time.

A **team** (:class:`Scope`) is a standup (its participants, its runs) or a RACI area (its
people; the blockers filed under it). Weeks end at the digest's time: the week shown is the 7
days (on the digest zone's wall clock) up to it, compared with the four weeks before it (their
mean). Pulse scores come from :func:`bot.features.pulse.bulk.weekly_questions` (each week as
its pulse digest computes it), the pooled results the pulse digest posts, so a result under
its anonymity threshold is never a number here either: only how many such results were held back.
The team and the weeks are :mod:`bot.features.digest.weeks` (imported here, so that ``figures``
is the one module to use).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.features.blockers.service import ACTIVE
from bot.features.blockers.stats import percentile
from bot.features.blockers.timeline import Kind
from bot.features.digest.weeks import (
    WEEKS,
    Scope,
    Trend,
    Week,
    day_week,
    mean,
    week_of,
    weeks_before,
)
from bot.features.pulse.bulk import weekly_questions
from bot.timezones import zone as zone_info
from storage.celebrations import Celebration
from storage.kudos import Kudos, KudosReceiver
from storage.milestones import Milestone, MilestoneContributor, MilestoneStatus
from storage.models import (
    Blocker,
    BlockerEvent,
    Member,
    PromptStatus,
    Standup,
    StandupPrompt,
    StandupRun,
    Team,
)
from storage.polls import PollKind, Pulse
from storage.raci import RaciArea, RaciAssignment, RaciRole

SHOWN = 5  # silences, oldest blockers, dependencies listed
DUE_SOON = timedelta(days=14)
SILENCE_WINDOW = timedelta(weeks=WEEKS)  # how far back a silence is looked for
ANSWERED, MISSED, OFF = "answered", "missed", "off"
_STATUS = {
    PromptStatus.ANSWERED: ANSWERED,
    PromptStatus.PENDING: MISSED,
    PromptStatus.UNREACHABLE: MISSED,
    PromptStatus.SKIPPED: OFF,
    PromptStatus.AWAY: OFF,
}
_RANK = {ANSWERED: 3, MISSED: 2, OFF: 1}


# --- standups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Silence:
    member_id: int
    name: str
    last_answer: datetime | None  # None: no answer in SILENCE_WINDOW
    days: int | None


@dataclass(frozen=True)
class StandupFigures:
    asked: int
    answered: int
    rate: Trend  # answered / asked per week, 0..1
    asked_by_week: tuple[int, ...]
    answered_by_week: tuple[int, ...]
    silences: tuple[Silence, ...]
    members: tuple[str, ...]  # the heatmap's rows
    days: tuple[date, ...]  # the heatmap's columns
    cells: tuple[tuple[str, ...], ...]  # answered / missed / off / "" (not asked)


async def standup_figures(
    session: AsyncSession, scope: Scope, weeks: Sequence[Week]
) -> StandupFigures:
    end = weeks[-1].end
    counted = (
        select(StandupRun.run_date, StandupPrompt.status, func.count())
        .join(StandupPrompt, StandupPrompt.run_id == StandupRun.id)
        .where(
            scope.prompts(),  # type: ignore[arg-type]
            StandupRun.run_date >= weeks[0].first_day,
            StandupRun.run_date < weeks[-1].last_day,
            StandupRun.closes_at <= end,  # a run still open has not missed anyone yet
        )
        .group_by(StandupRun.run_date, StandupPrompt.status)
    )
    asked, answered = [0] * len(weeks), [0] * len(weeks)
    for day, status, n in (await session.execute(counted)).all():
        k = day_week(weeks, day)
        kind = _STATUS.get(PromptStatus(status))
        if k is None or kind == OFF:
            continue
        asked[k] += n
        answered[k] += n if kind == ANSWERED else 0
    rates = tuple(a / s if s else None for a, s in zip(answered, asked, strict=True))
    members = (
        await session.execute(
            select(Member.id, Member.display_name)
            .where(Member.id.in_(scope.members()))
            .order_by(Member.display_name, Member.id)
        )
    ).all()
    week = weeks[-1]
    days = tuple(
        week.first_day + timedelta(days=n) for n in range((week.last_day - week.first_day).days)
    )
    grid: dict[tuple[int, date], str] = {}
    rows = await session.execute(
        select(StandupPrompt.member_id, StandupRun.run_date, StandupPrompt.status)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(
            scope.prompts(),  # type: ignore[arg-type]
            StandupRun.run_date >= week.first_day,
            StandupRun.run_date < week.last_day,
            StandupRun.closes_at <= end,
        )
    )
    for member_id, day, status in rows.all():
        kind = _STATUS.get(PromptStatus(status), "")
        if _RANK.get(kind, 0) > _RANK.get(grid.get((member_id, day), ""), 0):
            grid[(member_id, day)] = kind
    silences = await _silences(session, scope, end, [m for m, _ in members])
    return StandupFigures(
        asked=asked[-1],
        answered=answered[-1],
        rate=Trend(rates),
        asked_by_week=tuple(asked),
        answered_by_week=tuple(answered),
        silences=silences,
        members=tuple(name for _, name in members),
        days=days,
        cells=tuple(tuple(grid.get((m, d), "") for d in days) for m, _ in members),
    )


async def _silences(
    session: AsyncSession, scope: Scope, end: datetime, member_ids: Sequence[int]
) -> tuple[Silence, ...]:
    """The members asked at least once in :data:`SILENCE_WINDOW` whose last answer in it is
    oldest (none in it first): bounded work on a year of prompts."""
    last = func.max(
        case((StandupPrompt.status == PromptStatus.ANSWERED, StandupPrompt.answered_at))
    )
    rows = (
        await session.execute(
            select(StandupPrompt.member_id, Member.display_name, last)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .join(Member, Member.id == StandupPrompt.member_id)
            .where(
                scope.prompts(),  # type: ignore[arg-type]
                *(
                    ()
                    if scope.kind == "standup"
                    else (StandupPrompt.member_id.in_(scope.members()),)
                ),
                StandupRun.run_date >= (end - SILENCE_WINDOW).date(),
                StandupRun.closes_at <= end,
            )
            .group_by(StandupPrompt.member_id, Member.display_name)
        )
    ).all()
    ordered = sorted(
        rows, key=lambda r: (r[2] is not None, r[2] or end, r[1], r[0])
    )  # never answered, then the oldest answer
    out = []
    for member_id, name, at in ordered[:SHOWN]:
        days = None if at is None else max(0, (end - at).days)
        if days is not None and days < 1:
            continue  # answered within the last day: not a silence
        out.append(Silence(member_id, name, at, days))
    return tuple(out)


# --- blockers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBlocker:
    id: int
    text: str
    area: str | None
    accountable: str | None  # the area's Accountable, by name
    days_open: int


@dataclass(frozen=True)
class Dependency:
    blocker_id: int
    waiting: str  # the team (area) that waits
    on: str  # the area waited on
    days: int
    text: str


@dataclass(frozen=True)
class BlockerFigures:
    opened: Trend
    resolved: Trend
    escalated: Trend
    open_at_end: Trend  # open blockers at the end of each week
    median_hours_to_resolve: float | None  # of those resolved in the week, on the clock
    oldest: tuple[OpenBlocker, ...]
    dependencies: tuple[Dependency, ...]
    # (waiting, on) pairs with an open dependency at the end of each week, oldest week first.
    pairs_by_week: tuple[frozenset[tuple[str, str]], ...] = field(default=())


async def blocker_figures(
    session: AsyncSession, scope: Scope, weeks: Sequence[Week]
) -> BlockerFigures:
    first, end = weeks[0].start, weeks[-1].end
    mine = scope.blockers()
    rows = (
        await session.execute(
            select(Blocker.created_at, Blocker.resolved_at, Blocker.status).where(
                mine,  # type: ignore[arg-type]
                or_(
                    and_(Blocker.created_at >= first, Blocker.created_at < end),
                    and_(Blocker.resolved_at >= first, Blocker.resolved_at < end),
                ),
            )
        )
    ).all()
    opened, resolved = [0] * len(weeks), [0] * len(weeks)
    to_resolve: list[float] = []
    for created, closed, status in rows:
        k = week_of(weeks, created)
        if k is not None:
            opened[k] += 1
        if closed is not None and status == "resolved":
            k = week_of(weeks, closed)
            if k is not None:
                resolved[k] += 1
                if k == len(weeks) - 1:
                    to_resolve.append((closed - created).total_seconds() / 3600)
    at_end = [
        func.sum(
            case(
                (
                    and_(
                        Blocker.created_at < w.end,
                        or_(Blocker.resolved_at.is_(None), Blocker.resolved_at >= w.end),
                    ),
                    1,
                ),
                else_=0,
            )
        )
        for w in weeks
    ]
    open_counts = (
        await session.execute(select(*at_end).where(mine, Blocker.created_at < end))  # type: ignore[arg-type]
    ).one()
    escalations = (
        await session.execute(
            select(BlockerEvent.blocker_id, BlockerEvent.at)
            .join(Blocker, Blocker.id == BlockerEvent.blocker_id)
            .where(
                mine,  # type: ignore[arg-type]
                BlockerEvent.kind == Kind.ESCALATED,
                BlockerEvent.at >= first,
                BlockerEvent.at < end,
            )
        )
    ).all()
    escalated: list[set[int]] = [set() for _ in weeks]  # blockers escalated in each week
    for blocker_id, at in escalations:
        k = week_of(weeks, at)
        if k is not None:
            escalated[k].add(blocker_id)
    return BlockerFigures(
        opened=Trend(tuple(map(float, opened))),
        resolved=Trend(tuple(map(float, resolved))),
        escalated=Trend(tuple(float(len(e)) for e in escalated)),
        open_at_end=Trend(tuple(float(n or 0) for n in open_counts)),
        median_hours_to_resolve=percentile(to_resolve, 0.5),
        oldest=await _oldest(session, scope, end),
        dependencies=await _dependencies(session, scope, end),
        pairs_by_week=await _pairs(session, scope, weeks),
    )


async def _oldest(session: AsyncSession, scope: Scope, end: datetime) -> tuple[OpenBlocker, ...]:
    rows = (
        await session.execute(
            select(Blocker.id, Blocker.text, Blocker.created_at, Blocker.area_id, RaciArea.name)
            .outerjoin(RaciArea, RaciArea.id == Blocker.area_id)
            .where(scope.blockers(), Blocker.status.in_(ACTIVE), Blocker.created_at < end)  # type: ignore[arg-type]
            .order_by(Blocker.created_at, Blocker.id)
            .limit(SHOWN)
        )
    ).all()
    accountable = await _accountables(session, {r[3] for r in rows if r[3] is not None})
    return tuple(
        OpenBlocker(id_, text, area, accountable.get(area_id), max(0, (end - created).days))
        for id_, text, created, area_id, area in rows
    )


async def _accountables(session: AsyncSession, area_ids: set[int]) -> dict[int, str]:
    if not area_ids:
        return {}
    rows = await session.execute(
        select(
            RaciAssignment.area_id, RaciAssignment.who, RaciAssignment.label, Member.display_name
        )
        .outerjoin(Member, Member.id == RaciAssignment.member_id)
        .where(RaciAssignment.area_id.in_(area_ids), RaciAssignment.role == RaciRole.ACCOUNTABLE)
        .order_by(RaciAssignment.id)
    )
    out: dict[int, str] = {}
    for area_id, who, label, name in rows.all():
        out.setdefault(area_id, name or label or who)
    return out


async def _dependencies(
    session: AsyncSession, scope: Scope, end: datetime
) -> tuple[Dependency, ...]:
    waiting, on = aliased(RaciArea), aliased(RaciArea)
    rows = (
        await session.execute(
            select(Blocker.id, Blocker.text, Blocker.created_at, waiting.name, on.name)
            .outerjoin(waiting, waiting.id == Blocker.area_id)
            .join(on, on.id == Blocker.waiting_on_area_id)
            .where(
                scope.blockers(),  # type: ignore[arg-type]
                Blocker.status.in_(ACTIVE),
                Blocker.created_at < end,
                or_(Blocker.area_id.is_(None), Blocker.area_id != Blocker.waiting_on_area_id),
            )
            .order_by(Blocker.created_at, Blocker.id)
            .limit(SHOWN)
        )
    ).all()
    return tuple(
        Dependency(id_, waiting_name or scope.name, on_name, max(0, (end - created).days), text)
        for id_, text, created, waiting_name, on_name in rows
    )


async def _pairs(
    session: AsyncSession, scope: Scope, weeks: Sequence[Week]
) -> tuple[frozenset[tuple[str, str]], ...]:
    """For each week, the (waiting, on) area pairs with a dependency open at its end."""
    waiting, on = aliased(RaciArea), aliased(RaciArea)
    rows = (
        await session.execute(
            select(Blocker.created_at, Blocker.resolved_at, waiting.name, on.name)
            .outerjoin(waiting, waiting.id == Blocker.area_id)
            .join(on, on.id == Blocker.waiting_on_area_id)
            .where(
                scope.blockers(),  # type: ignore[arg-type]
                Blocker.created_at < weeks[-1].end,
                or_(Blocker.resolved_at.is_(None), Blocker.resolved_at >= weeks[0].end),
                or_(Blocker.area_id.is_(None), Blocker.area_id != Blocker.waiting_on_area_id),
            )
        )
    ).all()
    out: list[set[tuple[str, str]]] = [set() for _ in weeks]
    for created, closed, waiting_name, on_name in rows:
        for k, week in enumerate(weeks):
            if created < week.end and (closed is None or closed >= week.end):
                out[k].add((waiting_name or scope.name, on_name))
    return tuple(frozenset(s) for s in out)


# --- pulse -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionTrend:
    key: str
    text: str
    kind: str  # "scale" (1-5) or "enps" (-100..100)
    trend: Trend  # the shown result of each week (None: nothing shown that week)
    answers: int | None  # behind the latest shown result


@dataclass(frozen=True)
class PulseFigures:
    questions: tuple[QuestionTrend, ...]
    index: Trend  # the mean of the week's shown 1-5 scores
    held_back: int  # results of the shown week under their anonymity threshold (no numbers)


async def pulses_of(session: AsyncSession, scope: Scope) -> list[int]:
    """The pulses that speak for the team: the pulse of the pulse team with the same name,
    or whose channel is the standup's report channel."""
    same = func.lower(Team.name) == scope.name.lower()
    where = same
    if scope.kind == "standup":
        report = select(Standup.report_channel_id).where(Standup.id == scope.id)
        where = or_(same, Team.channel_id.in_(report))
    return list(
        await session.scalars(
            select(Pulse.id)
            .join(Team, Team.id == Pulse.team_id)
            .where(Pulse.workspace_id == scope.workspace_id, where)
            .order_by(Pulse.id)
        )
    )


async def pulse_figures(session: AsyncSession, scope: Scope, weeks: Sequence[Week]) -> PulseFigures:
    values: dict[str, list[float | None]] = {}
    names: dict[str, tuple[str, str, int | None]] = {}
    index: list[list[float]] = [[] for _ in weeks]
    held_back = 0
    ends = [week.end - timedelta(microseconds=1) for week in weeks]
    for pulse_id in await pulses_of(session, scope):
        for k, questions in enumerate(await weekly_questions(session, pulse_id, ends)):
            for result in questions:
                if result.score is None:
                    held_back += k == len(weeks) - 1
                    continue
                key = f"{pulse_id}:{result.key}"
                values.setdefault(key, [None] * len(weeks))[k] = result.score.value
                names[key] = (result.text, result.kind, result.score.answers)
                if result.kind != PollKind.ENPS and math.isfinite(result.score.value):
                    index[k].append(result.score.value)
    questions = tuple(
        QuestionTrend(key, names[key][0], names[key][1], Trend(tuple(v)), names[key][2])
        for key, v in values.items()
    )
    return PulseFigures(questions, Trend(tuple(mean(i) for i in index)), held_back)


# --- kudos and celebrations ----------------------------------------------------------------------


@dataclass(frozen=True)
class KudosFigures:
    kudos: Trend
    top_values: tuple[tuple[str, int], ...]
    celebrations: int
    milestones_met: tuple[str, ...]
    due_soon: tuple[tuple[str, date], ...]
    overdue: tuple[tuple[str, date], ...]


async def kudos_figures(
    session: AsyncSession, scope: Scope, weeks: Sequence[Week], zone: str
) -> KudosFigures:
    first, end = weeks[0].start, weeks[-1].end
    rows = (
        await session.execute(
            select(Kudos.id, Kudos.given_at, Kudos.value).where(
                Kudos.workspace_id == scope.workspace_id,
                Kudos.private.is_(False),
                Kudos.given_at >= first,
                Kudos.given_at < end,
                Kudos.id.in_(
                    select(KudosReceiver.kudos_id).where(
                        KudosReceiver.receiver_id.in_(scope.members())
                    )
                ),
            )
        )
    ).all()
    counts = [0] * len(weeks)
    values: Counter[str] = Counter()
    for _, at, value in rows:
        k = week_of(weeks, at)
        if k is None:
            continue
        counts[k] += 1
        if k == len(weeks) - 1 and value:
            values[value] += 1
    celebrations = await session.scalar(
        select(func.count()).where(
            Celebration.workspace_id == scope.workspace_id,
            Celebration.member_id.in_(scope.members()),
            Celebration.posted_at >= weeks[-1].start,
            Celebration.posted_at < end,
        )
    )
    ours = or_(
        Milestone.owner_id.in_(scope.members()),
        Milestone.id.in_(
            select(MilestoneContributor.milestone_id).where(
                MilestoneContributor.member_id.in_(scope.members())
            )
        ),
        *((Milestone.area_id == scope.id,) if scope.kind == "area" else ()),
    )
    today = end.astimezone(zone_info(zone)).date()
    milestones = (
        await session.execute(
            select(Milestone.name, Milestone.status, Milestone.due_on, Milestone.done_at)
            .where(
                Milestone.workspace_id == scope.workspace_id,
                ours,
                or_(
                    and_(
                        Milestone.status == MilestoneStatus.OPEN,
                        Milestone.due_on < today + DUE_SOON,
                    ),
                    and_(
                        Milestone.status == MilestoneStatus.DONE,
                        Milestone.done_at >= weeks[-1].start,
                        Milestone.done_at < end,
                    ),
                ),
            )
            .order_by(Milestone.due_on, Milestone.name)
        )
    ).all()
    met, soon, late = [], [], []
    for name, status, due, _ in milestones:
        if status == MilestoneStatus.DONE:
            met.append(name)
        elif due < today:
            late.append((name, due))
        else:
            soon.append((name, due))
    top = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return KudosFigures(
        kudos=Trend(tuple(map(float, counts))),
        top_values=tuple(top),
        celebrations=int(celebrations or 0),
        milestones_met=tuple(met),
        due_soon=tuple(soon),
        overdue=tuple(late),
    )


# --- the whole team ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamFigures:
    scope: Scope
    weeks: tuple[Week, ...]
    standups: StandupFigures | None
    blockers: BlockerFigures | None
    pulse: PulseFigures | None
    kudos: KudosFigures | None
    zone: str = "UTC"


async def team_figures(
    session: AsyncSession, scope: Scope, end: datetime, zone: str, sections: Sequence[str]
) -> TeamFigures:
    """The sections asked for (signals need standups, blockers and pulse: they are computed
    whenever signals are on)."""
    weeks = weeks_before(end, zone)
    wanted = set(sections)
    if "signals" in wanted:
        wanted |= {"standups", "blockers", "pulse"}
    return TeamFigures(
        scope=scope,
        weeks=tuple(weeks),
        standups=await standup_figures(session, scope, weeks) if "standups" in wanted else None,
        blockers=await blocker_figures(session, scope, weeks) if "blockers" in wanted else None,
        pulse=await pulse_figures(session, scope, weeks) if "pulse" in wanted else None,
        kudos=await kudos_figures(session, scope, weeks, zone) if "kudos" in wanted else None,
        zone=zone,
    )
