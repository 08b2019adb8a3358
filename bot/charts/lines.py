"""Line charts: the labels (weeks) along the x axis, a line per series, the scale up the side."""

from __future__ import annotations

import math

from bot.charts.page import Page, Series, draw_header, style_axes
from bot.charts.style import AXIS, ELLIPSIS, GRID, INK, LINE_HEIGHT, PAD, SMALL_SIZE, WIDTH
from bot.charts.text import axis_ticks, decimals_of, format_value, value_axis, wrap
from bot.chat import Chart


def line_chart(page: Page, chart: Chart, labels: list[str], series: list[Series]) -> None:
    values = [v for s in series for v in s.values if v is not None]
    low, high = value_axis(chart, values, with_zero=False)
    header = draw_header(page, chart, series)
    page.size(header + LINE_HEIGHT)
    page.figure.clear()
    draw_header(page, chart, series)
    ticks = axis_ticks(low, high)
    decimals = decimals_of(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
    shown = [format_value(t, chart.unit, decimals) for t in ticks]
    left = PAD + max(page.width_of(t, SMALL_SIZE) for t in shown) + 14
    right = WIDTH - PAD - 24
    slot = (right - left) / len(labels)
    counts = len(series) == 1 and any(c is not None for c in series[0].counts)
    fits = lambda s: page.width_of(s, SMALL_SIZE) <= slot - 6  # noqa: E731
    names = [wrap(label, fits, 2) for label in labels]
    every = 1
    if any(n[-1].endswith(ELLIPSIS) for n in names):  # too many to name each: every k-th
        widest = max(page.width_of(label, SMALL_SIZE) for label in labels)
        every = math.ceil((widest + 8) / slot)
        names = [[label] for label in labels]
    lines = max(len(n) for n in names) + (1 if counts else 0)
    bottom = header + LINE_HEIGHT - PAD - lines * page.line(SMALL_SIZE) - 8
    ax = page.axes(left, header + 8, right, bottom)
    style_axes(ax)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylim(low, high)
    ax.set_yticks(ticks, shown)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    if low < 0 < high:
        ax.axhline(0, color=AXIS, linewidth=1)
    keep = [n for n in range(len(labels)) if n % every == 0 or n == len(labels) - 1]
    if len(keep) > 1 and keep[-1] - keep[-2] < every:
        del keep[-2]  # too close to the last label, which is always shown
    tick_names = []
    for n in keep:
        name = "\n".join(names[n])
        if counts and series[0].counts[n] is not None:
            count = series[0].counts[n]
            name += f"\n{count} answer{'' if count == 1 else 's'}"
        tick_names.append(name)
    ax.set_xticks(keep, tick_names, parse_math=False)
    ax.tick_params(axis="x", labelsize=SMALL_SIZE)
    points = sum(v is not None for s in series for v in s.values)
    unit_px = (high - low) / max(1.0, bottom - header - 8)
    for s in series:
        known = [(n, v) for n, v in enumerate(s.values) if v is not None]
        if len(known) < len(s.values) and len(known) > 1:  # a round without a value: dotted
            xs, vs = zip(*known, strict=True)
            ax.plot(xs, vs, color=s.color, linewidth=1.2, linestyle=(0, (1.5, 3)))
        ys = [math.nan if v is None else v for v in s.values]
        ax.plot(
            range(len(labels)), ys, color=s.color, linewidth=2.5, marker="o", markersize=7,
            markeredgecolor="white", markeredgewidth=1.2, solid_joinstyle="round",
        )  # fmt: skip
        last = max((n for n, v in enumerate(s.values) if v is not None), default=None)
        for n, value in enumerate(s.values):
            if value is None or not (points <= 24 or n == last):
                continue
            ax.text(
                n, value + 9 * unit_px, format_value(value, chart.unit), fontsize=SMALL_SIZE - 1,
                color=INK, ha="center", va="bottom", parse_math=False, clip_on=False,
            )  # fmt: skip
