"""Watching SQLite's write-ahead log so that it cannot grow unseen.

SQLite copies the WAL back into the database (a checkpoint) after commits, but only up to the
oldest snapshot a reader still holds. A connection that keeps a read transaction open (a backup
tool, a ``sqlite3`` shell left in ``BEGIN``, another program) stops every checkpoint, and the
``-wal`` file grows for as long as it stays. :class:`WalWatch` runs a ``PASSIVE`` checkpoint
(it never waits for anyone) every minute and logs one line when the log cannot be copied back
and has grown past a bound, and one when it could be again; once everything is copied back, a
WAL grown past the bound is truncated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from storage.db import Database
from storage.outages import classify

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
WARN_BYTES = 64 * 1024 * 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class WalState:
    busy: bool  # the checkpoint could not run at all
    frames: int  # pages in the log
    copied: int  # pages copied back into the database
    size: int  # the -wal file's size in bytes

    @property
    def stuck(self) -> bool:
        return self.busy or self.copied < self.frames


class WalWatch:
    def __init__(
        self, db: Database, *, interval: float = CHECK_SECONDS, warn_bytes: int = WARN_BYTES
    ) -> None:
        self._db = db
        self._interval = interval
        self._warn_bytes = warn_bytes
        database = db.engine.url.database or ""
        self.path = f"{database}-wal"
        self.warned = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._db.dialect == "sqlite" and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sqlite-wal-watch")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> WalState:
        """One passive checkpoint, reported as described above."""
        async with self._db.engine.connect() as conn:
            # On the driver's connection: outside a transaction, which a checkpoint needs
            # (SQLAlchemy would begin one, and the engine makes that BEGIN IMMEDIATE).
            raw = (await conn.get_raw_connection()).driver_connection
            busy, frames, copied = await _pragma(raw, "wal_checkpoint(PASSIVE)")
            state = WalState(bool(busy), max(frames, 0), max(copied, 0), self._size())
            if not state.stuck and state.size > self._warn_bytes:
                await _pragma(raw, "wal_checkpoint(TRUNCATE)")
        if state.stuck and state.size > self._warn_bytes and not self.warned:
            self.warned = True
            log.warning(
                "SQLite WAL %s is %.0f MB and cannot be checkpointed (%d of %d pages copied "
                "back): another connection keeps a read transaction open (a backup, a sqlite3 "
                "shell?); it grows until that ends",
                self.path,
                state.size / MIB,
                state.copied,
                state.frames,
            )
        elif not state.stuck and self.warned:
            self.warned = False
            log.info("SQLite WAL %s checkpointed again", self.path)
        return state

    def _size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    log.warning("SQLite WAL check failed", exc_info=True)
                else:
                    self._db.health.failed(kind, exc)  # told once


async def _pragma(connection: Any, pragma: str) -> tuple[int, int, int]:
    cursor = await connection.execute(f"PRAGMA {pragma}")
    try:
        busy, frames, copied = await cursor.fetchone()
    finally:
        await cursor.close()
    return int(busy), int(frames), int(copied)
