"""A sliding-window limit: at most ``count`` calls in any ``seconds``, as Teams counts them.

Teams limits a bot to 50 connector requests a second per tenant, counted over any second (a
sliding window) when the requests arrive. A token bucket that keeps under such a window has to
run well below it: its rate and its burst both count against the same 50, and a request that
arrives late (the first one on a new connection, one held up behind other work) next to one on
time breaks the window. This mirrors the window instead, and counts each call from its
*answer*: a call arrives before it is answered, so a call that starts ``seconds`` after the
answer of the call ``count`` places before it cannot land in the same window, whatever the
network's delays. A call still waiting for its answer keeps its place.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

TimeFn = Callable[[], float]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class SlidingWindow:
    """At most ``count`` calls answered within any ``seconds`` (calls still in flight count);
    callers are served in arrival order."""

    def __init__(self, count: int, seconds: float, *, time: TimeFn | None = None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.count = count
        self.seconds = seconds
        self._time = time or _loop_time
        # One cell per call, in the order they started: [answered at], None while in flight.
        self._calls: deque[list[float | None]] = deque()
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()

    def _wait(self, now: float) -> float | None:
        """0 when one more call fits now, else the seconds until one may (None: until a call in
        flight is answered)."""
        horizon = now - self.seconds
        while self._calls and (done := self._calls[0][0]) is not None and done <= horizon:
            self._calls.popleft()
        counted = [cell[0] for cell in self._calls if cell[0] is None or cell[0] > horizon]
        if len(counted) < self.count:
            return 0.0
        answered = [done for done in counted if done is not None]
        return min(answered) - horizon if answered else None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a place in the window, then make the call inside the ``async with``."""
        async with self._lock:
            while (wait := self._wait(self._time())) != 0.0:
                self._answered.clear()
                try:
                    await asyncio.wait_for(self._answered.wait(), wait)
                except TimeoutError:
                    pass
            cell: list[float | None] = [None]
            self._calls.append(cell)
        try:
            yield
        finally:
            cell[0] = self._time()
            self._answered.set()
