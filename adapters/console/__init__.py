"""The console adapter: the embedded default, a demo workspace on a terminal."""

from __future__ import annotations

from adapters.console.adapter import ConsoleAdapter, ConsolePort
from adapters.console.clock import DemoClock
from adapters.console.config_check import check_console
from adapters.console.demo import MEMBERS_BY_ID
from bot.config import Settings

__all__ = ["ConsoleAdapter", "ConsolePort", "DemoClock", "check_config", "create_adapter"]


def check_config(settings: Settings) -> None:
    """What the console needs of the settings (``console.member``, ``console.start``); a
    :class:`bot.config.ConfigError` otherwise. ``syncup run`` and ``syncup config check`` call
    it (``bot.config.check_platform``)."""
    check_console(settings, {k: m.timezone for k, m in MEMBERS_BY_ID.items()})


def create_adapter(settings: Settings) -> ConsoleAdapter:
    """The console, reading stdin and writing stdout (``bot.app.load_adapter`` calls this)."""
    return ConsoleAdapter(settings)
