"""A team's weekly digest as a message of the neutral chat model.

One message per team: a header, the summary card (each figure's change against the four weeks
before, as bars), then each section that is on with its figure, its change and a small chart,
then the signals that fired, then links to the dashboard's pages when ``[web] public_url`` is
set. Member names, blocker texts and question texts are user text: :class:`~bot.chat.Plain`
only (invariant 5). Every list is bounded (five silences, five blockers, five dependencies);
a long blocker text is cut with a visible ellipsis. The adapters split a message that is still
too long for their platform (never cut it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.charts.heatmap import participation_heatmap
from bot.charts.multiples import small_multiples
from bot.charts.trends import trend_chart
from bot.chat import (
    Block,
    Bold,
    Chart,
    ChartSeries,
    Context,
    Divider,
    Header,
    Inline,
    Link,
    Message,
    Plain,
    Section,
    Text,
)
from bot.features.digest.figures import TeamFigures, Trend
from bot.features.digest.signals import Signal
from bot.timezones import zone as zone_info

UP, DOWN = "\u25b2", "\u25bc"
TEXT_CLIP = 120  # characters of a blocker's text shown


def day_label(day: date) -> str:
    return f"{day:%a} {day.day}"


def weeks_label(figures: TeamFigures) -> list[str]:
    return [f"{w.first_day.day} {w.first_day:%b}" for w in figures.weeks]


def period_of(figures: TeamFigures) -> str:
    """``9 Mar to Mon 16 Mar 2026 09:00``: the week's first day to the digest's time."""
    week = figures.weeks[-1]
    end = week.end.astimezone(zone_info(figures.zone))
    return f"{week.first_day.day} {week.first_day:%b} to {end:%a} {end.day} {end:%b %Y %H:%M}"


def change_words(trend: Trend, *, percent: bool = False) -> str:
    """``▲ 12 pts against 70% before`` / ``▼ 0.5 against 1.5 on average before``."""
    if trend.before is None or trend.now is None:
        return "no earlier weeks to compare"
    if percent:
        change, before = round(100 * trend.now) - round(100 * trend.before), f"{trend.before:.0%}"
        moved = f"{abs(change)} pts"
    else:
        change = round(trend.now - trend.before, 1)
        before, moved = _count(trend.before), _count(abs(change))
    if change == 0:
        return f"no change against {before} on average before"
    return f"{UP if change > 0 else DOWN} {moved} against {before} on average before"


def days(n: int) -> str:
    return "less than a day" if n == 0 else f"{n} day{'' if n == 1 else 's'}"


def clip(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= TEXT_CLIP else value[: TEXT_CLIP - 1].rstrip() + "\u2026"


def _line(*parts: Inline | str) -> Text:
    return Text(tuple(Plain(p) if isinstance(p, str) else p for p in parts))


def span_of(figures: TeamFigures) -> str:
    """``9 Feb to Mon 16 Mar 2026 09:00``: the five weeks the trends cover."""
    first = figures.weeks[0].first_day
    end = figures.weeks[-1].end.astimezone(zone_info(figures.zone))
    return f"{first.day} {first:%b} to {end:%a} {end.day} {end:%b %Y %H:%M}"


def summary_card(figures: TeamFigures, fired: Sequence[Signal]) -> Chart:
    """The week's blocker and kudos counts next to their mean over the four weeks before, as
    grouped bars; participation and the signals in the headline (a rate and counts of
    hundreds of answers would flatten the bars on one axis)."""
    rows: list[tuple[str, Trend]] = []
    if figures.blockers is not None:
        rows.append(("Blockers opened", figures.blockers.opened))
        rows.append(("Blockers resolved", figures.blockers.resolved))
        rows.append(("Open blockers", figures.blockers.open_at_end))
    if figures.kudos is not None:
        rows.append(("Kudos", figures.kudos.kudos))
    now = tuple(t.now for _, t in rows)
    before = tuple(None if t.before is None else round(t.before, 1) for _, t in rows)
    words = "; ".join(f"{label} {_count(t.now)} against {_count(t.before)}" for label, t in rows)
    heads = []
    if figures.standups is not None:
        rate = figures.standups.rate
        heads.append(f"Participation {'n/a' if rate.now is None else f'{rate.now:.0%}'}")
        words = "; ".join(
            w for w in (f"participation {change_words(rate, percent=True)}", words) if w
        )
    heads.append(f"{len(fired)} signal{'' if len(fired) == 1 else 's'}" if fired else "No signals")
    headline = " \u00b7 ".join(heads)
    return Chart(
        title=f"Weekly digest: {figures.scope.name}",
        labels=tuple(label for label, _ in rows),
        series=(
            ChartSeries("This week", now),
            ChartSeries("Mean of the 4 weeks before", before),
        ),
        alt=f"The week {period_of(figures)} against the mean of the four weeks before: "
        f"{words}. {headline}.",
        team=figures.scope.name,
        period=period_of(figures),
        headline=headline,
    )


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}".removesuffix(".0")


def _standups(figures: TeamFigures) -> list[Block]:
    s = figures.standups
    assert s is not None
    rate = "n/a" if s.rate.now is None else f"{round(s.rate.now * 100)}%"
    parts: list[Inline | str] = [
        Bold("Standups"),
        f": participation {rate}, {s.answered} of {s.asked} answered "
        f"({change_words(s.rate, percent=True)}).",
    ]
    if s.silences:
        parts.append("\nLongest silence: ")
        for n, quiet in enumerate(s.silences):
            when = "no answer in 5 weeks" if quiet.days is None else days(quiet.days)
            parts += [", " if n else "", Plain(quiet.name), f" ({when})"]
    blocks: list[Block] = [Section(_line(*parts))]
    if s.members and s.days:
        blocks.append(
            participation_heatmap(
                "Who answered, day by day",
                s.members,
                [day_label(d) for d in s.days],
                s.cells,
                team=figures.scope.name,
                period=period_of(figures),
                headline=f"Participation {rate} ({s.answered} of {s.asked} answered)",
            )
        )
    return blocks


def _blockers(figures: TeamFigures) -> list[Block]:
    b = figures.blockers
    assert b is not None
    median = b.median_hours_to_resolve
    parts: list[Inline | str] = [
        Bold("Blockers"),
        f": {b.opened.now or 0:.0f} opened ({change_words(b.opened)}), "
        f"{b.resolved.now or 0:.0f} resolved ({change_words(b.resolved)}), "
        f"{b.escalated.now or 0:.0f} escalated, {b.open_at_end.now or 0:.0f} open now. "
        f"Median time to resolve: {'n/a' if median is None else f'{median:.1f} h'}.",
    ]
    if b.oldest:
        parts.append("\nOldest open:")
        for old in b.oldest:
            parts += [f"\n• #{old.id} ", Plain(clip(old.text)), f" (open {days(old.days_open)}"]
            if old.area:
                parts += [", ", Plain(old.area)]
                parts += [", Accountable ", Plain(old.accountable or "nobody named")]
            parts.append(")")
    if b.dependencies:
        parts.append("\nCross-team dependencies waiting longest:")
        for dep in b.dependencies:
            parts += ["\n• ", Plain(dep.waiting), " waiting on ", Plain(dep.on)]
            parts += [f" for {days(dep.days)} (#{dep.blocker_id} ", Plain(clip(dep.text)), ")"]
    chart = trend_chart(
        "Blockers by week",
        weeks_label(figures),
        [
            ("Opened", b.opened.values),
            ("Resolved", b.resolved.values),
            ("Open at the week's end", b.open_at_end.values),
        ],
        team=figures.scope.name,
        period=span_of(figures),
    )
    return [Section(_line(*parts)), chart]


def _pulse(figures: TeamFigures) -> list[Block]:
    p = figures.pulse
    assert p is not None
    index = "n/a" if p.index.now is None else f"{p.index.now:.1f} of 5"
    parts: list[Inline | str] = [
        Bold("Pulse"),
        f": mean score {index} ({change_words(p.index)}).",
    ]
    for q in p.questions:
        now = q.trend.now
        if now is None:
            latest = next((v for v in reversed(q.trend.values) if v is not None), None)
            shown = "not asked this week" if latest is None else f"last {_score(latest, q.kind)}"
        else:
            shown = _score(now, q.kind)
        parts += ["\n• ", Plain(q.text), f": {shown}"]
        if now is not None:
            parts.append(f" ({change_words(q.trend)})")
    if p.held_back:
        parts.append(
            f"\n{p.held_back} result(s) had fewer answers than their anonymity threshold and "
            "are not shown."
        )
    if not p.questions and not p.held_back:
        parts.append(" No pulse results in these five weeks.")
    blocks: list[Block] = [Section(_line(*parts))]
    scales = [(q.text, q.trend.values) for q in p.questions if q.kind != "enps"]
    if scales:
        blocks.append(
            small_multiples(
                "Pulse questions by week",
                weeks_label(figures),
                scales,
                scale=(1, 5),
                team=figures.scope.name,
                period=span_of(figures),
            )
        )
    return blocks


def _score(value: float, kind: str) -> str:
    return f"eNPS {value:+.0f}" if kind == "enps" else f"{value:.1f} of 5"


def _kudos(figures: TeamFigures) -> list[Block]:
    k = figures.kudos
    assert k is not None
    parts: list[Inline | str] = [
        Bold("Kudos and celebrations"),
        f": {k.kudos.now or 0:.0f} kudos ({change_words(k.kudos)}), "
        f"{k.celebrations} celebration(s).",
    ]
    if k.top_values:
        parts.append("\nTop values: ")
        for n, (value, count) in enumerate(k.top_values):
            parts += [", " if n else "", Plain(value), f" ({count})"]
    for label, names in (("Milestones met", [(n, None) for n in k.milestones_met]),
                         ("Due in the next two weeks", list(k.due_soon)),
                         ("Overdue", list(k.overdue))):  # fmt: skip
        if not names:
            continue
        parts.append(f"\n{label}: ")
        for n, (name, due) in enumerate(names):
            parts += [", " if n else "", Plain(name)]
            if due is not None:
                parts.append(f" (due {due.day} {due:%b})")
    chart = trend_chart(
        "Kudos by week",
        weeks_label(figures),
        [("Kudos", k.kudos.values)],
        team=figures.scope.name,
        period=span_of(figures),
    )
    return [Section(_line(*parts)), chart]


def _signals(fired: Sequence[Signal]) -> list[Block]:
    if not fired:
        return [Section(_line(Bold("Signals"), ": none fired this week."))]
    parts: list[Inline | str] = [Bold("Signals")]
    for signal in fired:
        parts.append(f"\n\u26a0 {signal.text}")
    return [Section(_line(*parts))]


def dashboard_links(base: str, figures: TeamFigures, sections: Sequence[str]) -> list[Block]:
    """Links to the dashboard's pages for this team (bot.web.dashboard: ``/w/<workspace>/...``):
    the team's own page (a standup's answers and heatmap, an area's blockers), then the pages of
    the sections shown."""
    if not base:
        return []
    scope = figures.scope
    home = f"{base.rstrip('/')}/w/{scope.workspace_id}"
    area = f"?area={scope.id}" if scope.kind == "area" else ""
    team = f"/standups?standup={scope.id}" if scope.kind == "standup" else f"/blockers{area}"
    links: list[Inline | str] = ["Dashboard: "]
    pages = [(team, scope.name)]
    for section, path, label in (
        ("blockers", f"/blockers{area}", "blockers"),
        ("pulse", "/pulse", "pulse"),
        ("kudos", "/celebrations", "kudos"),
    ):
        if section in sections and path != team:
            pages.append((path, label))
    for n, (path, label) in enumerate(pages):
        links += [" \u00b7 " if n else "", Link(home + path, label)]
    return [Context(_line(*links))]


def digest_message(
    figures: TeamFigures,
    sections: Sequence[str],
    fired: Sequence[Signal],
    *,
    zone: str,
    base_url: str = "",
) -> Message:
    blocks: list[Block] = [
        Header(f"Weekly digest: {figures.scope.name}"),
        Context(_line(f"The week {period_of(figures)} ({zone}), against the four weeks before")),
        summary_card(figures, fired),
    ]
    for section, build in (
        ("standups", lambda: _standups(figures)),
        ("blockers", lambda: _blockers(figures)),
        ("pulse", lambda: _pulse(figures)),
        ("kudos", lambda: _kudos(figures)),
        ("signals", lambda: _signals(fired)),
    ):
        if section in sections:
            blocks += [Divider(), *build()]
    blocks += dashboard_links(base_url, figures, sections)
    return Message(
        tuple(blocks),
        summary=f"Weekly digest: {figures.scope.name}, {period_of(figures)}"
        + (f" ({len(fired)} signal{'' if len(fired) == 1 else 's'})" if fired else ""),
    )
