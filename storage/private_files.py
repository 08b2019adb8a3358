"""The SQLite database and its ``-wal``/``-shm`` files are readable by their owner only (0600):
they hold standup answers, participation and the encrypted tokens.

SQLite gives the files it creates next to a database (the WAL, the shared-memory index, a
rollback journal) the permissions of the database file, so creating that file 0600 before SQLite
opens it is enough; files left from before (created 0644) are tightened at start.
"""

from __future__ import annotations

import logging
import os
import stat

log = logging.getLogger(__name__)

PRIVATE = 0o600
SIDECARS = ("", "-wal", "-shm", "-journal")


def create_private(database: str | None) -> None:
    """Create ``database`` empty and 0600 when it does not exist; tighten it and its sidecars
    when they exist with wider permissions. Paths SQLite will refuse (a missing folder, a
    folder) are left for SQLite to report."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        pass
    except OSError:
        return
    else:
        os.close(fd)
    for suffix in SIDECARS:
        path = database + suffix
        try:
            found = os.stat(path)
            mode = stat.S_IMODE(found.st_mode)
            if stat.S_ISREG(found.st_mode) and mode & 0o077:
                os.chmod(path, mode & ~0o077)
                # Routine after an upgrade, nothing to act on: not a line in every command's
                # output (an operator's error must stay one line).
                log.debug("%s was readable by others; made it private (0600)", path)
        except OSError:
            continue
