"""Who holds a role in an area, finding areas by name, and suggesting an area for a text.

Other features (blockers, escalation) use these; they are the contract in INTERFACES.md:
``role_members``, ``find_area``, ``area_key``, ``suggest_area``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from bot.events import Actor
from bot.port import DirectoryUnavailable, PlatformGroups
from storage.models import Member, Workspace
from storage.raci import RaciArea, RaciAssignment, RaciRole

if TYPE_CHECKING:
    from bot.core import Core

MEMBER = "member:"
GROUP = "group:"
CHANNEL = "channel:"


def area_key(name: str) -> str:
    """An area's name folded: case and runs of spaces do not make two areas."""
    return " ".join(name.split()).casefold()


async def areas_of(session: AsyncSession, workspace_id: int) -> list[RaciArea]:
    return list(
        await session.scalars(
            select(RaciArea).where(RaciArea.workspace_id == workspace_id).order_by(RaciArea.key)
        )
    )


async def find_area(session: AsyncSession, workspace_id: int, name: str) -> RaciArea:
    """The area called ``name`` (case and spacing ignored), or a :class:`UserError` that lists
    the areas there are."""
    key = area_key(name.strip().strip("\"'"))
    found = await session.scalar(
        select(RaciArea).where(RaciArea.workspace_id == workspace_id, RaciArea.key == key)
    )
    if found is not None:
        return found
    names = [area.name for area in await areas_of(session, workspace_id)]
    if not names:
        raise UserError(f'Unknown area "{name}"; there are no areas yet. Create one: /raci setup')
    raise UserError(f'Unknown area "{name}"; areas: {", ".join(names)}')


async def assignments(
    session: AsyncSession, area: RaciArea, role: RaciRole | None = None
) -> list[RaciAssignment]:
    query = select(RaciAssignment).where(RaciAssignment.area_id == area.id)
    if role is not None:
        query = query.where(RaciAssignment.role == role.value)
    return list(await session.scalars(query.order_by(RaciAssignment.id)))


async def role_members(
    session: AsyncSession, core: Core | None, area: RaciArea, role: RaciRole
) -> list[Member]:
    """The people who hold ``role`` in ``area``, each once, by display name.

    A member assigned directly counts; a group (Slack user group, Discord role) is expanded
    through the platform when the port can list group members (:class:`PlatformGroups`), and
    the people it names are stored as members if syncup has not seen them yet. When the
    platform cannot say (no such port, a missing scope), the group adds nobody: a ladder step
    for it then falls back to the other holders. Channels are places, not people: they add
    nobody here (a feature that posts to them reads the assignments).
    For the Accountable this is exactly one member (the matrix refuses anything else)."""
    cells = await assignments(session, area, role)
    people: dict[int, Member] = {}
    ids = [cell.member_id for cell in cells if cell.member_id is not None]
    if ids:
        for member in await session.scalars(select(Member).where(Member.id.in_(ids))):
            people[member.id] = member
    groups = [cell.who.removeprefix(GROUP) for cell in cells if cell.who.startswith(GROUP)]
    platform = core.directory if core is not None else None
    if groups and isinstance(platform, PlatformGroups):
        workspace = await session.get(Workspace, area.workspace_id)
        assert workspace is not None
        for group_id in groups:
            for member in await _group_people(session, platform, workspace, group_id, core):
                people.setdefault(member.id, member)
    return sorted(people.values(), key=lambda m: (m.display_name.casefold(), m.id))


async def _group_people(
    session: AsyncSession,
    platform: PlatformGroups,
    workspace: Workspace,
    group_id: str,
    core: Core | None,
) -> list[Member]:
    from bot import directory

    try:
        infos = await platform.group_members(workspace.external_id, group_id)
    except DirectoryUnavailable:
        return []
    now = core.clock.now() if core is not None else None
    found = []
    for info in infos:
        if info.is_bot:
            continue
        actor = Actor(info.user_id, info.display_name, info.timezone)
        stored = await session.scalar(
            select(Member).where(
                Member.workspace_id == workspace.id, Member.platform_user_id == info.user_id
            )
        )
        if stored is None and now is not None:
            stored = await directory.ensure_member(session, workspace, actor, now)
        if stored is not None:
            found.append(stored)
    return found


_WORD = re.compile(r"[^\w]+")


def _words(raw: str) -> str:
    return " " + " ".join(_WORD.sub(" ", raw.casefold()).split()) + " "


def _hits(keywords: Iterable[str], words: str) -> int:
    """How many keywords occur in ``words`` as whole words (a plural "s" or "es" allowed)."""
    hits = 0
    for keyword in keywords:
        folded = _words(keyword).strip()
        if not folded:
            continue
        if any(f" {folded}{tail} " in words for tail in ("", "s", "es")):
            hits += 1
    return hits


def suggest_area(areas: Sequence[RaciArea], text: str) -> RaciArea | None:
    """The area whose keywords (and name) a text mentions most, or None.

    Each keyword that occurs in the text as a whole word or phrase counts once (case,
    punctuation and a plural ending ignored); the area's own name counts as a keyword. The
    area with the most hits wins; a tie between areas is no suggestion (the reporter picks)."""
    words = _words(text)
    scored = sorted(
        ((_hits([area.name, *area.keywords], words), area) for area in areas),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if not scored or scored[0][0] == 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None
    return scored[0][1]
