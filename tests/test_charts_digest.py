"""The heatmap, trend and small-multiples charts: real PNGs (opened with Pillow), real SVGs
(parsed as XML), the colours where the data says, the alt text with the exact figures."""

from __future__ import annotations

import asyncio
import io
import xml.etree.ElementTree as ET

from PIL import Image

from bot import charts
from bot.charts import MAX_HEIGHT, PALETTE, WIDTH, render_png, render_svg
from bot.charts.heatmap import ANSWERED, COLORS, MISSED, NOT_ASKED, OFF, participation_heatmap
from bot.charts.multiples import small_multiples
from bot.charts.trends import trend_chart
from bot.chat import Chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = ("6 Oct", "13 Oct", "20 Oct", "27 Oct", "3 Nov")


def opened(png: bytes) -> Image.Image:
    Image.open(io.BytesIO(png)).verify()
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def count(image: Image.Image, color: str) -> int:
    rgb = tuple(int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return sum(n for n, c in image.getcolors(WIDTH * MAX_HEIGHT) or [] if c == rgb)


def svg_root(chart: Chart) -> ET.Element:
    svg = render_svg(chart)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("width", "").startswith(str(WIDTH * 72 // 100))  # 800 px as points
    return root


def texts(chart: Chart) -> list[str]:
    from matplotlib.text import Text

    with charts.drawing():
        drawn = charts.figure(chart)
        drawn.canvas.draw()
        return [t.get_text() for t in drawn.findobj(Text) if t.get_text() and t.get_visible()]


def heatmap(members: int, days: int) -> Chart:
    cycle = (ANSWERED, ANSWERED, MISSED, OFF, NOT_ASKED)
    cells = [[cycle[(m + d) % 5] for d in range(days)] for m in range(members)]
    return participation_heatmap(
        "Standup participation",
        [f"Member {m}" for m in range(members)],
        [f"D{d + 1}" for d in range(days)],
        cells,
        team="Platform",
        period="last 2 weeks",
    )


def test_a_heatmap_colours_each_cell_by_its_status_and_its_alt_text_counts_them() -> None:
    chart = heatmap(4, 5)
    image = opened(render_png(chart))
    assert image.size[0] == WIDTH
    # 4 x 5 cells: 8 answered, 4 missed, 4 off, 4 not asked (each cell about 40 x 22 px)
    answered = count(image, COLORS[ANSWERED])
    assert answered > 0 and count(image, COLORS[OFF]) > 0 and count(image, COLORS[MISSED]) > 0
    assert 1.6 < answered / count(image, COLORS[OFF]) < 2.4  # twice as many answered cells
    assert chart.alt == (
        "Standup participation: a heatmap of 4 members by 5 days (D1 to D5). 8 answered, "
        "4 missed, 4 off, 4 not asked; participation 67% of the days asked. Missed most: "
        "Member 0 (1), Member 1 (1), Member 2 (1), Member 3 (1)."
    )
    assert chart.headline == "Participation 67%"
    drawn = texts(chart)
    assert {"Member 0", "Member 3", "D1", "D5", "answered", "missed", "off", "not asked"} <= set(
        drawn
    )


def test_an_unknown_status_is_drawn_as_not_asked_and_short_rows_are_padded() -> None:
    chart = participation_heatmap("P", ["a", "b"], ["D1", "D2"], [["answered", "bogus"]])
    assert chart.cells == (("answered", ""), ("", ""))
    assert "1 answered, 0 missed, 0 off, 3 not asked; participation 100%" in chart.alt
    assert "Nobody missed a day." in chart.alt


def test_a_heatmap_of_many_members_stays_within_the_maximum_height_and_says_what_is_left_out():
    chart = heatmap(400, 30)
    image = opened(render_png(chart))
    assert image.size[0] == WIDTH and image.size[1] <= MAX_HEIGHT
    drawn = texts(chart)
    footer = [t for t in drawn if t.startswith("+ ") and "more members not drawn" in t]
    assert len(footer) == 1
    hidden = int(footer[0].split()[1])
    assert 0 < hidden < 400
    assert "a heatmap of 400 members" in chart.alt  # the counts cover everyone


def test_a_heatmap_svg_is_valid_xml_with_the_same_cells() -> None:
    root = svg_root(heatmap(3, 4))
    images = root.iter(f"{SVG}image")  # imshow: the cells as one embedded bitmap
    assert any(True for _ in images)


def test_trend_lines_draw_every_series_and_the_alt_text_says_how_each_moved() -> None:
    chart = trend_chart(
        "Pulse by question",
        WEEKS,
        [("Pace", [3.8, 3.5, None, 3.2, 3.0]), ("Clarity", [4.0, 4.1, 4.0, 4.2, 4.4])],
        scale=(1, 5),
        team="Platform",
    )
    assert chart.style == "line"
    assert chart.alt == (
        "Pulse by question: 2 lines over 5 weeks (6 Oct to 3 Nov). Pace: from 3.8 to 3 "
        "(down 0.8); low 3, high 3.8. Clarity: from 4 to 4.4 (up 0.4); low 4, high 4.4."
    )
    image = opened(render_png(chart))
    assert count(image, "#{:02x}{:02x}{:02x}".format(*PALETTE[0])) > 100
    assert count(image, "#{:02x}{:02x}{:02x}".format(*PALETTE[1])) > 100
    assert {"Pace", "Clarity", "6 Oct", "3 Nov"} <= set(texts(chart))
    assert len(list(svg_root(chart).iter(f"{SVG}path"))) > 10


def test_a_trend_with_one_value_or_none_says_so() -> None:
    chart = trend_chart("T", WEEKS, [("Once", [None, 2.0]), ("Never", [None])])
    assert "Once: 2, one week only." in chart.alt and "Never: no value." in chart.alt
    opened(render_png(chart))


def test_small_multiples_share_one_axis_and_draw_a_panel_per_series() -> None:
    panels = [(f"Team {n}", [10.0 * n + k for k in range(5)]) for n in range(5)]
    chart = small_multiples("Teams", WEEKS, panels, unit="%", scale=(0, 100))
    image = opened(render_png(chart))
    assert image.size[0] == WIDTH
    drawn = texts(chart)
    for n in range(5):
        assert f"Team {n}" in drawn
        assert f"{10 * n + 4}%" in drawn  # the latest value, large
        assert count(image, "#{:02x}{:02x}{:02x}".format(*PALETTE[n])) > 50
    assert drawn.count("100%") == 2  # y ticks on the first panel of each row only
    assert chart.alt.startswith("Teams: 5 panels over 5 weeks (6 Oct to 3 Nov). Team 0: from 0%")
    svg_root(chart)


def test_many_small_multiples_stay_within_the_maximum_height_and_say_how_many_are_left() -> None:
    panels = [(f"T{n}", [1.0, 2.0]) for n in range(40)]
    chart = small_multiples("Many", WEEKS[:2], panels)
    image = opened(render_png(chart))
    assert image.size[1] <= MAX_HEIGHT
    footer = [t for t in texts(chart) if t.startswith("+ ")]
    assert len(footer) == 1 and "more not drawn" in footer[0]
    assert "T39: from 1 to 2" in chart.alt


def test_the_same_chart_gives_the_same_bytes_and_picture_gives_both_drawings() -> None:
    chart = heatmap(5, 7)
    assert render_png(chart) == render_png(chart)
    assert render_svg(chart) == render_svg(chart)
    drawn = asyncio.run(charts.picture(chart))
    assert drawn.png == render_png(chart) and drawn.svg == render_svg(chart)
    assert drawn.alt == chart.alt


def test_an_empty_heatmap_and_empty_multiples_say_no_data() -> None:
    assert "No data" in texts(participation_heatmap("Empty", [], [], []))
    chart = small_multiples("Empty", WEEKS, [])
    assert "No data" in texts(chart)
