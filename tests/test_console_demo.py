"""The console's demo workspace has enough members (eight, in eight zones) for every result to
show at the default threshold of 5, and ``/clock`` says in words what is scheduled next.
Through the real App on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.console.demo import DEMO_MEMBERS
from adapters.console.upcoming import in_words
from storage.db import Database
from tests.test_console import run_console

VOTERS = ("bob", "chandra", "dana", "eve", "alice")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_eight_members_in_eight_zones() -> None:
    assert len(DEMO_MEMBERS) == 8
    assert len({m.timezone for m in DEMO_MEMBERS}) == 8
    assert [m.user_id for m in DEMO_MEMBERS if m.is_admin] == ["alice"]


async def test_a_default_poll_shows_its_results_with_the_demo_team(tmp_path: Path) -> None:
    votes = [line for name in VOTERS for line in (f"/as {name}", "a1")]
    run = await run_console(tmp_path, ["/poll Lunch? Pizza Sushi", *votes, "/poll close 1"])
    assert "  Results: live below, once 5 have answered.\n" in run.output
    assert "  Pizza\n  ██████████ 100% (5)\n" in run.output
    assert "  5 of 8 answered" in run.after("alice> /poll close 1")
    assert "hidden" not in run.output.lower()


async def test_a_default_pulse_round_shows_its_results_with_the_demo_team(tmp_path: Path) -> None:
    lines = ["/pulse setup", "Core", "#team", "#team", *[""] * 9, "/pulse run Core"]
    # The round's DMs go out in member order: alice's buttons are a1..., bob's b1...
    for name in VOTERS:
        mark = name[0]
        lines += [f"/as {name}", f"{mark}4", f"{mark}8", f"{mark}13"]
    run = await run_console(tmp_path, [*lines, "/clock 2026-03-13 14:00"])
    assert "8 member(s), results in #team" in run.output
    results = run.after("  Pulse results: Core")
    assert "  How sustainable was this week's pace?\n  4.0 of 5 · 5 of 8 answered\n" in results
    assert "hidden" not in results.lower()


async def test_clock_says_what_will_happen_in_words(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/standup setup",
            "Daily",
            "#team",
            "@alice @bob",
            *[""] * 5,
            "30",
            *[""] * 4,
            "/clock 09:00",
            "/poll Lunch? Pizza Sushi --closes 3h",
            "/clock",
        ],
        start="2026-03-09 08:00",
    )
    clock = run.after("alice> /clock\n")
    assert clock == (
        "alice> /clock\n"
        "Demo clock: Mon 9 Mar 2026 09:00 Europe/Berlin (08:00 UTC).\n"
        "Next scheduled:\n"
        "  Mon 9 Mar 2026 09:30 Europe/Berlin: remind @alice about the standup Daily for "
        "Mon 9 Mar\n"
        "  Mon 9 Mar 2026 10:30 Europe/Berlin: remind who has not answered poll #1 (Lunch?)\n"
        "  Mon 9 Mar 2026 12:00 Europe/Berlin: close poll #1 (Lunch?) and post its results\n"
        "  Mon 9 Mar 2026 14:00 Europe/Berlin: send the standup Daily's prompt to @bob\n"
        # The report closes when the last participant's window (bob's, in New York) does,
        # and the answer streaks are celebrated then: both are listed (ties are never cut).
        "  Mon 9 Mar 2026 18:00 Europe/Berlin: celebrate the answer streaks of the standup "
        "Daily for Mon 9 Mar\n"
        "  Mon 9 Mar 2026 18:00 Europe/Berlin: close the standup Daily's report for Mon 9 Mar\n"
    )
    assert "standup:" not in clock and "poll:" not in clock


async def test_every_schedule_key_in_words(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        ["/pulse setup", "Core", "#team", "#team", *[""] * 9, "/pulse run Core"],
    )
    db = Database(run.url)
    try:
        async with db.transaction() as session:
            words = {
                key: await in_words(session, key)
                for key in (
                    "pulse:1:round",
                    "pulse:1:digest",
                    "pulse:1:round:1:close",
                    "pulse:1:round:1:remind",
                    "housekeeping",
                    "workspace-removal",
                    "standup:9:m:1",
                    "standup:run:9:refresh@2026-03-09T12:00:00.000000Z",
                    "poll:9:close:0",
                    "something:new",
                )
            }
    finally:
        await db.dispose()
    assert words == {
        "pulse:1:round": "send team Core's next pulse round",
        "pulse:1:digest": "post team Core's weekly pulse digest",
        "pulse:1:round:1:close": "close team Core's pulse round and post its results",
        "pulse:1:round:1:remind": "remind who has not answered team Core's pulse round",
        "housekeeping": "clean up old records (housekeeping)",
        "workspace-removal": "delete the data of workspaces that removed syncup",
        # Rows that are gone (or never were) still read as words.
        "standup:9:m:1": "send standup 9's prompt to @alice",
        "standup:run:9:refresh@2026-03-09T12:00:00.000000Z": "bring a standup report up to date",
        "poll:9:close:0": "close poll #9 and post its results",
        "something:new": "something:new",
    }
