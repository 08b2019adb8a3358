"""Pulse trends: each team's questions with their shown results over the recent rounds.

Only results the pulse feature itself published are shown: :func:`round_results` gives, per
asking, the pooled score that met the anonymity threshold (or None) and the trend of earlier
shown results. This page computes no number of its own from ballots, so it cannot show a
figure below the threshold, nor two overlapping ones that could be subtracted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from bot.charts.trends import trend_chart
from bot.chat import Chart
from bot.features.pulse.scores import QuestionResult, Score, rounds_results
from bot.web.dashboard.pages.context import NotFound, PageContext
from storage.models import Team
from storage.polls import Pulse, PulseRound

ROUNDS = 6  # the latest closed rounds read per team: enough to cover a rotating bank


@dataclass(frozen=True)
class Row:
    text: str
    kind: str
    period: date
    shown: Score | None
    threshold: int
    change: float | None
    trend: tuple[tuple[date, Score], ...]
    # A later round of the question whose answers are not enough to show (yet).
    waiting: date | None = None


def number(score: Score) -> str:
    return f"{score.value:+.0f}" if score.kind == "enps" else f"{score.value:.1f}"


def _round_of(result: QuestionResult, rounds: list[PulseRound]) -> int:
    return next(r.id for r in rounds if r.period_date == result.period)


async def team_results(ctx: PageContext, pulse: Pulse) -> list[Row]:
    rounds = list(
        await ctx.db.scalars(
            select(PulseRound)
            .where(PulseRound.pulse_id == pulse.id, PulseRound.closed_at.is_not(None))
            .order_by(PulseRound.period_date.desc())
            .limit(ROUNDS)
        )
    )
    shown: dict[str, QuestionResult] = {}
    newest: dict[str, QuestionResult] = {}
    # Newest first: the first result of a question is its latest.
    order = {r.id: i for i, r in enumerate(rounds)}
    results = await rounds_results(ctx.db, pulse, rounds)
    for result in sorted(results, key=lambda r: (order[_round_of(r, rounds)], r.poll_id)):
        newest.setdefault(result.key, result)
        if result.score is not None:
            shown.setdefault(result.key, result)
    rows = []
    for key, last in newest.items():
        r = shown.get(key, last)
        rows.append(
            Row(
                text=r.text,
                kind=r.kind,
                period=r.period,
                shown=r.score,
                threshold=r.threshold,
                change=r.change,
                trend=r.trend if r.score is not None else (),
                waiting=last.period if last.score is None else None,
            )
        )
    rows.sort(key=lambda r: (r.text.casefold(), r.period))
    return rows


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    """One team's trends a page (``?team=<id>``, the first team by name without it): a team
    selector lists the others, as the standups page does."""
    found = (
        await ctx.db.execute(
            select(Pulse, Team)
            .join(Team, Team.id == Pulse.team_id)
            .where(Pulse.workspace_id == ctx.workspace_id)
            .order_by(Team.name)
        )
    ).all()
    wanted = ctx.query.get("team", "")
    if wanted:
        chosen = next(((p, t) for p, t in found if str(t.id) == wanted), None)
        if chosen is None:
            raise NotFound(f"This workspace has no pulse team {wanted[:20]!r}.")
    else:
        chosen = found[0] if found else None
    teams = []
    if chosen is not None:
        pulse, team = chosen
        rows = await team_results(ctx, pulse)
        teams.append((team, pulse, rows, trends(team.name, rows)))
    return "pulse.html", {
        "teams": teams,
        "choices": [team for _, team in found],
        "chosen": chosen[1] if chosen else None,
        "number": number,
    }


def trends(team: str, rows: list[Row]) -> Chart | None:
    """The shown results of the team's scale questions as lines over the rounds (eNPS is on
    another scale and stays in the table); only published results, like the table."""
    lines = [r for r in rows if r.shown is not None and r.kind == "scale" and r.trend]
    periods = sorted({day for r in lines for day, _ in r.trend})
    if not periods:
        return None
    series = []
    for r in lines:
        values = dict(r.trend)
        series.append((r.text, [values[d].value if d in values else None for d in periods]))
    return trend_chart(
        f"Pulse of {team}",
        [d.strftime("%d %b") for d in periods],
        series,
        scale=(1.0, 5.0),
        team=team,
    )
