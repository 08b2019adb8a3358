"""The look every chart shares: its size, colours and type, and the fonts: DejaVu Sans (shipped
with matplotlib) with a per-glyph fallback to the installed fonts of :data:`FALLBACK_FAMILIES`,
and text measured as Agg draws it."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.backend_bases import RendererBase

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


def hex_color(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


@lru_cache(maxsize=1)
def fallbacks() -> tuple[str, ...]:
    """The fallback families that are installed (asking for one that is not logs a warning on
    every chart)."""
    from matplotlib import font_manager

    # "Failed to find font weight bold for WenQuanYi Micro Hei, now using 400", for each chart.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return tuple(family for family in FALLBACK_FAMILIES if family in installed)


@lru_cache(maxsize=4096)
def measure(text: str, size: float, bold: bool) -> float:
    """The width in px of ``text`` as Agg draws it: labels are measured over and over while
    they are wrapped, chart after chart."""
    from matplotlib.font_manager import FontProperties

    renderer = _measurer()

    prop = FontProperties(family=[FAMILY, *fallbacks()], size=size)
    if bold:
        prop.set_weight("bold")
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width)


@lru_cache(maxsize=1)
def _measurer() -> RendererBase:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, DPI)
