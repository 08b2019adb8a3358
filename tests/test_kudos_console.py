"""Kudos on the console through the real App (core, outbox, delivery worker) on SQLite: the daily
quota of two givers in two zones, each reset at their own midnight as the demo clock moves; the
"Give kudos" shortcut on a member (its form, field by field), and on oneself. docs/kudos.md has a
longer session, checked by tests/test_docs.py."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.features.kudos.export import KUDOS_FIELDS
from tests.cli_env import without_syncup_env
from tests.test_console import run_console


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def answer_to(output: str, line: str) -> str:
    """What the console printed after ``line`` (a prompt and what was typed), up to the next
    prompt."""
    after = output.split(line + "\n", 1)[1]
    return after.split("> /", 1)[0]


async def test_the_quota_resets_at_each_givers_midnight_as_the_clock_moves(
    tmp_path: Path,
) -> None:
    run = await run_console(
        tmp_path,
        [
            "/kudos settings quota 1",
            "/kudos @bob Thanks for the fix",
            "/kudos @eve Thanks for the docs",
            "/as bob",
            "/kudos @alice Thanks for the review",
            "/kudos @eve Thanks for the docs",
            "/as alice",
            "/clock 2026-03-10 00:30",
            "/kudos @eve Thanks for the docs",
            "/as bob",
            "/kudos @eve Thanks for the docs!",
            "/clock 2026-03-10 00:30",
            "/kudos @eve Thanks for the docs!",
        ],
        start="2026-03-09 08:00",
    )
    assert run.code == 0
    out = run.output
    assert "#1 → #team:\n  Kudos from alice to @bob\n  Thanks for the fix\n" in out
    assert (
        "→ DM to @bob:\n  alice gave you kudos:\n  Thanks for the fix\n  Posted in #team\n" in out
    )
    assert answer_to(out, "alice> /kudos @eve Thanks for the docs").startswith(
        "(only you can see this)\n  You have given all 1 of today's kudos. Your quota resets at "
        "midnight your time: 00:00 Tue 10 Mar (Europe/Berlin), in 16 h.\n"
    )
    assert "00:00 Tue 10 Mar (America/New_York), in 21 h.\n" in answer_to(
        out, "bob> /kudos @eve Thanks for the docs"
    )
    # 00:30 in Berlin is 19:30 in New York: alice's day is new, bob's is not.
    after_midnight = out.split("alice> /clock 2026-03-10 00:30\n", 1)[1]
    assert after_midnight.split("bob> ", 1)[0].count("Kudos to @eve posted in #team.") == 1
    assert "your time: 00:00 Tue 10 Mar (America/New_York), in 4 h 30 min." in answer_to(
        out, "bob> /kudos @eve Thanks for the docs!"
    )
    last = out.rsplit("bob> /kudos @eve Thanks for the docs!\n", 1)[1]
    assert last.startswith("(only you can see this)\n  Kudos to @eve posted in #team.\n")


async def test_the_give_kudos_shortcut_on_the_console(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/shortcut",
            "/shortcut give_kudos @alice",
            "/shortcut Give kudos @dana",
            "Thanks for the demo",
            "",
            "2",
        ],
        start="2026-03-09 08:00",
    )
    out = run.output
    assert "  /shortcut give_kudos @bob    Give kudos (on a member)\n" in out
    assert answer_to(out, "alice> /shortcut give_kudos @alice") == (
        "(only you can see this)\n"
        "  Kudos are for thanking someone else: you can't give yourself kudos.\n"
        "alice"
    )
    assert "Form: Kudos for dana  (/cancel to close it)" in out
    assert "(only you can see this)\n  Kudos to @dana sent privately" in out
    assert "→ DM to @dana:\n  alice gave you kudos:\n  Thanks for the demo\n" in out
    assert "→ #team" not in out  # private: posted nowhere


def test_syncup_export_kudos_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kudos given on the console, then exported by the operator's CLI (CSV to a file, JSON
    to stdout), and bad dates refused."""
    without_syncup_env(monkeypatch)
    lines = ["/kudos @bob @eve Thanks for the release #craft", "/kudos @dana psst --private"]
    run = asyncio.run(run_console(tmp_path, lines, start="2026-03-09 08:00"))
    monkeypatch.setenv("SYNCUP_DATABASE_URL", run.url)
    runner = CliRunner()
    out = tmp_path / "kudos.csv"
    result = runner.invoke(cli, ["export", "kudos", "--since", "2026-03-09", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Exported 3 row(s)." in result.stderr
    table = list(csv.reader(io.StringIO(out.read_text())))
    assert tuple(table[0]) == KUDOS_FIELDS
    assert [(r[3], r[5], r[7], r[8], r[10]) for r in table[1:]] == [
        ("alice", "bob", "craft", "False", "Thanks for the release"),
        ("alice", "eve", "craft", "False", "Thanks for the release"),
        ("alice", "dana", "", "True", "psst"),
    ]
    result = runner.invoke(cli, ["export", "kudos", "--format", "json", "--until", "2026-03-08"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = runner.invoke(
        cli, ["export", "kudos", "--since", "2026-03-10", "--until", "2026-03-01"]
    )
    assert result.exit_code == 2 and "is before --since" in result.output
