"""The Microsoft Teams adapter: commands typed to the bot, Adaptive Cards, proactive messages
through stored conversation references, over the Teams SDK for Python. See docs/teams.md."""

from __future__ import annotations

from adapters.teams.adapter import TeamsAdapter, create_adapter
from adapters.teams.port import TeamsPort
from bot.config import Settings

__all__ = ["TeamsAdapter", "TeamsPort", "check_config", "create_adapter"]


def check_config(settings: Settings) -> None:
    """The checks ``syncup run`` makes of [teams] (the app id and secret), for ``syncup config
    check``: the adapter's constructor makes them and opens no connection."""
    create_adapter(settings)
