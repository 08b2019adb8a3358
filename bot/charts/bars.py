"""Bar charts: horizontal bars, one group per label, one bar per series, on the scale's axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.charts.page import Page, Series, draw_header, style_axes, value_text
from bot.charts.style import (
    AXIS,
    DPI,
    GRID,
    INK,
    LABEL_COLUMN,
    MAX_HEIGHT,
    MAX_LABEL_LINES,
    MIN_TEXT_SIZE,
    MUTED,
    NO_VALUE,
    PAD,
    SMALL_SIZE,
    TEXT_SIZE,
    WIDTH,
)
from bot.charts.text import axis_ticks, decimals_of, format_value, value_axis, wrap
from bot.chat import Chart


@dataclass(frozen=True)
class BarLayout:
    bar: float  # px of one bar
    inner: float  # px between the bars of a group
    outer: float  # px between groups
    text_size: float  # points
    label_lines: int


_BAR_LAYOUTS = (
    BarLayout(bar=26, inner=4, outer=16, text_size=TEXT_SIZE, label_lines=MAX_LABEL_LINES),
    BarLayout(bar=18, inner=3, outer=10, text_size=TEXT_SIZE - 1, label_lines=3),
    BarLayout(bar=12, inner=2, outer=8, text_size=SMALL_SIZE - 1, label_lines=2),
    BarLayout(bar=8, inner=1, outer=5, text_size=MIN_TEXT_SIZE + 1, label_lines=1),
)


AXIS_ROOM = 34  # px under the plot for the value axis' tick labels


def bar_chart(page: Page, chart: Chart, labels: list[str], series: list[Series]) -> None:
    values = [v for s in series for v in s.values if v is not None]
    low, high = value_axis(chart, values, with_zero=True)
    base = 0.0 if low <= 0 <= high else low  # where a bar starts
    texts = [
        value_text(v, c, chart.unit)
        for s in series
        for v, c in zip(s.values, s.counts, strict=True)
        if v is not None
    ]
    header = draw_header(page, chart, series)
    room = MAX_HEIGHT - header - AXIS_ROOM - PAD
    wrapped: list[list[str]] = []
    group = 0.0
    for layout in _BAR_LAYOUTS:
        column, wrapped = _wrap_labels(page, labels, layout.text_size, layout.label_lines)
        bars = len(series) * layout.bar + (len(series) - 1) * layout.inner
        lines = max(len(w) for w in wrapped)
        group = max(bars, lines * page.line(layout.text_size))
        if len(labels) * (group + layout.outer) <= room:
            break
    else:  # denser still: groups share what room there is, labels on one line
        per = room / len(labels)
        outer = min(5.0, per * 0.2)
        group = per - outer
        inner = 1.0 if group >= 3 * len(series) else 0.0
        bar = max(1.0, (group - (len(series) - 1) * inner) / len(series))
        size = max(MIN_TEXT_SIZE - 2, min(SMALL_SIZE, group / (DPI / 72 * 1.2)))
        layout = BarLayout(bar=bar, inner=inner, outer=outer, text_size=size, label_lines=1)
        column, wrapped = _wrap_labels(page, labels, size, 1)
    plot_height = len(labels) * (group + layout.outer)
    page.size(header + plot_height + AXIS_ROOM + PAD)
    page.figure.clear()
    draw_header(page, chart, series)

    value_size = max(MIN_TEXT_SIZE - 1, layout.text_size - 1)
    widest = max((page.width_of(t, value_size) for t in texts), default=0.0)
    before = widest + 10 if low < base else 0.0  # room for the values of negative bars
    left = PAD + column + 12 + before
    right = WIDTH - PAD - (widest + 10 if high > base else 0)
    ax = page.axes(left, header, right, header + plot_height)
    style_axes(ax)
    ax.set_xlim(low, high)
    ax.set_ylim(plot_height, 0)  # y in px from the plot's top, so that bars are px high
    ticks = axis_ticks(low, high)
    decimals = decimals_of(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
    ax.set_xticks(ticks, [format_value(t, chart.unit, decimals) for t in ticks])
    ax.grid(axis="x", color=GRID, linewidth=0.8)
    ax.spines["left"].set_visible(False)
    ax.axvline(base, color=AXIS, linewidth=1)  # where the bars start
    stack = len(series) * layout.bar + (len(series) - 1) * layout.inner
    centres, names = [], []
    show_values = layout.bar + layout.inner >= value_size * DPI / 72
    px = (high - low) / max(1.0, right - left)  # axis units per px
    for n, lines in enumerate(wrapped):
        top = n * (group + layout.outer) + layout.outer / 2
        centres.append(top + group / 2)
        names.append("\n".join(lines))
        y = top + (group - stack) / 2
        for s in series:
            value, count = s.values[n], s.counts[n]
            middle = y + layout.bar / 2
            if value is None:
                if show_values:
                    ax.text(
                        base + 4 * px, middle, NO_VALUE, fontsize=value_size, color=MUTED,
                        va="center", ha="left", parse_math=False,
                    )  # fmt: skip
            else:
                ax.barh(middle, value - base, height=layout.bar, left=base, color=s.color)
                if abs(value - base) < 2 * px:  # a zero is a mark, not nothing
                    ax.plot(
                        [base, base], [y, y + layout.bar], color=s.color, linewidth=3,
                        solid_capstyle="butt",
                    )  # fmt: skip
                if show_values:
                    after = value < base
                    ax.text(
                        value + (-5 if after else 5) * px, middle,
                        value_text(value, count, chart.unit), fontsize=value_size, color=INK,
                        va="center", ha="right" if after else "left", parse_math=False,
                        clip_on=False,
                    )  # fmt: skip
            y += layout.bar + layout.inner
    ax.set_yticks(centres, names, fontsize=layout.text_size, parse_math=False)
    ax.tick_params(axis="y", length=0, pad=(8 + before) * 72 / DPI)
    if not wrapped or group < layout.text_size * DPI / 72:
        ax.set_yticks([])  # too thin for their labels: the alt text has them


def _wrap_labels(
    page: Page, labels: Sequence[str], size: float, lines: int
) -> tuple[float, list[list[str]]]:
    """The width of the label column (the widest label, at most :data:`LABEL_COLUMN` of the
    chart) and each label wrapped to it."""
    widest = max(page.width_of(label, size) for label in labels)
    column = min(widest + 2, (WIDTH - 2 * PAD) * LABEL_COLUMN)
    return column, [
        wrap(label, lambda s: page.width_of(s, size) <= column, lines) for label in labels
    ]
