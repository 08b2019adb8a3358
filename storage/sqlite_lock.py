"""One process per SQLite file.

SQLite serves one syncup process: two on the same file would each pace the platforms as if alone
(doubling the send rate into 429s) and fight over the write lock. :func:`hold` takes an exclusive
``flock`` on ``<database>.lock`` next to the file and writes the owner's ``host:pid`` into it;
the kernel drops the lock when the process ends, however it ends (even ``kill -9``), so a stale
file never blocks a restart. PostgreSQL needs none of this: it serves any number of replicas.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class DatabaseInUse(Exception):
    """Another syncup process holds the SQLite database."""


def lock_path(url: str) -> Path | None:
    """The lock file of a SQLite database URL; None for an in-memory database or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(f"{parsed.database}.lock")


class ProcessLock:
    """The process's hold on a database's lock, until :meth:`release` (or the process ends).

    Within one process the lock is shared (tests run several apps on one file): ``first`` is
    True for the hold that took it, and the file lock goes with the last release."""

    def __init__(self, path: Path, fd: int, *, first: bool) -> None:
        self.path = path
        self.first = first
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        key = str(self.path)
        _held[key] -= 1
        if _held[key]:
            return
        del _held[key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock


# Lock file -> how many holds of this process share it, and the descriptor holding the flock.
_held: dict[str, int] = {}
_fds: dict[str, int] = {}


def hold(url: str, owner: str) -> ProcessLock | None:
    """Take the SQLite database's process lock for ``owner`` (``host:pid``).

    Raises :class:`DatabaseInUse` naming the process that holds it. Returns None when there is
    nothing to lock (PostgreSQL, in-memory) or the lock file cannot be created (a folder that
    does not exist or is read-only: opening the database reports that in its own words)."""
    path = lock_path(url)
    if path is None:
        return None
    path = path.resolve()
    key = str(path)
    if _held.get(key):
        _held[key] += 1
        return ProcessLock(path, _fds[key], first=False)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 256, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise DatabaseInUse(
            f"the SQLite database {path.with_suffix('')} is in use by syncup {other}; SQLite "
            "serves one process: stop that one first, or use PostgreSQL to run several."
        ) from None
    except OSError:
        os.close(fd)
        return None  # a file system without flock: nothing to enforce it with
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{owner}\n".encode(), 0)
    _held[key] = 1
    _fds[key] = fd
    return ProcessLock(path, fd, first=True)
