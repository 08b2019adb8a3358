"""bot.charts: a Chart's data drawn as a PNG, the same bytes for the same chart."""

from __future__ import annotations

import ast
import io
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot import charts
from bot.charts import LINE_HEIGHT, MAX_HEIGHT, PALETTE, WIDTH, render_png
from bot.chat import Chart, ChartSeries

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bar(*values: float | None, labels: tuple[str, ...] | None = None, **kw: object) -> Chart:
    names = labels or tuple(f"Option {n}" for n in range(len(values)))
    return Chart("Pace", names, (ChartSeries("votes", tuple(values)),), "alt", **kw)  # type: ignore[arg-type]


def opened(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    Image.open(io.BytesIO(png)).verify()  # the whole file is checked (CRCs, chunks)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def count(image: Image.Image, color: tuple[int, int, int]) -> int:
    """How many pixels have exactly ``color`` (bars and lines are drawn solid)."""
    return sum(n for n, c in image.getcolors(WIDTH * MAX_HEIGHT) or [] if c == color)


def bar_rows(image: Image.Image, color: tuple[int, int, int]) -> list[int]:
    """The length in pixels of ``color`` in each row that has any."""
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    rows = []
    for y in range(height):
        length = sum(1 for x in range(width) if pixels[x, y] == color)
        if length:
            rows.append(length)
    return rows


def test_a_bar_chart_is_a_valid_png_that_grows_with_its_bars() -> None:
    three = opened(render_png(bar(62, 20, 18, unit="%")))
    ten = opened(render_png(bar(*range(10), unit="%")))
    assert three.size[0] == ten.size[0] == WIDTH
    # About 40 px a bar, on top of a title.
    assert 60 + 3 * 30 <= three.size[1] <= 60 + 3 * 50 + 40
    assert ten.size[1] - three.size[1] == pytest.approx(7 * 40, abs=7 * 8)
    assert count(three, PALETTE[0]) > 0


def test_many_bars_stay_within_the_maximum_height() -> None:
    labels = tuple(f"Option number {n}" for n in range(100))
    chart = Chart(
        "100 options, two weeks",
        labels,
        (ChartSeries("now", tuple(range(100))), ChartSeries("before", tuple(range(100, 0, -1)))),
        "alt",
    )
    image = opened(render_png(chart))
    assert image.size[0] == WIDTH and image.size[1] <= MAX_HEIGHT
    # Every bar is drawn: 99 of "now" (0 draws none) and 100 of "before", one row or more each.
    assert len(bar_rows(image, PALETTE[1])) >= 100
    assert len(bar_rows(image, PALETTE[0])) >= 99


def test_the_same_chart_gives_the_same_bytes_and_other_data_other_bytes() -> None:
    chart = Chart(
        "eNPS",
        ("W1", "W2", "W3"),
        (ChartSeries("score", (10.0, None, 31.5)),),
        "alt",
        style="line",
    )
    again = Chart("eNPS", ("W1", "W2", "W3"), (ChartSeries("score", (10.0, None, 31.5)),), "alt2")
    assert render_png(chart) == render_png(chart)
    assert render_png(chart) != render_png(Chart(**{**chart.__dict__, "title": "eNPS!"}))
    # The alt text is words for people, not part of the picture.
    assert render_png(again) == render_png(Chart(**{**again.__dict__, "alt": "other words"}))


def test_bar_and_line_are_drawn_differently() -> None:
    data = (ChartSeries("score", (3.2, 3.5, 4.1, 3.9)),)
    labels = ("2 Mar", "9 Mar", "16 Mar", "23 Mar")
    bars = opened(render_png(Chart("Pace", labels, data, "alt", style="bar")))
    line = opened(render_png(Chart("Pace", labels, data, "alt", style="line")))
    assert line.size == (WIDTH, LINE_HEIGHT)
    assert bars.size != line.size
    # Bars are solid blocks of the series colour many pixels high; a line is a thin stroke.
    assert max(bar_rows(bars, PALETTE[0])) > 100
    assert count(bars, PALETTE[0]) > 2 * count(line, PALETTE[0])


def test_none_draws_no_bar_and_breaks_a_line() -> None:
    full = opened(render_png(bar(50, 50, 50)))
    holed = opened(render_png(bar(50, None, 50)))
    assert count(holed, PALETTE[0]) == pytest.approx(count(full, PALETTE[0]) * 2 / 3, rel=0.05)
    weeks = ("W1", "W2", "W3", "W4", "W5")

    def line(values: tuple[float | None, ...]) -> Image.Image:
        series = (ChartSeries("score", values),)
        return opened(render_png(Chart("t", weeks, series, "alt", style="line")))

    # The stroke between W2 and W4 goes: what is left is W1-W2, W4-W5 and their dots.
    assert count(line((1, 2, None, 4, 5)), PALETTE[0]) < count(line((1, 2, 3, 4, 5)), PALETTE[0])
    assert count(line((1, None, 3, None, 5)), PALETTE[0]) > 0  # lone points are dots


def test_several_series_are_grouped_and_get_a_legend() -> None:
    labels = ("Yes", "No", "Maybe")
    one = Chart("Go?", labels, (ChartSeries("This week", (62, 20, 18)),), "alt", unit="%")
    two = Chart(
        "Go?",
        labels,
        (ChartSeries("This week", (62, 20, 18)), ChartSeries("Last week", (50, 30, 20))),
        "alt",
        unit="%",
    )
    single, grouped = opened(render_png(one)), opened(render_png(two))
    assert grouped.size[1] > single.size[1]
    assert count(single, PALETTE[1]) == 0
    # Both colours: three bars each plus a legend swatch each.
    assert len(bar_rows(grouped, PALETTE[0])) > 0 and len(bar_rows(grouped, PALETTE[1])) > 0
    first_bars = bar_rows(grouped, PALETTE[0])
    swatch, longest = min(first_bars), max(first_bars)
    assert swatch < 20 < longest


def test_long_labels_are_wrapped_or_cut_and_leave_room_for_the_bars() -> None:
    short = opened(render_png(bar(40, 60, labels=("A", "B"))))
    long_label = "A very long answer " * 40
    long = opened(render_png(bar(40, 60, labels=(long_label, "B"))))
    assert long.size[0] == WIDTH
    # The label column is capped: the longest bar still spans most of the width.
    assert max(bar_rows(long, PALETTE[0])) > 0.5 * max(bar_rows(short, PALETTE[0]))
    assert max(bar_rows(long, PALETTE[0])) > WIDTH / 3
    # Wrapped to two lines at most: the group is not taller than two lines of text and a gap.
    assert long.size[1] - short.size[1] <= 40
    lines = charts._wrap(long_label, charts._font(14), 200, 2)
    assert len(lines) == 2 and lines[-1].endswith(charts.ELLIPSIS)
    assert all(charts._width(line, charts._font(14)) <= 200 for line in lines)
    unbroken = charts._wrap("x" * 300, charts._font(14), 100, 2)
    assert len(unbroken) == 2 and all(charts._width(p, charts._font(14)) <= 100 for p in unbroken)


@pytest.mark.parametrize(
    "chart",
    [
        Chart("Nothing yet", (), (), "no answers"),
        Chart("Nothing yet", ("a", "b"), (), "no answers"),
        Chart("Nothing yet", ("a", "b"), (ChartSeries("s", (None, None)),), "no answers"),
        Chart("Nothing yet", ("a",), (ChartSeries("s", (math.nan,)),), "x", style="line"),
    ],
)
def test_no_values_at_all_says_no_data(chart: Chart) -> None:
    image = opened(render_png(chart))
    assert image.size == (WIDTH, charts.EMPTY_HEIGHT)
    assert all(count(image, color) == 0 for color in PALETTE)
    assert render_png(chart) == render_png(Chart("Nothing yet", (), (), "other"))


def test_values_are_matched_to_labels_and_negative_ones_grow_left() -> None:
    short_series = Chart("t", ("a", "b", "c"), (ChartSeries("s", (10,)),), "alt")
    image = opened(render_png(short_series))
    assert len(set(bar_rows(image, PALETTE[0]))) == 1  # one bar: b and c have no value
    extra = Chart("t", ("a",), (ChartSeries("s", (10, 99, 99)),), "alt")
    assert render_png(extra) == render_png(Chart("t", ("a",), (ChartSeries("s", (10,)),), "alt"))
    mixed = opened(render_png(bar(-30, 60)))
    width, height = mixed.size
    pixels = mixed.load()
    assert pixels is not None
    columns = [x for x in range(width) for y in range(height) if pixels[x, y] == PALETTE[0]]
    # The negative bar is left of the positive one's start: both sides of one zero line.
    assert min(columns) < width / 2 < max(columns)


def test_numbers_and_text_as_drawn() -> None:
    assert charts.format_value(62, "%") == "62%"
    assert charts.format_value(3.456, "") == "3.5"
    assert charts.format_value(-0.01, "") == "0"
    assert charts.format_value(12, "pts") == "12 pts"
    assert charts.format_value(3.2, " / 5") == "3.2 / 5"
    assert charts.format_value(2.5, "", decimals=2) == "2.50"
    assert charts._decimals(0.25) == 2 and charts._decimals(5) == 0
    assert charts._drawable("Zürich – Straße\n") == "Zurich - Strasse"
    assert charts._ticks(3.2, 4.1)[0] <= 3.2 and charts._ticks(3.2, 4.1)[-1] >= 4.1
    assert charts._ticks(0, 10)[0] == 0  # never below zero when no value is


def test_charts_import_only_pillow_and_the_chat_model() -> None:
    tree = ast.parse((ROOT / "bot" / "charts.py").read_text())
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module if node.module.startswith("bot") else node.module.split(".")[0])
    outside = {m for m in modules if m not in sys.stdlib_module_names}
    assert outside == {"PIL", "bot.chat"}
