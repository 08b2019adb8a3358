"""Pulse results and the weekly digest as messages of the neutral chat model.

The numbers come from :mod:`bot.features.pulse.scores`; nothing here computes a score. A result
that is not shown (under the threshold) is rendered as words only: no number, no chart value.
Question and poll texts are user text: always :class:`~bot.chat.Plain` (invariant 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from bot.chat import (
    Block,
    Bold,
    Chart,
    ChartSeries,
    Context,
    Divider,
    Header,
    Inline,
    Message,
    Plain,
    Section,
    Text,
    message,
    text,
)
from bot.features.pulse.scores import Digest, PollLine, QuestionResult, Score
from bot.timezones import zone as zone_info
from storage.polls import PollKind, ResultsVisibility

UP, DOWN = "\u25b2", "\u25bc"
# Polls listed in a digest, and per section (each line is at most ~450 characters, a section
# at most 3,000 on Slack).
MAX_POLLS = 30
POLLS_PER_SECTION = 5
MAX_TIED = 3  # options named in a tie for first place
ANONYMITY_NOTE = (
    "Anonymous: nobody, not even an admin, can see who answered what. A number is shown only "
    "when enough people answered; smaller rounds are pooled with earlier ones."
)


def day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%b}"


# -- one question -------------------------------------------------------------------------------


def score_text(score: Score) -> str:
    if score.kind == PollKind.ENPS:
        total = score.answers or 1
        return (
            f"eNPS {round(score.value):+d} (promoters {round(100 * score.promoters / total)}%, "
            f"passives {round(100 * score.passives / total)}%, "
            f"detractors {round(100 * score.detractors / total)}%)"
        )
    return f"{score.value:.1f} of 5"


def since(period: date, earlier: date, every_weeks: int) -> str:
    """``last week``, ``last round``, ``3 weeks ago`` or a date."""
    days = (period - earlier).days
    if days == 7:
        return "last week"
    if every_weeks > 1 and days == 7 * every_weeks:
        return "last round"
    if days % 7 == 0:
        return f"{days // 7} weeks ago"
    return day(earlier)


def change_text(result: QuestionResult, every_weeks: int) -> str:
    change = result.change
    if change is None or result.previous_period is None:
        return ""
    when = since(result.period, result.previous_period, every_weeks)
    if result.kind == PollKind.ENPS:
        points = round(change)
        if points == 0:
            return f"no change vs {when}"
        return f"{UP if points > 0 else DOWN} {abs(points)} vs {when}"
    rounded = round(change, 1)
    if rounded == 0:
        return f"no change vs {when}"
    return f"{UP if rounded > 0 else DOWN} {abs(rounded):.1f} vs {when}"


def pool_label(result: QuestionResult, every_weeks: int) -> str:
    """``last 3 weeks`` when the pool is that many consecutive weekly rounds, else ``last 3
    rounds``."""
    n = result.span_rounds
    weekly = (
        every_weeks == 1
        and result.pool_start is not None
        and (result.period - result.pool_start).days == 7 * (n - 1)
    )
    return f"last {n} weeks" if weekly else f"last {n} rounds"


def not_enough_text(result: QuestionResult) -> str:
    if result.pending >= result.threshold:
        # Enough answers but from too few different people (pooled rounds, the same few).
        return (
            f"Not enough answers to show yet (they came from fewer than the "
            f"{result.threshold} different people needed)"
        )
    return f"Not enough answers to show yet ({result.pending} of the {result.threshold} needed)"


def result_line(result: QuestionResult, every_weeks: int) -> str:
    participation = f"{result.voters} of {result.eligible} answered"
    if result.score is None:
        return f"{not_enough_text(result)} · {participation}"
    parts = [score_text(result.score)]
    if result.pooled:
        parts[0] += f" over the {pool_label(result, every_weeks)} ({result.score.answers} answers)"
    change = change_text(result, every_weeks)
    if change:
        parts.append(change)
    parts.append(participation)
    return " · ".join(parts)


def distribution_text(score: Score) -> str:
    """Each value of a 1-5 question with its count and share (an eNPS score already says its
    three groups' shares)."""
    total = score.answers or 1
    counts = [(v, score.distribution.get(v, 0)) for v in range(1, 6)]
    return "Answers: " + ", ".join(f"{v}: {n} ({round(100 * n / total)}%)" for v, n in counts)


def question_blocks(results: Sequence[QuestionResult], every_weeks: int) -> list[Block]:
    blocks: list[Block] = []
    several_rounds = len({r.period for r in results}) > 1
    for result in results:
        title: list[Inline | str] = [Bold(result.text)]
        if several_rounds:
            title.append(f" ({day(result.period)})")
        body = f"\n{result_line(result, every_weeks)}"
        if result.score is not None and result.kind == PollKind.SCALE:
            body += f"\n{distribution_text(result.score)}"
        blocks.append(Section(text(*title, body)))
    return blocks


# -- charts -------------------------------------------------------------------------------------


SCALES = {PollKind.SCALE: (1.0, 5.0), PollKind.ENPS: (-100.0, 100.0)}


def charts(
    results: Sequence[QuestionResult], every_weeks: int, *, team: str, period: str
) -> list[Chart]:
    """A bar chart per kind (1-5 scores and eNPS have different scales, each drawn over its
    whole scale): this round's shown result next to the previous one, per question, with the
    answers each stands for; none when nothing can be shown."""
    out: list[Chart] = []
    now_name = "This week" if every_weeks == 1 else "This round"
    for kind, title in ((PollKind.SCALE, "Pulse scores (1-5)"), (PollKind.ENPS, "eNPS")):
        picked = [r for r in results if r.kind == kind]
        if not any(r.score is not None for r in picked):
            continue
        current = tuple(_value(r.score) for r in picked)
        previous = tuple(_value(r.previous) if r.score is not None else None for r in picked)
        series = [ChartSeries(now_name, current, tuple(_answers(r.score) for r in picked))]
        if any(v is not None for v in previous):
            answers = tuple(_answers(r.previous) if r.score is not None else None for r in picked)
            series.append(ChartSeries("Previous result", previous, answers))
        words = "; ".join(_chart_words(r, every_weeks) for r in picked)
        out.append(
            Chart(
                title=title,
                labels=tuple(r.text for r in picked),
                series=tuple(series),
                alt=f"Bar chart, {title}, {now_name.lower()} against the previous result: {words}.",
                style="bar",
                team=team,
                period=period,
                scale=SCALES[kind],
            )
        )
    return out


def trend_charts(results: Sequence[QuestionResult], *, team: str) -> list[Chart]:
    """A line chart per kind: each question's shown results over the rounds, oldest first (its
    trend), for the questions that have at least two; a round where a question was not shown is
    a gap in its line."""
    out: list[Chart] = []
    for kind, title in ((PollKind.SCALE, "Pulse trend (1-5)"), (PollKind.ENPS, "eNPS trend")):
        latest = {r.key: r for r in results if r.kind == kind and len(r.trend) >= 2}
        picked = list(latest.values())
        if not picked:
            continue
        periods = sorted({period for r in picked for period, _ in r.trend})
        series = []
        for result in picked:
            shown = dict(result.trend)
            series.append(
                ChartSeries(
                    result.text,
                    tuple(_value(shown.get(p)) for p in periods),
                    tuple(_answers(shown.get(p)) for p in periods),
                )
            )
        words = "; ".join(
            f"{r.text}: "
            + ", ".join(f"{_number(s)} on {day(p)} ({s.answers} answers)" for p, s in r.trend)
            for r in picked
        )
        out.append(
            Chart(
                title=title,
                labels=tuple(f"{p.day} {p:%b}" for p in periods),
                series=tuple(series),
                alt=f"Line chart, {title}, the shown results round by round: {words}.",
                style="line",
                team=team,
                period=f"{day(periods[0])} to {day(periods[-1])}",
                scale=SCALES[kind],
            )
        )
    return out


def _answers(score: Score | None) -> int | None:
    return None if score is None else score.answers


def _value(score: Score | None) -> float | None:
    if score is None:
        return None
    value = score.value
    return None if math.isnan(value) else round(value, 1 if score.kind == PollKind.SCALE else 0)


def _chart_words(result: QuestionResult, every_weeks: int) -> str:
    if result.score is None:
        return f"{result.text}: not enough answers yet"
    words = f"{result.text}: {_number(result.score)}"
    if result.pooled:
        words += f" over the {pool_label(result, every_weeks)}"
    if result.previous is not None:
        words += f", previous {_number(result.previous)}"
    return words


def _number(score: Score) -> str:
    if score.kind == PollKind.ENPS:
        return f"{round(score.value):+d}"
    return f"{score.value:.1f}"


# -- messages -----------------------------------------------------------------------------------


def round_message(
    team: str, period: date, results: Sequence[QuestionResult], every_weeks: int
) -> Message:
    """The results a round's close posts in the team channel."""
    blocks: list[Block] = [
        Header(f"Pulse results: {team}"[:150]),
        Context(text(f"Round of {day(period)}.")),
        *question_blocks(results, every_weeks),
        *charts(results, every_weeks, team=team, period=f"round of {day(period)}"),
        *trend_charts(results, team=team),
        Context(text(ANONYMITY_NOTE)),
    ]
    return message(*blocks, summary=f"Pulse results: {team}")


def results_reply(
    team: str, period: date, results: Sequence[QuestionResult], every_weeks: int
) -> list[Block]:
    """``/pulse results``: the latest round's results, for the one who asked."""
    return list(round_message(team, period, results, every_weeks).blocks)


def digest_message(digest: Digest) -> Message:
    zone = zone_info(digest.zone)
    first = digest.week_start.astimezone(zone)
    last = digest.week_end.astimezone(zone)
    blocks: list[Block] = [
        Header(f"Weekly digest: {digest.team_name}"[:150]),
        Context(
            text(
                f"{day(first.date())} {first:%H:%M} to {day(last.date())} {last:%H:%M} "
                f"({digest.zone})."
            )
        ),
        Section(text(Bold("Pulse"))),
    ]
    if digest.questions:
        blocks.extend(question_blocks(digest.questions, digest.every_weeks))
        week = f"week of {day(first.date())}"
        blocks.extend(
            charts(digest.questions, digest.every_weeks, team=digest.team_name, period=week)
        )
        blocks.extend(trend_charts(digest.questions, team=digest.team_name))
    else:
        blocks.append(Section(text("No pulse round closed this week.")))
    blocks.append(Divider())
    blocks.append(Section(text(Bold("Polls closed this week"))))
    if digest.polls:
        blocks.extend(poll_blocks(digest.polls))
    else:
        blocks.append(Section(text("None.")))
    blocks.append(Context(text(ANONYMITY_NOTE)))
    return message(*blocks, summary=f"Weekly digest: {digest.team_name}")


# -- the week's polls ---------------------------------------------------------------------------


def poll_blocks(polls: Sequence[PollLine]) -> list[Block]:
    lines = [poll_line(p) for p in polls[:MAX_POLLS]]
    blocks: list[Block] = []
    for start in range(0, len(lines), POLLS_PER_SECTION):
        chunk: list[Text | str] = []
        for n, line in enumerate(lines[start : start + POLLS_PER_SECTION]):
            if n:
                chunk.append("\n")
            chunk.append(line)
        blocks.append(Section(text(*chunk)))
    if len(polls) > MAX_POLLS:
        blocks.append(Context(text(f"And {len(polls) - MAX_POLLS} more; see /poll list.")))
    return blocks


def poll_line(poll: PollLine) -> Text:
    """``• Question: outcome (7 of 9 answered)``, within the poll's visibility and threshold."""
    return text("• ", Bold(poll.question), ": ", *poll_outcome(poll))


def poll_outcome(poll: PollLine) -> list[Inline | str]:
    answered = f" ({poll.voters} of {poll.eligible} answered)"
    if poll.results == ResultsVisibility.CREATOR:
        return [f"results went to its creator{answered}"]
    if poll.voters < poll.threshold:
        return [f"not enough answers to show ({poll.voters} of the {poll.threshold} needed)"]
    kind = poll.kind
    total = sum(poll.counts.values())
    if kind == PollKind.SCALE:
        return [f"average {sum(c * n for c, n in poll.counts.items()) / total:.1f} of 5{answered}"]
    if kind == PollKind.ENPS:
        promoters = sum(n for c, n in poll.counts.items() if c >= 9)
        detractors = sum(n for c, n in poll.counts.items() if c <= 6)
        return [f"eNPS {round(100 * (promoters - detractors) / total):+d}{answered}"]
    if kind == PollKind.TEXT:
        return [f"{total} open answer{'s' if total != 1 else ''}{answered}"]
    top = max(poll.counts.values(), default=0)
    if not top:
        return [f"no votes{answered}"]
    winners = [
        poll.options[c] if 0 <= c < len(poll.options) else f"option {c + 1}"
        for c, n in sorted(poll.counts.items())
        if n == top
    ]
    share = round(100 * top / poll.voters) if poll.voters else 0
    named = winners[:MAX_TIED]
    out: list[Inline | str] = []
    for n, label in enumerate(named):
        if n:
            out.append(" and " if n == len(named) - 1 and len(named) == len(winners) else ", ")
        out.append(Plain(label))
    if len(winners) > len(named):
        out.append(f" and {len(winners) - len(named)} more")
    each = " each" if len(winners) > 1 else ""
    out.append(f" {share}%{each}{answered}")
    return out
