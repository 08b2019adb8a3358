"""Small multiples (``style="multiples"``): one small trend panel per series, in a grid, every
panel on the same axes (the weeks of ``labels`` across, the chart's ``scale`` or the range of
all values up), so that panels compare at a glance.

Each panel has the series' name, its latest value large and the line with a dot per week.
Up to :data:`COLUMNS` panels a row; panels past what 1,600 px hold are not drawn and the
chart says how many under the grid (the alt text names them all).
:func:`small_multiples` builds the chart and its alt text."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.charts.page import Page, Series, draw_header, style_axes
from bot.charts.style import (
    GRID,
    INK,
    MAX_HEIGHT,
    MUTED,
    PAD,
    SMALL_SIZE,
    TEXT_SIZE,
    WIDTH,
)
from bot.charts.text import axis_ticks, format_value, value_axis
from bot.charts.trends import trend_alt
from bot.chat import Chart, ChartSeries

COLUMNS = 3
PANEL = 170  # px high, title and axes included
GAP = 18
FOOTER = 26


def multiples_chart(page: Page, chart: Chart, labels: list[str], series: list[Series]) -> None:
    values = [v for s in series for v in s.values if v is not None]
    low, high = value_axis(chart, values, with_zero=False)
    header = draw_header(page, chart, [])
    columns = min(COLUMNS, max(1, len(series)))
    room = MAX_HEIGHT - header - PAD - FOOTER
    fit_rows = max(1, int(room // (PANEL + GAP)))
    rows = min(math.ceil(len(series) / columns), fit_rows)
    shown = min(len(series), rows * columns)
    hidden = len(series) - shown
    page.size(header + rows * (PANEL + GAP) + (FOOTER if hidden else 0) + PAD)
    page.figure.clear()
    draw_header(page, chart, [])
    width = (WIDTH - 2 * PAD - (columns - 1) * GAP) / columns
    ticks = axis_ticks(low, high)
    tick_names = [format_value(t, chart.unit) for t in ticks]
    axis_room = max(page.width_of(t, SMALL_SIZE - 1) for t in tick_names) + 8
    for n, s in enumerate(series[:shown]):
        row, col = divmod(n, columns)
        x = PAD + col * (width + GAP)
        y = header + row * (PANEL + GAP)
        name = page.fit(s.name, TEXT_SIZE, width - 60)
        page.text(x, y, name, TEXT_SIZE, weight="bold", color=INK)
        last = next((v for v in reversed(s.values) if v is not None), None)
        page.text(
            x + width, y - 2, "n/a" if last is None else format_value(last, chart.unit),
            TEXT_SIZE + 3, weight="bold", color=s.color, ha="right",
        )  # fmt: skip
        left = x + (axis_room if col == 0 else 4)
        bottom = y + PANEL - page.line(SMALL_SIZE) - 4
        ax = page.axes(left, y + page.line(TEXT_SIZE + 3) + 4, x + width, bottom)
        style_axes(ax)
        ax.set_xlim(-0.5, max(1, len(labels)) - 0.5)
        ax.set_ylim(low, high)
        ax.set_yticks(ticks, tick_names if col == 0 else [""] * len(ticks))
        ax.tick_params(axis="y", labelsize=SMALL_SIZE - 1)
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ends = [0, len(labels) - 1] if len(labels) > 1 else [0]
        ax.set_xticks(ends, [labels[e] for e in ends], parse_math=False)
        ax.tick_params(axis="x", labelsize=SMALL_SIZE - 1)
        known = [(k, v) for k, v in enumerate(s.values) if v is not None]
        if len(known) > 1 and len(known) < len(s.values):
            xs, vs = zip(*known, strict=True)
            ax.plot(xs, vs, color=s.color, linewidth=1, linestyle=(0, (1.5, 3)))
        ax.plot(
            range(len(labels)), [math.nan if v is None else v for v in s.values],
            color=s.color, linewidth=2, marker="o", markersize=4,
        )  # fmt: skip
        if not known:
            ax.text(
                (len(labels) - 1) / 2, (low + high) / 2, "No data", ha="center", va="center",
                color=MUTED, fontsize=SMALL_SIZE,
            )  # fmt: skip
    if hidden:
        page.text(
            PAD, header + rows * (PANEL + GAP), f"+ {hidden} more not drawn (named in the alt "
            "text)", SMALL_SIZE, color=MUTED,
        )  # fmt: skip


def small_multiples(
    title: str,
    weeks: Sequence[str],
    panels: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
    scale: tuple[float, float] | None = None,
    team: str = "",
    period: str = "",
    headline: str = "",
) -> Chart:
    """A panel per ``(name, values)``, a value per week, all on the same axes."""
    return Chart(
        title=title,
        labels=tuple(weeks),
        series=tuple(ChartSeries(name, tuple(values)) for name, values in panels),
        alt=trend_alt(title, weeks, panels, unit).replace(" line", " panel", 1),
        style="multiples",
        unit=unit,
        team=team,
        period=period,
        headline=headline,
        scale=scale,
    )
