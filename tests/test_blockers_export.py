"""``syncup export blockers``: one row per blocker opened in the period, CSV and JSON, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.export import BLOCKER_FIELDS, export_blockers
from storage import migrate
from storage.db import Database
from tests.blocker_world import DANA, make_world
from tests.cli_env import cli_on_sqlite


async def test_export_blockers_csv_and_json(database: Database) -> None:
    world = await make_world(database)
    await world.run("/blocker add =SUM(A1) ETL broken --area data pipeline --waiting-on @dana")
    await world.run("/blocker add Need labelers --area labeling --waiting-on data pipeline")
    await world.run("/blocker ack 1", DANA)
    async with database.transaction() as session:
        out = io.StringIO()
        count = await export_blockers(session, out, date(2026, 3, 9), date(2026, 3, 9), "csv")
    assert count == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == BLOCKER_FIELDS
    first, second = rows
    assert first["text"] == "'=SUM(A1) ETL broken"  # a formula is not run by a spreadsheet
    assert (first["area"], first["waiting_on"], first["waiting_on_kind"]) == (
        "data pipeline",
        "dana",
        "member",
    )
    assert (first["status"], first["acknowledged_by"]) == ("acknowledged", "dana")
    assert first["created_at"] == "2026-03-09T10:00:00+00:00"
    assert (second["waiting_on"], second["waiting_on_kind"]) == ("data pipeline", "area")
    async with database.transaction() as session:
        out = io.StringIO()
        assert await export_blockers(session, out, date(2026, 3, 10), None, "json") == 0
        assert json.loads(out.getvalue()) == []
        out = io.StringIO()
        assert await export_blockers(session, out, None, None, "json") == 2
    data = json.loads(out.getvalue())
    assert data[0]["text"] == "=SUM(A1) ETL broken" and data[1]["reporter"] == "alice"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = cli_on_sqlite(tmp_path, monkeypatch, "export.db")

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db.engine)
            world = await make_world(db)
            await world.run("/blocker add ETL broken --area data pipeline")
        finally:
            await db.dispose()

    asyncio.run(go())
    return CliRunner()


def test_the_cli_exports_blockers(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["export", "blockers", "--since", "2026-03-01"])
    assert result.exit_code == 0, result.output
    assert "Exported 1 row(s)." in result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(table[0]) == BLOCKER_FIELDS and table[1][4] == "ETL broken"
    out = tmp_path / "blockers.json"
    result = runner.invoke(cli, ["export", "blockers", "--format", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["blocker_id"] for r in json.loads(out.read_text())] == [1]
    result = runner.invoke(
        cli, ["export", "blockers", "--since", "2026-03-10", "--until", "2026-03-01"]
    )
    assert result.exit_code == 2 and "is before --since" in result.output
