"""Saving an area and its cells, all checked first: one bad field and nothing is saved."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from bot.features.raci.cells import ROLE_OF_FIELD, Cell, Resolver, check_roles
from bot.features.raci.fields import AreaInput, raise_errors
from bot.features.raci.people import area_key, assignments
from storage.models import Blocker, BlockerStatus
from storage.raci import RaciArea, RaciAssignment, RaciRole

FIELD_OF_ROLE = {role: name for name, role in ROLE_OF_FIELD.items()}


def quoted(name: str) -> str:
    """An area's name as a command line takes it: in quotes when it has spaces."""
    return f'"{name}"' if " " in name else name


async def current_cells(session: AsyncSession, area: RaciArea) -> dict[RaciRole, list[Cell]]:
    cells: dict[RaciRole, list[Cell]] = {role: [] for role in RaciRole}
    for row in await assignments(session, area):
        cells[RaciRole(row.role)].append(Cell(row.who, row.label, row.member_id))
    return cells


async def check_name(
    session: AsyncSession, workspace_id: int, name: str, area: RaciArea | None
) -> None:
    """Refuse a name another area of the workspace has, whatever its case or spacing."""
    clash = await session.scalar(
        select(RaciArea).where(
            RaciArea.workspace_id == workspace_id, RaciArea.key == area_key(name)
        )
    )
    if clash is not None and (area is None or clash.id != area.id):
        raise UserError(
            f'There is already an area "{clash.name}" (names ignore case); choose another '
            f"name, or change that one with /raci edit {quoted(clash.name)}",
            field="name",
        )


async def save_area(
    resolver: Resolver, data: AreaInput, area: RaciArea | None, now: datetime
) -> RaciArea:
    """Create an area (``area`` None) or change one with what ``data`` gives; every problem is
    collected and raised at once, by form field, before anything changes."""
    session = resolver.session
    workspace = resolver.workspace
    errors: dict[str, str] = dict(data.errors)
    if area is None and data.name is None and "name" not in errors:
        errors["name"] = 'Give the area a name, e.g. "Data pipeline".'
    if data.name is not None:
        try:
            await check_name(session, workspace.id, data.name, area)
        except UserError as exc:
            errors["name"] = exc.message
    cells = (
        await current_cells(session, area) if area is not None else {role: [] for role in RaciRole}
    )
    for field_name, raws in data.roles.items():
        role = ROLE_OF_FIELD[field_name]
        try:
            cells[role] = await resolver.cells(raws, role)
        except UserError as exc:
            errors[field_name] = exc.message
    for role, problem in check_roles(cells).items():
        errors.setdefault(FIELD_OF_ROLE[role], problem)
    channel_id: str | None = area.channel_id if area is not None else None
    if data.channel is not None:
        try:
            channel_id = await resolver.area_channel(data.channel) if data.channel else None
        except UserError as exc:
            errors["channel"] = exc.message
    if errors:
        raise_errors(errors)

    if area is None:
        area = RaciArea(workspace_id=workspace.id, created_at=now)
        _defaults(area)
        session.add(area)
    if data.name is not None:
        area.name, area.key = data.name, area_key(data.name)
    area.channel_id = channel_id
    _apply(area, data)
    area.updated_at = now
    await session.flush()
    await replace_cells(session, area, cells)
    return area


def _defaults(area: RaciArea) -> None:
    area.timezone = "UTC"
    area.work_days = [1, 2, 3, 4, 5]
    area.day_start_minute, area.day_end_minute = 540, 1020
    area.custom_holidays = []
    area.keywords = []


def _apply(area: RaciArea, data: AreaInput) -> None:
    if data.timezone is not None:
        area.timezone = data.timezone
    if data.work_days is not None:
        area.work_days = data.work_days
    if data.hours is not None:
        area.day_start_minute, area.day_end_minute = data.hours
    if data.holidays is not None:
        area.holiday_country, area.holiday_subdivision = data.holidays
    if data.dates is not None:
        area.custom_holidays = data.dates
    if data.keywords is not None:
        area.keywords = data.keywords


async def replace_cells(
    session: AsyncSession, area: RaciArea, cells: dict[RaciRole, list[Cell]]
) -> None:
    """Make the area's cells exactly ``cells`` (only rows that change are touched)."""
    wanted = {(role.value, cell.who): cell for role, found in cells.items() for cell in found}
    existing = {(row.role, row.who): row for row in await assignments(session, area)}
    for key, row in existing.items():
        if key not in wanted:
            await session.delete(row)
        elif row.label != wanted[key].label:
            row.label = wanted[key].label
    for (role, who), cell in wanted.items():
        if (role, who) not in existing:
            session.add(
                RaciAssignment(
                    area_id=area.id, role=role, who=who, member_id=cell.member_id, label=cell.label
                )
            )
    await session.flush()


OPEN = (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED)


async def open_blockers(session: AsyncSession, area: RaciArea) -> int:
    """Blockers not yet resolved or cancelled that are in the area or wait on it."""
    count = await session.scalar(
        select(func.count())
        .select_from(Blocker)
        .where(
            Blocker.status.in_(OPEN),
            or_(Blocker.area_id == area.id, Blocker.waiting_on_area_id == area.id),
        )
    )
    return int(count or 0)


async def refuse_if_open(session: AsyncSession, area: RaciArea) -> None:
    """A :class:`UserError` saying how many blockers are open in the area or wait on it, and
    how to move or close them; nothing when there are none."""
    count = await open_blockers(session, area)
    if count:
        them = "1 open blocker is" if count == 1 else f"{count} open blockers are"
        raise UserError(
            f'{them} in "{area.name}" or waiting on it; move them to another area '
            f"(`/blocker reassign ID AREA`) or close them (`/blocker resolve ID`, `/blocker "
            f"cancel ID`) first. `/blocker list {area.name}` lists them."
        )


async def delete_area(session: AsyncSession, area: RaciArea) -> None:
    """Delete an area and its cells, refused while blockers are open in it or wait on it."""
    await refuse_if_open(session, area)
    await session.execute(delete(RaciAssignment).where(RaciAssignment.area_id == area.id))
    await session.delete(area)
    await session.flush()
