"""What kudos look like: the channel post, the DMs, the giver's confirmation.

The reason is the giver's text and stays :class:`~bot.chat.Plain` (rendered verbatim, so
``@channel`` or ``@everyone`` in it pings nobody); only the receivers are real mentions, and only
in the post and the giver's reply. A platform mention typed inside the reason (``<@U123>``)
becomes the member's name as plain text: readable, and no ping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    Bold,
    ChannelMention,
    Context,
    Inline,
    Message,
    Plain,
    Section,
    Text,
    UserMention,
    marked,
    message,
    text,
)
from bot.features.kudos.rules import Allowance, describe_reset
from storage.kudos import Kudos
from storage.models import Member

_MENTION = re.compile(r"<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Given:
    kudos: Kudos
    giver: Member
    receivers: tuple[Member, ...]
    names: dict[str, str]  # platform user id -> name, for mentions typed in the reason
    left: Allowance | None = None


def name_of(member: Member) -> str:
    return member.display_name or member.platform_user_id


async def known_names(session: AsyncSession, workspace_id: int, reason: str) -> dict[str, str]:
    ids = set(_MENTION.findall(reason))
    if not ids:
        return {}
    rows = await session.execute(
        select(Member.platform_user_id, Member.display_name).where(
            Member.workspace_id == workspace_id, Member.platform_user_id.in_(ids)
        )
    )
    return {str(u): str(n or u) for u, n in rows.all()}


def reason_text(reason: str, names: dict[str, str]) -> Text:
    """The reason verbatim, with platform mentions of known members turned into "@name"."""
    parts: list[Inline] = []
    pos = 0
    for found in _MENTION.finditer(reason):
        name = names.get(found.group(1))
        if name is None:
            continue
        if found.start() > pos:
            parts.append(Plain(reason[pos : found.start()]))
        parts.append(Plain(f"@{name}"))
        pos = found.end()
    if pos < len(reason):
        parts.append(Plain(reason[pos:]))
    return Text(tuple(parts))


def mentions(members: tuple[Member, ...] | list[Member]) -> Text:
    parts: list[Inline | str] = []
    for n, member in enumerate(members):
        if n:
            parts.append(" and " if n == len(members) - 1 else ", ")
        parts.append(UserMention(member.platform_user_id, name_of(member)))
    return text(*parts)


def plain_names(members: tuple[Member, ...] | list[Member]) -> str:
    names = [f"@{name_of(m)}" for m in members]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _value_line(kudos: Kudos) -> list[Context]:
    return [Context(text(f"#{kudos.value}"))] if kudos.value else []


def post(given: Given) -> Message:
    """The kudos in the channel: the receivers are mentioned (pinged), the giver is named."""
    head = text(Bold("Kudos"), " from ", Bold(name_of(given.giver)), " to ")
    head += mentions(given.receivers)
    return message(
        Section(head),
        Section(reason_text(given.kudos.reason, given.names)),
        *_value_line(given.kudos),
        summary=f"Kudos from {name_of(given.giver)}",
    )


def receiver_dm(given: Given, receiver: Member) -> Message:
    kudos = given.kudos
    head = text(Bold(name_of(given.giver)), " gave you kudos")
    others = [r for r in given.receivers if r.id != receiver.id]
    if others:
        head += text(f" (with {plain_names(others)})")
    head += text(":")
    small: list[Inline | str] = [f"#{kudos.value}"] if kudos.value else []
    if small and (kudos.private or kudos.channel_id):
        small.append(" · ")
    if kudos.private:
        small.append("Private: only you and your team leads see it.")
    elif kudos.channel_id:
        small += ["Posted in ", ChannelMention(kudos.channel_id)]
    blocks: list = [Section(head), Section(reason_text(kudos.reason, given.names))]
    if small:
        blocks.append(Context(text(*small)))
    return message(*blocks, summary=f"{name_of(given.giver)} gave you kudos")


def lead_dm(given: Given, led: list[Member]) -> Message:
    """A private kudos, told to a receiver's team lead (plain names: nobody is pinged)."""
    head = text(
        Bold(name_of(given.giver)),
        f" gave private kudos to {plain_names(led)}; you see it as their team lead:",
    )
    return message(
        Section(head),
        Section(reason_text(given.kudos.reason, given.names)),
        *_value_line(given.kudos),
        summary=f"Private kudos for {plain_names(led)}",
    )


def confirmation(given: Given, now: datetime) -> Message:
    """The giver's private reply: where it went, and what is left today."""
    kudos = given.kudos
    head = text("Kudos to ") + mentions(given.receivers)
    if kudos.value:
        head += text(f" (#{kudos.value})")
    if kudos.private:
        head += text(" sent privately: only they and their team leads see it.")
    elif kudos.channel_id:
        head += text(" posted in ", ChannelMention(kudos.channel_id), ".")
    else:
        head += text(" sent to them by DM (no kudos channel is set; admins: ")
        head += marked("`/kudos settings channel #kudos`).")
    blocks: list = [Section(head)]
    if given.left is not None:
        blocks.append(Context(text(left_line(given.left, now))))
    return message(*blocks, summary="Kudos given")


def left_line(left: Allowance, now: datetime) -> str:
    when = describe_reset(left.resets_at, left.zone, now)
    if left.left == 0:
        return f"That was the last of your {left.quota} kudos for today; more from {when}."
    return f"You have {left.left} of {left.quota} kudos left today; the count resets at {when}."
