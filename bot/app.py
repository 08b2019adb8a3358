"""The composition root: settings in, a running bot out.

The platform adapter is loaded by name from ``adapters.<platform>`` so that nothing under
``bot/`` imports a platform SDK. Every adapter module exposes ``create_adapter(settings)``
returning an object that satisfies :class:`Adapter`.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import socket
from datetime import timedelta
from typing import Protocol

from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings
from bot.core import Core
from bot.delivery.worker import DeliveryWorker
from bot.features import account, polls, pulse, standups
from bot.features.polls import ballots
from bot.features.standups import unreachable
from bot.port import DEFAULT_MAX_SELECT_OPTIONS, PlatformDirectory, PlatformPort
from bot.scheduling.housekeeping import Housekeeping
from bot.scheduling.scheduler import Scheduler
from bot.workspace_removal import WorkspaceRemoval
from storage import migrate
from storage.db import Database

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
    platform = settings.platform()
    try:
        module = importlib.import_module(f"adapters.{platform}")
    except ModuleNotFoundError as exc:
        if exc.name != f"adapters.{platform}":
            raise
        raise ConfigError(
            f"[bot] platform = {platform!r}: this build of syncup has no {platform} adapter yet. "
            'Use platform = "console", or remove the platform tokens.'
        ) from None
    return module.create_adapter(settings)  # type: ignore[no-any-return]


def instance_name(settings: Settings) -> str:
    return settings.bot.instance_name or f"{socket.gethostname()}:{os.getpid()}"


def settle_heap() -> None:
    """Move everything allocated so far (modules, metadata, schemas: it lives as long as the
    process) out of the cyclic GC's sight. Otherwise each full collection rescans it all and
    stops the event loop for tens of milliseconds, which a burst of answers feels."""
    gc.collect()
    gc.freeze()


class App:
    def __init__(self, settings: Settings, adapter: Adapter) -> None:
        self.settings = settings
        self.adapter = adapter
        self.clock: Clock = adapter.clock() or SystemClock()
        self.instance = instance_name(settings)
        self.db = Database(settings.database.url, echo=settings.database.echo)
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
        self.worker = DeliveryWorker(
            self.db, adapter.port, settings.delivery, clock=self.clock, instance=self.instance
        )
        self.core.on_outbox.append(self.worker.wake)
        self.core.on_schedules_changed.append(self.scheduler.reconcile)
        self.scheduler.on_outbox.append(self.worker.wake)
        account.register(self.core)
        standups.register(self.core, self.scheduler)
        polls.register(self.core, self.scheduler)
        pulse.register(self.core, self.scheduler)
        unreachable.register(self.core, self.worker)
        Housekeeping(settings.housekeeping.retention_days).register(self.scheduler)
        self.workspace_removal = WorkspaceRemoval(
            timedelta(days=settings.slack.uninstall_grace_days)
        )
        self.workspace_removal.register(self.scheduler)

    async def start(self) -> None:
        """Migrate (or refuse an old schema), then start the scheduler and the worker."""
        auto = self.settings.database.auto_migrate
        await migrate.ensure_schema(self.db.engine, auto_migrate=auto)
        await ballots.tidy(self.db)  # anonymity: no keyed ballots or WAL pages of closed polls
        await self.scheduler.start()
        await self.worker.start()
        settle_heap()
        log.info("syncup started as %s on %s", self.instance, self.db.dialect)

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.core.idle()  # report refreshes under way finish (they are short)
        await self.worker.stop()
        await self.db.dispose()

    async def settled(self) -> bool:
        """Nothing is running or due: no occurrence, no background work of the core (a report
        refresh), no outbox row that could go now."""
        return not self.scheduler.busy() and not self.core.busy() and await self.worker.idle()

    async def run(self) -> int:
        await self.start()
        try:
            return await self.adapter.run(self)
        finally:
            await self.stop()
