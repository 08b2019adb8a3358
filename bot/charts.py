"""Charts as PNG images, drawn with matplotlib from a :class:`~bot.chat.Chart`.

The outbox stores a chart's data; each adapter calls :func:`render_png` (or :func:`draw` from a
coroutine) when it delivers the message, so a retried row draws the same picture again.

matplotlib is imported on the first chart, not with this module: the bot, its command line and
the adapters start without it (``benchmarks/startup.py`` measures both). It draws with its Agg
backend and the DejaVu fonts it ships, so accented letters, Greek, Cyrillic and most symbols are
drawn as typed. Other scripts fall back glyph by glyph to the first installed font of
:data:`FALLBACK_FAMILIES` (Noto CJK, Source Han, WenQuanYi, Droid Sans Fallback, IPA: Chinese,
Japanese and Korean; Symbola, Noto Emoji: emoji in black and white); a character that no font has
is drawn as an empty box, never an error. matplotlib's fonts are found once and cached in its
config folder (``MPLCONFIGDIR``, by default ``~/.cache/matplotlib``): delete its
``fontlist-*.json`` after installing a font. The alt text always has the exact words.

* ``style="bar"``: horizontal bars, one group per label (labels on the left, wrapped over up to
  :data:`MAX_LABEL_LINES` lines), one bar per series inside a group, the value, unit and count of
  answers at the end of each bar (``62% (8)``); a value of zero is a mark on the axis, a label
  without a value says ``n/a``. The value axis runs over the chart's ``scale`` with round ticks.
* ``style="line"``: the labels along the x axis (weeks), one line per series with a dot at each
  value (a gap where a value is None), the values written over the dots, the scale on the y axis.

Every chart is 800 px wide; on top, the title, then the team, the period and the number of
answers, then the headline figure, then a legend when there is more than one series. A bar chart
grows with its bars up to 1,600 px (more bars get thinner, with smaller text); a line chart is
800 x 440 px plus its header. A chart with no value at all says "No data".

Deterministic: the same chart gives the same bytes (matplotlib's default style, not the
machine's matplotlibrc; no date or software version in the PNG; ``svg.hashsalt`` pinned for
SVG). Values are matched to labels by position: a series with fewer values than labels has none
for the rest, and values past the last label are not drawn.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.chat import Chart

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

WIDTH = 800
MAX_HEIGHT = 1600
LINE_HEIGHT = 440  # a line chart's plot and axes, under its header
EMPTY_HEIGHT = 200
DPI = 100
PAD = 20  # px around the picture
INK = "#212529"
MUTED = "#6c757d"
GRID = "#e2e6ea"
AXIS = "#adb5bd"
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
TITLE_SIZE = 15.0  # points; 100 dpi: a point is 100/72 px
TEXT_SIZE = 10.0
SMALL_SIZE = 9.0
MIN_TEXT_SIZE = 6.0
MAX_TITLE_LINES = 5
MAX_LABEL_LINES = 8  # a 300-character pulse question fits in full
LABEL_COLUMN = 0.4  # of the width, at most, for bar labels
ELLIPSIS = "\u2026"
NO_VALUE = "n/a"
NO_DATA = "No data"
FAMILY = "DejaVu Sans"
# Fonts that cover what DejaVu Sans does not, tried glyph by glyph in this order when installed
# (Debian: fonts-noto-cjk, fonts-wqy-microhei, fonts-droid-fallback, fonts-ipafont-gothic,
# fonts-symbola).
FALLBACK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "IPAGothic",
    "IPAexGothic",
    "Noto Sans Symbols 2",
    "Symbola",
    "Noto Emoji",
)

_LOCK = threading.Lock()  # matplotlib's settings and font caches are shared by every thread


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes (see the module docstring for what is drawn)."""
    with drawing():
        out = io.BytesIO()
        figure(chart).savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        return out.getvalue()


@contextmanager
def drawing() -> Iterator[None]:
    """Where :func:`figure` may be called: one thread at a time, with syncup's settings over
    matplotlib's defaults (whatever the machine's matplotlibrc says)."""
    with _LOCK:
        import matplotlib.style

        with warnings.catch_warnings(), matplotlib.style.context(["default", _style()]):
            # "Glyph 128512 missing from font(s) DejaVu Sans": drawn as a box, said in alt text.
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
            yield


async def draw(chart: Chart) -> bytes:
    """:func:`render_png` in a worker thread, so that drawing never holds up the event loop."""
    return await asyncio.to_thread(render_png, chart)


def _style() -> dict[str, Any]:
    return {
        "font.family": [FAMILY, *_fallbacks()],
        "font.size": TEXT_SIZE,
        "svg.hashsalt": "syncup",
        "svg.fonttype": "path",
        "text.usetex": False,
        "axes.unicode_minus": True,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "savefig.facecolor": "white",
    }


@lru_cache(maxsize=1)
def _fallbacks() -> tuple[str, ...]:
    """The fallback families that are installed (asking for one that is not logs a warning on
    every chart)."""
    from matplotlib import font_manager

    # "Failed to find font weight bold for WenQuanYi Micro Hei, now using 400", for each chart.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return tuple(family for family in FALLBACK_FAMILIES if family in installed)


def figure(chart: Chart) -> Figure:
    """The chart as a matplotlib figure, inside :func:`drawing`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = Figure(figsize=(WIDTH / DPI, EMPTY_HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(drawn)  # the figure keeps it: savefig draws with Agg
    page = _Page(drawn)
    labels = [_one_line(label) for label in chart.labels]
    series = [
        _Series(
            _one_line(s.name) or f"Series {n + 1}",
            _values(s.values, len(labels)),
            _counts(s.counts, len(labels)),
            _hex(PALETTE[n % len(PALETTE)]),
        )
        for n, s in enumerate(chart.series)
    ]
    if not labels or not any(v is not None for s in series for v in s.values):
        _empty(page, chart)
    elif chart.style == "line":
        _line_chart(page, chart, labels, series)
    else:
        _bar_chart(page, chart, labels, series)
    return drawn


# -- text ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    name: str
    values: tuple[float | None, ...]
    counts: tuple[int | None, ...]
    color: str


def _hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def _values(values: Sequence[float | None], count: int) -> tuple[float | None, ...]:
    """One value (or None) per label; NaN and infinities count as no value."""
    out: list[float | None] = []
    for n in range(count):
        value = values[n] if n < len(values) else None
        out.append(float(value) if value is not None and math.isfinite(value) else None)
    return tuple(out)


def _counts(counts: Sequence[int | None], count: int) -> tuple[int | None, ...]:
    return tuple(counts[n] if n < len(counts) else None for n in range(count))


def _one_line(value: str) -> str:
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


def _decimals(step: float) -> int:
    """How many decimals show a tick step exactly (2.5 -> 1, 0.25 -> 2), at most 4."""
    for decimals in range(5):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6:
            return decimals
    return 4


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
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


def _axis(chart: Chart, values: Sequence[float], *, with_zero: bool) -> tuple[float, float]:
    """The value axis: the chart's scale (widened to a value outside it), else round ticks
    around the values (and zero, for bars)."""
    low, high = min(values), max(values)
    if chart.scale is not None and all(map(math.isfinite, chart.scale)):
        first, last = sorted(chart.scale)
        if last > first and first <= low and high <= last:
            return first, last
        if last > first:  # a value outside the scale: round ticks around both
            ticks = _ticks(min(first, low), max(last, high))
            return ticks[0], ticks[-1]
    if with_zero:
        low, high = min(0.0, low), max(0.0, high)
    else:  # a little room so that no point sits on the frame
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
    ticks = _ticks(low, high)
    return ticks[0], ticks[-1]


def _tick_values(low: float, high: float) -> list[float]:
    """Ticks inside ``low``..``high`` (both ends included when they are round)."""
    count = 4 if high - low == 4 else 5  # 1 to 5: every whole answer
    return [t for t in _ticks(low, high, count) if low - 1e-9 <= t <= high + 1e-9]


class _Page:
    """A figure laid out in pixels from the top left, and the text measured as Agg draws it."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure
        self.height = EMPTY_HEIGHT

    def size(self, height: float) -> None:
        self.height = max(1, round(height))
        self.figure.set_size_inches(WIDTH / DPI, self.height / DPI)

    def width_of(self, text: str, size: float, bold: bool = False) -> float:
        return _measure(text, size, bold)

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


@lru_cache(maxsize=4096)
def _measure(text: str, size: float, bold: bool) -> float:
    """The width in px of ``text`` as Agg draws it: labels are measured over and over while
    they are wrapped, chart after chart."""
    from matplotlib.font_manager import FontProperties

    renderer = _measurer()

    prop = FontProperties(family=[FAMILY, *_fallbacks()], size=size)
    if bold:
        prop.set_weight("bold")
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width)


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


@lru_cache(maxsize=1)
def _measurer() -> RendererBase:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, DPI)


# -- the header every chart has -------------------------------------------------------------------


def _subtitle(chart: Chart) -> str:
    parts = [_one_line(chart.team), _one_line(chart.period)]
    if chart.answers is not None:
        parts.append(f"{chart.answers} answer{'' if chart.answers == 1 else 's'}")
    return " \u00b7 ".join(p for p in parts if p)


def _header(page: _Page, chart: Chart, series: Sequence[_Series]) -> float:
    """Draws the title, the team, period and answers, the headline and the legend; returns
    where they end (px from the top). Called twice: to measure (before the page has its height),
    then to draw."""
    width = WIDTH - 2 * PAD
    y = float(PAD)
    title = _one_line(chart.title)
    if title:
        fits = lambda s: page.width_of(s, TITLE_SIZE, True) <= width  # noqa: E731
        for line in wrap(title, fits, MAX_TITLE_LINES):
            page.text(PAD, y, line, TITLE_SIZE, weight="bold", color=INK)
            y += page.line(TITLE_SIZE)
    subtitle = _subtitle(chart)
    if subtitle:
        fits = lambda s: page.width_of(s, TEXT_SIZE) <= width  # noqa: E731
        for line in wrap(subtitle, fits, 2):
            page.text(PAD, y, line, TEXT_SIZE, color=MUTED)
            y += page.line(TEXT_SIZE)
    headline = _one_line(chart.headline)
    if headline:
        y += 4
        fits = lambda s: page.width_of(s, TITLE_SIZE - 2, True) <= width  # noqa: E731
        for line in wrap(headline, fits, 2):
            page.text(PAD, y, line, TITLE_SIZE - 2, weight="bold", color=_hex(PALETTE[0]))
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


def _swatch(page: _Page, x: float, y: float, size: float, color: str) -> None:
    from matplotlib.patches import Rectangle

    box = Rectangle(
        (x / WIDTH, 1 - (y + size) / page.height),
        size / WIDTH,
        size / page.height,
        transform=page.figure.transFigure,
        facecolor=color,
        edgecolor="none",
    )
    page.figure.patches.append(box)


def _empty(page: _Page, chart: Chart) -> None:
    top = _header(page, chart, [])
    page.size(max(EMPTY_HEIGHT, top + 80))
    page.figure.clear()
    top = _header(page, chart, [])
    middle = top + (page.height - top - PAD) / 2
    page.text(WIDTH / 2, middle, NO_DATA, TEXT_SIZE + 4, color=MUTED, ha="center", va="center")


def _style_axes(ax: Axes) -> None:
    ax.set_facecolor("white")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(AXIS)
    ax.tick_params(colors=MUTED, labelcolor=INK, labelsize=SMALL_SIZE, length=3)
    ax.set_axisbelow(True)


def _value_text(value: float, count: int | None, unit: str) -> str:
    shown = format_value(value, unit)
    return shown if count is None else f"{shown} ({count})"


# -- bar charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BarLayout:
    bar: float  # px of one bar
    inner: float  # px between the bars of a group
    outer: float  # px between groups
    text_size: float  # points
    label_lines: int


# From roomy to dense: the first whose height fits is used.
_BAR_LAYOUTS = (
    _BarLayout(bar=26, inner=4, outer=16, text_size=TEXT_SIZE, label_lines=MAX_LABEL_LINES),
    _BarLayout(bar=18, inner=3, outer=10, text_size=TEXT_SIZE - 1, label_lines=3),
    _BarLayout(bar=12, inner=2, outer=8, text_size=SMALL_SIZE - 1, label_lines=2),
    _BarLayout(bar=8, inner=1, outer=5, text_size=MIN_TEXT_SIZE + 1, label_lines=1),
)
AXIS_ROOM = 34  # px under the plot for the value axis' tick labels


def _bar_chart(page: _Page, chart: Chart, labels: list[str], series: list[_Series]) -> None:
    values = [v for s in series for v in s.values if v is not None]
    low, high = _axis(chart, values, with_zero=True)
    base = 0.0 if low <= 0 <= high else low  # where a bar starts
    texts = [
        _value_text(v, c, chart.unit)
        for s in series
        for v, c in zip(s.values, s.counts, strict=True)
        if v is not None
    ]
    header = _header(page, chart, series)
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
        layout = _BarLayout(bar=bar, inner=inner, outer=outer, text_size=size, label_lines=1)
        column, wrapped = _wrap_labels(page, labels, size, 1)
    plot_height = len(labels) * (group + layout.outer)
    page.size(header + plot_height + AXIS_ROOM + PAD)
    page.figure.clear()
    _header(page, chart, series)

    value_size = max(MIN_TEXT_SIZE - 1, layout.text_size - 1)
    widest = max((page.width_of(t, value_size) for t in texts), default=0.0)
    before = widest + 10 if low < base else 0.0  # room for the values of negative bars
    left = PAD + column + 12 + before
    right = WIDTH - PAD - (widest + 10 if high > base else 0)
    ax = page.axes(left, header, right, header + plot_height)
    _style_axes(ax)
    ax.set_xlim(low, high)
    ax.set_ylim(plot_height, 0)  # y in px from the plot's top, so that bars are px high
    ticks = _tick_values(low, high)
    decimals = _decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
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
                        _value_text(value, count, chart.unit), fontsize=value_size, color=INK,
                        va="center", ha="right" if after else "left", parse_math=False,
                        clip_on=False,
                    )  # fmt: skip
            y += layout.bar + layout.inner
    ax.set_yticks(centres, names, fontsize=layout.text_size, parse_math=False)
    ax.tick_params(axis="y", length=0, pad=(8 + before) * 72 / DPI)
    if not wrapped or group < layout.text_size * DPI / 72:
        ax.set_yticks([])  # too thin for their labels: the alt text has them


def _wrap_labels(
    page: _Page, labels: Sequence[str], size: float, lines: int
) -> tuple[float, list[list[str]]]:
    """The width of the label column (the widest label, at most :data:`LABEL_COLUMN` of the
    chart) and each label wrapped to it."""
    widest = max(page.width_of(label, size) for label in labels)
    column = min(widest + 2, (WIDTH - 2 * PAD) * LABEL_COLUMN)
    return column, [
        wrap(label, lambda s: page.width_of(s, size) <= column, lines) for label in labels
    ]


# -- line charts ----------------------------------------------------------------------------------


def _line_chart(page: _Page, chart: Chart, labels: list[str], series: list[_Series]) -> None:
    values = [v for s in series for v in s.values if v is not None]
    low, high = _axis(chart, values, with_zero=False)
    header = _header(page, chart, series)
    page.size(header + LINE_HEIGHT)
    page.figure.clear()
    _header(page, chart, series)
    ticks = _tick_values(low, high)
    decimals = _decimals(ticks[1] - ticks[0]) if len(ticks) > 1 else 0
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
    _style_axes(ax)
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
