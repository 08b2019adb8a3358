"""Context-menu commands on the fake Discord: a member's message to run one on, and the
INTERACTION_CREATE Discord dispatches when a member picks an entry of a message's or a member's
Apps menu (an APPLICATION_COMMAND interaction whose ``data.type`` is 3 or 2, the target in
``data.resolved``). Registration of these commands is checked by the server's PUT handler
(:func:`tests.fakes.discord.limits.check_command`)."""

from __future__ import annotations

from typing import Any

from tests.fakes.discord.server import (
    FakeDiscord,
    FakeGuild,
    Interaction,
    member_payload,
    snowflake,
)

APPLICATION_COMMAND = 2
USER, MESSAGE = 2, 3


def member_message(
    fake: FakeDiscord, guild: FakeGuild, channel: str, user_id: str, content: str
) -> dict[str, Any]:
    """A member's message in a guild channel, as Discord shows it in ``data.resolved``."""
    channel_id = fake.channel_id(guild, channel)
    return fake._message(channel_id, content, author=fake.users[user_id])


async def context_menu(
    fake: FakeDiscord,
    name: str,
    *,
    user_id: str,
    guild: FakeGuild,
    message: dict[str, Any] | None = None,
    target_user: str | None = None,
    channel: str = "team",
    interaction_id: str | None = None,
) -> Interaction:
    """``user_id`` picks the entry ``name`` on ``message`` (type 3) or on the member
    ``target_user`` (type 2)."""
    data: dict[str, Any] = {"id": snowflake(), "name": name, "guild_id": guild.id}
    if message is not None:
        data.update(
            type=MESSAGE, target_id=message["id"], resolved={"messages": {message["id"]: message}}
        )
        channel_id = message["channel_id"]
    else:
        assert target_user is not None
        member = member_payload(fake.users[target_user])
        member.pop("user", None)  # resolved members come without their user
        data.update(
            type=USER,
            target_id=target_user,
            resolved={
                "users": {target_user: fake.users[target_user]},
                "members": {target_user: member},
            },
        )
        channel_id = fake.channel_id(guild, channel)
    return await fake._interact(
        APPLICATION_COMMAND,
        data,
        user_id=user_id,
        guild=guild,
        channel_id=channel_id,
        interaction_id=interaction_id,
    )
