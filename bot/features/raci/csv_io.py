"""``syncup raci import FILE.csv`` and ``syncup raci export``: the matrix as a spreadsheet.

The file has a header row ``area,role,who`` and one row per cell:
- ``area``: the area's name (case and spacing ignored: "Data pipeline" and "data pipeline" are
  one area; a new area gets the name as first written and default settings: UTC, Mon-Fri
  09:00-17:00, no holidays, set them with ``/raci edit``);
- ``role``: ``R``, ``A``, ``C`` or ``I`` (or the words Responsible, Accountable, ...);
- ``who``: one reference, as in the commands (:mod:`.cells`): ``@display name`` or a platform
  user id for a member, ``@handle`` or a platform group id for a user group, ``#channel``.

An import reads every row first and reports every bad row with its line number; only a file
without one changes anything, and then all of it, in one transaction. Each area in the file gets
exactly the cells the file gives it (its settings are kept); areas not in the file are left as
they are. An export writes the same format, so export then import changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from bot.features.raci.cells import ROLE_WORDS, Cell, Resolver, check_roles, references
from bot.features.raci.fields import parse_name
from bot.features.raci.people import GROUP, area_key, areas_of
from bot.features.raci.store import current_cells, replace_cells
from storage.errors import OperatorError
from storage.models import Member, Workspace
from storage.raci import RaciArea, RaciAssignment, RaciRole

HEADER = ("area", "role", "who")
ORDER = (RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE, RaciRole.CONSULTED, RaciRole.INFORMED)
MAX_ERRORS_SHOWN = 200
_ROLES = {role.value.lower(): role for role in RaciRole} | {
    word.lower(): role for role, word in ROLE_WORDS.items()
}


async def pick_workspace(session: AsyncSession, wanted: str | None) -> Workspace:
    """The workspace ``--workspace`` names (its platform id or name), or the only one."""
    workspaces = list(await session.scalars(select(Workspace).order_by(Workspace.id)))
    listed = ", ".join(f"{w.external_id} ({w.name or 'no name'}, {w.platform})" for w in workspaces)
    if wanted:
        for workspace in workspaces:
            if wanted in (workspace.external_id, workspace.name) or (
                workspace.name and workspace.name.casefold() == wanted.casefold()
            ):
                return workspace
        raise OperatorError(f'No workspace "{wanted}"; workspaces: {listed or "none yet"}.')
    if not workspaces:
        raise OperatorError(
            "syncup has no workspace yet: start it on Slack or Discord (or the console) once, "
            "then import."
        )
    if len(workspaces) > 1:
        raise OperatorError(f"Name the workspace with --workspace; workspaces: {listed}.")
    return workspaces[0]


# --- export ----------------------------------------------------------------------------------


async def export_matrix(session: AsyncSession, workspace: Workspace, out: TextIO) -> int:
    """Write the workspace's matrix; the number of rows (cells) written."""
    members = {
        m.id: m
        for m in await session.scalars(select(Member).where(Member.workspace_id == workspace.id))
    }
    rows = await session.execute(
        select(RaciAssignment.who, RaciAssignment.label)
        .join(RaciArea, RaciArea.id == RaciAssignment.area_id)
        .where(RaciArea.workspace_id == workspace.id, RaciAssignment.who.startswith(GROUP))
    )
    groups = {who.removeprefix(GROUP): label for who, label in rows}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for area in await areas_of(session, workspace.id):
        cells = await current_cells(session, area)
        for role in ORDER:
            for ref in references(cells[role], members, groups, workspace.platform):
                writer.writerow((area.name, role.value, ref))
                count += 1
    return count


# --- import ----------------------------------------------------------------------------------


@dataclass
class _Area:
    name: str
    cells: dict[RaciRole, list[Cell]] = field(default_factory=lambda: {r: [] for r in RaciRole})
    lines: dict[RaciRole, list[int]] = field(default_factory=lambda: {r: [] for r in RaciRole})


@dataclass(frozen=True)
class ImportResult:
    areas: int
    created: int
    cells: int


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The file's rows with their line numbers (a quoted value may span lines)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise OperatorError(f"Cannot read {path}: no such file.") from None
    except UnicodeDecodeError:
        raise OperatorError(
            f"Cannot read {path}: it is not UTF-8 text; save it as CSV UTF-8."
        ) from None
    except csv.Error as exc:
        raise OperatorError(f"Cannot read {path} as CSV: {exc}.") from None
    except OSError as exc:
        raise OperatorError(f"Cannot read {path}: {exc.strerror or exc}.") from None


async def import_matrix(
    session: AsyncSession,
    workspace: Workspace,
    rows: Iterable[tuple[int, list[str]]],
    now: datetime,
) -> ImportResult:
    """Check every row, then import all of it; an :class:`OperatorError` listing every bad row
    (``line N: what is wrong``) and nothing changed otherwise."""
    resolver = Resolver(session, workspace, None, now)
    errors: list[str] = []
    areas: dict[str, _Area] = {}
    bad_areas: set[str] = set()
    rows = list(rows)
    if not rows or [c.strip().lower() for c in rows[0][1]] != list(HEADER):
        found = ",".join(rows[0][1]) if rows else "an empty file"
        raise OperatorError(
            f'line 1: the first row must be the header area,role,who (found "{found}").'
        )
    for line, row in rows[1:]:
        if not any(c.strip() for c in row):
            continue  # a blank line
        problem = await _row(resolver, areas, line, row)
        if problem:
            errors.append(f"line {line}: {problem}")
            if len(row) == len(HEADER) and row[0].strip():
                bad_areas.add(area_key(row[0]))
    for key, area in areas.items():
        if key in bad_areas:
            continue  # its bad row is told; "no Accountable" after it would say it twice
        for role, problem in check_roles(area.cells).items():
            where = area.lines[role] or sorted({n for ns in area.lines.values() for n in ns})[:1]
            lines = ", ".join(str(n) for n in where)
            errors.append(f'area "{area.name}" (line {lines}): {problem}')
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        tail = [f"... and {more} more."] if more else []
        raise OperatorError(
            "\n".join(
                [f"{len(errors)} problem(s) in the file; nothing was imported:", *shown, *tail]
            )
        )
    existing = {area.key: area for area in await areas_of(session, workspace.id)}
    created = 0
    count = 0
    for key, found in areas.items():
        area = existing.get(key)
        if area is None:
            area = RaciArea(
                workspace_id=workspace.id,
                name=found.name,
                key=key,
                timezone="UTC",
                work_days=[1, 2, 3, 4, 5],
                day_start_minute=540,
                day_end_minute=1020,
                custom_holidays=[],
                keywords=[],
                created_at=now,
                updated_at=now,
            )
            session.add(area)
            await session.flush()
            created += 1
        else:
            area.updated_at = now
        await replace_cells(session, area, found.cells)
        count += sum(len(cells) for cells in found.cells.values())
    return ImportResult(len(areas), created, count)


async def _row(resolver: Resolver, areas: dict[str, _Area], line: int, row: list[str]) -> str:
    """What is wrong with one row ("" when nothing), its cell added to ``areas``."""
    if len(row) != len(HEADER):
        return f"expected 3 values (area,role,who), found {len(row)}."
    raw_area, raw_role, raw_who = (value.strip() for value in row)
    try:
        name = parse_name(raw_area)
    except UserError as exc:
        return exc.message
    role = _ROLES.get(raw_role.lower())
    if role is None:
        return f'unknown role "{raw_role}"; use R, A, C or I.'
    if not raw_who:
        return "who is empty; give @member, @group or #channel."
    try:
        cell = await resolver.cell(raw_who, role)
    except UserError as exc:
        return exc.message
    area = areas.setdefault(area_key(name), _Area(name))
    if cell.who not in (c.who for c in area.cells[role]):
        area.cells[role].append(cell)
    area.lines[role].append(line)
    return ""
