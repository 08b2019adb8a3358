"""Who sees what: a signed-in person is a platform account (``platform``, ``user_id``); they
see the workspaces of that platform where they are a member, with the permission they have
there (an admin sees the whole workspace and may act on blockers; a member sees what the
workspace shares with its members, never an anonymous answer)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.commands.spec import Permission
from bot.events import Actor
from storage.models import Member, Workspace


@dataclass(frozen=True)
class Seat:
    """The viewer's place in one workspace."""

    workspace: Workspace
    member: Member
    permission: Permission

    @property
    def admin(self) -> bool:
        return self.permission >= Permission.ADMIN


async def permission_of(session: AsyncSession, member: Member) -> Permission:
    """As in chat (bot.directory.permission_of), from what syncup last saw of the member."""
    seen = Actor(member.platform_user_id, is_platform_admin=member.is_platform_admin)
    return await directory.permission_of(session, member, seen)


async def workspaces_of(session: AsyncSession, platform: str, user_id: str) -> list[Workspace]:
    found = await session.scalars(
        select(Workspace)
        .join(Member, Member.workspace_id == Workspace.id)
        .where(
            Workspace.platform == platform,
            Member.platform_user_id == user_id,
            Workspace.uninstalled_at.is_(None),
        )
        .order_by(Workspace.name, Workspace.id)
    )
    return list(found)


async def seat(
    session: AsyncSession, platform: str, user_id: str, workspace_id: int
) -> Seat | None:
    """The viewer's seat in the workspace; None when they are not one of its members."""
    found = (
        await session.execute(
            select(Workspace, Member)
            .join(Member, Member.workspace_id == Workspace.id)
            .where(
                Workspace.id == workspace_id,
                Workspace.platform == platform,
                Member.platform_user_id == user_id,
                Workspace.uninstalled_at.is_(None),
            )
        )
    ).one_or_none()
    if found is None:
        return None
    workspace, member = found
    return Seat(workspace, member, await permission_of(session, member))
