"""bot.charts: a Chart's data drawn with matplotlib as a PNG, the same bytes for the same chart.

What is drawn is checked two ways: the figure's texts (title, team and period, headline, values
with counts, wrapped labels, axis ticks), and the picture's pixels (bar lengths against the
axis, a mark for a zero, gaps in a line)."""

from __future__ import annotations

import asyncio
import io
import math
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from bot import charts
from bot.charts import LINE_HEIGHT, MAX_HEIGHT, PALETTE, WIDTH, render_png, style
from bot.charts import text as chart_text
from bot.chat import Chart, ChartSeries
from tests.fakes.chart_samples import RESULTS

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bar(
    *values: float | None, labels: tuple[str, ...] | None = None, title: str = "Pace", **kw: object
) -> Chart:
    names = labels or tuple(f"Option {n}" for n in range(len(values)))
    return Chart(title, names, (ChartSeries("votes", tuple(values)),), "alt", **kw)  # type: ignore[arg-type]


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


def texts(chart: Chart) -> list[str]:
    """Every text the chart's figure draws (tick labels included), in drawing order."""
    from matplotlib.text import Text

    with charts.drawing():
        drawn = charts.figure(chart)
        drawn.canvas.draw()
        header = list(drawn.texts)  # the title, team and period, headline, legend
        rest = [t for t in drawn.findobj(Text) if t not in header]
        return [t.get_text() for t in header + rest if t.get_text() and t.get_visible()]


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        out.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


# -- size and layout ------------------------------------------------------------------------------


def test_a_bar_chart_is_a_valid_png_that_grows_with_its_bars() -> None:
    three = opened(render_png(bar(62, 20, 18, unit="%")))
    ten = opened(render_png(bar(*range(10), unit="%")))
    assert three.size[0] == ten.size[0] == WIDTH
    assert 150 <= three.size[1] <= 300
    assert ten.size[1] - three.size[1] == pytest.approx(7 * 42, abs=7 * 8)
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
    # Every bar is drawn: 100 of each series, one row or more each (a zero is a mark).
    assert len(bar_rows(image, PALETTE[1])) >= 100
    assert len(bar_rows(image, PALETTE[0])) >= 100


# -- the same bytes -------------------------------------------------------------------------------


def test_the_same_chart_gives_the_same_bytes_and_other_data_other_bytes() -> None:
    chart = Chart("eNPS", ("W1", "W2", "W3"), (ChartSeries("score", (10.0, None, 31.5)),), "alt")
    line = Chart(**{**chart.__dict__, "style": "line"})
    for drawn in (chart, line, RESULTS):
        assert render_png(drawn) == render_png(drawn)
    assert render_png(chart) != render_png(Chart(**{**chart.__dict__, "title": "eNPS!"}))
    assert render_png(chart) != render_png(Chart(**{**chart.__dict__, "team": "Platform"}))
    # The alt text is words for people, not part of the picture.
    assert render_png(chart) == render_png(Chart(**{**chart.__dict__, "alt": "other words"}))


def test_the_bytes_carry_no_software_version_and_ignore_the_machines_settings() -> None:
    import matplotlib

    png = render_png(RESULTS)
    names = [name for name, _ in chunks(png)]
    assert names[0] == b"IHDR" and names[-1] == b"IEND"
    assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(names), names
    # A matplotlibrc (or another library) that changes the defaults changes nothing here.
    with matplotlib.rc_context({"font.size": 20, "axes.facecolor": "black", "lines.linewidth": 9}):
        assert render_png(RESULTS) == png
    # A separate process (another hash seed, fresh caches) draws the same bytes.
    code = (
        "import sys; from bot.charts import render_png; "
        "from tests.fakes.chart_samples import RESULTS; "
        "sys.stdout.buffer.write(render_png(RESULTS))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True
    ).stdout
    assert other == png
    image = zlib.decompress(b"".join(data for name, data in chunks(png) if name == b"IDAT"))
    assert len(image) > 0


def test_threads_draw_the_same_bytes_as_one_and_draw_does_not_block_the_loop() -> None:
    with ThreadPoolExecutor(4) as pool:
        drawn = list(pool.map(render_png, [RESULTS] * 8))
    assert drawn == [render_png(RESULTS)] * 8

    async def both() -> tuple[bytes, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        png = await charts.draw(RESULTS)
        ticker.cancel()
        return png, ticks

    png, ticks = asyncio.run(both())
    assert png == drawn[0] and ticks > 1  # the loop ran while the chart was drawn


# -- what a chart says ----------------------------------------------------------------------------


def test_the_sample_chart_names_its_team_period_answers_headline_and_counts() -> None:
    drawn = texts(RESULTS)
    assert drawn[:3] == [
        "How sustainable was this week's pace?",
        "Platform \u00b7 9 Mar to 13 Mar 2026 \u00b7 20 answers",
        "Average 3.4 of 5",
    ]
    for value in ("5% (1)", "10% (2)", "40% (8)", "30% (6)", "15% (3)"):
        assert value in drawn
    for label in RESULTS.labels:
        assert label in drawn
    assert {"0%", "10%", "20%", "30%", "40%"} <= set(drawn)  # the axis


def test_a_scale_runs_from_its_minimum_to_its_maximum() -> None:
    # 3.5 out of 5 on a 1-5 scale fills 2.5 / 4 of the axis, not the whole bar.
    chart = Chart(
        "Pulse scores (1-5)",
        ("Pace", "Tools", "Clarity"),
        (ChartSeries("This week", (3.5, 5.0, 1.0), (12, 12, 11)),),
        "alt",
        scale=(1, 5),
    )
    lengths = bar_rows(opened(render_png(chart)), PALETTE[0])
    longest = max(lengths)
    assert any(abs(n / longest - 2.5 / 4) < 0.02 for n in lengths), sorted(set(lengths))
    drawn = texts(chart)
    assert {"1", "2", "3", "4", "5"} <= set(drawn)
    assert {"3.5 (12)", "5 (12)", "1 (11)"} <= set(drawn)  # a 1 is a value too
    # Alone, 3.5 is still 3.5 of 5: the same length as beside a 5.
    alone = bar_rows(opened(render_png(bar(3.5, scale=(1, 5)))), PALETTE[0])
    assert max(alone) / longest == pytest.approx(2.5 / 4, abs=0.02)


def test_an_enps_of_zero_is_drawn_and_written() -> None:
    chart = Chart(
        "eNPS",
        ("Recommend us?",),
        (ChartSeries("This week", (0.0,), (12,)),),
        "alt",
        scale=(-100, 100),
        headline="eNPS 0",
    )
    image = opened(render_png(chart))
    assert count(image, PALETTE[0]) > 20  # a mark on the zero line
    drawn = texts(chart)
    assert "0 (12)" in drawn and "eNPS 0" in drawn
    assert {"-100", "-50", "0", "50", "100"} <= set(drawn)


def test_negative_bars_grow_left_of_zero_with_their_values_clear_of_the_labels() -> None:
    mixed = opened(render_png(bar(-100, 60, scale=(-100, 100))))
    width, height = mixed.size
    pixels = mixed.load()
    assert pixels is not None
    columns = [x for x in range(width) for y in range(height) if pixels[x, y] == PALETTE[0]]
    assert min(columns) < width / 2 < max(columns)
    assert "-100" in texts(bar(-100, 60, scale=(-100, 100)))


def test_a_value_outside_the_scale_widens_the_axis_instead_of_leaving_it() -> None:
    drawn = texts(bar(7.0, scale=(1, 5)))
    assert "7" in drawn and {"0", "8"} <= set(drawn)


def test_bar_and_line_are_drawn_differently() -> None:
    data = (ChartSeries("score", (3.2, 3.5, 4.1, 3.9)),)
    labels = ("2 Mar", "9 Mar", "16 Mar", "23 Mar")
    bars = opened(render_png(Chart("Pace", labels, data, "alt", style="bar")))
    line = opened(render_png(Chart("Pace", labels, data, "alt", style="line")))
    assert line.size[1] >= LINE_HEIGHT
    assert bars.size != line.size
    # Bars are solid blocks of the series colour many pixels high; a line is a thin stroke.
    assert max(bar_rows(bars, PALETTE[0])) > 100
    assert count(bars, PALETTE[0]) > 2 * count(line, PALETTE[0])


def test_a_trend_is_a_line_over_the_weeks_with_its_values_and_answers() -> None:
    trend = Chart(
        "How sustainable was this week's pace?",
        ("2 Feb", "9 Feb", "16 Feb", "23 Feb"),
        (ChartSeries("Average", (3.1, 3.4, None, 3.8), (8, 9, None, 10)),),
        "alt",
        style="line",
        team="Platform",
        period="2 Feb to 23 Feb",
        scale=(1, 5),
    )
    drawn = texts(trend)
    assert "Platform \u00b7 2 Feb to 23 Feb" in drawn
    assert {"3.1", "3.4", "3.8"} <= set(drawn)
    assert {"2 Feb\n8 answers", "16 Feb", "23 Feb\n10 answers"} <= set(drawn)
    assert {"1", "5"} <= set(drawn)


def test_none_draws_no_bar_and_breaks_a_line() -> None:
    full = opened(render_png(bar(50, 50, 50)))
    holed = opened(render_png(bar(50, None, 50)))
    assert count(holed, PALETTE[0]) == pytest.approx(count(full, PALETTE[0]) * 2 / 3, rel=0.05)
    assert "n/a" in texts(bar(50, None, 50))
    weeks = ("W1", "W2", "W3", "W4", "W5")

    def line(values: tuple[float | None, ...]) -> Image.Image:
        series = (ChartSeries("score", values),)
        return opened(render_png(Chart("t", weeks, series, "alt", style="line")))

    # The stroke between W2 and W4 is a dotted one: fewer pixels than a solid line.
    assert count(line((1, 2, None, 4, 5)), PALETTE[0]) < count(line((1, 2, 3, 4, 5)), PALETTE[0])
    assert count(line((None, None, 3, None, None)), PALETTE[0]) > 0  # a lone point is a dot


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
    first_bars = bar_rows(grouped, PALETTE[0])
    swatch, longest = min(first_bars), max(first_bars)
    assert swatch < 20 < longest
    assert {"This week", "Last week"} <= set(texts(two))
    assert "This week" not in texts(one)


@pytest.mark.parametrize(
    "chart",
    [
        Chart("Nothing yet", (), (), "no answers"),
        Chart("Nothing yet", ("a", "b"), (), "no answers"),
        Chart("Nothing yet", ("a", "b"), (ChartSeries("s", (None, None)),), "no answers"),
        Chart("Nothing yet", ("a",), (ChartSeries("s", (math.nan,)),), "x", style="line"),
        Chart("Nothing yet", ("a",), (ChartSeries("s", (math.inf,)),), "x"),
    ],
)
def test_no_values_at_all_says_no_data(chart: Chart) -> None:
    image = opened(render_png(chart))
    assert image.size == (WIDTH, charts.EMPTY_HEIGHT)
    assert all(count(image, color) == 0 for color in PALETTE)
    assert texts(chart) == ["Nothing yet", "No data"]
    assert render_png(chart) == render_png(Chart("Nothing yet", (), (), "other"))


def test_values_are_matched_to_labels() -> None:
    short_series = Chart("t", ("a", "b", "c"), (ChartSeries("s", (10,)),), "alt")
    image = opened(render_png(short_series))
    assert len(set(bar_rows(image, PALETTE[0]))) == 1  # one bar: b and c have no value
    extra = Chart("t", ("a",), (ChartSeries("s", (10, 99, 99)),), "alt")
    assert render_png(extra) == render_png(Chart("t", ("a",), (ChartSeries("s", (10,)),), "alt"))


# -- text -----------------------------------------------------------------------------------------


def test_accents_and_other_alphabets_are_drawn_as_typed() -> None:
    title = "Où déjeuner ? Zürich, Straße, Ελλάδα, Москва"
    assert texts(bar(1, 2, labels=("Crêperie", "Smørrebrød"), title=title))[0] == title
    # The glyphs differ: before, accents were dropped and both were drawn as "Ou".
    assert render_png(bar(1, labels=("Où",))) != render_png(bar(1, labels=("Ou",)))
    assert render_png(bar(1, labels=("Straße",))) != render_png(bar(1, labels=("Strasse",)))


def test_a_glyph_no_font_has_is_a_box_and_a_fallback_font_draws_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DejaVu Sans has neither U+231A nor U+2312; STIX (shipped with matplotlib) has both.
    one, other = bar(1, labels=("\u231a\u2312",)), bar(1, labels=("\u2312\u231a",))
    monkeypatch.setattr(style, "FALLBACK_FAMILIES", ("No Such Font",))
    style.fallbacks.cache_clear()
    style.measure.cache_clear()
    assert render_png(one) == render_png(other)  # two empty boxes either way round
    monkeypatch.setattr(style, "FALLBACK_FAMILIES", ("No Such Font", "STIXGeneral"))
    style.fallbacks.cache_clear()
    style.measure.cache_clear()
    try:
        assert style.fallbacks() == ("STIXGeneral",)
        assert render_png(one) != render_png(other)  # drawn, glyph by glyph
    finally:
        style.fallbacks.cache_clear()
        style.measure.cache_clear()


def test_chinese_japanese_and_korean_are_drawn_when_a_cjk_font_is_installed() -> None:
    flipped = render_png(bar(1, labels=("日本語 中文 한국어",))) != render_png(
        bar(1, labels=("語本日 文中 어국한",))
    )
    covered = any("CJK" in f or "Hei" in f or "Fallback" in f for f in style.fallbacks())
    # Without such a font each is the same box and the two pictures are the same.
    assert flipped == covered


@pytest.mark.parametrize(
    "label",
    [
        "🎉 Shipped! 👩‍👩‍👧 ❤️",
        "\x00\x07bell\x1b[31m red",
        "lone \ud800 surrogate",
        "$5 or $10 \\frac{a}{b} ^_^ %",
        "עברית العربية",
        "",
        " ",
        "x" * 1000,
    ],
)
def test_any_text_draws_without_error(label: str) -> None:
    chart = Chart(label, (label, "b"), (ChartSeries(label, (1.0, 2.0), (1, 2)),), "alt")
    for drawn in (chart, Chart(**{**chart.__dict__, "style": "line", "headline": label})):
        opened(render_png(drawn))


def test_mathematics_signs_are_text() -> None:
    drawn = texts(bar(1, 2, labels=("$5", "$10 or $20"), title="Costs $5 or $10?"))
    assert drawn[0] == "Costs $5 or $10?"
    assert {"$5", "$10 or $20"} <= set(drawn)


def test_long_labels_are_wrapped_not_cut() -> None:
    question = (
        "Over the last two weeks, how often did you feel that the priorities set for the team "
        "were clear enough for you to decide on your own what to work on next, without having "
        "to ask a lead, and did the planning meetings help with that or get in the way of it?"
    )
    assert len(question) < 300  # the longest question a pulse takes
    chart = Chart("Pulse", (question, "Short"), (ChartSeries("s", (3.0, 4.0)),), "", scale=(1, 5))
    label = next(t for t in texts(chart) if "\n" in t)
    assert " ".join(label.split("\n")) == question and style.ELLIPSIS not in label
    image = opened(render_png(chart))
    assert image.size[1] < 400
    assert max(bar_rows(image, PALETTE[0])) > WIDTH / 4  # the label column leaves room
    title = "A long question " * 12
    lines = texts(Chart(title, ("a",), (ChartSeries("s", (1.0,)),), ""))[:3]
    assert " ".join(" ".join(lines).split()) == title.strip()


def test_wrap_breaks_at_spaces_then_between_characters() -> None:
    def fits(text: str) -> bool:
        return len(text) <= 10

    assert chart_text.wrap("one two three four", fits, 5) == ["one two", "three four"]
    assert chart_text.wrap("日本語のラベルと中文标签", fits, 5) == ["日本語のラベルと中文", "标签"]
    assert chart_text.wrap("x" * 25, fits, 5) == ["x" * 10, "x" * 10, "x" * 5]
    cut = chart_text.wrap("word " * 20, fits, 2)
    assert len(cut) == 2 and cut[-1].endswith(style.ELLIPSIS) and all(map(fits, cut))
    assert chart_text.wrap("", fits, 3) == [""]


def test_numbers_as_written() -> None:
    assert chart_text.format_value(62, "%") == "62%"
    assert chart_text.format_value(3.456, "") == "3.5"
    assert chart_text.format_value(-0.01, "") == "0"
    assert chart_text.format_value(12, "pts") == "12 pts"
    assert chart_text.format_value(3.2, " / 5") == "3.2 / 5"
    assert chart_text.format_value(2.5, "", decimals=2) == "2.50"
    assert chart_text.format_value(20, "°C") == "20°C"
    assert chart_text.decimals_of(0.25) == 2 and chart_text.decimals_of(5) == 0
    assert (
        chart_text.round_ticks(3.2, 4.1)[0] <= 3.2 and chart_text.round_ticks(3.2, 4.1)[-1] >= 4.1
    )
    assert chart_text.axis_ticks(1, 5) == [1, 2, 3, 4, 5]
    assert chart_text.axis_ticks(-100, 100) == [-100, -50, 0, 50, 100]


# -- start-up -------------------------------------------------------------------------------------


def test_matplotlib_is_imported_on_the_first_chart_not_at_start_up() -> None:
    code = (
        "import sys, bot.app, bot.cli, bot.charts, adapters.console.render, "
        "adapters.slack.port, adapters.discord.render\n"
        "print(sorted(m for m in ('matplotlib', 'PIL', 'numpy') if m in sys.modules))\n"
        "from bot.charts import render_png\n"
        "from tests.fakes.chart_samples import RESULTS\n"
        "render_png(RESULTS)\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout + out.stderr
