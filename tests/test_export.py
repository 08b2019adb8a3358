"""`syncup export standups`: CSV and JSON through the CLI, streaming on both backends, bad input."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event

from bot.cli import cli
from bot.export import FIELDS, StandupExportRow, standup_rows
from storage.db import Database
from storage.models import (
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from tests.cli_env import cli_on_sqlite

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
QUESTIONS = ["What did you do?", "What will you do?"]


async def seed(db: Database) -> None:
    """Two workspaces; "daily" in Acme with runs on 03-06, 03-09 and 03-10."""
    async with db.transaction() as session:
        acme = Workspace(platform="slack", external_id="T-ACME", name="Acme", created_at=NOW)
        unnamed = Workspace(platform="discord", external_id="G-42", name="", created_at=NOW)
        session.add_all([acme, unnamed])
        await session.flush()
        members: dict[str, Member] = {}
        for ws, user in ((acme, "alice"), (acme, "bob"), (unnamed, "olga")):
            members[user] = Member(
                workspace_id=ws.id,
                platform_user_id=f"U-{user}",
                display_name=user,
                timezone="Europe/Berlin",
                created_at=NOW,
                updated_at=NOW,
            )
        session.add_all(members.values())
        await session.flush()
        standups: dict[int, Standup] = {}
        for ws in (acme, unnamed):
            channel = Channel(workspace_id=ws.id, external_id="C1", name="team", created_at=NOW)
            session.add(channel)
            await session.flush()
            standups[ws.id] = Standup(
                workspace_id=ws.id,
                name="daily",
                report_channel_id=channel.id,
                questions=[{"text": q, "kind": "text"} for q in QUESTIONS],
                days=[1, 2, 3, 4, 5],
                anchor_date=date(2026, 1, 5),
                time_of_day="09:00",
                created_at=NOW,
                updated_at=NOW,
            )
        session.add_all(standups.values())
        await session.flush()

        async def prompt(
            ws: Workspace,
            user: str,
            day: date,
            status: PromptStatus,
            answers: dict[int, str],
        ) -> None:
            standup = standups[ws.id]
            run = await session.scalar(
                StandupRun.__table__.select()
                .with_only_columns(StandupRun.id)
                .where(StandupRun.standup_id == standup.id, StandupRun.run_date == day)
            )
            if run is None:
                new_run = StandupRun(
                    standup_id=standup.id,
                    run_date=day,
                    closes_at=datetime(day.year, day.month, day.day, 13, tzinfo=UTC),
                    created_at=NOW,
                )
                session.add(new_run)
                await session.flush()
                run = new_run.id
            row = StandupPrompt(
                run_id=run,
                member_id=members[user].id,
                status=status,
                answered_at=datetime(day.year, day.month, day.day, 8, 5, 30, 123456, tzinfo=UTC)
                if status is PromptStatus.ANSWERED
                else None,
                updated_at=NOW,
            )
            session.add(row)
            await session.flush()
            for index, answer in answers.items():
                session.add(StandupAnswer(prompt_id=row.id, question_index=index, text=answer))

        await prompt(acme, "alice", date(2026, 3, 6), PromptStatus.ANSWERED, {0: "old", 1: "x"})
        await prompt(
            acme,
            "alice",
            date(2026, 3, 9),
            PromptStatus.ANSWERED,
            {1: "ship it", 0: 'fixed "login", then\nreviewed'},
        )
        await prompt(acme, "bob", date(2026, 3, 9), PromptStatus.AWAY, {})
        await prompt(acme, "alice", date(2026, 3, 10), PromptStatus.PENDING, {})
        await prompt(acme, "bob", date(2026, 3, 10), PromptStatus.ANSWERED, {0: "=1+2", 5: "?"})
        await prompt(unnamed, "olga", date(2026, 3, 9), PromptStatus.SKIPPED, {})


EXPECTED = [
    # workspace, standup, run_date, member, platform id, index, question, answer, at, status
    ["Acme", "daily", "2026-03-09", "alice", "U-alice", "0", "What did you do?",
     'fixed "login", then\nreviewed', "2026-03-09T08:05:30+00:00", "answered"],
    ["Acme", "daily", "2026-03-09", "alice", "U-alice", "1", "What will you do?", "ship it",
     "2026-03-09T08:05:30+00:00", "answered"],
    ["Acme", "daily", "2026-03-09", "bob", "U-bob", "", "", "", "", "away"],
    ["Acme", "daily", "2026-03-10", "alice", "U-alice", "", "", "", "", "pending"],
    ["Acme", "daily", "2026-03-10", "bob", "U-bob", "0", "What did you do?", "=1+2",
     "2026-03-10T08:05:30+00:00", "answered"],
    ["Acme", "daily", "2026-03-10", "bob", "U-bob", "5", "Question 6 (since removed)", "?",
     "2026-03-10T08:05:30+00:00", "answered"],
    ["G-42", "daily", "2026-03-09", "olga", "U-olga", "", "", "", "", "skipped"],
]  # fmt: skip


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cli_on_sqlite(tmp_path, monkeypatch, "export.db")
    return CliRunner()


@pytest.fixture
def seeded(runner: CliRunner, tmp_path: Path) -> CliRunner:
    upgraded = runner.invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output

    async def go() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'export.db'}")
        try:
            await seed(db)
        finally:
            await db.dispose()

    asyncio.run(go())
    return runner


def test_export_csv_to_stdout(seeded: CliRunner) -> None:
    result = seeded.invoke(cli, ["export", "standups", "--since", "2026-03-09"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == list(FIELDS)
    # CSV cells a spreadsheet would evaluate get a leading apostrophe.
    expected = [[("'" + c if c == "=1+2" else c) for c in row] for row in EXPECTED]
    assert rows[1:] == expected
    assert "Exported 7 row(s)." in result.stderr


def test_export_json_to_a_file_with_until(seeded: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out" / "standups.json"
    out.parent.mkdir()
    result = seeded.invoke(
        cli,
        [
            "export",
            "standups",
            "--since",
            "2026-03-01",
            "--until",
            "2026-03-09",
            "--format",
            "json",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["run_date"], r["member"], r["question_index"]) for r in data] == [
        ("2026-03-06", "alice", 0),
        ("2026-03-06", "alice", 1),
        ("2026-03-09", "alice", 0),
        ("2026-03-09", "alice", 1),
        ("2026-03-09", "bob", None),
        ("2026-03-09", "olga", None),
    ]
    assert data[2] == {
        "workspace": "Acme",
        "standup": "daily",
        "run_date": "2026-03-09",
        "member": "alice",
        "member_platform_id": "U-alice",
        "question_index": 0,
        "question": "What did you do?",
        "answer": 'fixed "login", then\nreviewed',
        "answered_at": "2026-03-09T08:05:30+00:00",
        "status": "answered",
    }
    assert not list(out.parent.glob("*.partial"))


def test_export_json_of_nothing_is_an_empty_array(seeded: CliRunner) -> None:
    result = seeded.invoke(cli, ["export", "standups", "--since", "2027-01-01", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "Exported 0 row(s)." in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing option '--since'"),
        (
            ["--since", "2026-13-01"],
            "Invalid value for '--since': '2026-13-01' is not a date; use YYYY-MM-DD",
        ),
        (["--since", "last week"], "'last week' is not a date; use YYYY-MM-DD, e.g. 2026-03-01."),
        (
            ["--since", "2026-03-09", "--until", "2026-03"],
            "Invalid value for '--until': '2026-03' is not a date",
        ),
        (
            ["--since", "2026-03-09", "--until", "2026-03-01"],
            "Invalid value for '--until': 2026-03-01 is before --since 2026-03-09.",
        ),
        (["--since", "2026-03-09", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_export_bad_input(seeded: CliRunner, args: list[str], message: str) -> None:
    result = seeded.invoke(cli, ["export", "standups", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_export_refuses_an_unmigrated_database(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    result = runner.invoke(
        cli, ["export", "standups", "--since", "2026-03-01", "--output", str(out)]
    )
    assert result.exit_code == 1
    assert "Run `syncup db upgrade`" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_export_help(runner: CliRunner) -> None:
    for args in (["export"], ["export", "standups"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage: syncup export" in result.output


def flat(row: StandupExportRow) -> list[str]:
    """A row as the CSV shows it (before the formula guard)."""
    return ["" if v is None else str(v) for v in dataclasses.astuple(row)]


async def test_rows_stream_in_order_on_both_backends(database: Database) -> None:
    await seed(database)
    async with database.transaction() as session:
        rows = [r async for r in standup_rows(session, date(2026, 3, 9), date(2026, 3, 10))]
    assert [flat(r) for r in rows] == EXPECTED


async def test_rows_come_from_a_server_side_cursor_in_batches(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query asks for streamed results in batches of BATCH, and a batch smaller than the
    export still yields every row once, in order."""
    monkeypatch.setattr("bot.export.BATCH", 2)
    await seed(database)
    seen: list[dict[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if "standup_answers" in statement:
            seen.append(dict(context.execution_options))

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with database.transaction() as session:
            rows = [flat(r) async for r in standup_rows(session, date(2026, 3, 1))]
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert rows[:2] == [
        ["Acme", "daily", "2026-03-06", "alice", "U-alice", "0", "What did you do?", "old",
         "2026-03-06T08:05:30+00:00", "answered"],
        ["Acme", "daily", "2026-03-06", "alice", "U-alice", "1", "What will you do?", "x",
         "2026-03-06T08:05:30+00:00", "answered"],
    ]  # fmt: skip
    assert rows[2:] == EXPECTED
    assert len(seen) == 1
    assert seen[0].get("yield_per") == 2
    assert seen[0].get("stream_results") is True
