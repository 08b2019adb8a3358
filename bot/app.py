"""The composition root: settings in, a running bot out.

The platform adapter is loaded by name from ``adapters.<platform>`` so that nothing under
``bot/`` imports a platform SDK. Every adapter module exposes ``create_adapter(settings)``
returning an object that satisfies :class:`Adapter`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from bot import webhooks
from bot.clock import Clock, OffsetFileClock, SystemClock
from bot.config import Settings, adapter_module, public_base_url, web_address
from bot.core import Core
from bot.delivery.worker import DeliveryWorker
from bot.features import (
    account,
    blockers,
    celebrations,
    digest,
    hooks,
    kudos,
    milestones,
    polls,
    pulse,
    raci,
    standups,
)
from bot.features.blockers import escalation as blocker_escalation
from bot.features.polls import ballots
from bot.features.standups import unreachable
from bot.heap import settle_heap
from bot.metrics import Metrics, MetricsEndpoint
from bot.port import DEFAULT_MAX_SELECT_OPTIONS, PlatformDirectory, PlatformPort
from bot.scheduling.housekeeping import Housekeeping
from bot.scheduling.scheduler import Scheduler
from bot.web.asgi import WebApp, WebRoutes
from bot.web.dashboard.app import Dashboard
from bot.web.server import PortBusy, WebServer
from bot.webhooks.keys import Keys
from bot.webhooks.port import RoutingPort
from bot.webhooks.sender import WebhookSender
from bot.workspace_removal import WorkspaceRemoval
from storage import migrate
from storage.db import Database
from storage.sqlite_lock import DatabaseInUse, hold
from storage.wal import WalWatch

# SIGTERM (docker stop, Kubernetes) and SIGINT stop the bot gracefully. The whole stop must end
# well inside the 10 s that docker and Kubernetes give before SIGKILL.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_SECONDS = 8.0
# The exit code after a graceful stop: 0 for SIGTERM (a supervisor's stop is no failure),
# 128 + 2 for SIGINT as shells expect from Ctrl-C.
EXIT_CODES = {signal.SIGTERM: 0, signal.SIGINT: 130}

log = logging.getLogger(__name__)


class Adapter(Protocol):
    port: PlatformPort

    def clock(self) -> Clock | None:
        """A clock of the adapter's own (the console's demo clock), or None for real time."""
        ...

    async def run(self, app: App) -> int:
        """Connect, feed events to ``app.core`` until told to stop; return the exit code."""
        ...


def load_adapter(settings: Settings) -> Adapter:
    return adapter_module(settings).create_adapter(settings)  # type: ignore[no-any-return]


def configured_clock(settings: Settings) -> Clock:
    path = settings.bot.clock_offset_file
    return OffsetFileClock(Path(path)) if path else SystemClock()


def instance_name(settings: Settings) -> str:
    return settings.bot.instance_name or f"{socket.gethostname()}:{os.getpid()}"


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class App:
    def __init__(self, settings: Settings, adapter: Adapter) -> None:
        self.settings = settings
        self.adapter = adapter
        self.clock: Clock = adapter.clock() or configured_clock(settings)
        self.instance = instance_name(settings)
        self.db = Database(settings.database.url, echo=settings.database.echo, watch_outages=True)
        # Set while this process holds the SQLite file's lock: any lease left in it is a dead
        # process's, taken over at start.
        self._sole_process = False
        self.core = Core(self.db, self.clock)
        if isinstance(adapter.port, PlatformDirectory):
            self.core.directory = adapter.port
        self.core.edit_window = getattr(adapter.port, "edit_window", None)
        self.core.max_select_options = getattr(
            adapter.port, "max_select_options", DEFAULT_MAX_SELECT_OPTIONS
        )
        self.scheduler = Scheduler(
            self.db,
            self.clock,
            instance=self.instance,
            reconcile_interval=settings.scheduler.reconcile_interval_seconds,
        )
        keys = Keys(settings)
        # Webhook rows go out over HTTP, the rest through the platform (bot.webhooks.port).
        self.webhook_sender = WebhookSender(self.db, settings.webhooks, keys)
        port = RoutingPort(adapter.port, self.webhook_sender)
        self.worker = DeliveryWorker(
            self.db, port, settings.delivery, clock=self.clock, instance=self.instance
        )
        self.core.on_outbox.append(self.worker.wake)
        # Back from an outage: what fell due meanwhile runs now, not at the next reconcile.
        self.db.health.on_back += [self.scheduler.reconcile, self.worker.wake]
        self.wal = WalWatch(self.db)  # SQLite only: a WAL that cannot be checkpointed is told
        self.core.on_schedules_changed.append(self.scheduler.reconcile)
        self.scheduler.on_outbox.append(self.worker.wake)
        account.register(self.core)
        standups.register(self.core, self.scheduler)
        polls.register(self.core, self.scheduler)
        pulse.register(self.core, self.scheduler)
        raci.register(self.core)  # before the features that extend /raci (blockers)
        blockers.register(self.core)
        blocker_escalation.register(self.core, self.scheduler)  # after raci: /raci policy
        kudos.register(self.core)
        celebrations.register(self.core, self.scheduler)  # after account: extends /syncup
        unreachable.register(self.core, self.worker)
        webhooks.register(self.core, settings, keys=keys)  # after /raci (it adds /raci webhook)
        # /milestone (hook, help) and the inbound webhook endpoint; milestones extend it.
        self.hooks = hooks.register(
            self.core,
            self.db,
            keys,
            per_minute=settings.web.hook_rate_per_minute,
            base_url=lambda: public_base_url(settings, self.web.port or None),
            wake=self.worker.wake,
        )
        milestones.register(self.core, self.scheduler)  # after hooks: it extends /milestone
        digest.register(self.core, self.scheduler, lambda: settings.web.public_url)
        Housekeeping(settings.housekeeping.retention_days).register(self.scheduler)
        self.workspace_removal = WorkspaceRemoval(
            timedelta(days=settings.slack.uninstall_grace_days)
        )
        self.workspace_removal.register(self.scheduler)
        # The one HTTP server (bot.web): health checks, inbound webhooks, the adapter's routes
        # (Slack's HTTP mode). It listens once `run` has started the app (or when an adapter
        # that needs it starts it), unless [web] enabled = false.
        self._started = False
        self.web_app = WebApp(self.readiness)
        if isinstance(adapter, WebRoutes):
            for route in adapter.routes():
                self.web_app.mount(route)
        self.web_app.mount(self.hooks.mount())
        # /metrics (bot.metrics): one registry for this app, counted into by each part.
        self.metrics = Metrics()
        for part in (self.core, self.scheduler, self.worker, self.webhook_sender, self.hooks):
            part.metrics = self.metrics
        self.db.on_pool_wait = self.metrics.pool_wait
        token = settings.web.metrics_token
        self.web_app.mount(
            MetricsEndpoint(
                self.metrics,
                self.db,
                self.clock.now,
                token.get_secret_value() if token is not None else None,
            ).mount()
        )
        if settings.dashboard.enabled:  # everything else under / (bot.web.dashboard)
            self.web_app.fallback = Dashboard(
                settings,
                self.db,
                self.clock,
                base_url=lambda: public_base_url(settings, self.web.port or None),
                core=self.core,
            )
        host, port = web_address(settings)
        self.web = WebServer(self.web_app, settings.http, host, port)

    async def start(self) -> None:
        """Migrate (or refuse an old schema), then start the scheduler and the worker."""
        auto = self.settings.database.auto_migrate
        await migrate.ensure_schema(self.db.engine, auto_migrate=auto)
        await self.worker.leases.take_over(every_lease=self._sole_process)
        await ballots.tidy(self.db)  # anonymity: no keyed ballots or WAL pages of closed polls
        await self.scheduler.start()
        await self.worker.start()
        self.wal.start()
        settle_heap()
        self._started = True
        log.info("syncup started as %s on %s", self.instance, self.db.dialect)

    async def readiness(self) -> tuple[bool, str]:
        """For ``/readyz``: started, the adapter connected, the database answering and at the
        schema this code expects."""
        if not self._started or not getattr(self.adapter, "ready", True):
            return False, "starting"
        try:
            current = await migrate.current_revision(self.db.engine)
        except Exception as exc:
            return False, f"database: {type(exc).__name__}"
        if current != _head():
            if current is not None and not migrate.known(current):
                # A newer release migrated it (migrations first, then a rolling restart; the
                # schema changes between releases are additive): serve on until replaced.
                return True, f"ready; database schema at {current}, newer than {_head()}"
            return False, f"database schema at {current}, not {_head()}"
        return True, "ready"

    async def stop(self) -> None:
        self._started = False
        await self.web.stop()  # requests in flight finish first (bot.web.server.GRACE_SECONDS)
        await self.wal.stop()
        await self.scheduler.stop()
        await self.core.idle()  # report refreshes under way finish (they are short)
        await self.worker.stop()
        await self.webhook_sender.aclose()
        await self.db.dispose()

    async def settled(self) -> bool:
        """Nothing is running or due: no occurrence, no background work of the core (a report
        refresh), no outbox row that could go now."""
        return not self.scheduler.busy() and not self.core.busy() and await self.worker.idle()

    async def run(self) -> int:
        """Run until the adapter ends or a stop signal arrives; returns the exit code.

        A second ``syncup run`` on the same SQLite file is refused (one line, exit 1)."""
        try:
            lock = hold(self.settings.database.url, process_name())
        except DatabaseInUse as exc:
            print(f"syncup: {exc}", file=sys.stderr)
            await self.db.dispose()
            return 1
        self._sole_process = lock is not None and lock.first
        try:
            return await self._run()
        finally:
            self._sole_process = False
            if lock is not None:
                lock.release()

    async def _run(self) -> int:
        # Installed first: a signal during the start (a long migration) is kept, and the app
        # stops once it has started instead of dying half-way.
        signals = StopSignals()
        signals.install()
        try:
            await self.start()
        except BaseException:
            signals.remove()
            raise
        if self.settings.web.enabled:
            try:
                await self.web.start()
            except PortBusy as exc:
                signals.remove()
                await self.stop()
                print(f"syncup: {exc}", file=sys.stderr)
                return 1
        try:
            adapter = asyncio.create_task(self.adapter.run(self), name="adapter")
            signals.attach(adapter)
            try:
                return await adapter
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if signals.received is None or (task is not None and task.cancelling()):
                    raise
                return EXIT_CODES[signals.received]
        finally:
            try:
                await self._stop_within(STOP_SECONDS, signals.received_at)
            finally:
                signals.remove()

    async def _stop_within(self, seconds: float, since: float | None) -> None:
        loop = asyncio.get_running_loop()
        since = loop.time() if since is None else since
        stopping = asyncio.ensure_future(self.stop())
        done, _ = await asyncio.wait({stopping}, timeout=seconds)
        if done:
            stopping.result()
            log.info("syncup stopped (%.2fs)", loop.time() - since)
            return
        log.warning(
            "syncup: stopping took longer than %.0fs; leaving now. Sends still in flight are "
            "retried (flagged as maybe sent) once their short lease runs out.",
            seconds,
        )
        stopping.cancel()


_HEAD: list[str | None] = []


def _head() -> str | None:
    """The newest migration, read from the scripts once."""
    if not _HEAD:
        _HEAD.append(migrate.head_revision())
    return _HEAD[0]


class StopSignals:
    """SIGTERM and SIGINT cancel the adapter's task (no more events are taken); the app then
    stops. Only the main thread receives signals: elsewhere (tests) nothing is installed."""

    def __init__(self) -> None:
        self.adapter: asyncio.Task[int] | None = None
        self.received: signal.Signals | None = None
        self.received_at: float | None = None
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._stop, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(sig)

    def attach(self, adapter: asyncio.Task[int]) -> None:
        self.adapter = adapter
        if self.received is not None:
            adapter.cancel()

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _stop(self, sig: signal.Signals) -> None:
        if self.received is not None:
            log.info("%s received; the stop is already under way", sig.name)
            return
        self.received = sig
        self.received_at = asyncio.get_running_loop().time()
        log.info("%s received: stopping (sends in flight finish, leases are released)", sig.name)
        if self.adapter is not None:
            self.adapter.cancel()
