"""An operator's mistake gets one line that says what is wrong and what to do, and a non-zero
exit code; never a traceback. Real SQLite files and the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update
from sqlalchemy.engine import URL, make_url

from bot.chat import message
from bot.cli import cli
from bot.delivery.outbox import enqueue
from bot.port import Method, Target
from storage import migrate
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Workspace
from tests.conftest import drop_pg_database, fresh_pg_database, pg_base_url

COMMANDS = [
    ["run"],
    ["db", "current"],
    ["outbox", "list"],
    ["export", "standups", "--since", "2026-01-01"],
    ["export", "polls"],
]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("SYNCUP_") and name != "SYNCUP_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def one_line(result: Result, *expected: str, code: int = 1) -> str:
    """The command failed with ``code`` and said so in one line naming ``expected``."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"unhandled {result.exception!r}:\n{result.output}"
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("syncup: "), line
    for text in expected:
        assert text in line, line
    return line


def invoke(runner: CliRunner, url: str, args: list[str]) -> Result:
    return runner.invoke(cli, args, env={"SYNCUP_DATABASE_URL": url}, input="")


def _pg() -> URL:
    base = pg_base_url()
    if base is None:
        pytest.skip("PostgreSQL tests need SYNCUP_TEST_DATABASE_URL")
    return make_url(base)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL that cannot be reached ---------------------------------------------------------


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("role", ['has no role "nosuchrole"', "CREATE ROLE nosuchrole", "[database] url"]),
        ("database", ['has no database "nosuchdb"', "createdb", "[database] url"]),
        ("refused", ["connection refused", "Start the server", "[database] url"]),
        ("host", ['"nosuchhost.invalid" does not resolve', "[database] url"]),
    ],
)
def test_unreachable_postgresql(
    runner: CliRunner, args: list[str], problem: str, expected: list[str]
) -> None:
    base = _pg()
    url = {
        "role": base.set(username="nosuchrole", password=None),
        "database": base.set(database="nosuchdb"),
        "refused": base.set(host="127.0.0.1", port=_free_port()),
        "host": base.set(host="nosuchhost.invalid"),
    }[problem].render_as_string(hide_password=False)
    one_line(invoke(runner, url, args), *expected)


# -- SQLite files that are not usable -----------------------------------------------------------


def _migrated_sqlite(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"

    async def go() -> None:
        db = Database(url)
        await migrate.upgrade(db.engine)
        await db.dispose()

    asyncio.run(go())
    _checkpoint(path)
    return url


def _checkpoint(path: Path) -> None:
    """Everything into the main file, so that the file alone is the database."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_sqlite_file_that_is_not_a_database(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("These are my notes, not a database. " * 40)
    line = one_line(invoke(runner, f"sqlite+aiosqlite:///{path}", args), "is not a SQLite database")
    assert str(path) in line
    assert path.read_text().startswith("These are my notes")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_truncated_sqlite_file(runner: CliRunner, tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "syncup.db"
    _migrated_sqlite(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 3])
    one_line(
        invoke(runner, f"sqlite+aiosqlite:///{path}", args),
        "is damaged",
        "Restore it from a backup",
    )


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_sqlite_in_a_missing_folder(runner: CliRunner, tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "no" / "such" / "syncup.db"
    line = one_line(
        invoke(runner, f"sqlite+aiosqlite:///{path}", args),
        f"the folder {path.parent} does not exist",
        "mkdir -p",
    )
    assert "Traceback" not in line
    assert not path.parent.exists()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_sqlite_path_that_is_a_folder(runner: CliRunner, tmp_path: Path, args: list[str]) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    one_line(
        invoke(runner, f"sqlite+aiosqlite:///{folder}", args),
        f"{folder} is a folder, not a database file",
        f"sqlite+aiosqlite:///{folder / 'syncup.db'}",
    )


@pytest.mark.parametrize(
    "args", [["run"], ["db", "upgrade"], ["outbox", "retry", "--all-dead"]], ids=" ".join
)
def test_read_only_sqlite_opened_read_only(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    """SQLite's own read-only mode (a URI with mode=ro): every write is refused."""
    path = tmp_path / "syncup.db"
    url = _migrated_sqlite(path)
    if args[0] != "outbox":
        asyncio.run(_downgrade(url, "0006"))  # so that `db upgrade` and `run` have to write
        _checkpoint(path)
    _seed_dead_message(path)
    read_only = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    one_line(invoke(runner, read_only, args), f"{path} is read-only", "write permission")


async def _downgrade(url: str, revision: str) -> None:
    db = Database(url)
    await migrate.downgrade(db.engine, revision)
    await db.dispose()


def _seed_dead_message(path: Path) -> None:
    """One dead-lettered message, so that ``outbox retry --all-dead`` has something to write."""
    now = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)

    async def go() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        async with db.transaction() as session:
            ws = Workspace(platform="test", external_id="W1", name="", created_at=now)
            session.add(ws)
            await session.flush()
            row = await enqueue(
                session,
                workspace_id=ws.id,
                method=Method.POST,
                target=Target(channel_id="C1"),
                message=message("hello"),
                key="k",
                now=now,
            )
            await session.flush()
            await session.execute(
                update(OutboxMessage).values(status=OutboxStatus.DEAD, attempts=8)
            )
            del row
        await db.dispose()

    asyncio.run(go())
    _checkpoint(path)


def _without_root_powers() -> list[str]:
    """A command prefix under which file permissions apply (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions would not apply")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.mark.parametrize("args", [["run"], ["db", "upgrade"]], ids=" ".join)
def test_read_only_sqlite_file_in_a_real_process(tmp_path: Path, args: list[str]) -> None:
    """chmod 444 on the file and its folder, and the real ``syncup`` process."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "syncup.db"
    url = _migrated_sqlite(path)
    asyncio.run(_downgrade(url, "0006"))
    _checkpoint(path)
    for extra in folder.glob("syncup.db-*"):
        extra.unlink()
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCUP_")}
        env["SYNCUP_DATABASE_URL"] = url
        done = subprocess.run(
            [*_without_root_powers(), sys.executable, "-m", "bot", *args],
            env=env,
            cwd=tmp_path,
            input="",
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"syncup: The SQLite database {path} is read-only"), lines[0]


# -- migrations ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(runner: CliRunner, tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url
        return
    base = _pg().render_as_string(hide_password=False)
    url = asyncio.run(fresh_pg_database(base))
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(base, url))


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
@pytest.mark.parametrize("revision", ["nosuchrev", "xyz", "00", "+99"])
def test_unknown_revision(runner: CliRunner, any_url: str, command: str, revision: str) -> None:
    assert invoke(runner, any_url, ["db", "upgrade", "0003"]).exit_code == 0
    one_line(
        invoke(runner, any_url, ["db", command, revision]),
        revision,
        "0001, 0002",
        "Nothing was changed",
    )
    assert "current: 0003" in invoke(runner, any_url, ["db", "current"]).output


def test_upgrade_to_an_older_revision_is_a_downgrade_and_does_nothing(
    runner: CliRunner, any_url: str
) -> None:
    assert invoke(runner, any_url, ["db", "upgrade", "0003"]).exit_code == 0
    one_line(
        invoke(runner, any_url, ["db", "upgrade", "0002"]),
        "at 0003",
        "downgrade",
        "Nothing was changed",
        "syncup db downgrade 0002",
    )
    assert "current: 0003" in invoke(runner, any_url, ["db", "current"]).output
    one_line(
        invoke(runner, any_url, ["db", "downgrade", "0005"]),
        "upgrade",
        "syncup db upgrade 0005",
    )
    assert "current: 0003" in invoke(runner, any_url, ["db", "current"]).output
    same = invoke(runner, any_url, ["db", "upgrade", "0003"])
    assert same.exit_code == 0 and "already at 0003" in same.output
    up = invoke(runner, any_url, ["db", "upgrade"])
    assert up.exit_code == 0 and f"from 0003 to {migrate.head_revision()}" in up.output


def _mark_newer(url: str) -> None:
    async def go() -> None:
        db = Database(url)
        await migrate.upgrade(db.engine)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
        await db.dispose()

    asyncio.run(go())


@pytest.mark.parametrize(
    "args",
    [*COMMANDS, ["db", "upgrade"], ["db", "downgrade", "0001"], ["outbox", "retry", "1"]],
    ids=lambda a: " ".join(a[:2]),
)
def test_database_migrated_by_a_newer_syncup(
    runner: CliRunner, any_url: str, args: list[str]
) -> None:
    _mark_newer(any_url)
    result = invoke(runner, any_url, args)
    if args == ["db", "current"]:
        assert result.exit_code == 1
        assert "upgrade syncup" in result.output.lower()
        assert "run `syncup db upgrade`" not in result.output
        return
    line = one_line(result, "0999", "newer syncup", "Upgrade syncup")
    assert "Run `syncup db upgrade`" not in line


# -- outbox and export arguments ----------------------------------------------------------------


def test_outbox_retry_of_an_id_too_large(runner: CliRunner, any_url: str) -> None:
    assert invoke(runner, any_url, ["db", "upgrade"]).exit_code == 0
    one_line(
        invoke(runner, any_url, ["outbox", "retry", "99999999999999999999999"]),
        '"99999999999999999999999" is not an outbox message id',
        code=2,
    )


def test_outbox_retry_of_a_missing_message_fails(runner: CliRunner, any_url: str) -> None:
    assert invoke(runner, any_url, ["db", "upgrade"]).exit_code == 0
    result = invoke(runner, any_url, ["outbox", "retry", "999"])
    one_line(result, "No message 999 in the outbox", "syncup outbox list")
    assert "0 message(s) queued again." in result.stdout


def test_outbox_on_an_empty_database_says_to_upgrade(runner: CliRunner, sqlite_url: str) -> None:
    one_line(invoke(runner, sqlite_url, ["outbox", "list"]), "Run `syncup db upgrade`")


@pytest.mark.parametrize("export", [["standups", "--since", "2026-01-01"], ["polls"]])
def test_export_into_a_missing_folder(
    runner: CliRunner, sqlite_url: str, tmp_path: Path, export: list[str]
) -> None:
    assert invoke(runner, sqlite_url, ["db", "upgrade"]).exit_code == 0
    target = tmp_path / "missing" / "dir" / "x.csv"
    one_line(
        invoke(runner, sqlite_url, ["export", *export, "-o", str(target)]),
        f"the folder {target.parent} does not exist",
        "mkdir -p",
    )
    assert not (tmp_path / "missing").exists()


def test_export_writes_the_file_whole(runner: CliRunner, sqlite_url: str, tmp_path: Path) -> None:
    assert invoke(runner, sqlite_url, ["db", "upgrade"]).exit_code == 0
    target = tmp_path / "out" / "polls.csv"
    target.parent.mkdir()
    result = invoke(runner, sqlite_url, ["export", "polls", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("workspace,")
    assert [p.name for p in target.parent.iterdir()] == ["polls.csv"]


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCUP_")}
    env["SYNCUP_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'syncup.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "current"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"syncup: Cannot create the SQLite database {tmp_path / 'missing' / 'syncup.db'}: the "
        f"folder {tmp_path / 'missing'} does not exist. Create it (mkdir -p "
        f"{tmp_path / 'missing'}) or fix the path in [database] url ($SYNCUP_DATABASE_URL)."
    ]


def test_a_failed_export_leaves_no_file(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "polls.csv"
    notes = tmp_path / "notes.db"
    notes.write_text("not a database " * 100)
    one_line(
        invoke(runner, f"sqlite+aiosqlite:///{notes}", ["export", "polls", "-o", str(target)]),
        "is not a SQLite database",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]
