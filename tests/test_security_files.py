"""Files syncup writes are readable by their owner only (0600), whatever the umask: the SQLite
database with its -wal and -shm files (created so, or tightened at start when an older syncup
left them 0644), exports and chart pictures."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from adapters.console.render import ChartFiles
from bot.cli import cli
from storage import migrate
from storage.db import Database
from tests.fakes.chart_samples import RESULTS


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are created 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "syncup.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db.engine)
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (x TEXT)"))
            await session.execute(text("INSERT INTO t VALUES ('an answer')"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        await db.dispose()


async def test_files_left_readable_are_tightened_at_start(tmp_path: Path) -> None:
    path = tmp_path / "syncup.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(db.engine)
    await db.dispose()
    loosen(path)
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))
    finally:
        await db.dispose()
    assert set(modes(path).values()) == {0o600}


def loosen(path: Path) -> None:
    """What an older syncup left: the files readable by everyone."""
    for suffix in ("", "-wal", "-shm"):
        target = Path(f"{path}{suffix}")
        target.touch()
        target.chmod(0o644)


def modes(path: Path) -> dict[str, int]:
    found = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    return {f.name: mode(f) for f in found if f.exists()}


def test_an_export_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYNCUP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCUP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    existing = tmp_path / "old.csv"
    existing.write_text("old export\n")
    existing.chmod(0o644)
    for target in (tmp_path / "polls.json", existing):
        result = runner.invoke(cli, ["export", "polls", "--format", "json", "-o", str(target)])
        assert result.exit_code == 0, result.output
        assert mode(target) == 0o600
    assert mode(tmp_path / "cli.db") == 0o600


def test_a_chart_picture_is_private(tmp_path: Path) -> None:
    line = ChartFiles(tmp_path / "charts").save(RESULTS)
    written = list((tmp_path / "charts").iterdir())
    assert len(written) == 1 and str(written[0]) in line
    assert mode(written[0]) == 0o600
