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
* ``style="grid"``: a table (``rows`` by ``labels``, the text of ``cells``), each cell
  coloured by its first letter (the RACI matrix), column labels slanted; see ``bot.charts.grid``.
* ``style="card"``: a celebration card (a milestone done): the title large on a coloured band,
  the period and headline under it, ``rows`` as people's chips; see ``bot.charts.card``.
* ``style="heatmap"``: members by days, a coloured cell per status (answered, missed, off, not
  asked); see ``bot.charts.heatmap`` (and ``participation_heatmap`` to build one).
* ``style="multiples"``: a small trend panel per series on shared axes; see
  ``bot.charts.multiples``. ``bot.charts.trends.trend_chart`` builds a ``line`` chart of weeks.
* ``style="line"``: the labels along the x axis (weeks), one line per series with a dot at each
  value (a gap where a value is None), the values written over the dots, the scale on the y axis.

Every chart is 800 px wide; on top, the title, then the team, the period and the number of
answers, then the headline figure, then a legend when there is more than one series. A bar chart
grows with its bars up to 1,600 px (more bars get thinner, with smaller text); a line chart is
800 x 440 px plus its header. A chart with no value at all says "No data".

Deterministic: the same chart gives the same bytes (matplotlib's default style, not the
machine's matplotlibrc; no date or software version in the PNG; ``svg.hashsalt`` pinned for
SVG). Values are matched to labels by position: a series with fewer values than labels has none
for the rest, and values past the last label are not drawn."""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.charts.bars import bar_chart
from bot.charts.card import card_chart
from bot.charts.grid import grid_chart
from bot.charts.heatmap import heatmap_chart
from bot.charts.lines import line_chart
from bot.charts.multiples import multiples_chart
from bot.charts.page import Page, Series, counts_of, draw_empty, values_of
from bot.charts.style import (
    DPI,
    EMPTY_HEIGHT,
    FALLBACK_FAMILIES,
    FAMILY,
    LINE_HEIGHT,
    MAX_HEIGHT,
    PALETTE,
    TEXT_SIZE,
    WIDTH,
    fallbacks,
    hex_color,
)
from bot.charts.text import format_value, one_line
from bot.chat import Chart

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "EMPTY_HEIGHT",
    "FALLBACK_FAMILIES",
    "LINE_HEIGHT",
    "MAX_HEIGHT",
    "PALETTE",
    "WIDTH",
    "Picture",
    "draw",
    "drawing",
    "figure",
    "format_value",
    "picture",
    "render_png",
    "render_svg",
]


_LOCK = threading.RLock()  # matplotlib's settings and font caches are shared by every thread


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes (see the module docstring for what is drawn)."""
    with drawing():
        out = io.BytesIO()
        figure(chart).savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        return out.getvalue()


def render_svg(chart: Chart) -> str:
    """The same picture as :func:`render_png`, as an SVG document for a web page (text drawn
    as paths, so it looks the same without the fonts)."""
    with drawing():
        out = io.StringIO()
        figure(chart).savefig(out, format="svg", metadata={"Date": None, "Creator": None})
        return out.getvalue()


@dataclass(frozen=True)
class Picture:
    """A chart drawn for chat (``png``) and for a page (``svg``), with its ``alt`` text."""

    png: bytes
    svg: str
    alt: str


async def picture(chart: Chart) -> Picture:
    """Both drawings of ``chart`` in a worker thread."""
    png, svg = await asyncio.to_thread(lambda: (render_png(chart), render_svg(chart)))
    return Picture(png, svg, chart.alt)


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
        "font.family": [FAMILY, *fallbacks()],
        "font.size": TEXT_SIZE,
        "svg.hashsalt": "syncup",
        "svg.fonttype": "path",
        "text.usetex": False,
        "axes.unicode_minus": True,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "savefig.facecolor": "white",
    }


def figure(chart: Chart) -> Figure:
    """The chart as a matplotlib figure, inside :func:`drawing`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = Figure(figsize=(WIDTH / DPI, EMPTY_HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(drawn)  # the figure keeps it: savefig draws with Agg
    page = Page(drawn)
    labels = [one_line(label) for label in chart.labels]
    series = [
        Series(
            one_line(s.name) or f"Series {n + 1}",
            values_of(s.values, len(labels)),
            counts_of(s.counts, len(labels)),
            hex_color(PALETTE[n % len(PALETTE)]),
        )
        for n, s in enumerate(chart.series)
    ]
    if chart.style == "grid":
        grid_chart(page, chart)
    elif chart.style == "card":
        card_chart(page, chart)
    elif chart.style == "heatmap":
        heatmap_chart(page, chart)
    elif not labels or not any(v is not None for s in series for v in s.values):
        draw_empty(page, chart)
    elif chart.style == "line":
        line_chart(page, chart, labels, series)
    elif chart.style == "multiples":
        multiples_chart(page, chart, labels, series)
    else:
        bar_chart(page, chart, labels, series)
    return drawn
