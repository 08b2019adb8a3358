"""aiosqlite with one trip to its thread per statement.

aiosqlite runs each sqlite3 call on the connection's own thread and hands the result back to the
event loop. SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute,
fetch the rows, close the cursor), and each hand-back waits for the event loop to come round:
on a busy loop (a burst of webhook deliveries, a fan-out of thousands of DMs) a transaction of
five statements waited for twenty turns of the loop, which made the single SQLite writer the
slowest link. :class:`Connection` here does open, execute, fetch and close in one call on the
thread; only a result longer than :data:`PREFETCH` rows (an export streamed with ``yield_per``)
keeps its cursor open and fetches the rest in chunks, so memory stays bounded.

SQLAlchemy's pool also rolls back every connection it gets back, after a commit too: a trip to
the thread for nothing, made while the single writer's turn is still held. :meth:`Connection.
rollback` skips it when the connection is in no transaction and nothing is queued for it.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite

# Rows read in the statement's own trip; the rest, if any, PREFETCH at a time.
PREFETCH = 512

_Meta = tuple[Any, int | None, int]


class Cursor:
    """The part of aiosqlite's cursor that SQLAlchemy's aiosqlite adapter uses."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._open: sqlite3.Cursor | None = None  # while a long result still has rows
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1
        self.arraysize = 1

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        await self.close()
        run = self._connection.raw

        def execute() -> tuple[sqlite3.Cursor | None, list[Any], _Meta]:
            cursor = run().cursor()
            try:
                if parameters is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, parameters)
                rows = cursor.fetchmany(PREFETCH) if cursor.description else []
                meta = (cursor.description, cursor.lastrowid, cursor.rowcount)
            except BaseException:
                cursor.close()
                raise
            if cursor.description is None or len(rows) < PREFETCH:
                cursor.close()
                return None, rows, meta
            return cursor, rows, meta

        self._open, rows, meta = await self._connection.call(execute)
        self._rows.extend(rows)
        self.description, self.lastrowid, self.rowcount = meta
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> Cursor:
        await self.close()
        run = self._connection.raw

        def executemany() -> _Meta:
            cursor = run().cursor()
            try:
                cursor.executemany(sql, parameters)
                return (cursor.description, cursor.lastrowid, cursor.rowcount)
            finally:
                cursor.close()

        self.description, self.lastrowid, self.rowcount = await self._connection.call(executemany)
        return self

    async def _more(self, wanted: int | None) -> None:
        """Fetch from a result still open until ``wanted`` rows are buffered (None: all)."""
        while self._open is not None and (wanted is None or len(self._rows) < wanted):
            rows = await self._connection.call(functools.partial(_fetch, self._open))
            if len(rows) < PREFETCH:
                self._open = None
            self._rows.extend(rows)

    async def fetchone(self) -> Any:
        await self._more(1)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        await self._more(size)
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        await self._more(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        cursor, self._open = self._open, None
        if cursor is not None:
            await self._connection.call(cursor.close)


def _fetch(cursor: sqlite3.Cursor) -> list[Any]:
    rows = cursor.fetchmany(PREFETCH)
    if len(rows) < PREFETCH:
        cursor.close()
    return rows


class Connection(aiosqlite.Connection):
    """aiosqlite's connection whose cursors run a statement in one trip to its thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # aiosqlite's thread is not a daemon: one connection left open (a task cancelled while
        # it closed the pool) would keep the process from ever exiting. SQLite survives a
        # thread stopped mid-write (WAL), and the app closes its pool before it exits.
        self.daemon = True
        # Calls handed to the thread (counted on the event loop) and calls it has finished
        # (counted on the thread): each has one writer, so they are read without a lock.
        self.submitted = 0
        self.finished = 0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self.finished += 1

        return await super()._execute(run)

    async def rollback(self) -> None:
        connection = self._connection
        # Only when every call made has run: a BEGIN still queued (its caller cancelled) would
        # otherwise leave a transaction open after this returns.
        if (
            connection is not None
            and self.finished == self.submitted
            and not connection.in_transaction
        ):
            return
        await super().rollback()

    def raw(self) -> sqlite3.Connection:
        connection = self._conn  # aiosqlite's: set once the thread has connected
        return connection

    async def call(self, fn: Callable[[], Any]) -> Any:
        return await self._execute(fn)

    async def cursor(self) -> Cursor:  # type: ignore[override]
        return Cursor(self)


def connector(database: str, **kwargs: Any) -> Callable[[], Connection]:
    """For ``create_async_engine(async_creator=...)``: a new :class:`Connection` each call."""

    def connect() -> Connection:
        return Connection(lambda: sqlite3.connect(database, **kwargs), 64)

    return connect
