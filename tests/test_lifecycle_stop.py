"""Stopping (invariant 9) and one process per SQLite file, with real ``syncup run`` processes.

Each test runs the console in a child process with its stdin kept open (as under docker, where
nothing types), so the process only ends because of what the test does. Timeouts are safety
nets against a hang, never assertions about speed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from storage.sqlite_lock import DatabaseInUse, hold, lock_path

SAFETY = 60  # seconds before a hung child fails the test
REPO = Path(__file__).resolve().parent.parent


def child_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCUP_")}
    env["SYNCUP_DATABASE_URL"] = db_url
    env["PYTHONPATH"] = str(REPO)
    return env


class Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr: list[str] = []

    async def wait_for_line(self, needle: str) -> str:
        assert self.proc.stderr is not None
        async with asyncio.timeout(SAFETY):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(f"no {needle!r} before exit: {self.stderr}")
                line = raw.decode()
                self.stderr.append(line)
                if needle in line:
                    return line

    async def finish(self) -> int:
        assert self.proc.stderr is not None
        async with asyncio.timeout(SAFETY):
            rest = await self.proc.stderr.read()
            self.stderr.extend(rest.decode().splitlines(keepends=True))
            return await self.proc.wait()


@asynccontextmanager
async def syncup_run(tmp_path: Path, db_url: str) -> AsyncIterator[Child]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--platform",
        "console",
        cwd=tmp_path,
        env=child_env(db_url),
        stdin=asyncio.subprocess.PIPE,  # kept open: the console waits for input
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Child(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"


async def test_sigterm_stops_gracefully_with_exit_code_0(tmp_path: Path) -> None:
    async with syncup_run(tmp_path, sqlite_url(tmp_path)) as child:
        await child.wait_for_line("syncup started")
        child.proc.send_signal(signal.SIGTERM)
        code = await child.finish()
    log = "".join(child.stderr)
    assert code == 0, log
    assert "SIGTERM received: stopping" in log
    assert "syncup stopped" in log
    assert "Traceback" not in log
    # The lock file is emptied on the way out (a kill -9 leaves the owner, but no lock).
    assert lock_path(sqlite_url(tmp_path)).read_text() == ""  # type: ignore[union-attr]


async def test_sigint_stops_gracefully_too(tmp_path: Path) -> None:
    async with syncup_run(tmp_path, sqlite_url(tmp_path)) as child:
        await child.wait_for_line("syncup started")
        child.proc.send_signal(signal.SIGINT)
        code = await child.finish()
    log = "".join(child.stderr)
    assert code == 130, log
    assert "SIGINT received: stopping" in log and "syncup stopped" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


async def test_a_second_run_on_one_sqlite_file_is_refused_naming_the_first(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    async with syncup_run(tmp_path, url) as first:
        await first.wait_for_line("syncup started")
        async with syncup_run(tmp_path, url) as second:
            assert second.proc.stdin is not None
            second.proc.stdin.close()
            code = await second.finish()
        first.proc.send_signal(signal.SIGTERM)
        assert await first.finish() == 0
    lines = [line for line in second.stderr if line.strip()]
    assert code == 1
    assert len(lines) == 1, lines
    assert f"in use by syncup {socket.gethostname()}:{first.proc.pid}" in lines[0]
    assert "use PostgreSQL to run several" in lines[0]


async def test_the_lock_dies_with_its_process_even_on_kill_9(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    async with syncup_run(tmp_path, url) as first:
        await first.wait_for_line("syncup started")
        with pytest.raises(DatabaseInUse, match=f":{first.proc.pid};"):
            hold(url, "test:1")
        first.proc.kill()
        await first.proc.wait()
    lock = hold(url, "test:2")  # the kernel dropped the dead process's lock
    assert lock is not None
    try:
        assert lock.path.read_text() == "test:2\n"
    finally:
        lock.release()


def test_postgresql_and_memory_databases_take_no_lock(tmp_path: Path) -> None:
    assert hold("postgresql+asyncpg://postgres@127.0.0.1:5432/x", "a:1") is None
    assert hold("postgresql+asyncpg://postgres@127.0.0.1:5432/x", "b:2") is None
    assert hold("sqlite+aiosqlite:///:memory:", "a:1") is None
    assert not list(tmp_path.iterdir())


def test_apps_of_one_process_share_the_lock_and_the_last_one_drops_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first = hold(url, "host:1")
    second = hold(url, "host:1")
    assert first is not None and second is not None
    assert first.first and not second.first  # only the first may take over every lease
    first.release()
    assert lock_path(url).read_text() == "host:1\n"  # type: ignore[union-attr]
    second.release()
    assert lock_path(url).read_text() == ""  # type: ignore[union-attr]
    again = hold(url, "host:2")
    assert again is not None and again.first
    again.release()
