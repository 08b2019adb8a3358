"""What every chart has: the figure laid out in pixels, the series as drawn, the header (title,
team and period, headline, legend), the empty chart, the axes' style."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.charts.style import (
    AXIS,
    DPI,
    ELLIPSIS,
    EMPTY_HEIGHT,
    INK,
    MAX_TITLE_LINES,
    MUTED,
    NO_DATA,
    PAD,
    PALETTE,
    SMALL_SIZE,
    TEXT_SIZE,
    TITLE_SIZE,
    WIDTH,
    hex_color,
    measure,
)
from bot.charts.text import format_value, one_line, wrap
from bot.chat import Chart

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | None, ...]
    counts: tuple[int | None, ...]
    color: str


def values_of(values: Sequence[float | None], count: int) -> tuple[float | None, ...]:
    """One value (or None) per label; NaN and infinities count as no value."""
    out: list[float | None] = []
    for n in range(count):
        value = values[n] if n < len(values) else None
        out.append(float(value) if value is not None and math.isfinite(value) else None)
    return tuple(out)


def counts_of(counts: Sequence[int | None], count: int) -> tuple[int | None, ...]:
    return tuple(counts[n] if n < len(counts) else None for n in range(count))


class Page:
    """A figure laid out in pixels from the top left, and the text measured as Agg draws it."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.height = EMPTY_HEIGHT

    def size(self, height: float) -> None:
        self.height = max(1, round(height))
        self.figure.set_size_inches(WIDTH / DPI, self.height / DPI)

    def width_of(self, text: str, size: float, bold: bool = False) -> float:
        return measure(text, size, bold)

    def fit(self, label: str, size: float, room: float) -> str:
        """``label``, cut to end with an ellipsis when it is wider than ``room`` px."""
        if self.width_of(label, size) <= room:
            return label
        while label and self.width_of(label + ELLIPSIS, size) > room:
            label = label[:-1]
        return label + ELLIPSIS

    def line(self, size: float) -> float:
        """The height of one line of text at ``size`` points, with its spacing."""
        return size * DPI / 72 * 1.3

    def text(self, x: float, y: float, value: str, size: float, **kw: Any) -> None:
        """``value`` with its top left (or ``ha``) at ``x``, ``y`` px from the top left."""
        self.figure.text(
            x / WIDTH,
            1 - y / self.height,
            value,
            fontsize=size,
            va=kw.pop("va", "top"),
            parse_math=False,  # "$5 or $10" is text, not mathematics
            **kw,
        )

    def box(self, x: float, y: float, width: float, height: float, color: str) -> None:
        """A filled rectangle with its top left at ``x``, ``y`` px from the top left."""
        from matplotlib.patches import Rectangle

        self.figure.patches.append(
            Rectangle(
                (x / WIDTH, 1 - (y + height) / self.height),
                width / WIDTH,
                height / self.height,
                transform=self.figure.transFigure,
                facecolor=color,
                edgecolor="none",
            )
        )

    def axes(self, left: float, top: float, right: float, bottom: float) -> Axes:
        """Axes whose plot spans ``left``..``right`` and ``top``..``bottom`` px."""
        return self.figure.add_axes(
            (
                left / WIDTH,
                1 - bottom / self.height,
                (right - left) / WIDTH,
                (bottom - top) / self.height,
            )
        )


def subtitle_of(chart: Chart) -> str:
    parts = [one_line(chart.team), one_line(chart.period)]
    if chart.answers is not None:
        parts.append(f"{chart.answers} answer{'' if chart.answers == 1 else 's'}")
    return " \u00b7 ".join(p for p in parts if p)


def draw_header(page: Page, chart: Chart, series: Sequence[Series]) -> float:
    """Draws the title, the team, period and answers, the headline and the legend; returns
    where they end (px from the top). Called twice: to measure (before the page has its height),
    then to draw."""
    width = WIDTH - 2 * PAD
    y = float(PAD)
    title = one_line(chart.title)
    if title:
        fits = lambda s: page.width_of(s, TITLE_SIZE, True) <= width  # noqa: E731
        for line in wrap(title, fits, MAX_TITLE_LINES):
            page.text(PAD, y, line, TITLE_SIZE, weight="bold", color=INK)
            y += page.line(TITLE_SIZE)
    subtitle = subtitle_of(chart)
    if subtitle:
        fits = lambda s: page.width_of(s, TEXT_SIZE) <= width  # noqa: E731
        for line in wrap(subtitle, fits, 2):
            page.text(PAD, y, line, TEXT_SIZE, color=MUTED)
            y += page.line(TEXT_SIZE)
    headline = one_line(chart.headline)
    if headline:
        y += 4
        fits = lambda s: page.width_of(s, TITLE_SIZE - 2, True) <= width  # noqa: E731
        for line in wrap(headline, fits, 2):
            page.text(PAD, y, line, TITLE_SIZE - 2, weight="bold", color=hex_color(PALETTE[0]))
            y += page.line(TITLE_SIZE - 2)
    if len(series) > 1:  # the legend: entries side by side, a long name over a few lines
        y += 6
        x, tallest = float(PAD), 1
        swatch = page.line(SMALL_SIZE) * 0.7
        room = width - swatch - 6
        for item in series:
            fits = lambda s: page.width_of(s, SMALL_SIZE) <= room  # noqa: E731
            lines = wrap(item.name, fits, 3)
            size = swatch + 6 + max(page.width_of(line, SMALL_SIZE) for line in lines) + 18
            if x > PAD and x + size > WIDTH - PAD:
                x, y, tallest = float(PAD), y + tallest * page.line(SMALL_SIZE), 1
            _swatch(page, x, y + 2, swatch, item.color)
            for n, line in enumerate(lines):
                page.text(
                    x + swatch + 6, y + n * page.line(SMALL_SIZE), line, SMALL_SIZE, color=INK
                )
            tallest = max(tallest, len(lines))
            x += size
        y += tallest * page.line(SMALL_SIZE)
    return y + 10


def _swatch(page: Page, x: float, y: float, size: float, color: str) -> None:
    page.box(x, y, size, size, color)


def draw_empty(page: Page, chart: Chart) -> None:
    top = draw_header(page, chart, [])
    page.size(max(EMPTY_HEIGHT, top + 80))
    page.figure.clear()
    top = draw_header(page, chart, [])
    middle = top + (page.height - top - PAD) / 2
    page.text(WIDTH / 2, middle, NO_DATA, TEXT_SIZE + 4, color=MUTED, ha="center", va="center")


def style_axes(ax: Axes) -> None:
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(AXIS)
    ax.tick_params(colors=MUTED, labelcolor=INK, labelsize=SMALL_SIZE, length=3)
    ax.set_axisbelow(True)


def value_text(value: float, count: int | None, unit: str) -> str:
    shown = format_value(value, unit)
    return shown if count is None else f"{shown} ({count})"
