"""Pulse scores, pooling and the digest's numbers: aggregates in SQL, no loop over ballots.

Scores: a scale question's score is the mean answer (1-5) with its distribution; an eNPS
question's is the share of promoters (9-10) minus the share of detractors (0-6), from -100 to 100.

**Which answers a shown result may contain (invariant 6).** No number is ever shown that was
computed from fewer than the threshold's answers, nor from fewer than that many different people.
When a question's answers in one round are under the threshold, the earlier askings of the same
question (``question_key``) in this pulse are added, walking back over consecutive rounds (at most
:data:`POOL_PERIODS` rounds, this one included), until the pooled answers *and* the distinct
people who gave them (``poll_participants``) reach the threshold: "last 3 weeks".

The walk stops at an asking whose answers were already part of a shown result. Shown results
therefore never overlap: each asking is in at most one of them. Without that rule two shown
results could be subtracted: a round with 6 answers shown alone (mean 4.0), then a round with 1
answer pooled with it (7 answers, mean 3.7) gives away that one person's answer (1.9 * 7 - 24).
Askings passed over (an asking that reached the threshold alone after some that had not) are
never shown in anything.

The decision is made once, when a round closes (:func:`publish_round`), and recorded on each
asking (``polls.result_pool_id``: the asking whose result included it), so that the round's
results, ``/pulse results`` and every later digest show the same numbers and nothing has to walk
the whole history again. Reading is then a handful of bounded queries
(:func:`compute_digest`): the recent rounds' polls, one ``GROUP BY poll_id, choice`` over
``poll_ballots`` for every poll needed, one ``GROUP BY poll_id`` over ``poll_participants``.

"Change" is the difference between a shown result and the previous shown result of the same
question (the previous asking, or the previous pool); both meet the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.timezones import zone as zone_info
from storage.models import Team
from storage.polls import Poll, PollBallot, PollKind, PollParticipant, Pulse, PulseRound

# A pooled result covers at most this many consecutive rounds.
POOL_PERIODS = 8
# A trend shows at most this many shown results of a question.
TREND_POINTS = 8
MIN_THRESHOLD = 3


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A shown number and what it was computed from."""

    kind: str  # "scale" | "enps" (or another poll kind, for the digest's poll lines)
    answers: int
    distribution: dict[int, int]  # choice -> answers

    @property
    def value(self) -> float:
        """The mean (1-5) of a scale question; the eNPS (-100..100) of an eNPS question."""
        if self.kind == PollKind.ENPS:
            return enps(self.distribution)
        return mean(self.distribution)

    @property
    def promoters(self) -> int:
        return sum(n for c, n in self.distribution.items() if c >= 9)

    @property
    def detractors(self) -> int:
        return sum(n for c, n in self.distribution.items() if c <= 6)

    @property
    def passives(self) -> int:
        return self.answers - self.promoters - self.detractors


def mean(distribution: dict[int, int]) -> float:
    total = sum(distribution.values())
    return sum(c * n for c, n in distribution.items()) / total if total else math.nan


def enps(distribution: dict[int, int]) -> float:
    total = sum(distribution.values())
    if not total:
        return math.nan
    promoters = sum(n for c, n in distribution.items() if c >= 9)
    detractors = sum(n for c, n in distribution.items() if c <= 6)
    return 100.0 * (promoters - detractors) / total


@dataclass(frozen=True)
class QuestionResult:
    """One asking of a pulse question, as it stood when its round closed."""

    poll_id: int
    key: str
    text: str
    kind: str
    period: date  # the round's team-local date
    voters: int  # members who answered this asking
    eligible: int  # members who were asked
    threshold: int
    score: Score | None  # None: not enough answers to show yet
    pooled_askings: int  # askings in the shown result (1: this round alone)
    pool_start: date | None  # the first round of the shown result
    span_rounds: int  # rounds of the pulse from pool_start to period, both included
    pending: int  # answers gathered so far, when nothing is shown
    previous: Score | None  # the previous shown result of the same question
    previous_period: date | None  # the round that result was shown for
    # The shown results of the same question up to this one (within the rounds read), oldest
    # first, for the trend: each was published when its round closed.
    trend: tuple[tuple[date, Score], ...] = ()

    @property
    def pooled(self) -> bool:
        return self.score is not None and self.pooled_askings > 1

    @property
    def change(self) -> float | None:
        if self.score is None or self.previous is None:
            return None
        return self.score.value - self.previous.value


@dataclass(frozen=True)
class PollLine:
    """A poll (not a pulse question) that closed during a digest's week, with its counts."""

    poll_id: int
    question: str
    kind: str
    options: tuple[str, ...]
    results: str  # ResultsVisibility
    anonymous: bool
    threshold: int
    voters: int
    eligible: int
    counts: dict[int, int]  # choice -> ballots


@dataclass(frozen=True)
class Digest:
    """Everything a weekly digest shows, as data (rendered by :mod:`bot.features.pulse.digest`)."""

    pulse_id: int
    team_name: str
    zone: str
    every_weeks: int
    week_start: datetime
    week_end: datetime
    questions: list[QuestionResult] = field(default_factory=list)
    polls: list[PollLine] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.questions and not self.polls


# -- reading the recent history of a pulse --------------------------------------------------------


@dataclass(frozen=True)
class _Asking:
    poll_id: int
    key: str
    text: str
    kind: str
    threshold: int
    pool_id: int | None  # polls.result_pool_id
    closed_at: datetime | None
    round_id: int
    period: date


def rounds_back(pulse: Pulse) -> int:
    """How many recent rounds a digest reads: enough for a question's current pool, its
    previous asking a rotation earlier, and that asking's pool."""
    per_round = max(1, pulse.questions_per_round)
    rotation = math.ceil(max(1, len(pulse.bank or ())) / per_round)
    return 2 * POOL_PERIODS + rotation + 2


async def _recent(
    session: AsyncSession, pulse_id: int, until: date, count: int
) -> tuple[list[tuple[int, date]], list[_Asking]]:
    """The pulse's last ``count`` rounds up to ``until`` (newest first) and their polls."""
    rounds = [
        (rid, period)
        for rid, period in (
            await session.execute(
                select(PulseRound.id, PulseRound.period_date)
                .where(PulseRound.pulse_id == pulse_id, PulseRound.period_date <= until)
                .order_by(PulseRound.period_date.desc())
                .limit(count)
            )
        ).all()
    ]
    if not rounds:
        return [], []
    periods = dict(rounds)
    rows = await session.execute(
        select(
            Poll.id,
            Poll.question_key,
            Poll.question,
            Poll.kind,
            Poll.threshold,
            Poll.result_pool_id,
            Poll.closed_at,
            Poll.round_id,
        )
        .where(Poll.round_id.in_(list(periods)))
        .order_by(Poll.id)
    )
    askings = [
        _Asking(pid, key or f"poll{pid}", text, kind, threshold, pool, closed, rid, periods[rid])
        for pid, key, text, kind, threshold, pool, closed, rid in rows.all()
    ]
    return rounds, askings


class _History:
    """The recent askings of a pulse, indexed for walking back one question at a time."""

    def __init__(self, rounds: list[tuple[int, date]], askings: list[_Asking]) -> None:
        self.order = [rid for rid, _ in sorted(rounds, key=lambda r: r[1])]  # oldest first
        self.position = {rid: i for i, rid in enumerate(self.order)}
        self.by_id = {a.poll_id: a for a in askings}
        self.by_key: dict[str, list[_Asking]] = {}
        for asking in sorted(askings, key=lambda a: (self.position[a.round_id], a.poll_id)):
            self.by_key.setdefault(asking.key, []).append(asking)

    def shown_by(self, asking: _Asking, as_of: _Asking) -> bool:
        """Whether ``asking``'s answers were part of a result shown by the time ``as_of``'s
        round closed (its pool's head is no later than ``as_of``)."""
        if asking.pool_id is None:
            return False
        head = self.by_id.get(asking.pool_id)
        if head is None:
            # A head is never older than its members, so one outside the rounds read is newer
            # than all of them (a digest of an earlier week read again later).
            return False
        return self.position[head.round_id] <= self.position[as_of.round_id]

    def pending_run(self, current: _Asking) -> list[_Asking]:
        """The askings (newest first) a pool ending at ``current`` may draw on, as of its
        close: consecutive closed askings not shown before, within :data:`POOL_PERIODS`
        rounds."""
        oldest = self.position[current.round_id] - POOL_PERIODS + 1
        run: list[_Asking] = []
        for asking in reversed(self.by_key.get(current.key, ())):
            position = self.position[asking.round_id]
            if position > self.position[current.round_id]:
                continue
            if position < oldest:
                break
            if asking is not current:
                if asking.closed_at is None or self.shown_by(asking, current):
                    break
            run.append(asking)
        return run

    def previous_head(self, current: _Asking, before: int) -> _Asking | None:
        """The last asking of the same question before round position ``before`` whose
        result was shown (a pool's head)."""
        found = None
        for asking in self.by_key.get(current.key, ()):
            if self.position[asking.round_id] < before and asking.pool_id == asking.poll_id:
                found = asking
        return found

    def heads_until(self, current: _Asking) -> list[_Asking]:
        """The askings of the same question up to ``current``'s round whose result was shown
        (pool heads), oldest first."""
        until = self.position[current.round_id]
        return [
            a
            for a in self.by_key.get(current.key, ())
            if a.pool_id == a.poll_id and self.position[a.round_id] <= until
        ]

    def rounds_between(self, first: _Asking, last: _Asking) -> int:
        return self.position[last.round_id] - self.position[first.round_id] + 1


async def _distributions(
    session: AsyncSession, poll_ids: Iterable[int]
) -> dict[int, dict[int, int]]:
    """``poll id -> {choice: ballots}`` for every poll at once (one GROUP BY)."""
    ids = sorted(set(poll_ids))
    out: dict[int, dict[int, int]] = {pid: {} for pid in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(PollBallot.poll_id, PollBallot.choice, func.count())
        .where(PollBallot.poll_id.in_(ids))
        .group_by(PollBallot.poll_id, PollBallot.choice)
    )
    for pid, choice, count in rows.all():
        out[pid][choice] = count
    return out


async def _participation(
    session: AsyncSession, poll_ids: Iterable[int]
) -> dict[int, tuple[int, int]]:
    """``poll id -> (voters, eligible)`` for every poll at once (one GROUP BY)."""
    ids = sorted(set(poll_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(
            PollParticipant.poll_id,
            func.count().filter(PollParticipant.voted.is_(True)),
            func.count(),
        )
        .where(PollParticipant.poll_id.in_(ids))
        .group_by(PollParticipant.poll_id)
    )
    return {pid: (voters, eligible) for pid, voters, eligible in rows.all()}


def _combined(kind: str, dists: Iterable[dict[int, int]]) -> Score:
    total: dict[int, int] = {}
    for dist in dists:
        for choice, count in dist.items():
            total[choice] = total.get(choice, 0) + count
    return Score(kind, sum(total.values()), dict(sorted(total.items())))


async def _pools(session: AsyncSession, heads: Iterable[int]) -> dict[int, list[int]]:
    """``head poll id -> ids of the polls in its shown result`` (one query)."""
    ids = sorted(set(heads))
    out: dict[int, list[int]] = {pid: [] for pid in ids}
    if ids:
        rows = await session.execute(
            select(Poll.result_pool_id, Poll.id).where(Poll.result_pool_id.in_(ids))
        )
        for head, pid in rows.all():
            out[head].append(pid)
    return out


async def _results(
    session: AsyncSession, history: _History, currents: Sequence[_Asking]
) -> list[QuestionResult]:
    """The results of ``currents`` as their rounds' closes decided them."""
    shown = [c for c in currents if c.pool_id == c.poll_id]
    heads = {c.poll_id: history.heads_until(c) for c in currents}
    # One query for the pools of this round's results, the previous ones and the trends'.
    every_pool = await _pools(
        session, {*(c.poll_id for c in shown), *(h.poll_id for hs in heads.values() for h in hs)}
    )
    pools = {c.poll_id: every_pool[c.poll_id] for c in shown}
    plans: list[tuple[_Asking, list[int], _Asking, list[_Asking], _Asking | None]] = []
    for current in currents:
        pool = pools.get(current.poll_id, []) if current.pool_id == current.poll_id else []
        members = [history.by_id[pid] for pid in pool if pid in history.by_id]
        first = min(members, key=lambda a: history.position[a.round_id]) if members else current
        run = [] if pool else history.pending_run(current)
        previous = history.previous_head(current, history.position[first.round_id])
        plans.append((current, pool, first, run, previous))
    previous_pools = {p.poll_id: every_pool.get(p.poll_id, []) for *_, p in plans if p}
    needed = {pid for ids in every_pool.values() for pid in ids}
    needed.update(a.poll_id for *_, run, _ in plans for a in run)
    dists = await _distributions(session, needed)
    participation = await _participation(session, (c.poll_id for c in currents))
    out: list[QuestionResult] = []
    for current, pool, first, run, previous in plans:
        voters, eligible = participation.get(current.poll_id, (0, 0))
        score = _combined(current.kind, (dists[pid] for pid in pool)) if pool else None
        previous_pool = previous_pools.get(previous.poll_id, []) if previous else []
        before = (
            _combined(current.kind, (dists[pid] for pid in previous_pool))
            if previous_pool
            else None
        )
        out.append(
            QuestionResult(
                poll_id=current.poll_id,
                key=current.key,
                text=current.text,
                kind=current.kind,
                period=current.period,
                voters=voters,
                eligible=eligible,
                threshold=max(MIN_THRESHOLD, current.threshold),
                score=score,
                pooled_askings=len(pool),
                pool_start=first.period if pool else None,
                span_rounds=history.rounds_between(first, current) if pool else 0,
                pending=sum(sum(dists[a.poll_id].values()) for a in run),
                previous=before,
                previous_period=previous.period if before is not None and previous else None,
                trend=tuple(
                    (h.period, _combined(h.kind, (dists[pid] for pid in every_pool[h.poll_id])))
                    for h in heads[current.poll_id][-TREND_POINTS:]
                    if every_pool[h.poll_id]
                ),
            )
        )
    return out


# -- deciding what a closing round shows ----------------------------------------------------------


async def publish_round(session: AsyncSession, pulse: Pulse, round_: PulseRound) -> None:
    """Decide, for each question of a round whose polls have just closed, which answers its
    shown result contains, and record it (see the module docstring). Run once per round, in
    the transaction that closes it; running it again changes nothing."""
    rounds, askings = await _recent(session, pulse.id, round_.period_date, POOL_PERIODS)
    history = _History(rounds, askings)
    currents = [
        a
        for a in askings
        if a.round_id == round_.id and a.pool_id is None and a.closed_at is not None
    ]
    if not currents:
        return
    runs = {c.poll_id: history.pending_run(c) for c in currents}
    ids = {a.poll_id for run in runs.values() for a in run}
    ballots = {pid: sum(d.values()) for pid, d in (await _distributions(session, ids)).items()}
    # Distinct people per question for each length of its run: a member counts at the newest
    # asking (rank 1 = this round) they answered; one GROUP BY over participation.
    rank = case(
        {a.poll_id: i for run in runs.values() for i, a in enumerate(run, 1)},
        value=PollParticipant.poll_id,
    )
    firsts = (
        select(
            PollParticipant.member_id,
            Poll.question_key.label("key"),
            func.min(rank).label("rank"),
        )
        .join(Poll, Poll.id == PollParticipant.poll_id)
        .where(PollParticipant.poll_id.in_(sorted(ids)), PollParticipant.voted.is_(True))
        .group_by(PollParticipant.member_id, Poll.question_key)
        .subquery()
    )
    people: dict[tuple[str, int], int] = {
        (key, r): n
        for key, r, n in (
            await session.execute(
                select(firsts.c.key, firsts.c.rank, func.count()).group_by(
                    firsts.c.key, firsts.c.rank
                )
            )
        ).all()
    }
    for current in currents:
        run = runs[current.poll_id]
        threshold = max(MIN_THRESHOLD, current.threshold)
        answers = distinct = 0
        for length, asking in enumerate(run, 1):
            answers += ballots.get(asking.poll_id, 0)
            distinct += people.get((current.key, length), 0)
            if answers >= threshold and distinct >= threshold:
                await session.execute(
                    update(Poll)
                    .where(Poll.id.in_([a.poll_id for a in run[:length]]))
                    .values(result_pool_id=current.poll_id)
                )
                break


# -- the round's results and the digest -----------------------------------------------------------


async def round_results(
    session: AsyncSession, pulse: Pulse, round_: PulseRound
) -> list[QuestionResult]:
    """The results of one closed round, question by question (what its close posts, and what
    ``/pulse results`` shows)."""
    rounds, askings = await _recent(session, pulse.id, round_.period_date, rounds_back(pulse))
    history = _History(rounds, askings)
    return await _results(session, history, [a for a in askings if a.round_id == round_.id])


async def rounds_results(
    session: AsyncSession, pulse: Pulse, rounds: Sequence[PulseRound]
) -> list[QuestionResult]:
    """:func:`round_results` of several closed rounds of one pulse in one pass (the dashboard
    shows a team's last few): one read of a history that reaches back :func:`rounds_back`
    rounds from the oldest of them, then one :func:`_results` for all their askings."""
    if not rounds:
        return []
    newest = max(r.period_date for r in rounds)
    oldest = min(r.period_date for r in rounds)
    span = await session.scalar(
        select(func.count())
        .select_from(PulseRound)
        .where(
            PulseRound.pulse_id == pulse.id,
            PulseRound.period_date >= oldest,
            PulseRound.period_date <= newest,
        )
    )
    read, askings = await _recent(session, pulse.id, newest, rounds_back(pulse) + (span or 1) - 1)
    wanted = {r.id for r in rounds}
    return await _results(
        session, _History(read, askings), [a for a in askings if a.round_id in wanted]
    )


def week_start_of(week_end: datetime, zone: str) -> datetime:
    """A week before ``week_end`` on the team's wall clock (167 or 169 hours across DST)."""
    # Arithmetic on an aware datetime is wall-clock arithmetic in its own zone.
    local = week_end.astimezone(zone_info(zone))
    return (local - timedelta(days=7)).astimezone(week_end.tzinfo)


async def _pulse_and_team(session: AsyncSession, pulse_id: int) -> tuple[Pulse, Team]:
    found = (
        await session.execute(
            select(Pulse, Team).join(Team, Team.id == Pulse.team_id).where(Pulse.id == pulse_id)
        )
    ).one_or_none()
    if found is None:
        raise LookupError(f"no pulse {pulse_id}")
    return found[0], found[1]


async def compute_digest(session: AsyncSession, pulse_id: int, week_end: datetime) -> Digest:
    """The numbers of a team's weekly digest for the week ending at ``week_end`` (what closed
    after ``week_end`` less a week on the team's wall clock, up to and including ``week_end``):
    every pulse question whose round closed that week, with its score (pooled if needed), its
    change against its previous shown result and its participation; and the team's other polls
    that closed that week, with their counts. Pure data; a bounded number of queries whatever
    the number of ballots."""
    pulse, team = await _pulse_and_team(session, pulse_id)
    week_start = week_start_of(week_end, team.timezone)
    until = week_end.astimezone(zone_info(team.timezone)).date()
    rounds, askings = await _recent(session, pulse.id, until, rounds_back(pulse))
    history = _History(rounds, askings)
    currents = [
        a for a in askings if a.closed_at is not None and week_start < a.closed_at <= week_end
    ]
    currents.sort(key=lambda a: (a.period, a.poll_id))
    questions = await _results(session, history, currents)
    polls = await _closed_polls(session, team, week_start, week_end)
    return Digest(
        pulse_id=pulse.id,
        team_name=team.name,
        zone=team.timezone,
        every_weeks=pulse.every_weeks,
        week_start=week_start,
        week_end=week_end,
        questions=questions,
        polls=polls,
    )


async def _closed_polls(
    session: AsyncSession, team: Team, start: datetime, end: datetime
) -> list[PollLine]:
    """The team's polls (by team or by its channel), not pulse questions, closed in the week."""
    where_team = Poll.team_id == team.id
    if team.channel_id is not None:
        where_team = or_(where_team, Poll.channel_id == team.channel_id)
    rows = list(
        await session.scalars(
            select(Poll)
            .where(
                Poll.round_id.is_(None),
                where_team,
                Poll.closed_at > start,
                Poll.closed_at <= end,
            )
            .order_by(Poll.closed_at, Poll.id)
        )
    )
    if not rows:
        return []
    ids = [p.id for p in rows]
    dists = await _distributions(session, ids)
    participation = await _participation(session, ids)
    return [
        PollLine(
            poll_id=p.id,
            question=p.question,
            kind=p.kind,
            options=tuple(p.options or ()),
            results=p.results,
            anonymous=p.anonymous,
            threshold=max(MIN_THRESHOLD, p.threshold),
            voters=participation.get(p.id, (0, 0))[0],
            eligible=participation.get(p.id, (0, 0))[1],
            counts=dists[p.id],
        )
        for p in rows
    ]
