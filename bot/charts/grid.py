"""Grid charts: a table of short texts, rows down the left, labels across the top (rotated),
each cell coloured by its first letter (the RACI matrix: R, A, C, I)."""

from __future__ import annotations

import math

from bot.charts.page import Page, draw_header
from bot.charts.style import (
    AXIS,
    GRID,
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
from bot.charts.text import one_line, wrap
from bot.chat import Chart

ROW_HEIGHT = 26
MIN_ROW_HEIGHT = 14
ANGLE = 55  # degrees: column labels slanted, so that narrow columns can carry long names
MAX_COLUMN_LABEL = 240  # px along the slant; longer labels end with an ellipsis
ROW_COLUMN = 0.34  # of the width, at most, for row labels
MAX_COLUMN = 56  # px: a few columns stay compact instead of stretching over the width
# The colour of a cell by the first letter of its text (R, A, C, I); others: grey.
CELL_COLORS = {
    "A": hex_color(PALETTE[5]),
    "R": hex_color(PALETTE[0]),
    "C": hex_color(PALETTE[2]),
    "I": hex_color(PALETTE[4]),
}
OTHER = hex_color(PALETTE[7])


def grid_chart(page: Page, chart: Chart) -> None:
    columns = [one_line(label) for label in chart.labels]
    rows = [one_line(row) for row in chart.rows]
    size = SMALL_SIZE
    row_room = WIDTH * ROW_COLUMN
    row_lines = [wrap(row, lambda s: page.width_of(s, TEXT_SIZE) <= row_room, 2) for row in rows]
    left = PAD + max(page.width_of(line, TEXT_SIZE) for lines in row_lines for line in lines) + 12
    # The last column's slanted label reaches right of its column: keep room for it.
    slant = math.cos(math.radians(ANGLE))
    labels = [page.fit(c, size, MAX_COLUMN_LABEL) for c in columns] or [""]
    longest = max(page.width_of(label, size) for label in labels)
    right = WIDTH - PAD - min(longest * slant, WIDTH * 0.25)
    width = min(MAX_COLUMN, max(1.0, (right - left) / max(1, len(columns))))
    grid_right = left + width * max(1, len(columns))
    header = draw_header(page, chart, [])
    label_height = longest * math.sin(math.radians(ANGLE)) + 10
    tall = max(len(lines) for lines in row_lines) if row_lines else 1
    row_height = max(ROW_HEIGHT, tall * page.line(TEXT_SIZE) + 6)
    room = MAX_HEIGHT - header - label_height - PAD
    if rows and row_height * len(rows) > room:
        row_height = max(MIN_ROW_HEIGHT, room / len(rows))
    top = header + label_height
    page.size(top + row_height * max(1, len(rows)) + PAD)
    page.figure.clear()
    draw_header(page, chart, [])
    for n, label in enumerate(labels[: len(columns)]):
        x = left + (n + 0.5) * width
        page.text(
            x, top - 6, label, size, color=INK, rotation=ANGLE, rotation_mode="anchor",
            ha="left", va="baseline",
        )  # fmt: skip
    empty: list[tuple[float, float]] = []  # cells with nothing: one small dot each
    for r, lines in enumerate(row_lines):
        y = top + r * row_height
        if r % 2:
            page.box(PAD, y, grid_right - PAD, row_height, "#f5f6f8")
        page.text(
            PAD, y + row_height / 2, "\n".join(lines), TEXT_SIZE, color=INK, va="center",
            linespacing=1.1,
        )  # fmt: skip
        cells = chart.cells[r] if r < len(chart.cells) else ()
        for c in range(len(columns)):
            value = one_line(cells[c]) if c < len(cells) else ""
            x = left + c * width
            if not value:
                empty.append((x + width / 2, y + row_height / 2))
                continue
            inset = min(3.0, width / 8)
            page.box(
                x + inset, y + inset, width - 2 * inset, row_height - 2 * inset,
                CELL_COLORS.get(value[0].upper(), OTHER),
            )  # fmt: skip
            fitted = page.fit(value, size, width - 2 * inset - 2)
            page.text(x + width / 2, y + row_height / 2, fitted, size, color="white",
                      weight="bold", ha="center", va="center")  # fmt: skip
    _dots(page, empty)  # one artist for all of them: a text per dot would be slow
    for c in range(len(columns) + 1):
        x = left + c * width
        _line(page, x, top, x, top + row_height * len(rows))
    if not rows:
        page.text(WIDTH / 2, top + row_height / 2, "No rows", TEXT_SIZE, color=MUTED, ha="center")


def _line(page: Page, x1: float, y1: float, x2: float, y2: float) -> None:
    from matplotlib.lines import Line2D

    page.figure.lines.append(
        Line2D(
            [x1 / WIDTH, x2 / WIDTH],
            [1 - y1 / page.height, 1 - y2 / page.height],
            transform=page.figure.transFigure,
            color=GRID,
            linewidth=0.8,
        )
    )


def _dots(page: Page, points: list[tuple[float, float]]) -> None:
    if not points:
        return
    from matplotlib.lines import Line2D

    page.figure.lines.append(
        Line2D(
            [x / WIDTH for x, _ in points],
            [1 - y / page.height for _, y in points],
            transform=page.figure.transFigure,
            linestyle="none",
            marker="o",
            markersize=2,
            color=AXIS,
        )
    )
