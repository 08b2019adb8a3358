"""Database outages: told once, not once a second.

When the database goes away (PostgreSQL down or restarting, a connection killed, a SQLite file
that cannot be opened), fills its disk or turns read-only, every part of the bot that uses it
fails at once and again at every retry. :class:`Database` turns those failures into one
:class:`DatabaseUnavailable` (whose callers skip the traceback) and reports them to its
:class:`DatabaseHealth`, which logs one line when the database becomes unusable, one when the
kind of trouble changes, and one when it is back, then calls its ``on_back`` callbacks (the
scheduler re-reads the schedules at once, so that what fell due meanwhile runs now).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

log = logging.getLogger(__name__)


class Outage(enum.Enum):
    UNREACHABLE = "unreachable"
    DISK_FULL = "disk full"
    READ_ONLY = "read-only"


# What each kind means for the operator, in one line.
ADVICE = {
    Outage.UNREACHABLE: "syncup retries by itself; scheduled work runs once it is back",
    Outage.DISK_FULL: "nothing can be saved until space is freed",
    Outage.READ_ONLY: (
        "nothing can be saved: check the file's and its folder's permissions, or that the "
        "server is a primary, not a read-only standby"
    ),
}

# SQLSTATE (PostgreSQL) by class or full code.
_PG_STATES = {
    "08": Outage.UNREACHABLE,  # connection exception
    "57P01": Outage.UNREACHABLE,  # admin shutdown (also pg_terminate_backend)
    "57P02": Outage.UNREACHABLE,  # crash shutdown
    "57P03": Outage.UNREACHABLE,  # cannot connect now (starting up)
    "53100": Outage.DISK_FULL,
    "25006": Outage.READ_ONLY,  # read-only SQL transaction (a standby, default_transaction_...)
}
# SQLite's extended result names (Python 3.11+: sqlite3.Error.sqlite_errorname).
_SQLITE_NAMES = {
    "SQLITE_FULL": Outage.DISK_FULL,
    "SQLITE_READONLY": Outage.READ_ONLY,
    "SQLITE_CANTOPEN": Outage.UNREACHABLE,
    "SQLITE_IOERR": Outage.UNREACHABLE,
}


class DatabaseUnavailable(SQLAlchemyError):
    """The database cannot be used right now; already reported by :class:`DatabaseHealth`.

    A subclass of :class:`SQLAlchemyError`, so code that retries database errors still does."""

    def __init__(self, kind: Outage, detail: str) -> None:
        super().__init__(f"database {kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen) or len(seen) > 10:
            continue
        seen.append(item)
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return seen


def classify(
    exc: BaseException, *, read_only_is_outage: bool = True, os_errors: bool = True
) -> Outage | None:
    """The kind of outage ``exc`` shows, or None for an error of the statement itself.

    A bare :class:`OSError` (asyncpg's refused connection or unknown host arrives unwrapped)
    counts only with ``os_errors``: raised by the caller's own code inside a transaction (a
    platform call), it says nothing about the database."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.kind
    os_errors = os_errors or isinstance(exc, DBAPIError)
    for item in _chain(exc):
        if isinstance(item, OSError) and not os_errors:
            continue
        kind = _classify_one(item)
        if kind is Outage.READ_ONLY and not read_only_is_outage:
            return None
        if kind is not None:
            return kind
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Outage.UNREACHABLE
    return None


def _classify_one(exc: BaseException) -> Outage | None:
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        for prefix, kind in _SQLITE_NAMES.items():
            if name.startswith(prefix):
                return kind
        return None
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state:
        return _PG_STATES.get(state) or _PG_STATES.get(state[:2])
    if type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__:
        return Outage.UNREACHABLE  # ConnectionDoesNotExistError, InterfaceError "closed"
    if isinstance(exc, OSError):  # refused, reset, unknown host, timed out
        return Outage.UNREACHABLE
    return None


def describe(exc: BaseException) -> str:
    """A short reason without statements or parameters."""
    for item in reversed(_chain(exc)):
        if not isinstance(item, SQLAlchemyError):
            text = str(item).strip().splitlines()[0] if str(item).strip() else ""
            return f"{type(item).__name__}: {text}"[:200] if text else type(item).__name__
    return type(exc).__name__


class DatabaseHealth:
    """Whether the database was usable at the last try, with one log line per change."""

    def __init__(self) -> None:
        self.outage: Outage | None = None
        self._since = 0.0
        self.on_back: list[Callable[[], Awaitable[None] | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def failed(self, kind: Outage, exc: BaseException) -> None:
        if self.outage is kind:
            return
        if self.outage is None:
            self._since = time.monotonic()
        self.outage = kind
        log.error("database %s (%s): %s", kind.value, describe(exc), ADVICE[kind])

    def ok(self) -> None:
        if self.outage is None:
            return
        kind, self.outage = self.outage, None
        down = time.monotonic() - self._since
        log.warning("database usable again after %.1fs (it was %s)", down, kind.value)
        for callback in self.on_back:
            result = callback()
            if result is not None:
                task = asyncio.ensure_future(self._run(result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(aw: Awaitable[None]) -> None:
        try:
            await aw
        except DatabaseUnavailable:
            pass  # gone again: already told
        except Exception:
            log.exception("after the database came back: a callback failed")
