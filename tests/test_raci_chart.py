"""The RACI matrix as a picture: a grid chart (areas down the side, people across the top, each
cell coloured by its role) that is a valid PNG, the same bytes for the same matrix, tall enough
for its rows and never past the maximum height; a matrix larger than one chart holds is split
into charts that each say which part they show, with the same words in their alt text."""

from __future__ import annotations

from bot.charts import MAX_HEIGHT, PALETTE, WIDTH, render_png
from bot.chat import MESSAGE_ADAPTER, Chart, message
from bot.features.raci.render import CHART_COLUMNS, CHART_ROWS, Matrix, charts, table_lines
from tests.test_charts import count, opened

PEOPLE = ("alice", "bob", "carol", "Ana María López-Fernández", "@data-eng", "#data")
AREAS = ("Data pipeline", "Training", "Labeling and annotation (vendors)")
CELLS = (
    ("A", "R", "", "C", "R", "I"),
    ("", "A", "RA", "", "", ""),
    ("I", "", "R", "A", "C", ""),
)
ACCOUNTABLE = PALETTE[5]
RESPONSIBLE = PALETTE[0]
CONSULTED = PALETTE[2]


def matrix(areas: int = 3, people: int = 6) -> Matrix:
    names = tuple(f"person {n}" for n in range(people))
    rows = tuple(f"Area {n}" for n in range(areas))
    cells = tuple(tuple("RACI"[(r + c) % 4] for c in range(people)) for r in range(areas))
    return Matrix(rows, names, cells)


def test_the_matrix_is_a_png_with_a_coloured_cell_per_role() -> None:
    [chart] = charts(Matrix(AREAS, PEOPLE, CELLS), "Acme")
    assert chart.style == "grid" and chart.rows == AREAS and chart.labels == PEOPLE
    image = opened(render_png(chart))
    assert image.size[0] == WIDTH and 250 < image.size[1] < 600
    # Three Accountable cells, three and a half Responsible (RA is coloured by its R), two C.
    a, r, c = (count(image, color) for color in (ACCOUNTABLE, RESPONSIBLE, CONSULTED))
    assert a > 0 and r > 0 and c > 0
    assert 0.6 < (a / 3) / (c / 2) < 1.4  # cells of one size, whatever their role
    assert render_png(chart) == render_png(chart)  # deterministic
    other = Chart(**{**chart.__dict__, "cells": CELLS[::-1]})
    assert render_png(other) != render_png(chart)
    assert chart.alt == (
        "RACI matrix. Data pipeline: alice A, bob R, Ana María López-Fernández C, @data-eng R, "
        "#data I; Training: bob A, carol RA; Labeling and annotation (vendors): alice I, "
        "carol R, Ana María López-Fernández A, @data-eng C."
    )


def test_a_grid_chart_survives_the_outbox() -> None:
    [chart] = charts(Matrix(AREAS, PEOPLE, CELLS), "Acme")
    stored = MESSAGE_ADAPTER.dump_python(message(chart), mode="json")
    assert MESSAGE_ADAPTER.validate_python(stored).blocks[0] == chart


def test_many_areas_stay_within_the_maximum_height_and_are_split() -> None:
    big = matrix(areas=CHART_ROWS + 5, people=CHART_COLUMNS + 3)
    parts = charts(big, "Acme")
    assert len(parts) == 4
    assert (CHART_ROWS, CHART_COLUMNS) == (40, 24)
    assert [p.period for p in parts] == [
        "areas 1-40 of 45, people 1-24 of 27",
        "areas 1-40 of 45, people 25-27 of 27",
        "areas 41-45 of 45, people 1-24 of 27",
        "areas 41-45 of 45, people 25-27 of 27",
    ]
    # Every cell is in exactly one part.
    assert sum(len(p.rows) * len(p.labels) for p in parts) == len(big.areas) * len(big.people)
    tallest = opened(render_png(parts[0]))
    assert tallest.size == (WIDTH, tallest.size[1]) and tallest.size[1] <= MAX_HEIGHT


def test_the_text_table_keeps_its_columns_aligned() -> None:
    lines = table_lines(Matrix(AREAS[:2], PEOPLE[:3], tuple(row[:3] for row in CELLS[:2])))
    assert lines == [
        "Area           alice  bob  carol",
        "Data pipeline  A      R    .",
        "Training       .      A    RA",
    ]


def test_a_matrix_too_large_even_for_pictures_is_listed_in_words() -> None:
    from bot.features.raci.cells import Cell
    from bot.features.raci.render import MAX_CHARTS, MAX_LISTED, matrix_message
    from storage.raci import RaciArea, RaciRole
    from tests.raci_world import plain

    rows = []
    for n in range(CHART_ROWS * MAX_CHARTS + 1):  # one area more than six charts hold
        cells = {role: [] for role in RaciRole}
        cells[RaciRole.RESPONSIBLE] = [Cell(f"member:{n % 9 + 1}", f"person {n % 9 + 1}", n)]
        cells[RaciRole.ACCOUNTABLE] = [Cell("member:0", "alice", 0)]
        cells[RaciRole.INFORMED] = [Cell("channel:C1", "data")]
        rows.append((RaciArea(name=f"Area {n:03d}"), cells))
    shown = matrix_message(rows, "Acme")
    assert not [b for b in shown.blocks if isinstance(b, Chart)]
    lines = plain(shown).splitlines()
    assert lines[0] == f"RACI matrix ({len(rows)} areas)"
    assert lines[1] == "Area 000: R person 1 · A alice · I #data"
    assert len(lines) == 1 + MAX_LISTED + 1
    assert lines[-1] == (
        f"{len(rows) - MAX_LISTED} more areas are not listed. As pictures this matrix would be "
        "7 charts. One area: /raci show AREA; all of it as CSV: syncup raci export (on the "
        "server)."
    )
    # Six charts' worth is still pictures.
    assert any(isinstance(b, Chart) for b in matrix_message(rows[:-1], "Acme").blocks)
