"""Text and numbers as charts write them: labels on one line, values with their unit, words
wrapped to a width, round ticks for an axis."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence

from bot.charts.style import ELLIPSIS
from bot.chat import Chart


def one_line(value: str) -> str:
    """Line breaks and tabs as spaces; control characters (which no font draws) left out."""
    spaced = " ".join(value.split())
    return "".join(c for c in spaced if unicodedata.category(c) not in ("Cc", "Cs"))


def format_value(value: float, unit: str, decimals: int | None = None) -> str:
    """``62%``, ``3.5``, ``-12 pts``: whole numbers without decimals, others with one (or
    ``decimals``); a unit that is a word gets a space before it. Adapters that show a chart in
    text (the console) write its values the same way."""
    if decimals is None:
        rounded = round(value)
        shown = str(int(rounded)) if abs(value - rounded) < 0.05 else f"{value:.1f}"
    else:
        shown = f"{value:.{decimals}f}"
    if shown.startswith("-") and not shown.strip("-0."):
        shown = shown[1:]  # no "-0"
    unit = unit.replace("\n", " ")
    if not unit.strip():
        return shown
    gap = " " if unit[0].isalpha() and len(unit) > 1 else ""
    return f"{shown}{gap}{unit}"


def decimals_of(step: float) -> int:
    """How many decimals show a tick step exactly (2.5 -> 1, 0.25 -> 2), at most 4."""
    for decimals in range(5):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6:
            return decimals
    return 4


def round_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) from ``low`` to ``high``, widened
    to the nearest ticks outside them."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    steps = round((last - first) / step)
    return [round(first + k * step, 10) for k in range(steps + 1)]


def value_axis(chart: Chart, values: Sequence[float], *, with_zero: bool) -> tuple[float, float]:
    """The value axis: the chart's scale (widened to a value outside it), else round ticks
    around the values (and zero, for bars)."""
    low, high = min(values), max(values)
    if chart.scale is not None and all(map(math.isfinite, chart.scale)):
        first, last = sorted(chart.scale)
        if last > first and first <= low and high <= last:
            return first, last
        if last > first:  # a value outside the scale: round ticks around both
            ticks = round_ticks(min(first, low), max(last, high))
            return ticks[0], ticks[-1]
    if with_zero:
        low, high = min(0.0, low), max(0.0, high)
    else:  # a little room so that no point sits on the frame
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
    ticks = round_ticks(low, high)
    return ticks[0], ticks[-1]


def axis_ticks(low: float, high: float) -> list[float]:
    """Ticks inside ``low``..``high`` (both ends included when they are round)."""
    count = 4 if high - low == 4 else 5  # 1 to 5: every whole answer
    return [t for t in round_ticks(low, high, count) if low - 1e-9 <= t <= high + 1e-9]


def wrap(text: str, fits: Callable[[str], bool], max_lines: int) -> list[str]:
    """``text`` in lines that each ``fits``: broken at spaces (between any two characters of a
    word that does not fit alone, as Chinese and Japanese are written), at most ``max_lines``
    lines, the last one ending with an ellipsis when words are left over."""
    words = text.split()
    if not words:
        return [""]
    lines: list[str] = []
    current = ""
    while words:
        word = words[0]
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            words.pop(0)
            continue
        if current:
            lines.append(current)
            current = ""
        else:  # one word wider than the line: as much of it as fits
            cut = _longest(word, fits)
            lines.append(word[:cut])
            words[0] = word[cut:]
        if len(lines) == max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) > max_lines or words:
        last = " ".join([*lines[max_lines - 1 : max_lines], *words])
        lines = lines[: max_lines - 1]
        cut = _longest(last, lambda head: fits(head.rstrip() + ELLIPSIS))
        lines.append(last[:cut].rstrip() + ELLIPSIS)
    return lines


def _longest(text: str, fits: Callable[[str], bool]) -> int:
    """The length of the longest head of ``text`` that fits (at least one character)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[:middle]):
            low = middle
        else:
            high = middle - 1
    return low
