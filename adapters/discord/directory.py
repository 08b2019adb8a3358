"""What the core's database learns from Discord: guilds (workspaces), text channels and members.

On GUILD_CREATE the guild, its text channels and the members Discord sent are recorded, so a
setup form can name ``#team`` and ``@alice``; with the members intent, who can see each channel
is recorded too ("#team" as participants). Members named in a command's options are recorded
from the interaction's ``resolved`` data (no intent needed). A DM has no guild: it belongs to the
guild where syncup knows the member (the one whose DM channel it is first, then the latest).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from bot import directory
from bot.events import Actor
from bot.port import MemberInfo
from storage.db import Database
from storage.models import Member, Workspace

PLATFORM = "discord"


@dataclass(frozen=True)
class GuildMember:
    user_id: str
    display_name: str


@dataclass(frozen=True)
class GuildChannel:
    channel_id: str
    name: str
    # Members who can read it (known only with the members intent); None: unknown.
    members: tuple[str, ...] | None = None


async def sync_guild(
    db: Database,
    guild_id: str,
    name: str,
    channels: Iterable[GuildChannel],
    members: Iterable[GuildMember],
    now: datetime,
) -> None:
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, guild_id, name, now)
        known: dict[str, Member] = {}
        for member in members:
            actor = Actor(member.user_id, member.display_name)
            known[member.user_id] = await directory.ensure_member(session, workspace, actor, now)
        for channel in channels:
            row = await directory.ensure_channel(
                session, workspace, channel.channel_id, channel.name, now
            )
            if channel.members is not None:
                inside = [known[u] for u in channel.members if u in known]
                await directory.add_channel_members(session, row, inside)


async def record_resolved(
    db: Database, guild_id: str, guild_name: str, resolved: dict[str, Any], now: datetime
) -> None:
    """Members and channels an interaction names (``data.resolved``)."""
    users = resolved.get("users") or {}
    members = resolved.get("members") or {}
    channels = resolved.get("channels") or {}
    if not users and not channels:
        return
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, guild_id, guild_name, now)
        for user_id, user in users.items():
            if user.get("bot"):
                continue
            nick = (members.get(user_id) or {}).get("nick")
            name = nick or user.get("global_name") or user.get("username") or user_id
            await directory.ensure_member(session, workspace, Actor(str(user_id), name), now)
        for channel_id, channel in channels.items():
            if channel.get("type") in (0, 5) and channel.get("name"):
                await directory.ensure_channel(
                    session, workspace, str(channel_id), channel["name"], now
                )


async def workspace_for_dm(db: Database, user_id: str, channel_id: str | None) -> str | None:
    """The guild a DM (or a DM interaction) of ``user_id`` belongs to, or None."""
    async with db.transaction() as session:
        own_channel = case((Member.dm_channel_id == (channel_id or ""), 0), else_=1)
        found = await session.scalar(
            select(Workspace.external_id)
            .join(Member, Member.workspace_id == Workspace.id)
            .where(Workspace.platform == PLATFORM, Member.platform_user_id == user_id)
            .order_by(own_channel, Member.updated_at.desc())
            .limit(1)
        )
        return str(found) if found is not None else None


_NAMED = re.compile(r"(?<![\w<])@([\w.\-]{2,32})")
MAX_LOOKUPS = 25
Lookup = Callable[[str], Awaitable[MemberInfo | None]]


def named_members(values: dict[str, str | list[str]]) -> list[str]:
    """The ``@name`` tokens typed in a form (``@everyone``/``@here`` left out), in order."""
    found: list[str] = []
    for value in values.values():
        for piece in [value] if isinstance(value, str) else value:
            for name in _NAMED.findall(piece):
                if name.lower() not in ("everyone", "here") and name not in found:
                    found.append(name)
    return found


async def learn_named_members(
    db: Database,
    guild_id: str,
    guild_name: str,
    values: dict[str, str | list[str]],
    lookup: Lookup,
    now: datetime,
) -> None:
    """Record the members a form names (``@bob``) that syncup has not met yet, found with
    Discord's member search (no privileged intent needed), so the core can resolve them."""
    names = named_members(values)[:MAX_LOOKUPS]
    if not names:
        return
    async with db.transaction() as session:
        known = set(
            await session.scalars(
                select(func.lower(Member.display_name))
                .join(Workspace, Workspace.id == Member.workspace_id)
                .where(Workspace.platform == PLATFORM, Workspace.external_id == guild_id)
            )
        )
    learned: list[MemberInfo] = []
    for name in names:
        if name.lower() in known:
            continue
        found = await lookup(name)
        if found is not None and not found.is_bot:
            learned.append(found)
    if not learned:
        return
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, guild_id, guild_name, now)
        for member in learned:
            actor = Actor(member.user_id, member.display_name)
            await directory.ensure_member(session, workspace, actor, now)
