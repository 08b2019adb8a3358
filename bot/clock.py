"""What time it is. The core always asks a :class:`Clock`, never ``datetime.now()`` directly,
so that the console's demo clock can move time for the scheduler and the features alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetFileClock:
    """Real time plus an offset read from a file (``[bot] clock_offset_file``), for benchmarks
    that run a simulated day through several real ``syncup run`` processes: the benchmark
    writes how many seconds the clock is ahead of real time, and every replica's clock follows
    within ``recheck`` seconds, as the console's /clock moves its one process. Time still runs
    at real speed (leases, heartbeats and the platform's rate limits stay honest); only the
    quiet hours between the day's events are skipped. The clock never moves backwards, and an
    unreadable or missing file leaves the offset where it was."""

    def __init__(self, path: Path, *, recheck: float = 0.2) -> None:
        self.path = path
        self.recheck = recheck
        self._offset = 0.0
        self._checked = -recheck
        self._mtime: int | None = None
        self._last = datetime.min.replace(tzinfo=UTC)

    def _read(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self._mtime:
                return
            offset = float(self.path.read_text().strip() or "0")
        except (OSError, ValueError):
            return
        self._mtime = mtime
        self._offset = max(self._offset, offset)

    def now(self) -> datetime:
        tick = time.monotonic()
        if tick - self._checked >= self.recheck:
            self._checked = tick
            self._read()
        now = datetime.now(UTC) + timedelta(seconds=self._offset)
        self._last = max(self._last, now)
        return self._last
