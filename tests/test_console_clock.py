"""The console's demo clock: /clock moves it forward only, in the acting member's zone, and steps
through scheduled work on the way. Through the real App on SQLite, and as units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.console.clock import ClockError, DemoClock, parse_target
from storage.models import OutboxStatus
from tests.test_console import MorningDm, install_morning, outbox_rows, run_console

# -- the demo clock -----------------------------------------------------------------------------


async def test_clock_moves_forward_and_refuses_backwards_and_nonsense(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/clock",
            "/clock +2h",
            "/clock -1h",
            "/clock 2026-03-09 14:00",
            "/clock soon",
            "/clock 25:00",
            "/clock 2026-02-30 09:00",
            "/clock +0m",
            "/clock 09:00",
            "/syncup me",
        ],
    )
    out = run.output
    assert "Demo clock: Mon 9 Mar 2026 13:00 Europe/Berlin (12:00 UTC)." in out
    assert "Demo clock moves to Mon 9 Mar 2026 15:00 Europe/Berlin (+2h)." in out
    assert "alice> /clock -1h\nThe demo clock only moves forward; it is Mon 9 Mar 2026 15:00" in out
    assert (
        "alice> /clock 2026-03-09 14:00\nMon 9 Mar 2026 14:00 Europe/Berlin is not ahead: the "
        "demo clock is at Mon 9 Mar 2026 15:"
    ) in out
    assert 'alice> /clock soon\nI can\'t read "soon" as a time. Try /clock +30m' in out
    assert 'alice> /clock 25:00\n"25:00" is not a time of day' in out
    assert 'alice> /clock 2026-02-30 09:00\n"2026-02-30 09:00" is not a real date.' in out
    assert 'alice> /clock +0m\n"+0m" does not move the clock.' in out
    # 09:00 has passed in Berlin today, so it means tomorrow's.
    assert "Demo clock moves to Tue 10 Mar 2026 09:00 Europe/Berlin (+18h)." in out
    assert "your local time is Tue 09:0" in run.after("alice> /syncup me")


async def test_clock_uses_the_acting_members_zone(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/as bob", "/clock 09:00", "/clock 2026-03-10 07:30"])
    # 08:00 in New York: 09:00 is still ahead today.
    assert "Demo clock moves to Mon 9 Mar 2026 09:00 America/New_York (+1h)." in run.output
    assert "Demo clock moves to Tue 10 Mar 2026 07:30 America/New_York (+22h 30m)." in run.output


async def test_clock_makes_scheduled_work_happen(tmp_path: Path) -> None:
    job = MorningDm()
    run = await run_console(
        tmp_path,
        ["/clock", "/as bob", "/clock 09:00", "/clock +1d3h", "/as alice", "b1", "/as bob", "b1"],
        setup=install_morning(job),
    )
    out = run.output
    # A key no feature describes in words is shown as it is.
    assert "Next scheduled:\n  Mon 9 Mar 2026 14:00 Europe/Berlin: probe:morning:bob\n" in out
    assert out.count("Good morning!") == 2
    assert (
        "bob> /clock 09:00\n"
        "Demo clock moves to Mon 9 Mar 2026 09:00 America/New_York (+1h).\n"
        "#1 → DM to @bob:\n"
        "  Good morning! Standup for Mon 09 Mar, 09:00 your time.\n"
        "  [a1] Answer\n"
    ) in out
    # A jump past 09:00 and well beyond the schedule's grace still shows that morning's DM,
    # stamped with the time it happened: the clock steps through scheduled work.
    assert (
        "Demo clock moves to Tue 10 Mar 2026 12:00 America/New_York (+1d 3h).\n"
        "[Tue 10 Mar 2026 09:00 America/New_York]\n"
        "#2 → DM to @bob:\n"
        "  Good morning! Standup for Tue 10 Mar, 09:00 your time.\n"
        "  [b1] Answer\n"
    ) in out
    assert [t.astimezone(UTC) for t in job.ran] == [
        datetime(2026, 3, 9, 13, tzinfo=UTC),
        datetime(2026, 3, 10, 13, tzinfo=UTC),
    ]
    # Only bob sees his DM's button.
    assert "alice> b1\nButton [b1] is on a message only @bob can see; type /as bob first." in out
    assert "bob> b1\nForm: Standup  (/cancel to close it)" in out
    rows = await outbox_rows(run.url)
    assert [(r.method, r.status, r.platform_message_id) for r in rows] == [
        ("dm", OutboxStatus.SENT, "m1"),
        ("dm", OutboxStatus.SENT, "m2"),
    ]
    assert rows[0].platform_channel_id == "dm-bob"


async def test_script_ends_only_when_nothing_is_pending(tmp_path: Path) -> None:
    """Input ends right after a jump: the run still prints the scheduled DM before exiting."""
    run = await run_console(tmp_path, ["/as bob", "/clock +1h"], setup=install_morning(MorningDm()))
    assert run.code == 0
    assert run.output.rstrip().endswith("[a1] Answer")
    assert all(r.status is OutboxStatus.SENT for r in await outbox_rows(run.url))


def test_demo_clock_only_moves_forward() -> None:
    real = [datetime(2026, 1, 1, tzinfo=UTC)]
    clock = DemoClock(datetime(2026, 3, 9, 12, tzinfo=UTC), real=lambda: real[0])
    assert clock.now() == datetime(2026, 3, 9, 12, tzinfo=UTC)
    real[0] += timedelta(minutes=5)  # real time passes: so does demo time
    assert clock.now() == datetime(2026, 3, 9, 12, 5, tzinfo=UTC)
    clock.advance_to(datetime(2026, 3, 9, 14, tzinfo=UTC))
    assert clock.now() == datetime(2026, 3, 9, 14, tzinfo=UTC)
    with pytest.raises(ClockError, match="only moves forward"):
        clock.advance_to(datetime(2026, 3, 9, 13, tzinfo=UTC))
    assert clock.now() == datetime(2026, 3, 9, 14, tzinfo=UTC)
    assert DemoClock(real=lambda: real[0]).now() == real[0]


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("+30m", datetime(2026, 3, 9, 12, 30, tzinfo=UTC)),
        ("+2h", datetime(2026, 3, 9, 14, tzinfo=UTC)),
        ("+1d", datetime(2026, 3, 10, 12, tzinfo=UTC)),
        ("+1h 30m", datetime(2026, 3, 9, 13, 30, tzinfo=UTC)),
        ("+1w", datetime(2026, 3, 16, 12, tzinfo=UTC)),
        # Berlin is UTC+1: 14:00 there is still ahead today, 09:00 is tomorrow's.
        ("14:00", datetime(2026, 3, 9, 13, tzinfo=UTC)),
        ("09:00", datetime(2026, 3, 10, 8, tzinfo=UTC)),
        ("9:00", datetime(2026, 3, 10, 8, tzinfo=UTC)),
        ("2026-03-29 09:00", datetime(2026, 3, 29, 7, tzinfo=UTC)),  # after the DST switch
        ("2026-03-08T09:00", None),
    ],
)
def test_parse_clock_target(arg: str, expected: datetime | None) -> None:
    now = datetime(2026, 3, 9, 12, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")
    if expected is None:
        with pytest.raises(ClockError, match="is not ahead"):
            parse_target(arg, now, berlin)
    else:
        assert parse_target(arg, now, berlin) == expected
