"""The Slack adapter: slash commands, Block Kit, modals and DMs over slack-bolt, in Socket Mode
or HTTP mode, for one workspace (a bot token) or many (OAuth installs)."""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from adapters.slack.port import SlackPort
from bot.config import Settings

__all__ = ["SlackAdapter", "SlackPort", "create_adapter"]


def create_adapter(settings: Settings) -> SlackAdapter:
    """``bot.app.load_adapter`` calls this."""
    return SlackAdapter(settings)
