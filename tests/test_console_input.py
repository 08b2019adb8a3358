"""Typing on the console: answers of several lines (a trailing backslash, or a block between
\"\"\" lines), console commands refused inside a form, a pulse bank change that removes most of
the bank asked about first. Through the real App on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.features.pulse.bank import default_bank
from bot.features.pulse.settings import removed_most
from storage.models import Standup, StandupAnswer
from storage.polls import Pulse
from tests.test_console import run_console
from tests.test_standup_runtime import db_rows

BLOCK = '"""'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def standup_setup(questions: list[str]) -> list[str]:
    """``/standup setup`` of "Daily" for alice and bob; ``questions`` is what is typed into the
    questions field (one or several lines), every later field keeps its default."""
    return ["/standup setup", "Daily", "#team", "@alice @bob", *questions, *[""] * 9]


def pulse_setup() -> list[str]:
    """``/pulse setup`` of team Core for everyone in #team, with the defaults."""
    return ["/pulse setup", "Core", "#team", "#team", *[""] * 9]


async def test_several_lines_in_a_block_or_with_backslashes(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            *standup_setup(
                [BLOCK, "What did you do?", "", "  What will you do?", "blocker: Stuck?", BLOCK]
            ),
            "/standup run Daily",
            "Shipped the login page \\",
            "and its tests",
            f"{BLOCK}Pair with bob",
            f"on the API{BLOCK}",
            "no",
        ],
    )
    assert (
        "  Questions, one per line (prefix blocker:, mood: or choice: ... | a | b) [\n"
        "    What did you do since last time?\n"
        "    What will you do next?\n"
        "    blocker: Anything blocking you?\n"
        '  ]: """\n'
        "  ... What did you do?\n"
        "  ...\n"
        "  ...   What will you do?\n"
        "  ... blocker: Stuck?\n"
        '  ... """\n'
    ) in run.output
    assert (
        "alice> Shipped the login page \\\n"
        "... and its tests\n"
        "→ DM to @alice:\n"
        "  (2/3) What will you do?\n"
        'alice> """Pair with bob\n'
        '... on the API"""\n'
    ) in run.output
    (standup,) = await db_rows(run.url, Standup)
    assert [q["text"] for q in standup.questions] == [
        "What did you do?",
        "What will you do?",
        "Stuck?",
    ]
    answers = sorted((a.question_index, a.text) for a in await db_rows(run.url, StandupAnswer))
    assert answers == [
        (0, "Shipped the login page \nand its tests"),
        (1, "Pair with bob\non the API"),
        (2, "no"),
    ]


async def test_input_ending_inside_a_block_submits_nothing(tmp_path: Path) -> None:
    run = await run_console(tmp_path, standup_setup([BLOCK, "What did you do?"])[:6])
    assert run.code == 0
    assert run.output.endswith("  ... What did you do?\nForm closed; nothing was submitted.\n")
    assert await db_rows(run.url, Standup) == []


async def test_a_form_says_how_to_type_several_lines(tmp_path: Path) -> None:
    run = await run_console(tmp_path, ["/standup setup", "/cancel"])
    assert run.output == (
        "alice> /standup setup\n"
        "Form: Standup  (/cancel to close it)\n"
        "  (An empty line keeps the value in [brackets]. Several lines in one answer: end\n"
        '   each line but the last with \\, or type """ on a line before them and after them.)\n'
        "  Name: /cancel\n"
        "Form closed; nothing was submitted.\n"
    )


async def test_console_and_bot_commands_typed_in_a_form_are_refused_not_saved(
    tmp_path: Path,
) -> None:
    lines = standup_setup(["What did you do?"])
    lines[2:2] = ["/as chandra", "/standup list", "/Clock +1h"]  # typed as the channel
    run = await run_console(tmp_path, [*lines, "/syncup me"])
    assert (
        "  Report channel: /as chandra\n"
        "  /as is not an answer: finish this form first (or type /cancel to close it), then "
        "type /as again.\n"
        "  Report channel: /standup list\n"
        "  /standup is not an answer: finish this form first (or type /cancel to close it), "
        "then type /standup again.\n"
        "  Report channel: /Clock +1h\n"
        "  /clock is not an answer"
    ) in run.output
    assert "  Report channel: #team\n" in run.output
    assert "Created Daily: Mon-Fri at 09:00" in run.output
    # Still alice, and the clock did not move.
    assert "Name: alice" in run.after("alice> /syncup me")
    assert "your local time is Mon 13:00" in run.after("alice> /syncup me")
    (standup,) = await db_rows(run.url, Standup)
    assert standup.name == "Daily"


async def test_a_slash_that_is_no_command_is_an_answer(tmp_path: Path) -> None:
    lines = standup_setup(["What did you do?"])
    run = await run_console(tmp_path, [*lines, "/standup run Daily", "a1", "/api is slow again"])
    assert "  What did you do?: /api is slow again\n" in run.output
    (answer,) = await db_rows(run.url, StandupAnswer)
    assert answer.text == "/api is slow again"


async def test_one_line_typed_over_the_pulse_bank_asks_first(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            *pulse_setup(),
            # One line where the 21 default questions stood: asked about; no keeps the bank.
            "/pulse questions Core",
            "scale | Is the pace OK?",
            "",
            "2",
            "",
            "",
            # Asked again, yes saves it.
            "/pulse questions Core",
            "scale | Is the pace OK?",
            "",
            "1",
            "",
            "",
        ],
    )
    first = run.after("  ]: scale | Is the pace OK?")
    assert (
        "Form: Pulse questions: confirm  (/cancel to close it)\n"
        "  (An empty line keeps the value in [brackets]. Several lines in one answer: end\n"
        '   each line but the last with \\, or type """ on a line before them and after them.)\n'
        "    1) Yes, save these 1 question(s)\n"
        "    2) No, keep the 21 questions as they are\n"
        "  Remove 21 of the 21 questions?: 2\n"
        "  Questions: kind | question, one per line (kind: scale for 1-5, enps for 0-10) "
        "[scale | Is the pace OK?]:\n"
        "  More questions (optional):\n"
        "(only you can see this)\n"
        "  Nothing changed: Core keeps its 21 question(s).\n"
    ) in first
    assert "  Remove 21 of the 21 questions?: 1\n" in run.output
    assert "  Saved 1 question(s) for Core (0 unchanged, 1 new or reworded)." in run.output
    (pulse,) = await db_rows(run.url, Pulse)
    assert [q["text"] for q in pulse.bank] == ["Is the pace OK?"]


async def test_adding_to_the_pulse_bank_is_not_asked_about(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [*pulse_setup(), "/pulse questions Core", "", "scale | Is the pace OK?"],
    )
    assert "confirm" not in run.output
    assert "  Saved 22 question(s) for Core (21 unchanged, 1 new or reworded)." in run.output
    (pulse,) = await db_rows(run.url, Pulse)
    assert len(pulse.bank) == 22


def test_removed_most_counts_questions_left_out_when_they_are_most() -> None:
    bank = default_bank()
    assert removed_most(bank, bank[:1]) == len(bank) - 1
    assert removed_most(bank, bank[: len(bank) // 2]) == len(bank) - len(bank) // 2
    assert removed_most(bank, bank[: len(bank) // 2 + 1]) == 0  # half kept: not asked
    assert removed_most(bank, [*bank, *bank[:1]]) == 0
    assert removed_most(bank[:2], bank[:1]) == 0  # one question left out is never "most"
    assert removed_most(bank[:2], []) == 2
