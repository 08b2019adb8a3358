"""A clock the test sets by hand (implements :class:`bot.clock.Clock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """``now()`` returns a stored instant, aware and in UTC, until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self._now = self._checked(start)

    @staticmethod
    def _checked(when: datetime) -> datetime:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"FakeClock needs an aware datetime, got {when!r}")
        return when.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = self._checked(when)

    def advance(self, delta: timedelta) -> None:
        self._now += delta
