"""Buttons on the console have labels (a message letter and a number, ``b2``) that no answer can
be mistaken for, and that a live update keeps; a number typed is always an answer (a DM).
Through the real App (core, scheduler, outbox, delivery worker) on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.console.screen import letter
from storage.models import Standup, StandupAnswer
from storage.polls import PollBallot
from tests.test_console import run_console
from tests.test_standup_runtime import db_rows


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever the console saves its chart pictures, never in the checkout."""
    monkeypatch.chdir(tmp_path)


def mood_standup() -> list[str]:
    """``/standup setup`` of "Daily" for alice and bob, one question: a 1-5 mood."""
    return ["/standup setup", "Daily", "#team", "@alice @bob", "mood: How do you feel?", *[""] * 9]


async def test_an_enps_vote_of_10_typed_is_an_answer_not_button_10(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ['/poll "Recommend us?" --enps', "10", "a11"])
    assert (
        "  0 = not at all likely, 10 = extremely: [a1] 0  [a2] 1  [a3] 2  [a4] 3  [a5] 4  "
        "[a6] 5  [a7] 6  [a8] 7  [a9] 8  [a10] 9  [a11] 10\n"
    ) in run.output
    # "10" pressed button 10 (a vote of 9) before: now it is a DM, and a11 votes 10.
    assert "alice> 10\n→ DM to @alice:\n  I only understand commands." in run.output
    assert "alice> a11\n(only you can see this)\n  Your vote is in: 10." in run.output
    assert [b.choice for b in await db_rows(run.url, PollBallot)] == [10]


async def test_a_mood_answer_3_is_saved_whatever_buttons_are_on_screen(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [*mood_standup(), "/poll Lunch? Pizza Sushi Tacos", "/standup run Daily", "3"],
    )
    # Three messages with buttons are on screen: the poll, alice's prompt and bob's.
    assert "  [a1] Pizza  [a2] Sushi  [a3] Tacos\n" in run.output
    assert "#2 → DM to @alice:" in run.output and "  [b1] Answer  [b2] Skip today\n" in run.output
    assert "#3 → DM to @bob:" in run.output and "  [c1] Answer  [c2] Skip today\n" in run.output
    assert run.after("alice> 3").startswith(
        "alice> 3\n→ DM to @alice:\n  Thanks! Saved your answers for Daily (Mon 9 Mar):\n"
        "  How do you feel?\n  3/5 (okay)\n"
    )
    assert [a.text for a in await db_rows(run.url, StandupAnswer)] == ["3"]
    assert await db_rows(run.url, PollBallot) == []


async def test_a_confirmation_has_its_own_labels_and_2_presses_nothing(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [*mood_standup(), "/standup run Daily", "/standup delete Daily", "2", "c2", "b2"],
    )
    assert (
        "alice> /standup delete Daily\n(only you can see this)\n"
        "  Delete Daily with all its answers and reports? This cannot be undone.\n"
        "  [c1] Delete it  [c2] Keep it\n"
    ) in run.output
    # "2" is an answer to the open mood question, not "Skip today" of an older prompt: the
    # bot says 2 is a fine answer, and "c2" keeps the standup.
    after = run.after("alice> 2")
    assert after.startswith("alice> 2\n→ DM to @alice:\n  Thanks! Saved your answers")
    assert "  2/5 (bad)\n" in after
    assert "alice> c2\n(only you can see this)\n" in after
    assert "Skipped" not in after
    assert [s.name for s in await db_rows(run.url, Standup)] == ["Daily"]


async def test_a_live_update_keeps_the_messages_letter_and_its_labels(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/poll Lunch? Pizza Sushi --threshold 3",
            "/poll Dinner? Soup Salad",
            "a1",
            "/as bob",
            "a2",
            "b1",
            "/as chandra",
            "a2",
        ],
    )
    out = run.output
    assert "#2 → #team:\n  Poll #2\n  Dinner?\n" in out and "  [b1] Soup  [b2] Salad\n" in out
    # Every update of poll #1 keeps its letter, after poll #2 took the next one.
    updates = out.split("→ update of #1 in #team:\n")[1:]
    assert len(updates) == 3
    assert all("  [a1] Pizza  [a2] Sushi\n" in update for update in updates)
    assert "bob> a2\n(only you can see this)\n  Your vote is in: Sushi." in out
    assert "bob> b1\n(only you can see this)\n  Your vote is in: Soup." in out
    assert "chandra> a2\n(only you can see this)\n  Your vote is in: Sushi." in out
    ballots = sorted((b.poll_id, b.choice) for b in await db_rows(run.url, PollBallot))
    assert ballots == [(1, 0), (1, 1), (1, 1), (2, 0)]


async def test_labels_are_case_blind_and_a_line_of_labels_and_words_is_a_dm(
    tmp_path: Path,
) -> None:
    run = await run_console(tmp_path, ["/poll Lunch? Pizza Sushi", "A2", "a2 please", "v2"])
    assert "alice> A2\n(only you can see this)\n  Your vote is in: Sushi." in run.output
    assert "alice> a2 please\n→ DM to @alice:\n  I only understand commands." in run.output
    assert "alice> v2\nThere is no button [v2] to press.\n" in run.output


def test_message_letters_skip_i_l_and_o_and_go_on_with_two() -> None:
    letters = [letter(n) for n in range(26)]
    assert letters[:9] == ["a", "b", "c", "d", "e", "f", "g", "h", "j"]
    assert not {"i", "l", "o"} & set(letters)
    assert letters[22:25] == ["z", "aa", "ab"]
    assert len({letter(n) for n in range(2000)}) == 2000
