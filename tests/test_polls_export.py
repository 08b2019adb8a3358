"""`syncup export polls`: one row per poll and option, CSV and JSON, on both backends; anonymous
polls carry no voter data, and no counts until they closed with enough answers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.export import POLL_FIELDS, PollExportRow, poll_rows
from storage import migrate
from storage.db import Database
from tests.cli_env import cli_on_sqlite
from tests.test_polls_create import START, PollWorld, running_world


async def seed(world: PollWorld) -> None:
    """#1 named, closed; #2 anonymous, closed with enough answers; #3 anonymous, closed with
    too few; #4 anonymous, open; #5 named open answers; #6 anonymous open answers, closed;
    #7 a 1-5 scale and #8 an eNPS poll, named, open; #9 opened a week later."""
    await world.create('"Ship?" "=SUM(A1)" No --threshold 3 --results closed')
    for name, choice in (("alice", 0), ("bob", 0), ("carol", 1)):
        await world.vote(name, 1, choice)
    await world.command("close 1")
    await world.create('"Really?" Yes No --anonymous --threshold 3')
    for name, choice in (("alice", 1), ("bob", 0), ("carol", 1), ("dana", 1)):
        await world.vote(name, 2, choice)
    await world.command("close 2")
    await world.create('"Quiet?" Yes No --anonymous')
    await world.vote("bob", 3, 0)
    await world.command("close 3")
    await world.create('"Still open?" Yes No --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, 4, 0)
    await world.create('"Ideas?" --text --threshold 3')
    await world.submit("bob", "poll-answer", {"answer": "More tests"}, "5")
    await world.create('"Secret ideas?" --text --anonymous --threshold 3')
    for name, answer in (("alice", "b idea"), ("bob", "a idea"), ("carol", "c idea")):
        await world.submit(name, "poll-answer", {"answer": answer}, "6")
    await world.command("close 6")
    await world.create('"Pace?" --scale --threshold 3')
    for name, value in (("alice", 4), ("bob", 5), ("carol", 2)):
        await world.vote(name, 7, value)
    await world.create('"Recommend?" --enps --threshold 3')
    for name, value in (("alice", 10), ("bob", 9), ("carol", 3), ("dana", 8)):
        await world.vote(name, 8, value, menu=True)
    world.clock.advance(timedelta(days=7))
    await world.create('"Next week?" Yes No')


def short(row: PollExportRow) -> tuple[object, ...]:
    return (row.poll_id, row.option_index, row.option, row.count, row.percent, row.voters)


async def test_rows_on_both_backends(database: Database) -> None:
    async with running_world(database) as world:
        await seed(world)
    async with database.transaction() as session:
        rows = [r async for r in poll_rows(session, date(2026, 3, 9), date(2026, 3, 9))]
    assert [short(r) for r in rows] == [
        (1, 0, "=SUM(A1)", 2, 67, "alice; bob"),
        (1, 1, "No", 1, 33, "carol"),
        (2, 0, "Yes", 1, 25, ""),
        (2, 1, "No", 3, 75, ""),
        # Closed with 1 answer, fewer than 5: no counts, ever.
        (3, 0, "Yes", None, None, ""),
        (3, 1, "No", None, None, ""),
        # Open: no counts yet.
        (4, 0, "Yes", None, None, ""),
        (4, 1, "No", None, None, ""),
        (5, None, "More tests", 1, 100, "bob"),
        # Anonymous open answers: sorted, nobody's name.
        (6, None, "a idea", 1, 33, ""),
        (6, None, "b idea", 1, 33, ""),
        (6, None, "c idea", 1, 33, ""),
        *[(7, v, str(v), c, p, n) for v, c, p, n in [
            (1, 0, 0, ""), (2, 1, 33, "carol"), (3, 0, 0, ""), (4, 1, 33, "alice"),
            (5, 1, 33, "bob"),
        ]],
        *[(8, v, str(v), 0, 0, "") for v in range(0, 3)],
        (8, 3, "3", 1, 25, "carol"),
        *[(8, v, str(v), 0, 0, "") for v in range(4, 8)],
        (8, 8, "8", 1, 25, "dana"),
        (8, 9, "9", 1, 25, "bob"),
        (8, 10, "10", 1, 25, "alice"),
    ]  # fmt: skip
    first = rows[0]
    assert (first.workspace, first.channel, first.kind, first.anonymous) == (
        "Test",
        "team",
        "single",
        False,
    )
    assert (first.status, first.answered, first.eligible, first.threshold) == ("closed", 3, 6, 3)
    assert first.opens_at == first.closed_at == "2026-03-09T09:00:00+00:00"
    assert first.closes_at == ""
    open_one = next(r for r in rows if r.poll_id == 4)
    assert (open_one.status, open_one.answered, open_one.closed_at) == ("open", 3, "")
    assert {r.score for r in rows if r.poll_id == 7} == {"3.67"}
    assert {r.score for r in rows if r.poll_id == 8} == {"+25"}
    assert all(r.voters == "" for r in rows if r.anonymous)
    async with database.transaction() as session:
        later = [r.poll_id async for r in poll_rows(session, date(2026, 3, 10))]
        everything = {r.poll_id async for r in poll_rows(session)}
    assert later == [9, 9]
    assert everything == set(range(1, 10))


async def test_rows_come_in_batches(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.export.POLL_BATCH", 2)
    async with running_world(database) as world:
        await seed(world)
    async with database.transaction() as session:
        batched = [short(r) async for r in poll_rows(session)]
    monkeypatch.setattr("bot.export.POLL_BATCH", 1000)
    async with database.transaction() as session:
        whole = [short(r) async for r in poll_rows(session)]
    assert batched == whole and len(whole) == 30


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = cli_on_sqlite(tmp_path, monkeypatch, "export.db")

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db.engine)
            async with running_world(db) as world:
                await seed(world)
        finally:
            await db.dispose()

    asyncio.run(go())
    return CliRunner()


def test_export_polls_csv(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["export", "polls", "--until", "2026-03-09"])
    assert result.exit_code == 0, result.output
    assert "Exported 28 row(s)." in result.stderr
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(table[0]) == POLL_FIELDS
    assert table[1][:8] == ["Test", "1", "team", "Ship?", "single", "False", "closed", "3"]
    assert table[1][14:] == ["0", "'=SUM(A1)", "2", "67", "", "alice; bob"]  # formula defused
    anonymous = [row for row in table[1:] if row[5] == "True"]
    assert anonymous and all(row[-1] == "" for row in anonymous)
    assert [row[16] for row in anonymous if row[1] in ("3", "4")] == ["", "", "", ""]


def test_export_polls_json_to_a_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "polls.json"
    result = runner.invoke(
        cli, ["export", "polls", "--format", "json", "--since", "2026-03-16", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["poll_id"], r["option"], r["count"], r["voters"]) for r in rows] == [
        (9, "Yes", 0, ""),
        (9, "No", 0, ""),
    ]
    assert rows[0]["opens_at"] == (START + timedelta(days=7)).isoformat()
    assert not list(tmp_path.glob("*.partial"))


def test_export_polls_bad_dates(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["export", "polls", "--since", "2026-03-10", "--until", "2026-03-01"]
    )
    assert result.exit_code == 2
    assert "is before --since" in result.output
    result = runner.invoke(cli, ["export", "polls", "--since", "March"])
    assert result.exit_code == 2 and "is not a date" in result.output


def test_export_polls_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["export", "polls", "--help"])
    assert result.exit_code == 0
    assert "Usage: syncup export polls" in result.output
    assert "Anonymous polls have no voter data" in " ".join(result.output.split())
