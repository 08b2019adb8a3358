"""The Discord adapter: application commands, components, modals and DMs through discord.py's
gateway, outbox sends over Discord's REST API. See docs/discord.md."""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter, create_adapter
from adapters.discord.port import DiscordPort
from bot.config import Settings

__all__ = ["DiscordAdapter", "DiscordPort", "check_config", "create_adapter"]


def check_config(settings: Settings) -> None:
    """The checks ``syncup run`` makes of [discord] (the token, shards), for ``syncup config
    check``: the adapter's constructor makes them and opens no connection."""
    create_adapter(settings)
