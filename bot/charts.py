"""Charts as PNG images, drawn with Pillow from a :class:`~bot.chat.Chart`.

The outbox stores a chart's data; each adapter calls :func:`render_png` when it delivers the
message, so a retried row draws the same picture again. The drawing is pure and deterministic:
the same chart gives the same bytes (no clock, no randomness, no system fonts: Pillow's embedded
font, ``ImageFont.load_default(size=...)``, with its basic layout).

* ``style="bar"``: horizontal bars, one group per label (long option labels read best on the
  left), one bar per series inside a group (this week vs last week), the value and unit at the
  end of each bar; a label without a value says ``n/a``. Negative values grow left of a zero line.
* ``style="line"``: the labels along the x axis (weeks), one line per series, a gap where a value
  is None (a lone point between gaps is a dot), a y axis with round ticks.

800 px wide; a bar chart grows by about 40 px a bar and stops at 1,600 px (more bars get thinner,
then smaller labels); a line chart is 800 x 440. A title on top, a legend when there is more than
one series. Long labels are wrapped, then cut with an ellipsis: the chart's ``alt`` text carries
the full words. The embedded font covers ASCII only, so accented letters are drawn without their
accents (``Zürich`` as ``Zurich``) and other scripts as boxes; the alt text is exact. A chart with
no value at all says "No data".

Values are matched to labels by position: a series with fewer values than labels has none for the
rest, and values past the last label are not drawn.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from bot.chat import Chart

WIDTH = 800
MAX_HEIGHT = 1600
LINE_HEIGHT = 440
EMPTY_HEIGHT = 200
PAD = 24
BACKGROUND = (255, 255, 255)
INK = (33, 37, 41)
MUTED = (108, 117, 125)
GRID = (226, 230, 234)
AXIS = (173, 181, 189)
# Okabe-Ito: told apart with the common colour-vision deficiencies.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (120, 94, 240),
    (90, 90, 90),
)
TITLE_SIZE = 22
TEXT_SIZE = 14
SMALL_SIZE = 12
MIN_TEXT_SIZE = 9
ELLIPSIS = "\u2026"
COMPRESS_LEVEL = 4  # zlib: flat colours compress well already; higher levels cost time
NO_VALUE = "n/a"
NO_DATA = "No data"
LABEL_COLUMN = 0.34  # of the plot width, at most, for bar labels
VALUE_ROOM = 76  # px kept right of the longest bar for its value
# Characters the embedded font lacks that have a plain stand-in.
_STAND_INS = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00d7": "x",
        "\u2022": "\u00b7",
        "\u00a0": " ",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0142": "l",
        "\u0141": "L",
        "\n": " ",
        "\t": " ",
    }
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Color = tuple[int, int, int]


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes (see the module docstring for what is drawn)."""
    labels = [_drawable(label) for label in chart.labels]
    series = [
        _Series(_drawable(s.name), _values(s.values, len(labels)), PALETTE[n % len(PALETTE)])
        for n, s in enumerate(chart.series)
    ]
    title = _drawable(chart.title)
    if not labels or not any(v is not None for s in series for v in s.values):
        image = _empty(title)
    elif chart.style == "line":
        image = _line_chart(title, labels, series, chart.unit)
    else:
        image = _bar_chart(title, labels, series, chart.unit)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=COMPRESS_LEVEL)
    return out.getvalue()


# -- text ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    name: str
    values: tuple[float | None, ...]
    color: Color


def _values(values: Sequence[float | None], count: int) -> tuple[float | None, ...]:
    """One value (or None) per label; NaN and infinities count as no value."""
    out: list[float | None] = []
    for n in range(count):
        value = values[n] if n < len(values) else None
        out.append(float(value) if value is not None and math.isfinite(value) else None)
    return tuple(out)


def _drawable(value: str, *, strip: bool = True) -> str:
    """Text the embedded (ASCII) font can draw: accents dropped, dashes and a few letters
    replaced, line breaks as spaces."""
    value = value.translate(_STAND_INS)
    decomposed = unicodedata.normalize("NFKD", value)
    drawable = "".join(c for c in decomposed if not unicodedata.combining(c))
    return drawable.strip() if strip else drawable


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=4096)
def _width(text: str, font: Font) -> float:
    """Measuring is slow in Pillow (tens of microseconds): labels are measured over and over
    while wrapping and laying out, and fonts are shared per size, so the answers are kept."""
    return float(font.getlength(text)) if text else 0.0


def _height(font: Font) -> int:
    """The height of a line of text at this font (ascent to descent, plus a little air)."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent + descent)
    box = font.getbbox("Ag")
    return int(box[3] - box[1]) + 2


def _ellipsis(text: str, font: Font, width: float) -> str:
    """``text`` cut to fit ``width`` with an ellipsis (whole when it fits)."""
    if _width(text, font) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest head that fits with the ellipsis
        mid = (low + high + 1) // 2
        if _width(text[:mid].rstrip() + ELLIPSIS, font) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS if low else ELLIPSIS


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """``text`` in at most ``max_lines`` lines of ``width``: broken at spaces (inside a word
    only when the word alone is too wide), the last line ellipsised when words are left over."""
    words = text.split()
    if not words:
        return [""]
    lines: list[str] = []
    current = ""
    rest = list(words)
    while rest:
        word = rest[0]
        candidate = f"{current} {word}" if current else word
        if _width(candidate, font) <= width:
            current = candidate
            rest.pop(0)
            continue
        if not current:  # one word wider than the line: break it
            cut = max(1, len(_ellipsis(word, font, width)) - 1)
            lines.append(word[:cut])
            rest[0] = word[cut:]
        else:
            lines.append(current)
            current = ""
        if len(lines) == max_lines:
            break
    if current and len(lines) < max_lines:
        lines.append(current)
        current = ""
    if rest or current:
        leftover = " ".join([lines[-1], current, *rest]).strip()
        lines[-1] = _ellipsis(leftover, font, width)
    return lines


def _fits(text: str, font: Font, width: float, max_lines: int) -> bool:
    """Whether ``text`` wraps into ``max_lines`` lines of ``width`` without cutting a word."""
    if any(_width(word, font) > width for word in text.split()):
        return False
    return not _wrap(text, font, width, max_lines)[-1].endswith(ELLIPSIS)


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
    unit = _drawable(unit, strip=False)
    if not unit.strip():
        return shown
    gap = " " if unit[0].isalpha() and len(unit) > 1 else ""
    return f"{shown}{gap}{unit}"


def _decimals(step: float) -> int:
    """How many decimals show a tick step exactly (2.5 -> 1, 0.25 -> 2), at most 4."""
    for decimals in range(5):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6:
            return decimals
    return 4


# -- the parts every chart has --------------------------------------------------------------------


def _canvas(height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    return image, ImageDraw.Draw(image)


def _title_lines(title: str) -> list[str]:
    return _wrap(title, _font(TITLE_SIZE), WIDTH - 2 * PAD, 2) if title else []


def _legend_rows(series: Sequence[_Series], font: Font) -> list[list[tuple[str, Color]]]:
    """The legend's entries in rows that fit the width (empty for a single series)."""
    if len(series) < 2:
        return []
    rows: list[list[tuple[str, Color]]] = [[]]
    used = 0.0
    swatch = _height(font)
    for item in series:
        name = _ellipsis(item.name or "-", font, WIDTH / 2)
        size = swatch + 6 + _width(name, font) + 18
        if rows[-1] and used + size > WIDTH - 2 * PAD:
            rows.append([])
            used = 0.0
        rows[-1].append((name, item.color))
        used += size
    return rows


def _header_height(title: str, series: Sequence[_Series]) -> int:
    height = PAD + len(_title_lines(title)) * (_height(_font(TITLE_SIZE)) + 2)
    legend = _legend_rows(series, _font(SMALL_SIZE))
    if legend:
        height += 8 + len(legend) * (_height(_font(SMALL_SIZE)) + 6)
    return height + 14


def _draw_header(draw: ImageDraw.ImageDraw, title: str, series: Sequence[_Series]) -> None:
    y = PAD
    font = _font(TITLE_SIZE)
    for line in _title_lines(title):
        draw.text((PAD, y), line, font=font, fill=INK)
        y += _height(font) + 2
    small = _font(SMALL_SIZE)
    rows = _legend_rows(series, small)
    if rows:
        y += 8
    swatch = _height(small)
    for row in rows:
        x = float(PAD)
        for name, color in row:
            draw.rectangle((x, y + 2, x + swatch - 4, y + swatch - 2), fill=color)
            x += swatch + 2
            draw.text((x, y), name, font=small, fill=INK)
            x += _width(name, small) + 18
        y += swatch + 6


def _empty(title: str) -> Image.Image:
    image, draw = _canvas(EMPTY_HEIGHT)
    _draw_header(draw, title, [])
    font = _font(TEXT_SIZE + 4)
    top = _header_height(title, [])
    middle = top + (EMPTY_HEIGHT - top - PAD) / 2
    draw.text((WIDTH / 2, middle), NO_DATA, font=font, fill=MUTED, anchor="mm")
    return image


# -- bar charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BarLayout:
    bar: int  # height of one bar
    inner: int  # gap between the bars of a group
    outer: int  # gap between groups
    text_size: int
    label_lines: int  # at most, for a label too wide for its column


# From roomy to dense: the first one under MAX_HEIGHT is used.
_BAR_LAYOUTS = (
    _BarLayout(bar=26, inner=4, outer=14, text_size=TEXT_SIZE, label_lines=2),
    _BarLayout(bar=18, inner=3, outer=10, text_size=TEXT_SIZE - 1, label_lines=2),
    _BarLayout(bar=12, inner=2, outer=8, text_size=SMALL_SIZE, label_lines=1),
    _BarLayout(bar=8, inner=1, outer=5, text_size=MIN_TEXT_SIZE + 1, label_lines=1),
)


def _label_width(labels: Sequence[str], font: Font) -> float:
    widest = max(_width(label, font) for label in labels)
    return min(widest, (WIDTH - 2 * PAD) * LABEL_COLUMN)


def _group_height(layout: _BarLayout, labels: Sequence[str], series: int) -> int:
    """One group's height: its bars, or its label's lines when they are taller."""
    font = _font(layout.text_size)
    bars = series * layout.bar + (series - 1) * layout.inner
    width = _label_width(labels, font)
    wraps = layout.label_lines > 1 and any(_width(label, font) > width for label in labels)
    return max(bars, _height(font) * (layout.label_lines if wraps else 1))


def _bar_layout(labels: Sequence[str], series: int, header: int) -> tuple[_BarLayout, int]:
    """The roomiest layout whose height fits, and the height of one group in it; past the
    densest one, groups share what is left equally (labels are left out when a group is lower
    than a line of text: the alt text has them)."""
    room = MAX_HEIGHT - header - PAD - 8
    groups = len(labels)
    for layout in _BAR_LAYOUTS:
        group = _group_height(layout, labels, series)
        if groups * group + (groups - 1) * layout.outer <= room:
            return layout, group
    # Denser still: groups share the room, with the largest text a group's height takes.
    per = room / groups
    outer = max(0, min(5, int(per * 0.2)))
    group = max(series, int((room - (groups - 1) * outer) // groups))
    inner = 1 if group >= 3 * series else 0
    bar = max(1, (group - (series - 1) * inner) // series)
    size = next(
        (s for s in range(SMALL_SIZE, MIN_TEXT_SIZE - 1, -1) if _height(_font(s)) <= group),
        MIN_TEXT_SIZE,
    )
    return _BarLayout(bar=bar, inner=inner, outer=outer, text_size=size, label_lines=1), group


def _bar_chart(title: str, labels: list[str], series: list[_Series], unit: str) -> Image.Image:
    header = _header_height(title, series)
    layout, group = _bar_layout(labels, len(series), header)
    font = _font(layout.text_size)
    line = _height(font)
    plot_height = len(labels) * group + (len(labels) - 1) * layout.outer
    height = min(MAX_HEIGHT, header + plot_height + PAD + 8)
    image, draw = _canvas(height)
    _draw_header(draw, title, series)

    label_width = _label_width(labels, font)
    left = PAD + label_width + 12
    right = WIDTH - PAD
    values = [v for s in series for v in s.values if v is not None]
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    negative_room = VALUE_ROOM if low < 0 else 0
    bar_left, bar_right = left + negative_room, right - VALUE_ROOM
    scale = (bar_right - bar_left) / span
    zero = bar_left + (0 - low) * scale
    # Bars inside a group share its height when it was squeezed below the layout's bar.
    bar = max(1, min(layout.bar, (group - (len(series) - 1) * layout.inner) // len(series)))
    stack = len(series) * bar + (len(series) - 1) * layout.inner
    value_font = _font(max(MIN_TEXT_SIZE, layout.text_size - 1))
    # A value is written across its bar's height: left out when the bars are too thin for it.
    show_values = bar + layout.inner >= _height(value_font) - 4

    y = float(header)
    draw.line((zero, y - 4, zero, y + plot_height + 4), fill=AXIS, width=1)
    for n, label in enumerate(labels):
        if group >= line:
            lines = _wrap(label, font, label_width, max(1, min(layout.label_lines, group // line)))
            text_top = y + (group - len(lines) * line) / 2
            for k, text in enumerate(lines):
                x = left - 12 - _width(text, font)
                draw.text((x, text_top + k * line), text, font=font, fill=INK)
        bar_top = y + (group - stack) / 2
        for s in series:
            value = s.values[n]
            top, bottom = bar_top, bar_top + bar - 1
            if value is None:
                if show_values:
                    draw.text(
                        (zero + 4, top + bar / 2),
                        NO_VALUE,
                        font=value_font,
                        fill=MUTED,
                        anchor="lm",
                    )
            else:
                end = zero + value * scale
                if abs(end - zero) >= 1:
                    draw.rectangle((min(zero, end), top, max(zero, end), bottom), fill=s.color)
                if show_values:
                    shown = format_value(value, unit)
                    if value < 0:
                        draw.text(
                            (end - 5, top + bar / 2), shown, font=value_font, fill=INK, anchor="rm"
                        )
                    else:
                        draw.text(
                            (end + 5, top + bar / 2), shown, font=value_font, fill=INK, anchor="lm"
                        )
            bar_top += bar + layout.inner
        y += group + layout.outer
    return image


# -- line charts ----------------------------------------------------------------------------------


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering ``low``..``high`` with
    a little room, so that no point sits on the frame (nor below zero when none is)."""
    if high <= low:
        pad = abs(high) * 0.1 or 1.0
    else:
        pad = (high - low) * 0.05
    low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    steps = round((last - first) / step)
    return [round(first + k * step, 10) for k in range(steps + 1)]


def _line_chart(title: str, labels: list[str], series: list[_Series], unit: str) -> Image.Image:
    header = _header_height(title, series)
    image, draw = _canvas(LINE_HEIGHT)
    _draw_header(draw, title, series)
    font = _font(SMALL_SIZE)
    line = _height(font)
    values = [v for s in series for v in s.values if v is not None]
    ticks = _ticks(min(values), max(values))
    low, high = ticks[0], ticks[-1]
    decimals = _decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
    tick_width = max(_width(format_value(t, unit, decimals), font) for t in ticks)
    left = PAD + tick_width + 10
    right = WIDTH - PAD - 28  # room for the last point's value
    top = header + 10
    slot = (right - left) / max(1, len(labels))
    label_lines = 2 if slot >= 60 else 1
    bottom = LINE_HEIGHT - PAD - label_lines * line - 8

    def y_of(value: float) -> float:
        return bottom - (value - low) / ((high - low) or 1.0) * (bottom - top)

    def x_of(n: int) -> float:
        return left + slot * (n + 0.5)

    for tick in ticks:
        y = y_of(tick)
        draw.line((left, y, right, y), fill=GRID if tick else AXIS, width=1)
        shown = format_value(tick, unit, decimals)
        draw.text((left - 8, y), shown, font=font, fill=MUTED, anchor="rm")
    draw.line((left, bottom, right, bottom), fill=AXIS, width=1)

    # X labels: every one when they fit, else every k-th (and always the last).
    widest = max(_width(label, font) for label in labels)
    fits = all(_fits(label, font, slot - 8, label_lines) for label in labels)
    every = 1 if fits else math.ceil((widest + 8) / slot)
    every = min(every, max(1, math.ceil(80 / slot)))  # at most 80 px between shown labels
    for n, label in enumerate(labels):
        if n % every and n != len(labels) - 1:
            continue
        if n != len(labels) - 1 and len(labels) - 1 - n < every and n % every == 0 and n:
            continue  # too close to the last label, which is always shown
        width = max(slot * every - 6, 30)
        for k, text in enumerate(_wrap(label, font, width, label_lines)):
            draw.text((x_of(n), bottom + 6 + k * line), text, font=font, fill=INK, anchor="ma")

    points = sum(v is not None for s in series for v in s.values)
    label_all = points <= 24
    value_font = _font(SMALL_SIZE - 1)
    for s in series:
        run: list[tuple[float, float]] = []
        segments: list[list[tuple[float, float]]] = []
        for n, value in enumerate(s.values):
            if value is None:
                if run:
                    segments.append(run)
                run = []
                continue
            run.append((x_of(n), y_of(value)))
        if run:
            segments.append(run)
        for segment in segments:
            if len(segment) > 1:
                draw.line(segment, fill=s.color, width=3, joint="curve")
            for x, y in segment:
                draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=s.color, outline=BACKGROUND)
        last = max((n for n, v in enumerate(s.values) if v is not None), default=None)
        for n, value in enumerate(s.values):
            if value is None or not (label_all or n == last):
                continue
            draw.text(
                (x_of(n), y_of(value) - 8),
                format_value(value, unit),
                font=value_font,
                fill=INK,
                anchor="md",
            )
    return image
