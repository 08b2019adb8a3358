"""The console's settings, checked the same way by ``syncup run`` and ``syncup config check``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from adapters.console.clock import parse_start
from bot.config import ConfigError, Settings


@dataclass(frozen=True)
class ConsoleSettings:
    member: str  # the demo member the console starts as
    start: datetime | None  # where the demo clock starts (UTC); None for the real time


def check_console(settings: Settings, zones: Mapping[str, str]) -> ConsoleSettings:
    """``console.member`` and ``console.start``, given the demo members and their zones, or a
    :class:`ConfigError` that names the key and the fix."""
    wanted = settings.console.member.strip().lower().removeprefix("@")
    if wanted not in zones:
        raise ConfigError(
            f"Invalid console.member (or $SYNCUP_CONSOLE_MEMBER): {wanted!r} is not a demo "
            f"member; use one of {', '.join(zones)}."
        )
    try:
        start = parse_start(settings.console.start, ZoneInfo(zones[wanted]))
    except ValueError:
        raise ConfigError(
            "Invalid console.start (or $SYNCUP_CONSOLE_START): use an ISO date-time such "
            "as 2026-03-09T08:55 (in the console member's zone) or 2026-03-09T08:55+01:00, "
            "or leave it empty for the real time."
        ) from None
    return ConsoleSettings(wanted, start)
