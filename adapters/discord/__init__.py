"""The Discord adapter: application commands, components, modals and DMs through discord.py's
gateway, outbox sends over Discord's REST API. See docs/discord.md."""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter, create_adapter
from adapters.discord.port import DiscordPort

__all__ = ["DiscordAdapter", "DiscordPort", "create_adapter"]
