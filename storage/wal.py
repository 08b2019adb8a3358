"""SQLite's write-ahead log: scrubbed after an anonymous poll closes, and watched so that it
cannot grow unseen.

A commit appends the pages it changed to ``syncup.db-wal``; the old versions of those pages stay
there, in the main file's place, until a checkpoint copies the log into the database *and* the
log is reset. Until then a copy of ``syncup.db`` with its ``-wal`` holds the pages from before a
close (a poll's secret and its keyed ballots). So once a close has committed, the log is
checkpointed in ``TRUNCATE`` mode (every frame copied into the main file, where
``secure_delete`` has overwritten the dropped tables' pages, and the log cut to zero bytes); and
at start, for a close whose checkpoint a crash cut short. The ``-shm`` file is only an index of
the log: page numbers and frame numbers, no content.

PostgreSQL needs none of this here: its WAL is the server's (see docs/polls.md, residual risk).

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

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from storage.db import Database
from storage.outages import classify

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
WARN_BYTES = 64 * 1024 * 1024
MIB = 1024 * 1024
_ARMED = "syncup_checkpoint_after_commit"
_pending: set[asyncio.Task[bool]] = set()


async def checkpoint(engine: AsyncEngine) -> bool:
    """Checkpoint and truncate the log; True when it was complete (always, off SQLite).

    Run on the driver's connection: SQLAlchemy would start a transaction first, and a
    checkpoint cannot run inside one."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return True
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        busy = bool((await _pragma(driver, "wal_checkpoint(TRUNCATE)"))[0])
    if busy:
        log.warning(
            "the SQLite WAL could not be checkpointed (a reader held it); it still holds pages "
            "from before a poll closed until the next checkpoint"
        )
    return not busy


def checkpoint_after_commit(session: AsyncSession) -> None:
    """Checkpoint once ``session``'s transaction has committed (nothing after a rollback)."""
    engine = session.bind
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return
    if session.info.get(_ARMED):
        return
    session.info[_ARMED] = True

    def committed(_sync: Session) -> None:
        session.info.pop(_ARMED, None)
        task = asyncio.get_running_loop().create_task(_run(engine))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    event.listen(session.sync_session, "after_commit", committed, once=True)


async def _run(engine: AsyncEngine) -> bool:
    try:
        return await checkpoint(engine)
    except Exception:
        log.exception("checkpointing the SQLite WAL failed")
        return False


async def settled() -> None:
    """Wait for the checkpoints started after commits (tests, and a stop)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


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
