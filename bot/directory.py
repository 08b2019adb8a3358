"""Workspaces, members and channels as the platforms describe them, kept up to date."""

from __future__ import annotations

import difflib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.parse import ChannelRef, MemberRef
from bot.commands.spec import Permission
from bot.errors import UserError
from bot.events import Actor
from storage.models import Channel, ChannelMember, Member, RoleAssignment, RoleName, Workspace


async def ensure_workspace(
    session: AsyncSession, platform: str, external_id: str, name: str, now: datetime
) -> Workspace:
    found = await session.scalar(
        select(Workspace).where(
            Workspace.platform == platform, Workspace.external_id == external_id
        )
    )
    if found is None:
        found = Workspace(platform=platform, external_id=external_id, name=name, created_at=now)
        session.add(found)
        await session.flush()
    elif name and found.name != name:
        found.name = name
    return found


async def ensure_member(
    session: AsyncSession, workspace: Workspace, actor: Actor, now: datetime
) -> Member:
    """Create or refresh a member; a platform zone fills in only what the member has not set."""
    found = await session.scalar(
        select(Member).where(
            Member.workspace_id == workspace.id, Member.platform_user_id == actor.user_id
        )
    )
    if found is None:
        found = Member(
            workspace_id=workspace.id,
            platform_user_id=actor.user_id,
            display_name=actor.display_name or actor.user_id,
            timezone=actor.timezone,
            timezone_set_by_member=False,
            created_at=now,
            updated_at=now,
        )
        session.add(found)
        await session.flush()
        return found
    if actor.display_name and found.display_name != actor.display_name:
        found.display_name = actor.display_name
        found.updated_at = now
    if actor.timezone and not found.timezone_set_by_member and found.timezone != actor.timezone:
        found.timezone = actor.timezone
        found.updated_at = now
    return found


async def ensure_channel(
    session: AsyncSession, workspace: Workspace, external_id: str, name: str, now: datetime
) -> Channel:
    found = await session.scalar(
        select(Channel).where(
            Channel.workspace_id == workspace.id, Channel.external_id == external_id
        )
    )
    if found is None:
        found = Channel(
            workspace_id=workspace.id, external_id=external_id, name=name, created_at=now
        )
        session.add(found)
        await session.flush()
    elif name and found.name != name:
        found.name = name
    return found


async def add_channel_members(
    session: AsyncSession, channel: Channel, members: list[Member]
) -> None:
    """Record that these members are in the channel (adapters call this as they learn it)."""
    known = set(
        await session.scalars(
            select(ChannelMember.member_id).where(ChannelMember.channel_id == channel.id)
        )
    )
    for member in members:
        if member.id not in known:
            session.add(ChannelMember(channel_id=channel.id, member_id=member.id))
            known.add(member.id)
    await session.flush()


async def channel_members(session: AsyncSession, channel: Channel) -> list[Member]:
    return list(
        await session.scalars(
            select(Member)
            .join(ChannelMember, ChannelMember.member_id == Member.id)
            .where(ChannelMember.channel_id == channel.id)
            .order_by(Member.display_name)
        )
    )


async def resolve_member(session: AsyncSession, workspace: Workspace, ref: MemberRef) -> Member:
    """The member a typed reference names, or a :class:`UserError` with the closest names."""
    query = select(Member).where(Member.workspace_id == workspace.id)
    if ref.user_id:
        found = await session.scalar(query.where(Member.platform_user_id == ref.user_id))
        if found is not None:
            return found
        raise UserError(f"{ref.raw} is not a member of this workspace that syncup knows.")
    members = list(await session.scalars(query))
    wanted = ref.name.lower()
    for member in members:
        if wanted in (member.display_name.lower(), member.platform_user_id.lower()):
            return member
    names = [m.display_name for m in members]
    close = difflib.get_close_matches(ref.name, names, n=1)
    hint = f" Did you mean @{close[0]}?" if close else ""
    raise UserError(f"No member named @{ref.name} in this workspace.{hint}")


async def resolve_channel(session: AsyncSession, workspace: Workspace, ref: ChannelRef) -> Channel:
    query = select(Channel).where(Channel.workspace_id == workspace.id)
    if ref.channel_id:
        found = await session.scalar(query.where(Channel.external_id == ref.channel_id))
    else:
        found = await session.scalar(query.where(Channel.name == ref.name))
    if found is None:
        raise UserError(f"I don't know the channel {ref.raw}. Invite syncup to it, then try again.")
    return found


async def permission_of(session: AsyncSession, member: Member, actor: Actor) -> Permission:
    if actor.is_platform_admin:
        return Permission.ADMIN
    roles = set(
        await session.scalars(
            select(RoleAssignment.role).where(RoleAssignment.member_id == member.id)
        )
    )
    if RoleName.ADMIN in roles:
        return Permission.ADMIN
    if RoleName.TEAM_LEAD in roles:
        return Permission.TEAM_LEAD
    return Permission.MEMBER
