"""Finding what a command names: a blocker by its number, an area, what a blocker waits on,
and how people and times are shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from bot import directory
from bot.commands.parse import member_ref
from bot.errors import UserError
from bot.features.raci import people
from bot.port import PlatformDirectory
from storage.models import Blocker, Member, Workspace
from storage.raci import RaciArea


def parse_id(raw: str) -> int:
    value = str(raw).strip().removeprefix("#")
    if not value.isdigit():
        raise UserError(f'"{raw}" is not a blocker number; `/blocker list` shows them (e.g. 7).')
    return int(value)


async def find(
    session: AsyncSession, workspace_id: int, raw: str | int, *, lock: bool = False
) -> Blocker:
    """The workspace's blocker numbered ``raw``, fresh from the database; ``lock``: with its row
    locked until the transaction ends (PostgreSQL; SQLite's write transactions queue whole), so
    two people pressing Resolve at once are served one after the other and the second sees the
    first's change. Another workspace's blocker is "no such blocker" too."""
    blocker_id = raw if isinstance(raw, int) else parse_id(raw)
    query = (
        select(Blocker)
        .where(Blocker.id == blocker_id, Blocker.workspace_id == workspace_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    blocker = await session.scalar(query)
    if blocker is None:
        raise UserError(f"There is no blocker #{blocker_id} here; `/blocker list` shows them.")
    return blocker


async def areas(session: AsyncSession, workspace_id: int) -> list[RaciArea]:
    return list(
        await session.scalars(
            select(RaciArea).where(RaciArea.workspace_id == workspace_id).order_by(RaciArea.name)
        )
    )


async def area(session: AsyncSession, workspace_id: int, name: str) -> RaciArea:
    """The area named ``name`` (folded), or a UserError listing the areas."""
    return await people.find_area(session, workspace_id, name)


def is_member_ref(raw: str) -> bool:
    raw = raw.strip()
    return raw.startswith("@") or member_ref(raw).user_id is not None


async def waiting_on(
    session: AsyncSession,
    workspace: Workspace,
    raw: str,
    platform: PlatformDirectory | None,
    now: datetime,
) -> tuple[Member | None, RaciArea | None]:
    """What ``--waiting-on`` names: ``@who`` (a mention or a name) is a member of the
    workspace; anything else is an area, or a member of that name when no area has it."""
    raw = raw.strip()
    if not raw:
        raise UserError("Say what the blocker waits on: @someone or an area's name.")
    if is_member_ref(raw):
        return await directory.resolve_member(
            session, workspace, member_ref(raw), platform, now=now
        ), None
    try:
        return None, await people.find_area(session, workspace.id, raw)
    except UserError as unknown_area:
        try:
            return await directory.resolve_member(session, workspace, member_ref(raw), None), None
        except UserError:
            raise unknown_area from None


def name_of(member: Member | None) -> str:
    if member is None:
        return "someone"
    return member.display_name or member.platform_user_id


def zone_of(member: Member | None) -> str:
    return (member.timezone if member is not None else None) or "UTC"


def local(when: datetime, zone: str) -> str:
    """``Mon 9 Mar 14:05`` in ``zone``."""
    at = when.astimezone(ZoneInfo(zone))
    return f"{at:%a} {at.day} {at:%b %H:%M}"


def span(delta: timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``12m``: an age, to the minute."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m"


def between(start: datetime, end: datetime) -> str:
    """:func:`span` from ``start`` to ``end`` as they are shown (to the minute), so that the age
    agrees with the two times printed beside it whatever their seconds."""
    return span(end.replace(second=0, microsecond=0) - start.replace(second=0, microsecond=0))


async def members(session: AsyncSession, ids: set[int | None]) -> dict[int, Member]:
    """The members by id: those the session holds already without a query (a card drawn as
    a blocker opens knows its reporter), the rest in one."""
    wanted = {i for i in ids if i is not None}
    found: dict[int, Member] = {}
    for member_id in wanted:
        held = session.identity_map.get(identity_key(Member, member_id))
        if held is not None:
            found[member_id] = held
    missing = wanted - set(found)
    if missing:
        rows = await session.scalars(select(Member).where(Member.id.in_(missing)))
        found.update({m.id: m for m in rows})
    return found
