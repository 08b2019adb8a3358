"""The async engine and transactions.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Its transactions start with
``BEGIN IMMEDIATE`` so that two writers queue for the lock instead of one of them failing with
"database is locked" when it upgrades a read to a write; savepoints work because the driver's own
transaction handling is switched off and SQLAlchemy emits BEGIN itself.

SQLite has one writer at a time, and a connection waiting for the lock polls with growing sleeps
(its busy handler). Within one process, :meth:`Database.transaction` therefore queues SQLite
transactions in :class:`~storage.turns.Turns` of one first (first come, first served, no
polling, an urgent transaction ahead of background work); the busy timeout still covers other
processes on the same file.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.sqlite import aiosqlite as aiosqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import private_files, sqlite_driver
from storage.outages import DatabaseHealth, DatabaseUnavailable, classify
from storage.turns import Turns

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "syncup_read_only"


def create_engine(url: str, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    # Never a statement's parameters in a log line or an exception's text (ballots, a poll's
    # secret, answers); echo shows statements through the logging set-up (bot.logs), not
    # through a handler of SQLAlchemy's own that would bypass its redaction.
    kwargs["hide_parameters"] = True
    if echo:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    if parsed.get_backend_name() == "sqlite":
        private_files.create_private(parsed.database)
        # Each statement in one trip to aiosqlite's thread (storage.sqlite_driver), connected
        # with the arguments SQLAlchemy's dialect makes of the URL (a URI's mode=ro included).
        args, options = aiosqlite_dialect.dialect().create_connect_args(parsed)
        options["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        connect = sqlite_driver.connector(*args, **options)
        engine = create_async_engine(url, async_creator=connect, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten on disk, not left in free pages: an anonymous poll's
        # ballots are rewritten at close (storage.polls) and the old ones must not linger.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A read (Database.read) takes a snapshot and no write lock, and cannot write; the
        # pooled connection is made writable again by the next transaction that needs it.
        info = connection.connection.info
        if connection.get_execution_options().get(READ_ONLY, False):
            if not info.get(READ_ONLY):
                connection.exec_driver_sql("PRAGMA query_only = ON")
                info[READ_ONLY] = True
            connection.exec_driver_sql("BEGIN")
            return
        if info.pop(READ_ONLY, False):
            connection.exec_driver_sql("PRAGMA query_only = OFF")
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _pool_capacity(engine: AsyncEngine) -> int | None:
    """How many connections the engine's pool hands out at most; None when unbounded."""
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)  # QueuePool's; it has no public reader
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    return int(size()) + overflow


class Database:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(
        self, url: str, *, echo: bool = False, watch_outages: bool = False, **engine_kwargs: Any
    ) -> None:
        self.url = url
        # The running bot (App) watches outages; a one-shot CLI command gets the driver's own
        # errors, which it turns into its one-line messages.
        self.watch_outages = watch_outages
        self.engine = create_engine(url, echo=echo, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: one writer at a time, per event loop (tests and the CLI may run several
        # loops). Elsewhere: transactions queue for a pooled connection here, first come first
        # served and without a time limit, rather than in the pool, which fails a checkout that
        # waits longer than its timeout (a burst of 10,000 votes would turn into errors).
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._capacity = 1 if self._sqlite else _pool_capacity(self.engine)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = (
            weakref.WeakKeyDictionary()
        )
        # Outages (unreachable, disk full, read-only) are logged there once, not per failure.
        self.health = DatabaseHealth()
        # Told how long each transaction waited for its turn (bot.metrics; bot.app sets it).
        self.on_pool_wait: Callable[[float], None] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error.

        Transactions must not nest (on SQLite they never could: each one takes the write lock).
        ``urgent``: someone waits on this commit within a deadline (an HTTP answer); it goes
        before the background transactions queued in this process (storage.turns). With
        ``watch_outages``, a database that cannot be used (unreachable, disk full, read-only)
        raises :class:`~storage.outages.DatabaseUnavailable`, reported once to :attr:`health`."""
        in_body = False
        try:
            async with self._transaction(urgent) as session:
                await session.connection()  # connect first: a failure here is the database's
                in_body = True
                yield session
                in_body = False
        except Exception as exc:
            outage = self._outage(exc, read_only_is_outage=True, os_errors=not in_body)
            if outage is exc:
                raise
            raise outage from exc
        self.health.ok()

    def _outage(self, exc: Exception, *, read_only_is_outage: bool, os_errors: bool) -> Exception:
        """``exc`` as a :class:`DatabaseUnavailable` if it shows an outage (reported), else
        ``exc`` itself."""
        if isinstance(exc, DatabaseUnavailable) or not self.watch_outages:
            return exc
        kind = classify(exc, read_only_is_outage=read_only_is_outage, os_errors=os_errors)
        if kind is None:
            return exc
        self.health.failed(kind, exc)
        return DatabaseUnavailable(kind, type(exc).__name__)

    @asynccontextmanager
    async def _transaction(self, urgent: bool) -> AsyncIterator[AsyncSession]:
        if self._capacity is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = Turns(self._capacity, self._waited)
        async with turns.turn(urgent=urgent), self.sessions() as session, session.begin():
            yield session

    def _waited(self, seconds: float) -> None:
        if self.on_pool_wait is not None:
            self.on_pool_wait(seconds)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only: one consistent snapshot, and on SQLite neither the
        in-process writer lock nor the database's (WAL readers never block the writer). For
        long reads, such as rendering a large report, that writers must not wait for. Writes
        in it fail (PostgreSQL: a read-only transaction; SQLite: the lock is never taken)."""
        in_body = False
        try:
            async with self._read() as session:
                in_body = True
                yield session
                in_body = False
        except Exception as exc:
            # A write refused here is the caller's mistake, not a read-only database.
            outage = self._outage(exc, read_only_is_outage=False, os_errors=not in_body)
            if outage is exc:
                raise
            raise outage from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            await session.connection(execution_options={READ_ONLY: True})
            if not self._sqlite:
                await session.execute(
                    text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                )
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()
