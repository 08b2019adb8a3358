"""Blockers on the console, through the real App: a standup blocker becomes a card; the same
blocker named in the next day's standup updates that card (reported again, one blocker) and
the report names it; a different one the day after opens a second card."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.models import Blocker
from tests.test_console import run_console
from tests.test_standup_runtime import db_rows

SETUP = [
    "/standup setup",
    "Daily standup",
    "#team",
    "@bob",
    *[""] * 10,
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


async def test_a_standup_blocker_named_again_is_one_blocker(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            *SETUP,
            "/as bob",
            "/clock 09:00",
            "Fixed the flaky tests",
            "Pair with alice",
            "Waiting for staging access",
            "/clock 2026-03-10 09:00",
            "Reviewed the API",
            "Write docs",
            "Still waiting for staging access!",
            "/clock 2026-03-11 09:00",
            "Wrote docs",
            "Ship it",
            "Waiting for prod access",
            "/blocker list mine",
        ],
        start="2026-03-09 08:00",
    )
    assert run.code == 0
    tuesday = run.after("bob> Still waiting for staging access!")
    assert "→ update of #" in tuesday.split("bob> /clock 2026-03-11")[0]
    assert "bob reported it again in a standup" in tuesday
    assert "  Still waiting for staging access! (blocker #1)\n" in tuesday
    wednesday = run.after("bob> Waiting for prod access")
    assert "  Blocker #2\n  Waiting for prod access\n" in wednesday
    assert "  Waiting for prod access (blocker #2)\n" in wednesday
    listed = run.after("bob> /blocker list mine")
    assert "#1 Waiting for staging access (by @bob, 2d old)" in listed
    assert "#2 Waiting for prod access (by @bob, 0m old)" in listed
    blockers = await db_rows(run.url, Blocker)
    assert [b.text for b in blockers] == ["Waiting for staging access", "Waiting for prod access"]
    assert blockers[0].last_reported_at is not None
