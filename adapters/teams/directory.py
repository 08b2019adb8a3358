"""What syncup can look up in Teams: a channel's members (the team's roster, from the connector),
and the channels and members it has conversation references for.

Teams offers no search of a tenant's people by name to a bot (that is Microsoft Graph, with an
admin's consent), so ``member_info`` by name answers only for people syncup has met; the core
already finds those in its own tables first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx

from adapters.teams.ids import member_key
from adapters.teams.refs import CHANNEL, MEMBER, Reference, References
from bot.port import ChannelInfo, DirectoryUnavailable, MemberInfo

Roster = Callable[[str, str], Awaitable[list[Any]]]


class TeamsDirectory:
    def __init__(self, refs: References, roster: Roster, now: Callable[[], datetime]) -> None:
        self.refs = refs
        self.roster = roster
        self.now = now

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        if user_id is None:
            return None
        ref = await self.refs.find(workspace_id, MEMBER, user_id)
        return MemberInfo(user_id, ref.name or user_id) if ref is not None else None

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        if channel_id is not None:
            ref = await self.refs.find(workspace_id, CHANNEL, channel_id)
            return ChannelInfo(channel_id, ref.name or channel_id) if ref is not None else None
        if name is None:
            return None
        found = await self.refs.channel_named(workspace_id, name)
        return ChannelInfo(found[0], found[1]) if found is not None else None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        """The roster of the channel's team, read from the connector; each member's reference
        is kept, so that syncup can open a chat with people who never wrote to it."""
        ref = await self.refs.find(workspace_id, CHANNEL, channel_id)
        if ref is None:
            raise DirectoryUnavailable(
                "syncup has not seen that channel yet: add the syncup app to its team first."
            )
        try:
            accounts = await self.roster(ref.service_url, channel_id)
        except httpx.HTTPStatusError as exc:
            raise DirectoryUnavailable(
                f"Teams would not list that channel's members ({exc.response.status_code}); "
                "check that the syncup app is still installed in its team."
            ) from None
        members: list[MemberInfo] = []
        for account in accounts:
            aad = getattr(account, "aad_object_id", None)
            if not aad:
                continue  # a bot
            key, name = member_key(str(aad)), str(getattr(account, "name", "") or "")
            member_ref = Reference(ref.service_url, str(account.id), None, name)
            # The core asks inside its transaction: stored once that has ended.
            self.refs.remember_later(workspace_id, MEMBER, key, member_ref, self.now())
            members.append(MemberInfo(key, name or key))
        return members
