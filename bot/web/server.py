"""uvicorn serving :class:`~bot.web.asgi.WebApp` on a socket bound here.

Binding ourselves gives a clear error for a busy port (:class:`PortBusy`, one line), lets port
0 pick a free one (tests; :attr:`WebServer.port` tells which), and keeps uvicorn's own signal
handling out of the way: ``syncup run`` owns SIGTERM and SIGINT and stops the server within
its stop budget (bot.app.STOP_SECONDS), open connections given :data:`GRACE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn

from bot.config import HttpSection
from bot.heap import settle_heap_once
from bot.web.asgi import WebApp
from bot.web.guard import guarded_protocol

log = logging.getLogger(__name__)

# Requests in flight at a stop get this long to finish (well inside STOP_SECONDS).
GRACE_SECONDS = 3


class PortBusy(Exception):
    """The address cannot be bound; the message is one line saying what to change."""


class WebServer:
    def __init__(self, app: WebApp, limits: HttpSection, host: str, port: int) -> None:
        self.app = app
        self.limits = limits
        self.host = host
        self.requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
        # that say TCP. Without it each answer's body waited for the client's delayed ACK of
        # its head, up to 40 ms (tests/test_web_server.py).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(512)
        except OSError as exc:
            sock.close()
            raise PortBusy(
                f"cannot listen on {self.host}:{self.requested_port} ({exc.strerror or exc}); "
                "set [web] port (SYNCUP_WEB_PORT) to a free port, or [web] enabled = false"
            ) from None
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        """Listen (once: a second call does nothing); :class:`PortBusy` if it cannot."""
        if self.running:
            return
        sock = self._bind()
        self.port = sock.getsockname()[1]
        settle_heap_once()
        config = uvicorn.Config(
            self.app,
            http=guarded_protocol(self.limits),
            lifespan="off",
            log_level="warning",
            log_config=None,  # uvicorn's loggers go through syncup's handler (bot.logs)
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=list(self.limits.trusted_proxies),
            backlog=512,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        # syncup's CLI owns SIGINT/SIGTERM (they stop the whole app, then this server).
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise PortBusy(f"the HTTP server on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.01)
        log.info("web: listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening; requests in flight get :data:`GRACE_SECONDS` to finish."""
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None
