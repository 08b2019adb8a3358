"""Whose transaction goes next, within one process and one event loop.

SQLite has one writer and PostgreSQL a pool of a few connections, so transactions queue (see
storage.db). Most of them are background work: the delivery worker recording a send, a
scheduled job. A few have someone waiting on their commit within a deadline: an inbound webhook
is answered 200 only once its delivery is stored (bot.features.hooks.receiver). Those are
*urgent*: they go before the background work queued ahead of them, so a burst of outbox
bookkeeping does not hold an HTTP answer for a second. They never go twice in a row while
background work waits, though: an endless stream of urgent transactions still lets the rest
through every other turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class Turns:
    """``slots`` transactions at a time; waiters served first come first served, urgent ones
    before the others (alternating with them when both wait)."""

    def __init__(self, slots: int, on_wait: Callable[[float], None] | None = None) -> None:
        self.free = slots
        # Told how long each turn was waited for (0 when a slot was free): bot.metrics.
        self.on_wait = on_wait
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._other: deque[asyncio.Future[None]] = deque()
        # An urgent waiter was let in ahead of waiting background work: the next turn is theirs.
        self._owed = False

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self.free > 0 and not self._urgent and not self._other:
            self.free -= 1
            if self.on_wait is not None:
                self.on_wait(0.0)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiter: asyncio.Future[None] = loop.create_future()
        queue = self._urgent if urgent else self._other
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the turn was handed over just as we stopped waiting
            else:
                with contextlib.suppress(ValueError):  # else already skipped by a release
                    queue.remove(waiter)
            raise
        if self.on_wait is not None:
            self.on_wait(loop.time() - started)

    def _release(self) -> None:
        self.free += 1
        while self.free > 0:
            waiter = self._next()
            if waiter is None:
                return
            if not waiter.done():  # a cancelled waiter is skipped
                self.free -= 1
                waiter.set_result(None)

    def _next(self) -> asyncio.Future[None] | None:
        if self._urgent and not (self._owed and self._other):
            self._owed = bool(self._other)
            return self._urgent.popleft()
        self._owed = False
        return self._other.popleft() if self._other else None
