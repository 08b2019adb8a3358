"""The Microsoft Teams adapter: commands typed to the bot, Adaptive Cards, proactive messages
through stored conversation references, over the Teams SDK for Python. See docs/teams.md.

The SDK is an optional dependency (``pip install 'syncup[teams]'``), imported only when the
adapter is built: ``syncup teams manifest`` and the rest of the CLI work without it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings

if TYPE_CHECKING:
    from adapters.teams.adapter import TeamsAdapter

__all__ = ["check_config", "create_adapter"]

# The SDK warns at import about a preview feature syncup does not use (HTML widgets).
warnings.filterwarnings("ignore", message="HtmlWidgetSecurityPolicy is in preview")


def create_adapter(settings: Settings) -> TeamsAdapter:
    """``bot.app.load_adapter`` calls this."""
    try:
        from adapters.teams.adapter import TeamsAdapter
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("microsoft_teams"):
            raise
        raise ConfigError(
            "[bot] platform = 'teams' needs the Teams SDK: pip install 'syncup[teams]'."
        ) from None
    return TeamsAdapter(settings)


def check_config(settings: Settings) -> None:
    """The checks ``syncup run`` makes of [teams] (the app id and secret), for ``syncup config
    check``: the adapter's constructor makes them and opens no connection."""
    create_adapter(settings)
