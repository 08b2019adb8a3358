"""What went wrong with the database, in words an operator can act on.

The one place where driver and SQLAlchemy errors (asyncpg, sqlite3, the network) become a
one-line message that says what is wrong and what to do. ``syncup`` prints it instead of a
traceback; an error not recognised here is left alone (it is a bug, and its traceback helps).
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

URL_HINT = "[database] url ($SYNCUP_DATABASE_URL)"


class OperatorError(Exception):
    """A problem the operator fixes (a setting, a file, a command's argument): the message says
    what is wrong and what to do, on one line."""


def describe(exc: BaseException, url: str) -> str | None:
    """One line for ``exc`` met while using the database at ``url``, or None when it is not a
    database problem an operator can fix."""
    try:
        parsed: URL | None = make_url(url)
    except ArgumentError:
        parsed = None
    for cause in _chain(exc):
        if isinstance(cause, OperatorError):
            return str(cause)
        if parsed is None:
            continue
        if parsed.get_backend_name() == "sqlite":
            message = _sqlite(cause, parsed)
        else:
            message = _postgres(cause, parsed)
        if message:
            return message
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and what caused either, each once."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "orig", None),
            current.__cause__,
            current.__context__,
            *getattr(current, "exceptions", ()),  # ExceptionGroup, asyncio's "Multiple exceptions"
        ):
            if isinstance(inner, BaseException):
                todo.append(inner)


# -- PostgreSQL ---------------------------------------------------------------------------------


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _postgres(exc: BaseException, url: URL) -> str | None:
    where = _where(url)
    state = getattr(exc, "sqlstate", None)
    server_says = str(exc).strip()
    if state == "3D000":
        return (
            f'PostgreSQL at {where} has no database "{url.database}": create it '
            f"(createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
            f"-U {url.username or 'postgres'} {url.database}) or fix the database name in "
            f"{URL_HINT}."
        )
    if state == "28000" and "does not exist" in server_says:
        return (
            f'PostgreSQL at {where} has no role "{url.username}": create it '
            f"(CREATE ROLE {url.username} LOGIN) or fix the user name in {URL_HINT}."
        )
    if state in ("28000", "28P01"):
        return (
            f'PostgreSQL at {where} refused user "{url.username}": {server_says}. Fix the user '
            f"or password in {URL_HINT}, or the server's pg_hba.conf."
        )
    if state in ("53300", "57P03"):
        return (
            f"PostgreSQL at {where} is not taking connections now ({server_says}). Try again "
            "shortly; if it lasts, check the server."
        )
    if isinstance(exc, socket.gaierror):
        return (
            f'Cannot connect to PostgreSQL: the host name "{url.host}" does not resolve. Fix '
            f"the host in {URL_HINT}, or the DNS."
        )
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
    ):
        return (
            f"Cannot connect to PostgreSQL at {where}: connection refused. Start the server, "
            f"or fix the host and port in {URL_HINT}."
        )
    if isinstance(exc, TimeoutError):
        return (
            f"Cannot connect to PostgreSQL at {where}: no answer in time. Check that the "
            f"server is up and reachable (firewall, host and port in {URL_HINT})."
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (
            f"Cannot connect to PostgreSQL at {where}: {exc.strerror or exc}. Check the "
            f"network, or the host in {URL_HINT}."
        )
    return None


# -- SQLite -------------------------------------------------------------------------------------


def sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL opens; None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # a URI (``?uri=true``): file:/path?mode=ro
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def _sqlite(exc: BaseException, url: URL) -> str | None:
    if not isinstance(exc, sqlite3.Error):
        return None
    path = sqlite_path(url)
    if path is None:
        return None
    text = str(exc).lower()
    if "file is not a database" in text:
        return (
            f"{path} is not a SQLite database (another kind of file, or encrypted). Point "
            f"{URL_HINT} at syncup's database, or move this file away to start an empty one."
        )
    if "malformed" in text or "disk i/o error" in text:
        return (
            f"The SQLite database {path} is damaged (truncated or corrupt: {exc}). Restore it "
            "from a backup (sqlite3's .recover command can rescue what is left)."
        )
    if "readonly" in text or "read-only" in text:
        return (
            f"The SQLite database {path} is read-only: syncup must write to it and create "
            f"{path.name}-wal and {path.name}-shm next to it. Give the user running syncup "
            "write permission on the file and its folder, or mount it writable."
        )
    if "database or disk is full" in text:
        return f"The disk holding {path} is full: free some space, then try again."
    if "unable to open database file" in text:
        return _cannot_open(path)
    return None


def _cannot_open(path: Path) -> str:
    if path.is_dir():
        return (
            f"{path} is a folder, not a database file: add a file name to {URL_HINT}, e.g. "
            f"sqlite+aiosqlite:///{path / 'syncup.db'}."
        )
    folder = path.parent
    if not folder.exists():
        return (
            f"Cannot create the SQLite database {path}: the folder {folder} does not exist. "
            f"Create it (mkdir -p {folder}) or fix the path in {URL_HINT}."
        )
    if not folder.is_dir():
        return (
            f"Cannot create the SQLite database {path}: {folder} is not a folder. Fix the "
            f"path in {URL_HINT}."
        )
    return (
        f"Cannot open the SQLite database {path}: permission denied. Give the user running "
        "syncup read and write permission on the file and its folder."
    )
