"""Shortcuts on the console: ``/say`` posts a member's message, ``/shortcut NAME #5`` runs a
message shortcut on message #5 on screen and ``/shortcut NAME @bob`` a member shortcut, through
the real App on SQLite; every bad line gets a line that says what to type instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import CONSOLE_HELP
from bot.app import App
from tests.fakes import shortcuts
from tests.test_console import Run, run_console


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def without_features_shortcuts(app: App, seen: list[Any]) -> None:
    """Only the test's shortcuts are listed: the features' own ("Give kudos") have their
    tests (tests/test_kudos_console.py)."""
    app.core.shortcuts.clear()


def with_shortcuts(app: App, seen: list[Any]) -> None:
    without_features_shortcuts(app, seen)
    seen.append(shortcuts.register(app.core))


def recorded(run: Run) -> shortcuts.Recorded:
    found: shortcuts.Recorded = run.seen[0]
    return found


async def test_a_message_shortcut_on_a_teammates_message_opens_its_form(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/shortcut",
            "/as bob",
            "/say the labeling export is stuck",
            "/as alice",
            "/shortcut save_note #1",
            "",
            "",
        ],
        setup=with_shortcuts,
    )
    assert run.output.startswith(
        "alice> /shortcut\nShortcuts (run one on a message or a member):\n"
        "  /shortcut save_note #5          Save as note (on a message)\n"
        "  /shortcut say_thanks @bob       Say thanks (on a member)\n"
        "  /shortcut thank_with_note @bob  Thank with a note (on a member)\n"
        "#5 is the number of a message on screen; /say TEXT posts one in #team.\n"
    )
    assert "bob> /say the labeling export is stuck\n#1 @bob → #team:\n" in run.output
    assert (
        "  Message [the labeling export is stuck]:\n  Link (optional) [console://team/1]:\n"
        "(only you can see this)\n  Saved a note of 28 characters.\n"
    ) in run.output
    [event] = recorded(run).of("save_note")
    assert event.actor.user_id == "alice" and event.message_author_id == "bob"
    assert event.message_text == "the labeling export is stuck"
    assert event.message_link == "console://team/1" and event.origin.channel_id == "team"
    assert recorded(run).submissions[0].values["text"] == "the labeling export is stuck"


async def test_a_message_shortcut_on_the_bots_message_and_a_member_shortcut(
    tmp_path: Path,
) -> None:
    run = await run_console(
        tmp_path,
        [
            "/poll Lunch? Pizza Sushi",
            "/shortcut Save as note #1",
            "/cancel",
            "/shortcut SAY_THANKS @Bob",
        ],
        setup=with_shortcuts,
    )
    [note] = recorded(run).of("save_note")
    assert note.message_author_id is None  # the bot's own message
    assert note.message_text.startswith("Poll #1\nLunch?\n") and "Pizza" in note.message_text
    assert "Form closed; nothing was submitted." in run.output
    [thanks] = recorded(run).of("say_thanks")
    assert thanks.target_user_id == "bob"
    assert "alice> /shortcut SAY_THANKS @Bob\n(only you can see this)\n  Thanks sent to @bob\n" in (
        run.output
    )


async def test_bad_shortcut_lines_say_what_to_type(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/say",
            "/shortcut save_note",
            "/shortcut nope #1",
            "/shortcut save_note @bob",
            "/shortcut save_note #9",
            "/shortcut say_thanks #1",
            "/shortcut say_thanks @zed",
        ],
        setup=with_shortcuts,
    )
    out = run.output
    assert "alice> /say\nUsage: /say TEXT posts TEXT in #team as you" in out
    assert "alice> /shortcut save_note\nUsage: /shortcut NAME #5 runs a message shortcut" in out
    assert (
        'alice> /shortcut nope #1\nNo shortcut "nope". Shortcuts: save_note, say_thanks, '
        "thank_with_note (/shortcut lists them).\n"
    ) in out
    assert "alice> /shortcut save_note @bob\nsave_note runs on a message: " in out
    assert "alice> /shortcut save_note #9\nThere is no message #9 on screen.\n" in out
    assert "alice> /shortcut say_thanks #1\nsay_thanks runs on a member: " in out
    assert "alice> /shortcut say_thanks @zed\nsay_thanks runs on a member: " in out
    assert "(members: @alice, @bob," in out
    assert recorded(run).invocations == []


async def test_a_dm_of_someone_else_is_not_theirs_to_run_a_shortcut_on(tmp_path: Path) -> None:
    setup = ["/standup setup", "Daily", "#team", "@alice @bob", *[""] * 10]
    run = await run_console(
        tmp_path,
        [
            *setup,
            "/standup run Daily",
            "/shortcut save_note #2",
            "/as bob",
            "/shortcut save_note #2",
        ],
        setup=with_shortcuts,
    )
    assert "#2 → DM to @bob:" in run.output
    assert (
        "alice> /shortcut save_note #2\nMessage #2 is a DM only @bob can see; type /as bob first.\n"
    ) in run.output
    assert "bob> /shortcut save_note #2\nForm: Save as note" in run.output  # bob's own DM
    [event] = recorded(run).of("save_note")
    assert event.actor.user_id == "bob" and event.message_link == "console://dm-bob/2"


async def test_no_shortcut_yet_and_the_help_names_them(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/shortcut", "/help"], setup=without_features_shortcuts)
    assert "alice> /shortcut\nNo feature offers a shortcut yet.\n" in run.output
    assert "/shortcut NAME #5 runs one on message #5 on screen" in CONSOLE_HELP
    assert "/say TEXT" in CONSOLE_HELP and CONSOLE_HELP in run.output


async def test_the_features_shortcuts_are_listed(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/shortcut"])
    assert run.output == (
        "alice> /shortcut\nShortcuts (run one on a message or a member):\n"
        "  /shortcut report_blocker #5  Report as blocker (on a message)\n"
        "  /shortcut give_kudos @bob    Give kudos (on a member)\n"
        "#5 is the number of a message on screen; /say TEXT posts one in #team.\n"
    )
