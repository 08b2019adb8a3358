"""Celebration cards (``style="card"``): a milestone done, as a picture to post.

A coloured band with confetti holds "MILESTONE REACHED" and the name, large, over up to three
lines; under it the dates (``period``) and how long it took (``headline``); then "Who was
involved" and one chip per person (``rows``: a coloured disc with their initials, then the
name), wrapped over as many lines as they need (a chip whose name is too long ends with an
ellipsis). Confetti is placed by a generator seeded with the name, so the same card is the same
picture. Shapes are drawn in inches (the figure's ``dpi_scale_trans``): discs stay round and
the confetti keeps its shape whatever the card's height."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from bot.charts.page import Page
from bot.charts.style import (
    DPI,
    ELLIPSIS,
    INK,
    MUTED,
    PALETTE,
    SMALL_SIZE,
    TEXT_SIZE,
    WIDTH,
    hex_color,
)
from bot.charts.text import one_line, wrap
from bot.chat import Chart

MARGIN = 36
NAME_SIZE = 26.0
SMALL_NAME_SIZE = 19.0
NAME_LINES = 4
CONFETTI_FROM = 0.72  # of the width: the confetti's part of the band; the name keeps left of it
NAME_WIDTH = WIDTH * CONFETTI_FROM - MARGIN - 12
CHIP_HEIGHT = 36
CHIP_GAP = 10
CHIP_TEXT = 11.0
MAX_CHIP = WIDTH - 2 * MARGIN
BAND = hex_color(PALETTE[0])
CONFETTI = tuple(hex_color(c) for c in (PALETTE[1], PALETTE[2], PALETTE[3], PALETTE[4]))
CHIP = "#f1f3f5"


def initials(name: str) -> str:
    words = [w for w in name.replace("@", " ").replace(".", " ").split() if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper() if words[0][:2].isascii() else words[0][:1].upper()
    return (words[0][:1] + words[-1][:1]).upper()


class Shapes:
    """Patches placed in px from the top left, drawn in inches (square, unlike figure
    fractions)."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def _at(self, x: float, y: float) -> tuple[float, float]:
        return x / DPI, (self.page.height - y) / DPI

    def add(self, patch: Any) -> None:
        patch.set_transform(self.page.figure.dpi_scale_trans)
        self.page.figure.patches.append(patch)

    def rounded(self, x: float, y: float, w: float, h: float, radius: float, color: str) -> None:
        from matplotlib.patches import FancyBboxPatch

        left, bottom = self._at(x, y + h)
        self.add(
            FancyBboxPatch(
                (left, bottom),
                w / DPI,
                h / DPI,
                boxstyle=f"round,pad=0,rounding_size={radius / DPI}",
                facecolor=color,
                edgecolor="none",
            )
        )

    def disc(self, cx: float, cy: float, radius: float, color: str) -> None:
        from matplotlib.patches import Circle

        self.add(Circle(self._at(cx, cy), radius / DPI, facecolor=color, edgecolor="none"))

    def piece(self, cx: float, cy: float, w: float, h: float, angle: float, color: str) -> None:
        from matplotlib.patches import Rectangle

        x, y = self._at(cx, cy)
        self.add(
            Rectangle(
                (x - w / DPI / 2, y - h / DPI / 2),
                w / DPI,
                h / DPI,
                angle=angle,
                rotation_point="center",
                facecolor=color,
                edgecolor="none",
            )
        )


def _name_lines(page: Page, name: str) -> tuple[float, list[str]]:
    """The name at NAME_SIZE over up to two lines left of the confetti, else smaller over up
    to NAME_LINES (the last one ending with an ellipsis when even that is not enough)."""
    for size, most in ((NAME_SIZE, 2), (SMALL_NAME_SIZE, NAME_LINES)):
        fits = lambda s, z=size: page.width_of(s, z, True) <= NAME_WIDTH  # noqa: E731
        lines = wrap(name, fits, most)
        if size == SMALL_NAME_SIZE or (len(lines) <= most and not lines[-1].endswith(ELLIPSIS)):
            return size, lines
    raise AssertionError("unreachable")


def _chips(page: Page, names: list[str]) -> list[tuple[float, int, str]]:
    """(x, line, shown name) of each chip, wrapped over the card's width."""
    placed: list[tuple[float, int, str]] = []
    x, line = float(MARGIN), 0
    for name in names:
        room = MAX_CHIP - CHIP_HEIGHT - 18
        shown = page.fit(name, CHIP_TEXT, room)
        width = CHIP_HEIGHT + page.width_of(shown, CHIP_TEXT) + 16
        if x > MARGIN and x + width > WIDTH - MARGIN:
            x, line = float(MARGIN), line + 1
        placed.append((x, line, shown))
        x += width + CHIP_GAP
    return placed


def card_chart(page: Page, chart: Chart) -> None:
    name = one_line(chart.title) or "Milestone"
    size, name_lines = _name_lines(page, name)
    band = 62 + len(name_lines) * page.line(size) + 22
    people = [one_line(r) for r in chart.rows if one_line(r)]
    chips = _chips(page, people)
    y = band + 26
    period_at = y
    if one_line(chart.period):
        y += page.line(TEXT_SIZE + 2) + 6
    headline_at = y
    if one_line(chart.headline):
        y += page.line(17) + 18
    who_at = y
    chips_at = who_at + page.line(SMALL_SIZE) + 10
    lines = (chips[-1][1] + 1) if chips else 1
    height = chips_at + lines * (CHIP_HEIGHT + CHIP_GAP) + 24
    page.size(height)
    page.figure.clear()
    shapes = Shapes(page)
    page.box(0, 0, WIDTH, band, BAND)
    _confetti(shapes, name, band)
    page.text(MARGIN, 30, "MILESTONE REACHED", SMALL_SIZE + 1, color="white", weight="bold")
    for n, line in enumerate(name_lines):
        page.text(MARGIN, 58 + n * page.line(size), line, size, color="white", weight="bold")
    if one_line(chart.period):
        page.text(MARGIN, period_at, one_line(chart.period), TEXT_SIZE + 2, color=MUTED)
    if one_line(chart.headline):
        page.text(MARGIN, headline_at, one_line(chart.headline), 17, color=BAND, weight="bold")
    label = "WHO WAS INVOLVED" if people else "NOBODY WAS NAMED"
    page.text(MARGIN, who_at, label, SMALL_SIZE, color=MUTED, weight="bold")
    for n, (x, line, shown) in enumerate(chips):
        top = chips_at + line * (CHIP_HEIGHT + CHIP_GAP)
        width = CHIP_HEIGHT + page.width_of(shown, CHIP_TEXT) + 16
        shapes.rounded(x, top, width, CHIP_HEIGHT, CHIP_HEIGHT / 2, CHIP)
        color = hex_color(PALETTE[n % 7])
        middle = top + CHIP_HEIGHT / 2
        shapes.disc(x + CHIP_HEIGHT / 2, middle, CHIP_HEIGHT / 2 - 4, color)
        page.text(
            x + CHIP_HEIGHT / 2, middle, initials(shown), SMALL_SIZE, color="white",
            weight="bold", ha="center", va="center_baseline",
        )  # fmt: skip
        page.text(x + CHIP_HEIGHT + 6, middle, shown, CHIP_TEXT, color=INK, va="center_baseline")
    if chart.team:
        page.text(
            WIDTH - MARGIN, height - 14, one_line(chart.team), SMALL_SIZE, color=MUTED,
            ha="right", va="bottom",
        )  # fmt: skip


def _confetti(shapes: Shapes, seed: str, band: float) -> None:
    """Pieces over the right part of the band (the name is on the left), seeded by the name."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    span = 0.985 - CONFETTI_FROM
    for n in range(30):
        x = WIDTH * (CONFETTI_FROM + span * rng.random())
        y = 10 + (band - 20) * rng.random()
        long = 6 + 8 * rng.random()
        shapes.piece(x, y, long, 4, 360 * rng.random(), CONFETTI[n % len(CONFETTI)])
    for _ in range(10):
        x = WIDTH * (CONFETTI_FROM + span * rng.random())
        shapes.disc(x, 8 + (band - 16) * rng.random(), 2.5, "white")
