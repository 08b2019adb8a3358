"""The console's platform port: delivers outbox rows by printing them, and answers directory
look-ups from the demo workspace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters.console.demo import (
    CHANNELS_BY_ID,
    DEMO_CHANNELS,
    DEMO_GROUPS,
    MEMBERS_BY_ID,
    PLATFORM,
    WORKSPACE_ID,
    ActingMember,
    dm_channel,
    dm_user,
)
from adapters.console.render import heading, message_number
from adapters.console.screen import Screen
from adapters.console.shortcuts import Shown, shown_text
from bot.chat import Message
from bot.port import (
    ChannelInfo,
    Delivery,
    GroupInfo,
    MemberInfo,
    Method,
    PermanentDeliveryError,
    RateLimit,
    Receipt,
    Target,
)

# The console has no platform limits; pacing it would only slow the demo down.
UNLIMITED = RateLimit(rate=1000.0, burst=1000)


@dataclass(frozen=True)
class _Delivered:
    """A delivery accepted by the port, waiting to be printed."""

    outbox_id: int
    method: Method
    target: Target
    message: Message
    channel_id: str
    message_id: str | None


class ConsolePort:
    """Delivers outbox rows by printing them with their recipient.

    The worker sends rows of different (workspace, method) buckets concurrently, so the port
    does not print in ``deliver``: it accepts the row, answers with a receipt at once (message id
    ``m<outbox id>``) and prints on :meth:`flush`, in outbox order, which is the order the core
    queued them in. The console flushes each time the app has settled, so a transcript is the
    same on every run, and messages are numbered ``#1``, ``#2``... in the order they are shown.

    It is also the demo workspace's :class:`~bot.port.PlatformDirectory` and
    :class:`~bot.port.PlatformGroups`: members, channels and user groups come from the demo
    data, and ``#random`` is a channel syncup is not in (it cannot post there).
    """

    platform = PLATFORM

    def __init__(self, screen: Screen, acting: ActingMember) -> None:
        self.screen = screen
        self.acting = acting
        self._sent: dict[str, Receipt] = {}
        self._channel_of: dict[str, str] = {}
        self._waiting: list[_Delivered] = []
        self._numbers: dict[str, int] = {}
        # Numbered messages by number, for shortcuts (``/shortcut NAME #5``).
        self.shown: dict[int, Shown] = {}

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return {method: UNLIMITED for method in Method}

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    # -- the directory (PlatformDirectory) over the demo data ---------------------------------

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        wanted = user_id or (name or "").lower().removeprefix("@")
        demo = MEMBERS_BY_ID.get(wanted) if workspace_id == WORKSPACE_ID else None
        return None if demo is None else MemberInfo(demo.user_id, demo.user_id, demo.timezone)

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        if workspace_id != WORKSPACE_ID:
            return None
        wanted = (name or "").lower().removeprefix("#")
        for channel in DEMO_CHANNELS:
            if channel.channel_id == channel_id or (wanted and channel.name == wanted):
                return channel.info()
        return None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        channel = CHANNELS_BY_ID.get(channel_id) if workspace_id == WORKSPACE_ID else None
        if channel is None:
            return []
        return [
            MemberInfo(user_id, user_id, MEMBERS_BY_ID[user_id].timezone)
            for user_id in channel.members
        ]

    # -- user groups (PlatformGroups) over the demo data ---------------------------------------

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None:
        wanted = (name or "").lower().removeprefix("@")
        for group in DEMO_GROUPS if workspace_id == WORKSPACE_ID else ():
            if group.group_id == group_id or (wanted and group.name == wanted):
                return GroupInfo(group.group_id, group.name)
        return None

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        for group in DEMO_GROUPS if workspace_id == WORKSPACE_ID else ():
            if group.group_id == group_id:
                return [
                    MemberInfo(user_id, user_id, MEMBERS_BY_ID[user_id].timezone)
                    for user_id in group.members
                ]
        return []

    # -- delivery -------------------------------------------------------------------------------

    async def deliver(self, delivery: Delivery) -> Receipt:
        # A row accepted before (a retry after a lost outcome) is never printed twice.
        earlier = self._sent.get(delivery.idempotency_key)
        if earlier is not None:
            return earlier
        target = delivery.target
        message_id: str | None = f"m{delivery.outbox_id}"
        if delivery.method is Method.DM:
            user = target.user_id or dm_user(target.dm_channel_id)
            if user is None:
                raise PermanentDeliveryError("a DM needs the member's user id")
            if user not in MEMBERS_BY_ID:
                raise PermanentDeliveryError(f"no console member with id {user!r}")
            channel = target.dm_channel_id or dm_channel(user)
        elif delivery.method is Method.POST:
            channel = target.channel_id or target.dm_channel_id or ""
            if not channel:
                raise PermanentDeliveryError("a post needs a channel id")
        elif delivery.method is Method.UPDATE:
            message_id = target.message_id
            known = self._channel_of.get(message_id or "")
            if message_id is None or known is None:
                raise PermanentDeliveryError(f"update of {message_id}, never sent here")
            channel = target.channel_id or known
        else:
            if not target.user_id:
                raise PermanentDeliveryError("an ephemeral message needs the member's user id")
            channel = target.channel_id or dm_channel(target.user_id)
            message_id = None
        self._waiting.append(
            _Delivered(
                delivery.outbox_id,
                delivery.method,
                target,
                delivery.message,
                channel,
                message_id,
            )
        )
        receipt = Receipt(channel_id=channel, message_id=message_id)
        self._sent[delivery.idempotency_key] = receipt
        if message_id is not None:
            self._channel_of[message_id] = channel
        return receipt

    def waiting(self) -> bool:
        return bool(self._waiting)

    def flush(self) -> None:
        """Print every accepted delivery, in outbox order."""
        waiting, self._waiting = sorted(self._waiting, key=lambda d: d.outbox_id), []
        for delivered in waiting:
            self._show(delivered)

    def _number(self, message_id: str | None) -> str:
        number = self._numbers.get(message_id or "")
        return str(number) if number is not None else message_number(message_id)

    def _show(self, delivered: _Delivered) -> None:
        target = delivered.target
        where = self.screen.where(delivered.channel_id)
        replaces: str | None = None
        visible_to = dm_user(delivered.channel_id)
        if delivered.method is Method.UPDATE:
            title = heading(f"update of #{self._number(delivered.message_id)} in {where}")
            replaces = delivered.message_id
        elif delivered.method is Method.EPHEMERAL:
            user = target.user_id or ""
            who = "you" if user == self.acting.user_id else self.screen.renderer.user(user)
            title = heading(where, note=f" (only {who} can see this)")
            visible_to = user
        else:
            number = len(self._numbers) + 1
            self._numbers[delivered.message_id or ""] = number
            note = f" (thread of #{self._number(target.thread_of)})" if target.thread_of else ""
            title = heading(where, number=str(number), note=note)
        lines = self.screen.show(
            title,
            delivered.message,
            channel_id=delivered.channel_id,
            message_id=delivered.message_id,
            visible_to=visible_to,
            replaces=replaces,
        )
        numbered = self._numbers.get(delivered.message_id or "")
        if numbered is not None:
            text = shown_text(lines)
            self.shown[numbered] = Shown(numbered, delivered.channel_id, text, None, visible_to)

    def number_member_post(self, channel_id: str, user_id: str, text: str) -> int:
        """A member's own message (``/say``): the next number, kept for shortcuts."""
        number = len(self._numbers) + 1
        self._numbers[f"say:{number}"] = number
        self.shown[number] = Shown(number, channel_id, text, user_id, None)
        return number
