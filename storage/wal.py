"""SQLite's write-ahead log after an anonymous poll closed (invariant 6).

A commit appends the pages it changed to ``syncup.db-wal``; the old versions of those pages stay
there, in the main file's place, until a checkpoint copies the log into the database *and* the
log is reset. Until then a copy of ``syncup.db`` with its ``-wal`` holds the pages from before a
close (a poll's secret and its keyed ballots). So once a close has committed, the log is
checkpointed in ``TRUNCATE`` mode (every frame copied into the main file, where
``secure_delete`` has overwritten the dropped tables' pages, and the log cut to zero bytes); and
at start, for a close whose checkpoint a crash cut short. The ``-shm`` file is only an index of
the log: page numbers and frame numbers, no content.

PostgreSQL needs none of this here: its WAL is the server's (see docs/polls.md, residual risk).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

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
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = await cursor.fetchone()
        await cursor.close()
    busy = row is None or row[0] != 0
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
