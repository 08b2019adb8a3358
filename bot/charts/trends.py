"""Trend lines over weeks: several series (a pulse question each, or participation and open
blockers) on one scale, drawn by :mod:`bot.charts.lines` (``style="line"``).

:func:`trend_chart` builds the chart and an alt text that says, for each series, where it
started, where it ended and by how much it moved, so that the words carry the picture."""

from __future__ import annotations

from collections.abc import Sequence

from bot.charts.text import format_value, one_line
from bot.chat import Chart, ChartSeries


def trend_chart(
    title: str,
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
    scale: tuple[float, float] | None = None,
    team: str = "",
    period: str = "",
    headline: str = "",
) -> Chart:
    """One line per ``(name, values)``, a value per week (None: no value that week, drawn as a
    gap bridged by a dotted line)."""
    return Chart(
        title=title,
        labels=tuple(weeks),
        series=tuple(ChartSeries(name, tuple(values)) for name, values in series),
        alt=trend_alt(title, weeks, series, unit),
        style="line",
        unit=unit,
        team=team,
        period=period,
        headline=headline,
        scale=scale,
    )


def trend_alt(
    title: str,
    weeks: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    unit: str,
) -> str:
    """``Title: 3 lines over 8 weeks (6 Jan to 24 Feb). Pace: from 3.8 to 3.1 (down 0.7)...``"""
    span = f" ({weeks[0]} to {weeks[-1]})" if weeks else ""
    parts = [
        f"{one_line(title)}: {len(series)} line{'' if len(series) == 1 else 's'} over "
        f"{len(weeks)} week{'' if len(weeks) == 1 else 's'}{span}."
    ]
    for name, values in series:
        known = [v for v in list(values)[: len(weeks)] if v is not None]
        if not known:
            parts.append(f"{one_line(name)}: no value.")
            continue
        first, last = known[0], known[-1]
        if len(known) == 1:
            parts.append(f"{one_line(name)}: {format_value(last, unit)}, one week only.")
            continue
        change = last - first
        moved = (
            "no change"
            if abs(change) < 0.05
            else f"{'up' if change > 0 else 'down'} {format_value(abs(change), unit)}"
        )
        parts.append(
            f"{one_line(name)}: from {format_value(first, unit)} to {format_value(last, unit)}"
            f" ({moved}); low {format_value(min(known), unit)}, high "
            f"{format_value(max(known), unit)}."
        )
    return " ".join(parts)
