"""What time it is. The core always asks a :class:`Clock`, never ``datetime.now()`` directly,
so that the console's demo clock can move time for the scheduler and the features alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
