"""INSERT ... ON CONFLICT DO NOTHING compiled once (storage.upsert.insert_do_nothing), and the
one-trip SQLite driver (storage.sqlite_driver): each must return exactly what SQLAlchemy's own
path returns. A cache key that left out the conflict target would hand one table's statement
to another; a driver that lost rows past its first read would cut exports short."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine.default import CACHE_HIT, CACHE_MISS

from storage import sqlite_driver
from storage.db import Database
from storage.models import Member, OccurrenceClaim, ProcessedEvent, Workspace
from storage.upsert import insert_do_nothing

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _claim(key: str) -> dict[str, object]:
    return {
        "key": key,
        "handler": "h",
        "scheduled_for": NOW,
        "claimed_at": NOW,
        "claimed_by": "test",
    }


async def _workspace(database: Database) -> int:
    async with database.transaction() as session:
        workspace = Workspace(platform="console", external_id="W1", name="w", created_at=NOW)
        session.add(workspace)
        await session.flush()
        return workspace.id


async def test_a_do_nothing_insert_is_compiled_once_and_reused(database: Database) -> None:
    """Batches of every size share one compiled statement; each claims only new keys."""
    claimed, hits = [], []
    for batch in (["a", "b"], ["c", "d", "e"], ["a", "f"]):
        async with database.transaction() as session:
            stmt = insert_do_nothing(session, OccurrenceClaim, ["key"])
            connection = await session.connection()  # Core: its result tells the cache hit
            result = await connection.execute(
                stmt.returning(OccurrenceClaim.key),
                [_claim(key) for key in batch],
            )
            claimed.append(sorted(result.scalars()))
            hits.append(result.context.cache_hit)
    assert claimed == [["a", "b"], ["c", "d", "e"], ["f"]]
    assert hits == [CACHE_MISS, CACHE_HIT, CACHE_HIT]
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(OccurrenceClaim)) == 6


async def test_statements_with_other_targets_or_tables_do_not_share_a_compiled_form(
    database: Database,
) -> None:
    """Each statement keeps its own table, target and RETURNING though all are cached."""
    workspace_id = await _workspace(database)
    async with database.transaction() as session:
        first = insert_do_nothing(session, ProcessedEvent, ["platform", "event_id"])
        untargeted = insert_do_nothing(session, ProcessedEvent)
        member = insert_do_nothing(session, Member, ["workspace_id", "platform_user_id"])
        assert first.compile(session.bind).string != untargeted.compile(session.bind).string
        row = {"platform": "console", "event_id": "e1", "received_at": NOW}
        returning = (ProcessedEvent.platform, ProcessedEvent.event_id)
        assert len((await session.execute(first.returning(*returning), [row])).all()) == 1
        assert (await session.execute(untargeted.returning(*returning), [row])).all() == []
        person = {
            "workspace_id": workspace_id,
            "platform_user_id": "U1",
            "display_name": "ann",
            "created_at": NOW,
            "updated_at": NOW,
        }
        ids = (await session.execute(member.returning(Member.id), [person])).scalars().all()
        assert len(ids) == 1
        again = (await session.execute(member.returning(Member.id), [person])).scalars().all()
        assert again == []
        assert len((await session.execute(first.returning(*returning), [row])).all()) == 0


async def test_the_sqlite_driver_streams_a_long_result_in_full(tmp_path: Path) -> None:
    """More rows than the first read takes: every row arrives, in order, streamed or not."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'long.db'}")
    count = sqlite_driver.PREFETCH * 3 + 7
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE n (v INTEGER)"))
            await conn.execute(text("INSERT INTO n VALUES (:v)"), [{"v": v} for v in range(count)])
        async with database.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT v FROM n ORDER BY v"))).scalars().all()
            assert rows == list(range(count))
            streamed = await conn.stream(
                text("SELECT v FROM n ORDER BY v").execution_options(yield_per=100)
            )
            seen = [v async for v in streamed.scalars()]
            assert seen == list(range(count))
            # A stream left half read is closed, and the connection goes on working.
            partial = await conn.stream(
                text("SELECT v FROM n ORDER BY v").execution_options(yield_per=10)
            )
            assert (await partial.fetchmany(5)) == [(v,) for v in range(5)]
            await partial.close()
            assert await conn.scalar(text("SELECT count(*) FROM n")) == count
    finally:
        await database.dispose()


async def test_the_sqlite_driver_reports_errors_and_rowcounts(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'errors.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, at TEXT)"))
            inserted = await conn.execute(
                text("INSERT INTO t VALUES (:k, :at)"),
                [{"k": str(n), "at": str(NOW + timedelta(minutes=n))} for n in range(4)],
            )
            assert inserted.rowcount == 4
            updated = await conn.execute(text("UPDATE t SET at = 'x' WHERE k IN ('1', '2')"))
            assert updated.rowcount == 2
        with pytest.raises(Exception, match="UNIQUE constraint failed"):
            async with database.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES ('1', 'y')"))
        async with database.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM t WHERE at = 'x'")) == 2
    finally:
        await database.dispose()


async def test_the_sqlite_driver_rolls_back_what_is_open_and_skips_the_rest(
    tmp_path: Path,
) -> None:
    """SQLAlchemy's pool rolls back every connection it gets back, after a commit too. With
    nothing open that rollback makes no trip to the driver's thread; an open transaction is
    rolled back, and so is one whose BEGIN is still queued behind other work when the
    rollback comes (its caller cancelled), which would otherwise be left open."""
    connection = await sqlite_driver.connector(str(tmp_path / "r.db"), isolation_level=None)()
    try:
        cursor = await connection.cursor()
        await cursor.execute("CREATE TABLE t (v INTEGER)")
        trips = connection.submitted
        await connection.rollback()
        assert connection.submitted == trips

        await cursor.execute("BEGIN IMMEDIATE")
        await cursor.execute("INSERT INTO t VALUES (1)")
        await connection.rollback()
        assert not connection.raw().in_transaction
        await cursor.execute("SELECT count(*) FROM t")
        assert await cursor.fetchall() == [(0,)]

        gate = threading.Event()
        busy = asyncio.ensure_future(connection.call(gate.wait))
        begin = asyncio.ensure_future(cursor.execute("BEGIN IMMEDIATE"))
        await asyncio.sleep(0)  # both are queued for the thread, which waits at the gate
        begin.cancel()
        rollback = asyncio.ensure_future(connection.rollback())
        await asyncio.sleep(0)
        gate.set()
        await busy
        await rollback
        assert not connection.raw().in_transaction
    finally:
        await connection.close()


def test_a_sqlite_connection_left_open_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """aiosqlite's thread waits for work for as long as its connection is open; unless it is a
    daemon, one connection never closed (a task cancelled while the pool was disposed) keeps
    the interpreter from exiting, and a test run or `syncup` command hangs after its end."""
    script = f"""
import asyncio
import subprocess
import sys
from sqlalchemy import text
from storage.db import Database

async def main():
    database = Database("sqlite+aiosqlite:///{tmp_path / "open.db"}")
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    # the pool keeps its connection open: no dispose()

asyncio.run(main())
print("done")
"""
    finished = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "done"
