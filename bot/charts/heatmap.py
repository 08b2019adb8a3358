"""Heatmaps (``style="heatmap"``): who answered their standup on which day.

``rows`` are the members, ``labels`` the days and ``cells`` one status per member and day:
``"answered"``, ``"missed"``, ``"off"`` (skipped, on leave) or ``""`` (not asked that day). A cell
is a coloured square (Okabe-Ito colours, told apart with the common colour-vision deficiencies,
and a missed day also carries a dark mark so that it stands out in grey print). Rows shrink to
:data:`MIN_ROW` px to fit the 1,600 px a chart may take; members past that are not drawn, and the
chart says how many ("+ 412 more members, in the alt text's counts") under the grid, never silently.

:func:`participation_heatmap` builds the chart and its alt text from the statuses."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from bot.charts.page import Page, draw_header
from bot.charts.style import (
    INK,
    MAX_HEIGHT,
    MUTED,
    PAD,
    PALETTE,
    SMALL_SIZE,
    TEXT_SIZE,
    WIDTH,
    hex_color,
)
from bot.charts.text import one_line
from bot.chat import Chart

ANSWERED, MISSED, OFF, NOT_ASKED = "answered", "missed", "off", ""
STATUSES = (ANSWERED, MISSED, OFF, NOT_ASKED)
COLORS = {
    ANSWERED: hex_color(PALETTE[2]),
    MISSED: hex_color(PALETTE[5]),
    OFF: hex_color(PALETTE[4]),
    NOT_ASKED: "#eef0f2",
}
LEGEND = {ANSWERED: "answered", MISSED: "missed", OFF: "off", NOT_ASKED: "not asked"}
ROW = 22  # px per member, when they fit
MIN_ROW = 6
MAX_CELL = 40  # px: a few days stay square instead of stretching over the width
ROW_COLUMN = 0.3  # of the width, at most, for names
FOOTER = 28


def heatmap_chart(page: Page, chart: Chart) -> None:
    rows = [one_line(r) for r in chart.rows]
    days = [one_line(d) for d in chart.labels]
    header = draw_header(page, chart, [])
    legend_at = header
    top = legend_at + page.line(SMALL_SIZE) + 8 + page.line(SMALL_SIZE) + 6  # legend, days
    room = MAX_HEIGHT - top - FOOTER - PAD
    row = float(ROW)
    shown = len(rows)
    if rows and row * len(rows) > room:
        row = max(float(MIN_ROW), room / len(rows))
        shown = min(len(rows), int(room // row))
    hidden = len(rows) - shown
    page.size(top + row * max(1, shown) + (FOOTER if hidden else 0) + PAD)
    page.figure.clear()
    draw_header(page, chart, [])
    _legend(page, legend_at)
    name_size = TEXT_SIZE if row >= 18 else max(5.0, row * 72 / 100 * 0.8)
    widest = max((page.width_of(r, name_size) for r in rows[:shown]), default=0.0)
    column = min(widest + 2, (WIDTH - 2 * PAD) * ROW_COLUMN)
    left = PAD + column + 10
    cell = min(MAX_CELL, (WIDTH - PAD - left) / max(1, len(days)))
    right = left + cell * max(1, len(days))
    _days(page, days, left, cell, top - 4)
    if not rows or not days:
        page.text(WIDTH / 2, top + row / 2, "No data", TEXT_SIZE, color=MUTED, ha="center")
        return
    ax = page.axes(left, top, right, top + row * shown)
    ax.set_axis_off()
    ax.imshow(
        [[_rgb(_cell(chart, r, d)) for d in range(len(days))] for r in range(shown)],
        aspect="auto", interpolation="nearest", extent=(0, len(days), shown, 0),
    )  # fmt: skip
    ax.set_xlim(0, len(days))
    ax.set_ylim(shown, 0)
    if cell >= 6 and row >= 6:  # white gaps between cells
        for d in range(1, len(days)):
            ax.axvline(d, color="white", linewidth=1.5 if cell >= 12 else 0.6)
        for r in range(1, shown):
            ax.axhline(r, color="white", linewidth=1.5 if row >= 12 else 0.6)
    missed = [(d + 0.5, r + 0.5) for r in range(shown) for d in range(len(days))
              if _cell(chart, r, d) == MISSED]  # fmt: skip
    if missed and cell >= 8 and row >= 8:
        xs, ys = zip(*missed, strict=True)
        ax.plot(xs, ys, linestyle="none", marker="x", markersize=min(cell, row) * 0.3,
                color="#3b1d00", markeredgewidth=1.2)  # fmt: skip
    if name_size >= 5:
        for r, name in enumerate(rows[:shown]):
            page.text(PAD, top + (r + 0.5) * row, page.fit(name, name_size, column), name_size,
                      color=INK, va="center")  # fmt: skip
    if hidden:
        page.text(
            PAD, top + row * shown + 8,
            f"+ {hidden} more member{'' if hidden == 1 else 's'} not drawn (in the counts above "
            "and the alt text)", SMALL_SIZE, color=MUTED,
        )  # fmt: skip


def _cell(chart: Chart, row: int, day: int) -> str:
    cells = chart.cells[row] if row < len(chart.cells) else ()
    value = cells[day].strip().lower() if day < len(cells) else ""
    return value if value in COLORS else NOT_ASKED


def _rgb(status: str) -> tuple[float, float, float]:
    color = COLORS[status].lstrip("#")
    return tuple(int(color[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _legend(page: Page, y: float) -> None:
    x = float(PAD)
    swatch = page.line(SMALL_SIZE) * 0.7
    for status in STATUSES:
        page.box(x, y + 2, swatch, swatch, COLORS[status])
        page.text(x + swatch + 5, y, LEGEND[status], SMALL_SIZE, color=INK)
        x += swatch + 5 + page.width_of(LEGEND[status], SMALL_SIZE) + 18


def _days(page: Page, days: list[str], left: float, cell: float, bottom: float) -> None:
    widest = max((page.width_of(d, SMALL_SIZE - 1) for d in days), default=0.0)
    every = max(1, math.ceil((widest + 6) / max(cell, 1.0)))
    for n, day in enumerate(days):
        if n % every == 0 or (n == len(days) - 1 and (n % every) * cell > widest + 6):
            page.text(left + (n + 0.5) * cell, bottom, day, SMALL_SIZE - 1, color=INK,
                      ha="center", va="bottom")  # fmt: skip


def participation_heatmap(
    title: str,
    members: Sequence[str],
    days: Sequence[str],
    cells: Sequence[Sequence[str]],
    *,
    team: str = "",
    period: str = "",
    headline: str | None = None,
) -> Chart:
    """A member-by-day participation chart: ``cells[m][d]`` is member ``m``'s status on day
    ``d`` (:data:`ANSWERED`, :data:`MISSED`, :data:`OFF` or :data:`NOT_ASKED`). The alt text
    gives the totals, the rate and the members who missed most, so the words carry everything
    the picture drops. ``headline`` replaces the default (the share of member-days answered),
    e.g. with a rate counted per prompt when a day may have several."""
    grid = tuple(
        tuple(
            (row[d] if d < len(row) and row[d] in COLORS else NOT_ASKED) for d in range(len(days))
        )
        for row in cells
    )
    grid = grid + tuple((NOT_ASKED,) * len(days) for _ in range(len(members) - len(grid)))
    totals = Counter(status for row in grid for status in row)
    asked = totals[ANSWERED] + totals[MISSED]
    rate = f"{round(100 * totals[ANSWERED] / asked)}%" if asked else "n/a"
    misses = sorted(
        ((sum(s == MISSED for s in row), name) for name, row in zip(members, grid, strict=False)),
        key=lambda pair: (-pair[0], pair[1]),
    )
    most = [f"{name} ({n})" for n, name in misses[:5] if n]
    alt = (
        f"{one_line(title)}: a heatmap of {len(members)} member{'' if len(members) == 1 else 's'}"
        f" by {len(days)} day{'' if len(days) == 1 else 's'}"
        + (f" ({days[0]} to {days[-1]})" if days else "")
        + f". {totals[ANSWERED]} answered, {totals[MISSED]} missed, {totals[OFF]} off, "
        f"{totals[NOT_ASKED]} not asked; participation {rate} of the days asked."
        + (f" Missed most: {', '.join(most)}." if most else " Nobody missed a day.")
    )
    return Chart(
        title=title, labels=tuple(days), series=(), alt=alt, style="heatmap",
        team=team, period=period, answers=totals[ANSWERED],
        headline=f"Participation {rate}" if headline is None else headline,
        rows=tuple(members), cells=grid,
    )  # fmt: skip
