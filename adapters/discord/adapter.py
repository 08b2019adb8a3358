"""The Discord adapter: the gateway client, the interaction handler and the outbox port, wired to
the app (``bot.app.load_adapter`` builds it through :func:`adapters.discord.create_adapter`)."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

import aiohttp
import discord

from adapters.discord.client import build_client, point_at
from adapters.discord.directory import GuildChannel, GuildMember, sync_guild
from adapters.discord.interactions import ACK_SECONDS, Incoming, IncomingDM, Interactions
from adapters.discord.port import PLATFORM, DiscordPort
from adapters.discord.rest import DiscordHTTPError, DiscordRest
from bot.clock import Clock
from bot.config import ConfigError, DiscordSection, Settings
from bot.port import ChannelInfo, DirectoryUnavailable, MemberInfo
from bot.workspace_removal import mark_installed, mark_uninstalled

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


class DiscordAdapter:
    def __init__(
        self,
        settings: DiscordSection,
        *,
        clock: Clock | None = None,
        ack_seconds: float = ACK_SECONDS,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        if settings.token is None or not settings.token.get_secret_value().strip():
            raise ConfigError(
                "[discord] token is not set: set SYNCUP_DISCORD_TOKEN to the bot token "
                "(Developer Portal, Bot, Reset Token). See docs/discord.md."
            )
        if settings.shard_ids and settings.shard_count is None:
            raise ConfigError(
                "[discord] shard_ids needs shard_count (the total number of shards across "
                "every process)."
            )
        if settings.shard_count is not None and any(
            s >= settings.shard_count for s in settings.shard_ids
        ):
            raise ConfigError(
                f"[discord] shard_ids must be below shard_count ({settings.shard_count})."
            )
        self.settings = settings
        self._token = settings.token.get_secret_value().strip()
        self._clock = clock
        self.ack_seconds = ack_seconds
        self.guild_ready_timeout = guild_ready_timeout
        self.rest = DiscordRest(settings.api_base_url, self._token)
        self.discord_port = DiscordPort(
            self.rest, members_intent=settings.members_intent, cached_channel=self._cached_channel
        )
        self.port = self.discord_port
        self.client: discord.Client | None = None
        self.interactions: Interactions | None = None
        self.ready = asyncio.Event()
        self.guilds_synced: set[str] = set()
        # Interactions and DMs handled to the end (tests wait on it).
        self.handled = 0
        self._app: App | None = None

    def clock(self) -> Clock | None:
        return self._clock

    def application_id(self) -> str:
        if self.settings.application_id:
            return self.settings.application_id
        client = self.client
        if client is not None and client.application_id is not None:
            return str(client.application_id)
        raise RuntimeError("the application id is not known before login")

    def _guild_name(self, guild_id: str) -> str:
        guild = self.client.get_guild(int(guild_id)) if self.client is not None else None
        return guild.name if guild is not None and guild.name else ""

    async def run(self, app: App) -> int:
        self._app = app
        self.interactions = Interactions(
            app.core,
            app.db,
            self.rest,
            self.application_id,
            app.clock,
            ack_seconds=self.ack_seconds,
            guild_name=self._guild_name,
            lookup=self._search_member,
        )
        point_at(self.settings.api_base_url)
        client = build_client(
            members_intent=self.settings.members_intent,
            shard_count=self.settings.shard_count,
            shard_ids=list(self.settings.shard_ids),
            on_interaction=self._interaction,
            on_dm=self._dm,
            on_guild=self._guild,
            on_guild_removed=self._guild_removed,
            on_channel=self._channel,
            on_ready=self.ready.set,
            guild_ready_timeout=self.guild_ready_timeout,
        )
        self.client = client
        try:
            async with client:
                await client.start(self._token, reconnect=True)
        except discord.LoginFailure:
            _tell(
                "syncup: Discord refused the bot token ([discord] token / "
                "SYNCUP_DISCORD_TOKEN); reset it in the Developer Portal (Bot, Reset Token)."
            )
            return 1
        except discord.PrivilegedIntentsRequired:
            _tell(
                "syncup: [discord] members_intent = true, but the Server Members intent is off "
                "in the Developer Portal (Bot, Privileged Gateway Intents): turn it on, or set "
                "members_intent = false."
            )
            return 1
        except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as exc:
            _tell(f"syncup: cannot reach Discord at {self.settings.api_base_url}: {exc}")
            return 1
        finally:
            await self.rest.close()
        return 0

    def _cached_channel(
        self, guild_id: str, channel_id: str | None, name: str | None
    ) -> ChannelInfo | None:
        """A channel as the gateway cache knows it, with whether the bot may post there."""
        guild = self.client.get_guild(int(guild_id)) if self.client is not None else None
        if guild is None:
            return None
        for channel in guild.text_channels:
            if str(channel.id) == channel_id or (name is not None and channel.name == name):
                return channel_info(channel)
        return None

    async def _search_member(self, guild_id: str, name: str) -> MemberInfo | None:
        try:
            return await self.discord_port.member_info(guild_id, name=name)
        except (DiscordHTTPError, DirectoryUnavailable, aiohttp.ClientError, OSError) as exc:
            # The core's own look-up of the name says so next to the field (the form is kept).
            log.warning("discord: looking up @%s in guild %s failed: %s", name, guild_id, exc)
            return None

    async def stop(self) -> None:
        """Disconnect; :meth:`run` then returns."""
        if self.client is not None:
            await self.client.close()

    # -- events --------------------------------------------------------------------------------

    async def _interaction(self, incoming: Incoming) -> None:
        assert self.interactions is not None
        try:
            await self.interactions.interaction(incoming)
        finally:
            self.handled += 1

    async def _dm(self, dm: IncomingDM) -> None:
        assert self.interactions is not None
        try:
            self.discord_port.remember_dm(dm.user_id, dm.channel_id)
            await self.interactions.direct_message(dm)
        finally:
            self.handled += 1

    async def _guild(self, guild: discord.Guild) -> None:
        app = self._app
        assert app is not None
        members = [GuildMember(str(m.id), m.display_name) for m in guild.members if not m.bot]
        with_members = self.settings.members_intent
        channels = [
            GuildChannel(
                str(c.id),
                c.name,
                tuple(str(m.id) for m in c.members if not m.bot) if with_members else None,
            )
            for c in guild.text_channels
        ]
        await mark_installed(app.db, PLATFORM, str(guild.id))
        await sync_guild(app.db, str(guild.id), guild.name, channels, members, app.clock.now())
        self.guilds_synced.add(str(guild.id))

    async def _channel(self, channel: discord.abc.GuildChannel) -> None:
        app = self._app
        assert app is not None
        if not isinstance(channel, discord.TextChannel):
            return
        guild = channel.guild
        known = [GuildChannel(str(channel.id), channel.name)]
        await sync_guild(app.db, str(guild.id), guild.name, known, [], app.clock.now())

    async def _guild_removed(self, guild: discord.Guild) -> None:
        """The bot was kicked or the guild deleted: the core deletes the guild's data after its
        grace period, unless the bot is added back before (GUILD_CREATE marks it installed)."""
        app = self._app
        assert app is not None
        if await mark_uninstalled(app.db, PLATFORM, str(guild.id), app.clock.now()):
            log.info("discord: removed from guild %s; its data will be deleted later", guild.id)
            await app.scheduler.reconcile()
        self.guilds_synced.discard(str(guild.id))


def channel_info(channel: discord.TextChannel) -> ChannelInfo:
    permissions = channel.permissions_for(channel.guild.me)
    # Discord implies the later ones are denied when an earlier one is: name the first.
    missing = [
        label
        for label, allowed in (
            ("View Channel", permissions.view_channel),
            ("Send Messages", permissions.send_messages),
            ("Embed Links", permissions.embed_links),
        )
        if not allowed
    ][:1]
    if not missing:
        return ChannelInfo(str(channel.id), channel.name)
    reason = (
        f"syncup lacks {missing[0]} in #{channel.name}: allow it for the syncup role "
        "(channel settings, Permissions), then try again."
    )
    return ChannelInfo(str(channel.id), channel.name, can_post=False, reason=reason)


def _tell(line: str) -> None:
    log.error(line)
    print(line, file=sys.stderr)


def create_adapter(settings: Settings) -> DiscordAdapter:
    return DiscordAdapter(settings.discord)
