"""The matrix as people see it: a table of areas by people (R/A/C/I) when it fits in a message,
PNG charts when it does not, and one area in full."""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat import (
    Block,
    Bold,
    ChannelMention,
    Chart,
    Code,
    Context,
    Header,
    Inline,
    Message,
    Plain,
    Section,
    Text,
    UserMention,
    message,
    text,
)
from bot.features.raci.cells import ROLE_WORDS, Cell
from bot.features.raci.fields import format_days, format_hours
from bot.features.raci.people import CHANNEL, GROUP
from storage.raci import RaciArea, RaciRole

# A text table wider than this (characters) or longer than this goes out as a chart instead:
# Discord wraps code lines wider than about 60 characters on a phone, and a message holds 2,000.
MAX_TABLE_WIDTH = 60
MAX_TABLE_CHARS = 1800
# One chart holds at most this many people (columns) and areas (rows); a larger matrix is
# several charts, each saying which part it shows.
CHART_COLUMNS = 24
CHART_ROWS = 40
ORDER = (RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE, RaciRole.CONSULTED, RaciRole.INFORMED)


@dataclass(frozen=True)
class Matrix:
    """Areas (rows) by people, groups and channels (columns); each cell the roles held."""

    areas: tuple[str, ...]
    people: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]  # one row per area, one entry per person: "RA", ""


def column_label(cell: Cell) -> str:
    if cell.who.startswith(GROUP):
        return f"@{cell.label}"
    if cell.who.startswith(CHANNEL):
        return f"#{cell.label}"
    return cell.label


def build_matrix(rows: list[tuple[RaciArea, dict[RaciRole, list[Cell]]]]) -> Matrix:
    columns: dict[str, str] = {}  # who -> label
    for _, cells in rows:
        for found in cells.values():
            for cell in found:
                columns.setdefault(cell.who, column_label(cell))

    def rank(who: str) -> tuple[int, str]:
        kind = 2 if who.startswith(CHANNEL) else 1 if who.startswith(GROUP) else 0
        return kind, columns[who].casefold()

    order = sorted(columns, key=rank)
    table = []
    for _, cells in rows:
        held: dict[str, str] = {}
        for role in ORDER:
            for cell in cells.get(role, []):
                held[cell.who] = held.get(cell.who, "") + role.value
        table.append(tuple(held.get(who, "") for who in order))
    return Matrix(
        tuple(area.name for area, _ in rows), tuple(columns[w] for w in order), tuple(table)
    )


def table_lines(matrix: Matrix) -> list[str]:
    """The matrix as fixed-width lines (the first one the heading); no line starts or ends
    with a space (chat apps trim those inside code)."""
    first = max([len("Area"), *(len(a) for a in matrix.areas)])
    widths = [max(len(p), 2) for p in matrix.people]
    head = ["Area".ljust(first), *(p.ljust(w) for p, w in zip(matrix.people, widths, strict=True))]
    lines = ["  ".join(head).rstrip()]
    for area, row in zip(matrix.areas, matrix.cells, strict=True):
        cells = [(c or ".").ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join([area.ljust(first), *cells]).rstrip())
    return lines


def fits_as_text(lines: list[str]) -> bool:
    return (
        max(len(line) for line in lines) <= MAX_TABLE_WIDTH
        and sum(len(line) + 1 for line in lines) <= MAX_TABLE_CHARS
    )


def alt_text(matrix: Matrix, rows: range, columns: range) -> str:
    """The part of the matrix a chart shows, in words (screen readers; no image)."""
    said = []
    for r in rows:
        held = [f"{matrix.people[c]} {matrix.cells[r][c]}" for c in columns if matrix.cells[r][c]]
        said.append(f"{matrix.areas[r]}: {', '.join(held) or 'nobody'}")
    return "RACI matrix. " + "; ".join(said) + "."


def charts(matrix: Matrix, team: str) -> list[Chart]:
    """The matrix as grid charts of at most CHART_ROWS areas by CHART_COLUMNS people each."""
    out: list[Chart] = []
    row_parts = [
        range(i, min(i + CHART_ROWS, len(matrix.areas)))
        for i in range(0, len(matrix.areas), CHART_ROWS)
    ]
    col_parts = [
        range(i, min(i + CHART_COLUMNS, len(matrix.people)))
        for i in range(0, len(matrix.people), CHART_COLUMNS)
    ] or [range(0)]
    many = len(row_parts) * len(col_parts) > 1
    for rows in row_parts:
        for columns in col_parts:
            period = ""
            if many:
                period = (
                    f"areas {rows.start + 1}-{rows.stop} of {len(matrix.areas)}, "
                    f"people {columns.start + 1}-{columns.stop} of {len(matrix.people)}"
                )
            out.append(
                Chart(
                    title="RACI matrix",
                    labels=tuple(matrix.people[c] for c in columns),
                    series=(),
                    alt=alt_text(matrix, rows, columns),
                    style="grid",
                    team=team,
                    period=period,
                    headline="R Responsible · A Accountable · C Consulted · I Informed",
                    rows=tuple(matrix.areas[r] for r in rows),
                    cells=tuple(tuple(matrix.cells[r][c] for c in columns) for r in rows),
                )
            )
    return out


def matrix_message(rows: list[tuple[RaciArea, dict[RaciRole, list[Cell]]]], team: str) -> Message:
    if not rows:
        return message(
            "No RACI areas yet. A team lead or admin creates one with /raci setup.",
            summary="No RACI areas yet",
        )
    matrix = build_matrix(rows)
    lines = table_lines(matrix)
    legend = Context(
        text("R Responsible · A Accountable · C Consulted · I Informed. One area: /raci show AREA")
    )
    count = f"{len(rows)} area{'' if len(rows) == 1 else 's'}"
    if fits_as_text(lines):
        parts: list[Inline] = []
        for n, line in enumerate(lines):
            if n:
                parts.append(Plain("\n"))
            parts.append(Code(line))
        blocks: list[Block] = [Header(f"RACI matrix ({count})"), Section(Text(tuple(parts)))]
        return message(*blocks, legend, summary=f"RACI matrix, {count}")
    pictures = charts(matrix, team)
    return message(
        Header(f"RACI matrix ({count})"),
        *pictures,
        legend,
        summary=f"The RACI matrix ({count} by {len(matrix.people)} people)",
    )


# --- one area ------------------------------------------------------------------------------------


def who_text(cell: Cell, platform_ids: dict[int, str], members: list[str] | None = None) -> Text:
    if cell.who.startswith(GROUP):
        shown = text(Bold(f"@{cell.label}"), " (group")
        if members:
            shown += text(": ", ", ".join(members))
        return shown + ")"
    if cell.who.startswith(CHANNEL):
        return text(ChannelMention(cell.who.removeprefix(CHANNEL), cell.label))
    user_id = platform_ids.get(cell.member_id or 0)
    return text(UserMention(user_id, cell.label)) if user_id else text(f"@{cell.label}")


def role_lines(
    cells: dict[RaciRole, list[Cell]],
    platform_ids: dict[int, str],
    groups: dict[str, list[str]],
) -> list[Block]:
    blocks: list[Block] = []
    for role in ORDER:
        found = cells.get(role, [])
        line = text(Bold(f"{ROLE_WORDS[role]} ({role.value}): "))
        if not found:
            line += "nobody"
        for n, cell in enumerate(found):
            if n:
                line += ", "
            line += who_text(cell, platform_ids, groups.get(cell.who))
        blocks.append(Section(line))
    return blocks


def settings_text(area: RaciArea) -> Text:
    region = area.holiday_country or "none"
    if area.holiday_country and area.holiday_subdivision:
        region += f" {area.holiday_subdivision}"
    channel: Text = text(ChannelMention(area.channel_id)) if area.channel_id else text("not set")
    hours = format_hours(area.day_start_minute, area.day_end_minute)
    when = f" · {format_days(area.work_days)} {hours} {area.timezone} · public holidays: {region}"
    parts = text("Blocker cards in ", channel, when)
    if area.custom_holidays:
        parts += f" · other days off: {', '.join(area.custom_holidays)}"
    if area.keywords:
        parts += f" · keywords: {', '.join(area.keywords)}"
    return parts


def area_message(
    area: RaciArea,
    cells: dict[RaciRole, list[Cell]],
    platform_ids: dict[int, str],
    groups: dict[str, list[str]],
    *,
    settings: bool = True,
) -> Message:
    blocks: list[Block] = [Header(area.name)]
    blocks.extend(role_lines(cells, platform_ids, groups))
    if settings:
        blocks.append(Context(settings_text(area)))
    return message(*blocks, summary=f"RACI of {area.name}")
