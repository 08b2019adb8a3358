"""The console adapter: the embedded default, a demo workspace on a terminal."""

from __future__ import annotations

from adapters.console.adapter import ConsoleAdapter, ConsolePort
from adapters.console.clock import DemoClock
from bot.config import Settings

__all__ = ["ConsoleAdapter", "ConsolePort", "DemoClock", "create_adapter"]


def create_adapter(settings: Settings) -> ConsoleAdapter:
    """The console, reading stdin and writing stdout (``bot.app.load_adapter`` calls this)."""
    return ConsoleAdapter(settings)
