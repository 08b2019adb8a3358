"""Pulse results read in bulk for the dashboard and the digest: many pulses, or many weeks of
one, in a fixed number of queries. Only what :mod:`bot.features.pulse.scores` published (pool
heads and their pools) is read, so nothing below a threshold becomes a number here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.pulse.scores import (
    QuestionResult,
    Score,
    _Asking,
    _combined,
    _History,
    _pulse_and_team,
    _recent,
    _results,
    rounds_back,
    week_start_of,
)
from bot.timezones import zone as zone_info
from storage.polls import Poll, PollBallot, PulseRound


async def latest_shown(
    session: AsyncSession, pulses: Select[tuple[int]], rounds: int, first: int
) -> dict[int, list[tuple[str, date, Score]]]:
    """``pulse id -> [(text, period, score)]``: the ``first`` (by question text) of each
    pulse's questions' latest results shown in its last ``rounds`` closed rounds, for every
    pulse ``pulses`` selects, in two queries (the overview's cards). Only published results: a
    pool's head (``result_pool_id`` is its own id) and the ballots of the polls its close
    recorded in it, as :func:`_results` reads them."""
    ranked = (
        select(
            PulseRound.id,
            PulseRound.pulse_id,
            PulseRound.period_date,
            func.row_number()
            .over(partition_by=PulseRound.pulse_id, order_by=PulseRound.period_date.desc())
            .label("n"),
        )
        .where(PulseRound.pulse_id.in_(pulses), PulseRound.closed_at.is_not(None))
        .subquery()
    )
    rows = await session.execute(
        select(
            ranked.c.pulse_id,
            ranked.c.period_date,
            Poll.id,
            Poll.question_key,
            Poll.question,
            Poll.kind,
        )
        .join(Poll, Poll.round_id == ranked.c.id)
        .where(ranked.c.n <= rounds, Poll.result_pool_id == Poll.id)
        .order_by(ranked.c.pulse_id, ranked.c.n, Poll.id)
    )
    latest: dict[int, dict[str, tuple[int, str, str, date]]] = {}
    for pulse_id, period, pid, key, text, kind in rows.all():
        # Newest round first: a question's first head is its latest shown result.
        latest.setdefault(pulse_id, {}).setdefault(key or f"poll{pid}", (pid, text, kind, period))
    heads: dict[int, tuple[int, str, str, date]] = {}
    for pulse_id, found in latest.items():
        chosen = sorted(found.values(), key=lambda h: (h[1].casefold(), h[3]))[:first]
        heads.update((pid, (pulse_id, text, kind, period)) for pid, text, kind, period in chosen)
    dists: dict[int, dict[int, int]] = {pid: {} for pid in heads}
    if heads:
        tallies = await session.execute(
            select(Poll.result_pool_id, PollBallot.choice, func.count())
            .join(PollBallot, PollBallot.poll_id == Poll.id)
            .where(Poll.result_pool_id.in_(sorted(heads)))
            .group_by(Poll.result_pool_id, PollBallot.choice)
        )
        for head, choice, count in tallies.all():
            dists[head][choice] = count
    out: dict[int, list[tuple[str, date, Score]]] = {}
    for head, (pulse_id, text, kind, period) in heads.items():
        if dists[head]:
            out.setdefault(pulse_id, []).append((text, period, _combined(kind, [dists[head]])))
    for results in out.values():
        results.sort(key=lambda r: (r[0].casefold(), r[1]))
    return out


async def weekly_questions(
    session: AsyncSession, pulse_id: int, week_ends: Sequence[datetime]
) -> list[list[QuestionResult]]:
    """``compute_digest(session, pulse_id, end).questions`` for each of ``week_ends`` (oldest
    first), from one read of the history the oldest week needs plus the rounds after it and
    one :func:`_results` for every week's askings (the digest's trends: no query per week).
    Each week's askings are those its own digest reads: closed in its week, in the last
    :func:`rounds_back` rounds up to its end."""
    pulse, team = await _pulse_and_team(session, pulse_id)
    if not week_ends:
        return []
    zone = zone_info(team.timezone)
    spans = [
        (week_start_of(end, team.timezone), end, end.astimezone(zone).date()) for end in week_ends
    ]
    first_until, last_until = min(u for *_, u in spans), max(u for *_, u in spans)
    later = await session.scalar(
        select(func.count())
        .select_from(PulseRound)
        .where(
            PulseRound.pulse_id == pulse.id,
            PulseRound.period_date > first_until,
            PulseRound.period_date <= last_until,
        )
    )
    back = rounds_back(pulse)
    rounds, askings = await _recent(session, pulse.id, last_until, back + (later or 0))
    newest_first = sorted(rounds, key=lambda r: r[1], reverse=True)
    weeks: list[list[_Asking]] = []
    oldest: list[date] = []  # the first round each week's own digest reads
    for start, end, until in spans:
        window = [r for r in newest_first if r[1] <= until][:back]
        read = {rid for rid, _ in window}
        oldest.append(window[-1][1] if window else until)
        currents = [
            a
            for a in askings
            if a.round_id in read and a.closed_at is not None and start < a.closed_at <= end
        ]
        currents.sort(key=lambda a: (a.period, a.poll_id))
        weeks.append(currents)
    results = await _results(
        session, _History(rounds, askings), [a for currents in weeks for a in currents]
    )
    out: list[list[QuestionResult]] = []
    cursor = 0
    for currents, first in zip(weeks, oldest, strict=True):
        # What the longer history adds to a week's results (its earlier shown results), cut
        # back to the rounds that week's digest reads.
        out.append(
            [
                replace(
                    r,
                    trend=tuple(t for t in r.trend if t[0] >= first),
                    previous=r.previous if (r.previous_period or first) >= first else None,
                    previous_period=r.previous_period
                    if (r.previous_period or first) >= first
                    else None,
                )
                for r in results[cursor : cursor + len(currents)]
            ]
        )
        cursor += len(currents)
    return out
