"""Escalation through the real App on the console: a blocker opened on Friday afternoon climbs
its ladder on Monday in business hours; the Accountable's DM, due in the evening of their own
zone (Asia/Kolkata), waits for their next working morning; an acknowledgement pauses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_console import run_console

SESSION = [
    '/raci setup "Data" --responsible @eve --accountable @chandra --channel #team '
    "--timezone Europe/Berlin --hours 09:00-17:00 --holidays DE",
    "/blocker add The ETL job needs new credentials --area Data",
    "/clock 2026-03-16 10:59",
    "/clock 2026-03-16 11:01",
    "/clock 2026-03-16 15:01",
    "/clock 2026-03-17 04:29",
    "/clock 2026-03-17 04:31",
    "/as eve",
    "/blocker ack 1",
    "/raci policy Data",
]


async def test_a_weekend_then_business_hours_then_the_accountables_morning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the console writes its files where it runs
    run = await run_console(tmp_path, SESSION, start="2026-03-13 15:00")  # Friday, Berlin
    assert run.code == 0
    # Nothing over the weekend, nor on Monday before 11:00 (2 hours on Friday, 2 on Monday).
    assert "escalated" not in run.after("/blocker add").split("alice> /clock 2026-03-16 11:01")[0]
    monday = run.after("alice> /clock 2026-03-16 11:01").split("alice> /clock 2026-03-16 15:01")[0]
    assert "→ DM to @eve:\n  Blocker #1 escalated (level 1)" in monday
    assert (
        "  Blocked: @alice since Fri 13 Mar 15:00\n  Age: 2d 20h (4h in business hours)" in monday
    )
    assert "  Data: R: @eve · A: @chandra\n" in monday
    assert "Mon 16 Mar 11:00 syncup escalated to @eve, level 1" in monday
    # Level 2 is due at 15:00 Berlin, 19:30 in Kolkata: recorded now, the DM waits.
    afternoon = run.after("alice> /clock 2026-03-16 15:01").split("alice> /clock 2026-03-17")[0]
    assert "syncup escalated to @chandra, level 2" in afternoon
    assert "DM to @chandra" not in afternoon
    night = run.after("alice> /clock 2026-03-17 04:29").split("alice> /clock 2026-03-17 04:31")[0]
    assert "DM to @chandra" not in night
    morning = run.after("alice> /clock 2026-03-17 04:31").split("alice> /as eve")[0]
    assert "→ DM to @chandra:\n  Blocker #1 escalated (level 2)" in morning  # 09:00 in Kolkata
    assert "Acknowledged blocker #1; its escalation pauses." in run.after("eve> /blocker ack 1")
    policy = run.after("eve> /raci policy Data")
    assert "1. after 4 business hours: the area's Responsible" in policy
    assert "Business time: Mon-Fri 09:00-17:00 Europe/Berlin, holidays DE." in policy
    assert "[" not in policy.split("low ones stop after the first level.")[1]  # no Edit button
