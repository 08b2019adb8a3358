"""The gateway side: a discord.py client (sharded when configured) that feeds syncup.

discord.py keeps the websocket alive (HELLO, heartbeats, IDENTIFY/RESUME, reconnects, shards) and
parses events; syncup listens to a few: ``on_interaction`` (everything a member does with
commands, buttons, selects and modals), ``on_message`` in DMs (the standup conversation),
``on_guild_available``/``on_guild_join`` and channel creates/renames (to learn the guild's
channels and members) and
``on_guild_remove`` (the bot was removed: the guild's data is deleted after a grace period).
Sends do not go through discord.py: see :mod:`adapters.discord.rest`.

Where discord.py connects to is set in two places, both checked by a test so that an upgrade
that moves them fails loudly: ``discord.http.Route.BASE`` (REST) and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (the websocket, taken from
``GET /gateway/bot`` of the configured API, so a proxy in ``api_base_url`` serves both). These
are process-wide: one syncup Discord bot per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
import yarl
from discord import VoiceClient
from discord.gateway import DiscordWebSocket

from adapters.discord.interactions import Incoming, IncomingDM
from adapters.discord.port import display_name

log = logging.getLogger(__name__)

GUILD_READY_TIMEOUT = 2.0
# syncup has no voice: discord.py's warnings about voice libraries would only confuse operators.
VoiceClient.warn_nacl = False
VoiceClient.warn_dave = False


def point_at(api_base_url: str) -> None:
    """Send discord.py's REST requests to ``api_base_url`` (e.g. a proxy or a fake)."""
    discord.http.Route.BASE = api_base_url.rstrip("/")


def intents(members_intent: bool) -> discord.Intents:
    """Guilds (channels, the guild's name) and DMs; no message content (not needed for DMs to
    the bot); the privileged members intent only when configured."""
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.dm_messages = True
    chosen.members = members_intent
    return chosen


def incoming_interaction(interaction: discord.Interaction) -> Incoming:
    user = interaction.user
    permissions = interaction.permissions
    is_admin = bool(
        interaction.guild_id is not None and (permissions.administrator or permissions.manage_guild)
    )
    channel = interaction.channel
    guild = interaction.guild
    message = interaction.message
    return Incoming(
        id=str(interaction.id),
        token=interaction.token,
        type=int(interaction.type.value),
        data=dict(interaction.data or {}),
        user_id=str(user.id),
        display_name=user.display_name,
        is_admin=is_admin,
        guild_id=str(interaction.guild_id) if interaction.guild_id else None,
        guild_name=guild.name if guild is not None and guild.name else "",
        channel_id=str(interaction.channel_id) if interaction.channel_id else None,
        channel_name=str(getattr(channel, "name", "") or ""),
        message_id=str(message.id) if message is not None else None,
    )


GuildHandler = Callable[[discord.Guild], Awaitable[None]]


def build_client(
    *,
    members_intent: bool,
    shard_count: int | None,
    shard_ids: list[int],
    on_interaction: Callable[[Incoming], Awaitable[None]],
    on_dm: Callable[[IncomingDM], Awaitable[None]],
    on_guild: GuildHandler,
    on_guild_removed: GuildHandler,
    on_channel: Callable[[discord.abc.GuildChannel], Awaitable[None]],
    on_ready: Callable[[], None],
    guild_ready_timeout: float = GUILD_READY_TIMEOUT,
) -> discord.Client:
    options: dict[str, Any] = {
        "intents": intents(members_intent),
        "chunk_guilds_at_startup": False,
        "guild_ready_timeout": guild_ready_timeout,
        "max_messages": None,
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    client: discord.Client
    if shard_count is not None:
        client = discord.AutoShardedClient(
            shard_count=shard_count, shard_ids=shard_ids or None, **options
        )
    else:
        client = discord.Client(**options)
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(work: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("discord: %s failed", name)

        task = asyncio.create_task(guarded(), name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def setup_hook() -> None:
        # The gateway URL comes from the configured API (a proxy serves both).
        _, url, _ = await client.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def handle_interaction(interaction: discord.Interaction) -> None:
        await on_interaction(incoming_interaction(interaction))

    async def handle_message(msg: discord.Message) -> None:
        if msg.guild is not None or msg.author.bot or client.user is None:
            return
        if msg.author.id == client.user.id:
            return
        dm = IncomingDM(
            str(msg.id),
            str(msg.channel.id),
            str(msg.author.id),
            display_name(
                {"global_name": msg.author.global_name, "username": msg.author.name},
            ),
            msg.content,
        )
        await on_dm(dm)

    async def handle_guild(guild: discord.Guild) -> None:
        spawn(on_guild(guild), f"discord guild {guild.id}")

    async def handle_guild_removed(guild: discord.Guild) -> None:
        spawn(on_guild_removed(guild), f"discord guild {guild.id} removed")

    async def handle_channel(channel: discord.abc.GuildChannel) -> None:
        spawn(on_channel(channel), f"discord channel {channel.id}")

    async def handle_channel_update(
        before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        if before.name != after.name:
            spawn(on_channel(after), f"discord channel {after.id}")

    async def handle_ready() -> None:
        on_ready()

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    client.event(_named("on_interaction", handle_interaction))
    client.event(_named("on_message", handle_message))
    client.event(_named("on_guild_available", handle_guild))
    client.event(_named("on_guild_join", handle_guild))
    client.event(_named("on_guild_remove", handle_guild_removed))
    client.event(_named("on_guild_channel_create", handle_channel))
    client.event(_named("on_guild_channel_update", handle_channel_update))
    client.event(_named("on_ready", handle_ready))
    return client


def _named(name: str, coro: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    coro.__name__ = name
    return coro
