"""uvicorn's httptools protocol with the timeouts and the caps it lacks (``[http]``).

Headers must arrive within ``header_timeout_seconds`` of the connection (or of the first byte of
the next request on a kept-alive one), the body within ``body_timeout_seconds`` of the headers;
a connection over ``max_connections`` is closed at once, and so is one whose request head
passes :data:`MAX_HEAD_BYTES` (llhttp, unlike h11, sets no bound of its own). Each is warned
about at most once a minute, with a count, so a flood does not flood the log too.

httptools (llhttp, in C) rather than h11 (pure Python): parsing and writing a request costs
about half as much CPU, which a burst of webhook deliveries spends on nothing else
(benchmarks/webhooks.py).
"""

from __future__ import annotations

import asyncio
import logging
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.config import HttpSection

log = logging.getLogger(__name__)

# A request line and headers larger than this close the connection (h11's own bound is 16 KiB).
MAX_HEAD_BYTES = 64 * 1024


class Throttled:
    """A warning at most once a minute, with how many times it happened."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0
        self.last = 0.0

    def note(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= 60.0:
            log.warning(self.text, self.count)
            self.count, self.last = 0, now


def guarded_protocol(limits: HttpSection) -> type[HttpToolsProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``."""
    refused = Throttled("web: %d connection(s) over [http] max_connections closed")
    slow = Throttled("web: closed %d connection(s) that sent their request too slowly")
    large = Throttled("web: closed %d connection(s) whose request head was too large")

    class Guarded(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _phase = ""
        _head = 0  # bytes received since the current request's head began

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                refused.note()
                transport.close()
                return
            self._enter("headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._enter("")
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow()
            if self._phase == "headers":  # the head is still incomplete
                self._head += len(data)
                if self._head > MAX_HEAD_BYTES and not self.transport.is_closing():
                    large.note()
                    self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._enter("")  # idle: uvicorn's keep-alive timeout closes it

        def _follow(self) -> None:
            if self.transport.is_closing():
                self._enter("")
            elif self.cycle is None or self.cycle.response_complete:
                self._enter("headers")
            elif self.cycle.more_body:
                self._enter("body")
            else:
                self._enter("")  # the whole request is in; the app answers

        def _enter(self, phase: str) -> None:
            if phase == self._phase:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._phase = phase
            self._head = 0
            seconds = {
                "headers": limits.header_timeout_seconds,
                "body": limits.body_timeout_seconds,
            }.get(phase)
            if seconds is not None:
                self._timer = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                slow.note()
                self.transport.close()

    return Guarded
