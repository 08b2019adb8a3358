"""Workspaces, members and channels as the platforms describe them, kept up to date."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.parse import ChannelRef, MemberRef
from bot.commands.spec import Permission
from bot.errors import UserError
from bot.events import Actor
from bot.port import DirectoryUnavailable, MemberInfo, PlatformDirectory
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
            is_platform_admin=actor.is_platform_admin,
            created_at=now,
            updated_at=now,
        )
        session.add(found)
        await session.flush()
        return found
    if found.is_platform_admin != actor.is_platform_admin:  # listed by /syncup roles
        found.is_platform_admin = actor.is_platform_admin
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


async def resolve_member(
    session: AsyncSession,
    workspace: Workspace,
    ref: MemberRef,
    platform: PlatformDirectory | None = None,
    *,
    now: datetime | None = None,
) -> Member:
    """The member a typed reference names, or a :class:`UserError` with the closest names.

    Someone syncup has not stored yet is looked up on the platform when there is a ``platform``
    directory (by id for a mention, else by name) and stored with the name and zone it gives.
    """
    query = select(Member).where(Member.workspace_id == workspace.id)
    if ref.user_id:
        found = await session.scalar(query.where(Member.platform_user_id == ref.user_id))
        if found is not None:
            return found
        info = await _ask_member(platform, workspace, ref, user_id=ref.user_id)
        if info is None:
            raise UserError(f"{ref.raw} is not a member of this workspace that syncup knows.")
        return await _store_member(session, workspace, info, now)
    members = list(await session.scalars(query))
    wanted = ref.name.lower()
    for member in members:
        if wanted in (member.display_name.lower(), member.platform_user_id.lower()):
            return member
    info = await _ask_member(platform, workspace, ref, name=ref.name)
    if info is not None:
        return await _store_member(session, workspace, info, now)
    names = [m.display_name for m in members]
    close = difflib.get_close_matches(ref.name, names, n=1)
    hint = f" Did you mean @{close[0]}?" if close else ""
    raise UserError(f"No member named @{ref.name} in this workspace.{hint}")


async def _ask_member(
    platform: PlatformDirectory | None,
    workspace: Workspace,
    ref: MemberRef,
    *,
    user_id: str | None = None,
    name: str | None = None,
) -> MemberInfo | None:
    if platform is None:
        return None
    try:
        info = await platform.member_info(workspace.external_id, user_id=user_id, name=name)
    except DirectoryUnavailable as exc:
        raise UserError(str(exc)) from None
    if info is not None and info.is_bot:
        raise UserError(f"{ref.raw} is a bot; name a person instead.")
    return info


async def _store_member(
    session: AsyncSession, workspace: Workspace, info: MemberInfo, now: datetime | None
) -> Member:
    actor = Actor(info.user_id, info.display_name, info.timezone)
    return await ensure_member(session, workspace, actor, now or datetime.now(UTC))


async def resolve_channel(
    session: AsyncSession,
    workspace: Workspace,
    ref: ChannelRef,
    platform: PlatformDirectory | None = None,
    *,
    now: datetime | None = None,
    to_post: bool = False,
) -> Channel:
    """The channel a typed reference names, or a :class:`UserError` that says what to do.

    With a ``platform`` directory, a channel syncup has not stored yet is looked up there (by
    id, else by name) and stored; with ``to_post`` the platform is also asked, for a stored
    channel too, whether the bot may post there, and a refusal is a :class:`UserError` with the
    platform's reason (nothing is stored then). Without a directory, a stored channel is the
    best syncup knows: it has seen the channel, so it was in it.
    """
    query = select(Channel).where(Channel.workspace_id == workspace.id)
    if ref.channel_id:
        found = await session.scalar(query.where(Channel.external_id == ref.channel_id))
    else:
        found = await session.scalar(query.where(Channel.name == ref.name))
    if platform is None or (found is not None and not to_post):
        if found is None:
            raise UserError(
                f"I don't know the channel {ref.raw}. Invite syncup to it, then try again."
            )
        return found
    try:
        if found is not None:
            info = await platform.channel_info(workspace.external_id, channel_id=found.external_id)
        elif ref.channel_id:
            info = await platform.channel_info(workspace.external_id, channel_id=ref.channel_id)
        else:
            info = await platform.channel_info(workspace.external_id, name=ref.name)
    except DirectoryUnavailable as exc:
        raise UserError(str(exc)) from None
    if info is None:
        if found is not None:
            raise UserError(
                f"I can't see #{found.name} any more (deleted, archived or private?). "
                "Invite syncup to it, or choose another channel."
            )
        raise UserError(f"I don't know the channel {ref.raw}. Invite syncup to it, then try again.")
    if to_post and not info.can_post:
        raise UserError(
            info.reason
            or f"I can't post in #{info.name}: invite syncup to it first, then try again."
        )
    return await ensure_channel(
        session, workspace, info.channel_id, info.name, now or datetime.now(UTC)
    )


async def members_in_channel(
    session: AsyncSession,
    workspace: Workspace,
    channel: Channel,
    platform: PlatformDirectory | None = None,
    *,
    now: datetime | None = None,
) -> list[Member]:
    """Everyone in ``channel`` (for "#team" as participants), by display name.

    With a ``platform`` directory the platform's list is the answer (bots left out): its members
    are stored, new ones with their name and zone, and recorded as in the channel. Without one,
    it is whoever adapters have reported in the channel so far.
    """
    if platform is None:
        return await channel_members(session, channel)
    try:
        infos = await platform.channel_members(workspace.external_id, channel.external_id)
    except DirectoryUnavailable as exc:
        raise UserError(str(exc)) from None
    stamp = now or datetime.now(UTC)
    people: dict[int, Member] = {}
    for info in infos:
        if info.is_bot:
            continue
        member = await _store_member(session, workspace, info, stamp)
        people[member.id] = member
    found = sorted(people.values(), key=lambda m: m.display_name)
    await add_channel_members(session, channel, found)
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
