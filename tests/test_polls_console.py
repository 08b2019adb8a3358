"""Polls through the console adapter and the real App (core, scheduler, outbox, delivery
worker): a one-liner with curly quotes, voting with the buttons as members see them, live
results, close; the form; a refusal; the deadline and reminder as the demo clock moves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.features.polls.ballots import OWN_TABLE
from storage.polls import Poll, PollBallot
from tests.test_console import run_console
from tests.test_polls_anonymity_files import table_names
from tests.test_standup_runtime import db_rows


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever the console saves its chart pictures, never in the checkout."""
    monkeypatch.chdir(tmp_path)


def all_files(paths: list[str]) -> bool:
    return all(Path(p).is_file() for p in paths)


async def test_a_poll_in_the_console(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/poll \u201cShip Friday?\u201d \u201cYes\u201d \u201cNo\u201d --threshold 3",
            "a1",  # alice: Yes
            "/as bob",
            "a2",  # the live update kept the buttons' labels: bob: No
            "/as chandra",
            "a1",  # chandra: Yes
            "/poll results 1",
            "/as dana",
            "/poll close 1",
            "/as alice",
            "/poll close 1",
        ],
    )
    assert run.code == 0
    assert run.output.startswith(
        "alice> /poll \u201cShip Friday?\u201d \u201cYes\u201d \u201cNo\u201d --threshold 3\n"
        "(only you can see this)\n"
        "  Poll #1 is up in #team; it stays open until you close it (/poll close 1).\n"
    )
    assert (
        "#1 → #team:\n"
        "  Poll #1\n"
        "  Ship Friday?\n"
        "  Single choice · asked by alice · open until its creator closes it.\n"
        "  Results: live below, once 3 have answered.\n"
        "  [a1] Yes  [a2] No\n"
        "  Live results appear once 3 have answered (0 so far).\n"
    ) in run.output
    assert (
        "alice> a1\n(only you can see this)\n"
        "  Your vote is in: Yes. You can change it until the poll closes.\n"
        "→ update of #1 in #team:\n"
    ) in run.output
    assert "bob> a2\n(only you can see this)\n  Your vote is in: No." in run.output
    live = run.after("chandra> a1")
    assert (
        "  Yes\n  ███████░░░ 67% (2)\n  alice, chandra\n  No\n  ███░░░░░░░ 33% (1)\n  bob\n" in live
    )
    # The results once: the bars and counts, then the chart as one line (its picture), not
    # again as a text chart or as its alt text.
    update = live[: live.index("chandra> /poll results 1")]
    assert update.count("67%") == 1 and update.count("Ship Friday?") == 2
    assert re.search(r"  3 of 8 answered\.\n  \[chart: Ship Friday\?; picture: .+\]\n$", update)
    assert "Bar chart of the answers" not in run.output
    assert run.after("chandra> /poll results 1").startswith(
        "chandra> /poll results 1\n(only you can see this)\n  Poll #1 results so far\n"
    )
    assert (
        "dana> /poll close 1\n(only you can see this)\n"
        "  Only the creator of poll #1 and admins can do that.\n"
    ) in run.output
    closing = run.after("alice> /poll close 1")
    assert "  Closed poll #1; the results are posted in its channel.\n#2 → #team:\n" in closing
    assert "  Poll #1 results\n  Ship Friday?\n  Yes\n  ███████░░░ 67% (2)" in closing
    assert "→ update of #1 in #team:\n  Poll #1 (closed)\n" in closing
    pictures = re.findall(r"\[chart: .+?; picture: (.+?)\]", run.output)
    assert pictures and all_files(pictures)  # the charts' PNGs
    ballots = await db_rows(run.url, PollBallot)
    assert sorted(b.choice for b in ballots) == [0, 0, 1]


async def test_the_form_the_deadline_and_the_reminder_in_the_console(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/poll",
            "Which talks?",
            "2",  # multiple choice
            "Rust | Go | Zig",
            "2",  # at most 2
            "2",  # anonymous
            "",  # results: the default (when it closes)
            "1d",
            "3",
            "/as bob",
            "/poll Lunch? Pizza Pizza",
            "/clock +2d",
        ],
    )
    assert run.code == 0
    assert (
        "  Poll #1 is up in #team; it closes Tue 10 Mar 2026 13:00 (Europe/Berlin)." in run.output
    )
    assert (
        "  Anonymous poll #1\n"
        "  Which talks?\n"
        "  Multiple choice, up to 2 · asked by alice · closes Tue 10 Mar 2026 13:00 "
        "(Europe/Berlin).\n"
    ) in run.output
    assert (
        'bob> /poll Lunch? Pizza Pizza\n(only you can see this)\n  "Pizza" is there twice; '
        "each option must be different.\n"
    ) in run.output
    moved = run.after("bob> /clock +2d")
    # Half-way through its day, those who have not answered (everyone) get a reminder DM...
    for name in ("alice", "bob", "chandra", "dana"):
        assert (
            f"→ DM to @{name}:\n  A reminder: you have not answered poll #1 in #team yet." in moved
        )
    # ...and at the deadline the results close hidden: nobody answered.
    assert "  Results hidden: 0 answers, fewer than the 3 this poll needs.\n" in moved
    assert "  Anonymous poll #1 (closed)\n" in moved
    polls = await db_rows(run.url, Poll)
    assert [(p.kind, p.options, p.max_choices, p.closed_at is not None) for p in polls] == [
        ("multiple", ["Rust", "Go", "Zig"], 2, True)
    ]
    assert not any(OWN_TABLE.fullmatch(name) for name in await table_names(run.url))
