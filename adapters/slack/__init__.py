"""The Slack adapter: slash commands, Block Kit, modals and DMs over slack-bolt, in Socket Mode
or HTTP mode, for one workspace (a bot token) or many (OAuth installs)."""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from adapters.slack.port import SlackPort
from bot.config import ConfigError, Settings

__all__ = ["SlackAdapter", "SlackPort", "check_config", "create_adapter"]


def create_adapter(settings: Settings) -> SlackAdapter:
    """``bot.app.load_adapter`` calls this."""
    try:
        return SlackAdapter(settings)
    except ValueError as exc:  # a token_encryption_key that is not a Fernet key
        raise ConfigError(f"Invalid configuration: {exc}.") from None


def check_config(settings: Settings) -> None:
    """The checks ``syncup run`` makes of [slack] (tokens for the mode, OAuth keys), for
    ``syncup config check``: the adapter's constructor makes them and does no I/O."""
    create_adapter(settings)
