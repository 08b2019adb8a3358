"""Setting a pulse up (issue item 2; invariant 8): the setup and edit form, the question bank form
and its keys, rotation, who may do what, and every kind of bad input answered privately with
what to fix, with nothing saved.

Bank parsing and rotation are pure; the forms go through the core on SQLite and PostgreSQL (the
World harness of :mod:`tests.test_pulse_runtime`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import directory
from bot.chat import FormErrors, OpenForm, Reply, SelectField, TextField
from bot.errors import UserError
from bot.features.pulse.bank import (
    DEFAULT_BANK,
    bank_chunks,
    derived_key,
    next_questions,
    parse_bank,
    rebase_pointer,
)
from bot.features.pulse.settings import BANK_FORM, CONFIRM_FIELD, SETUP_FORM
from storage.db import Database
from storage.models import Channel, Member, Team, TeamMember
from storage.polls import Pulse
from tests.test_pulse_runtime import (
    World,
    add_pulse,
    command,
    make_pulse_world,
    rendered,
    submit,
)

SAMPLE = {
    "team": "Platform",
    "channel": "#platform",
    "participants": "@alice @bob @carol @dana @erin @frank",
    "timezone": "Europe/Berlin",
    "day": "wed",
    "time": "10:00",
    "every_weeks": "1",
    "open_days": "4",
    "questions_per_round": "3",
    "threshold": "5",
    "digest_day": "mon",
    "digest_time": "09:00",
}


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_pulse_world(database)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


async def counts(world: World) -> tuple[int, int, int]:
    async with world.db.transaction() as session:
        teams = await session.scalar(select(func.count()).select_from(Team))
        members = await session.scalar(select(func.count()).select_from(TeamMember))
        pulses = await session.scalar(select(func.count()).select_from(Pulse))
        return teams or 0, members or 0, pulses or 0


async def the_pulse(world: World) -> tuple[Pulse, Team]:
    async with world.db.transaction() as session:
        pulse = await session.scalar(select(Pulse))
        assert pulse is not None
        team = await session.get(Team, pulse.team_id)
        assert team is not None
        return pulse, team


# -- the bank --------------------------------------------------------------------------------------


def test_the_default_bank() -> None:
    assert 18 <= len(DEFAULT_BANK) <= 24
    kinds = [q["kind"] for q in DEFAULT_BANK]
    assert kinds.count("enps") == 1
    assert len({q["key"] for q in DEFAULT_BANK}) == len(DEFAULT_BANK)
    assert all(len(q["text"]) <= 300 and q["text"].endswith("?") for q in DEFAULT_BANK)
    enps = next(q for q in DEFAULT_BANK if q["kind"] == "enps")
    assert enps["text"] == "How likely are you to recommend working on this team to a friend?"
    # The bank's lines parse back to the same bank, keys and all.
    assert parse_bank("\n".join(bank_chunks(DEFAULT_BANK)), DEFAULT_BANK) == list(DEFAULT_BANK)


def test_keys_survive_edits_of_other_lines_and_change_with_the_text() -> None:
    old = parse_bank("scale | How is the pace?\nenps | Would you recommend us?")
    new = parse_bank(
        "enps |   would you   RECOMMEND us?\nscale | How clear are the goals?\n"
        "How is the pace now?",
        old,
    )
    assert new[0]["key"] == old[1]["key"]  # same question, other spacing and case
    assert new[0]["text"] == "would you   RECOMMEND us?"
    assert new[1]["key"] == derived_key("scale", "How clear are the goals?")
    assert new[2] == {
        "key": derived_key("scale", "How is the pace now?"),
        "text": "How is the pace now?",
        "kind": "scale",
    }
    # The same words as another kind are another question.
    assert parse_bank("enps | How is the pace?")[0]["key"] != old[0]["key"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "Add at least one question"),
        ("   \n  ", "Add at least one question"),
        ("likert | How is it?", 'Line 1: unknown kind "likert"'),
        ("scale | How is it?\nscale |", 'Line 2 has no question after "scale |"'),
        ("scale | " + "x" * 301, "Line 1 is 301 characters long"),
        ("scale | How is it?\nenps | how is  IT?", 'Line 2 repeats line 1: "how is  IT?"'),
        ("\n".join(f"scale | Q{i}?" for i in range(61)), "At most 60 questions"),
    ],
)
def test_bad_banks_are_refused_with_the_line_to_fix(raw: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_bank(raw)
    assert problem in caught.value.message


def test_rotation_and_the_pointer_after_an_edit() -> None:
    bank = [{"key": k, "text": k, "kind": "scale"} for k in "abcde"]
    picked, pointer = next_questions(bank, 0, 3)
    assert [q["key"] for q in picked] == ["a", "b", "c"] and pointer == 3
    picked, pointer = next_questions(bank, pointer, 3)
    assert [q["key"] for q in picked] == ["d", "e", "a"] and pointer == 1
    # A bank smaller than a round is asked whole, once.
    picked, pointer = next_questions(bank[:2], 1, 3)
    assert [q["key"] for q in picked] == ["b", "a"] and pointer == 1
    # "d" was next; after an edit that moves it, rotation goes on at "d".
    edited = [bank[3], bank[0], {"key": "z", "text": "z", "kind": "scale"}]
    assert rebase_pointer(bank, 3, edited) == 0
    # "c" was next but is gone: the next question of the old order that is still there.
    assert rebase_pointer(bank, 2, edited) == 0
    assert rebase_pointer(bank, 4, [bank[1], bank[0]]) == 1  # e gone -> a
    assert next_questions([], 0, 3) == ([], 0)


def test_a_long_bank_is_spread_over_fields_within_the_limits() -> None:
    bank = [
        {"key": f"k{i}", "text": f"{'Long question ' * 20}{i}?", "kind": "scale"} for i in range(20)
    ]
    chunks = bank_chunks(bank)
    assert len(chunks) > 1
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert parse_bank("\n".join(chunks), bank) == bank


# -- setup through the form ------------------------------------------------------------------------


async def test_setup_opens_a_form_and_creates_the_team_and_its_pulse(world: World) -> None:
    opened = await command(world, "setup")
    assert isinstance(opened, OpenForm) and opened.form.form_id == SETUP_FORM
    names = [f.name for f in opened.form.fields]
    assert names == list(SAMPLE)
    initial = {f.name: f.initial for f in opened.form.fields if isinstance(f, TextField)}
    assert initial["threshold"] == "5" and initial["open_days"] == "4"
    assert initial["questions_per_round"] == "3" and initial["digest_day"] == "mon"
    assert initial["digest_time"] == "09:00" and initial["timezone"] == "Europe/Berlin"
    response = await submit(world, SETUP_FORM, SAMPLE)
    assert isinstance(response, Reply)
    shown = rendered(response.message)
    assert "Created the pulse check of Platform" in shown
    assert "6 member(s), results in #platform" in shown
    assert "Next round: Wed 4 Mar 2026 10:00 (Europe/Berlin)" in shown
    assert "/pulse questions Platform" in shown
    pulse, team = await the_pulse(world)
    assert (team.name, team.timezone, team.channel_id) == (
        "Platform",
        "Europe/Berlin",
        world.channel_id,
    )
    assert (pulse.day_of_week, pulse.time_of_day, pulse.every_weeks) == (3, "10:00", 1)
    assert (pulse.open_days, pulse.questions_per_round, pulse.threshold) == (4, 3, 5)
    assert (pulse.digest_day, pulse.digest_time, pulse.paused) == (1, "09:00", False)
    assert pulse.bank == [dict(q) for q in DEFAULT_BANK] and pulse.next_question == 0
    assert pulse.owner_id == world.members["lead"]
    assert pulse.anchor_date.isoweekday() == 1
    assert await counts(world) == (1, 6, 1)
    assert [key for key, _ in world.scheduler.next_runs()] == [
        f"pulse:{pulse.id}:round",
        f"pulse:{pulse.id}:digest",
    ]


async def test_members_from_a_channel_and_a_small_team_warning(world: World) -> None:
    async with world.db.transaction() as session:
        channel = await session.get(Channel, world.channel_id)
        people = list(
            await session.scalars(
                select(Member).where(Member.id.in_([world.members[n] for n in ("alice", "bob")]))
            )
        )
        assert channel is not None
        await directory.add_channel_members(session, channel, people)
    response = await submit(world, SETUP_FORM, {**SAMPLE, "participants": "#platform"})
    shown = rendered(response.message)
    assert "2 member(s)" in shown
    assert (
        "Heads-up: 2 member(s) and a threshold of 5 different people: results can never show"
        in shown
    )


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("threshold", "2", "The threshold can't be under 3"),
        ("threshold", "0", "The threshold can't be under 3"),
        ("threshold", "lots", '"lots" is not a number'),
        ("threshold", "51", "at most 50"),
        ("timezone", "Europe/Paris2", 'Unknown timezone "Europe/Paris2"; try Europe/Paris'),
        ("timezone", "", "Give the team's time zone"),
        ("time", "25:00", '"25:00" is not a time of day'),
        ("time", "9am", '"9am" is not a time'),
        ("day", "mon-fri", 'Name one day, not "mon-fri"'),
        ("day", "funday", 'Unknown day "funday"'),
        ("every_weeks", "0", "Every N weeks takes a number from 1 to 12"),
        ("open_days", "8", "at most 7 days for a pulse every 1 week(s)"),
        ("open_days", "0", "Open days takes a number from 1 to 84"),
        ("questions_per_round", "11", "Questions per round takes a number from 1 to 10"),
        ("digest_day", "someday", 'Unknown day "someday"'),
        ("digest_time", "noon", '"noon" is not a time'),
        ("participants", "@alice @nobody", "No member named @nobody"),
        ("participants", "", "Name the members: @alice @bob, or #channel"),
        ("channel", "#nowhere", "I don't know the channel #nowhere"),
        ("team", "", "Give the team a name"),
    ],
)
async def test_bad_setup_input_saves_nothing(
    world: World, field: str, value: str, problem: str
) -> None:
    response = await submit(world, SETUP_FORM, {**SAMPLE, field: value})
    assert isinstance(response, FormErrors), response
    assert set(response.errors) == {field}
    assert problem in response.errors[field]
    assert await counts(world) == (0, 0, 0)
    assert world.scheduler.next_runs() == []


async def test_several_bad_fields_are_reported_together(world: World) -> None:
    response = await submit(
        world, SETUP_FORM, {**SAMPLE, "threshold": "2", "time": "99:99", "timezone": "Mars/Base"}
    )
    assert isinstance(response, FormErrors)
    assert set(response.errors) == {"threshold", "time", "timezone"}
    assert await counts(world) == (0, 0, 0)


async def test_only_team_leads_and_admins_set_up_and_owners_edit(world: World) -> None:
    refused = await command(world, "setup", who="alice")
    assert "Only team leads and admins can do that." in rendered(refused.message)
    forged = await submit(world, SETUP_FORM, SAMPLE, who="alice")
    assert "Only team leads and admins" in rendered(forged.message)
    assert await counts(world) == (0, 0, 0)
    await submit(world, SETUP_FORM, SAMPLE)
    for line in ("edit Platform", "questions Platform", "pause Platform", "run Platform"):
        response = await command(world, line, who="bob")
        assert "Only the one who set up" in rendered(response.message), line
    listed = await command(world, "list", who="bob")
    assert "Platform: 3 question(s) every week on Wed at 10:00 (Europe/Berlin)" in rendered(
        listed.message
    )


async def test_a_second_pulse_for_a_team_is_refused(world: World) -> None:
    await submit(world, SETUP_FORM, SAMPLE)
    response = await submit(world, SETUP_FORM, {**SAMPLE, "team": "platform"})
    assert isinstance(response, FormErrors)
    assert "already has a pulse check" in response.errors["team"]
    assert await counts(world) == (1, 6, 1)


async def test_edit_shows_the_saved_values_and_saves_changes(world: World) -> None:
    await submit(world, SETUP_FORM, SAMPLE)
    pulse, _ = await the_pulse(world)
    opened = await command(world, "edit platform")
    assert isinstance(opened, OpenForm) and opened.form.state == str(pulse.id)
    initial = {f.name: f.initial for f in opened.form.fields if isinstance(f, TextField)}
    assert initial == {**SAMPLE, "participants": "@alice @bob @carol @dana @erin @frank"}
    bad = await submit(world, SETUP_FORM, {**SAMPLE, "threshold": "2"}, state=str(pulse.id))
    assert isinstance(bad, FormErrors)
    changed = {
        **SAMPLE,
        "team": "Platform team",
        "participants": "@alice @bob @carol",
        "day": "friday",
        "time": "15:30",
        "every_weeks": "2",
        "open_days": "10",
        "threshold": "3",
        "timezone": "America/New_York",
        "digest_day": "tue",
        "digest_time": "08:15",
    }
    response = await submit(world, SETUP_FORM, changed, state=str(pulse.id))
    assert "Updated the pulse check of Platform team" in rendered(response.message)
    pulse, team = await the_pulse(world)
    assert (team.name, team.timezone) == ("Platform team", "America/New_York")
    assert (pulse.day_of_week, pulse.time_of_day, pulse.every_weeks) == (5, "15:30", 2)
    assert (pulse.open_days, pulse.threshold, pulse.digest_day, pulse.digest_time) == (
        10,
        3,
        2,
        "08:15",
    )
    assert await counts(world) == (1, 3, 1)


# -- the question bank form ----------------------------------------------------------------------


async def test_questions_form_keeps_keys_and_refuses_bad_banks(world: World) -> None:
    pulse_id = await add_pulse(world, next_question=3)
    opened = await command(world, "questions Platform")
    assert isinstance(opened, OpenForm) and opened.form.form_id == BANK_FORM
    first = opened.form.fields[0]
    assert isinstance(first, TextField)
    assert first.initial.splitlines()[0] == f"scale | {DEFAULT_BANK[0]['text']}"
    assert len(first.initial) <= 2000 and first.max_length <= 3000
    bad: list[tuple[dict[str, Any], str]] = [
        ({"bank0": "", "bank1": ""}, "Add at least one question"),
        ({"bank0": "scale | A?\nscale | a?"}, "repeats line 1"),
        ({"bank0": "stars | A?"}, 'unknown kind "stars"'),
        ({"bank0": "scale | " + "y" * 301}, "301 characters"),
    ]
    for values, problem in bad:
        response = await submit(world, BANK_FORM, values, state=str(pulse_id))
        assert isinstance(response, FormErrors), values
        assert problem in next(iter(response.errors.values()))
    pulse, _ = await the_pulse(world)
    assert pulse.bank == [dict(q) for q in DEFAULT_BANK]  # nothing saved
    lines = [f"{q['kind']} | {q['text']}" for q in DEFAULT_BANK[:5]]
    lines[1] = "scale | How clear are this quarter's goals?"
    response = await submit(
        world,
        BANK_FORM,
        # 17 of the 21 left out: the confirmation form's answer (test_removing_most_of_the_bank).
        {
            "bank0": "\n".join(lines),
            "bank1": "enps | Would you recommend our on-call?",
            CONFIRM_FIELD: "yes",
        },
        state=str(pulse_id),
    )
    assert "Saved 6 question(s) for Platform (4 unchanged, 2 new or reworded)" in rendered(
        response.message
    )
    pulse, _ = await the_pulse(world)
    keys = [q["key"] for q in pulse.bank]
    assert keys[0] == DEFAULT_BANK[0]["key"] and keys[2:5] == [q["key"] for q in DEFAULT_BANK[2:5]]
    assert keys[1] == derived_key("scale", "How clear are this quarter's goals?")
    assert pulse.bank[5]["kind"] == "enps"
    assert pulse.next_question == 3  # "recognition" was next and still is


async def test_removing_most_of_the_bank_asks_first_on_every_platform(world: World) -> None:
    pulse_id = await add_pulse(world)
    one_line = {"bank0": "scale | Is the pace OK?", "bank1": ""}
    asked = await submit(world, BANK_FORM, one_line, state=str(pulse_id))
    assert isinstance(asked, OpenForm)
    form = asked.form
    assert (form.form_id, form.state) == (BANK_FORM, str(pulse_id))
    question, typed = form.fields[0], form.fields[1]
    assert isinstance(question, SelectField) and question.name == CONFIRM_FIELD
    assert question.label == "Remove 21 of the 21 questions?" and len(question.label) <= 45
    assert [c.value for c in question.options] == ["yes", "no"]
    assert isinstance(typed, TextField) and typed.initial == "scale | Is the pace OK?"
    pulse, _ = await the_pulse(world)
    assert pulse.bank == [dict(q) for q in DEFAULT_BANK]  # nothing saved yet
    kept = await submit(world, BANK_FORM, {**one_line, CONFIRM_FIELD: "no"}, state=str(pulse_id))
    assert isinstance(kept, Reply)
    assert "Nothing changed: Platform keeps its 21 question(s)." in rendered(kept.message)
    pulse, _ = await the_pulse(world)
    assert pulse.bank == [dict(q) for q in DEFAULT_BANK]
    saved = await submit(world, BANK_FORM, {**one_line, CONFIRM_FIELD: "yes"}, state=str(pulse_id))
    assert isinstance(saved, Reply) and "Saved 1 question(s)" in rendered(saved.message)
    pulse, _ = await the_pulse(world)
    assert [q["text"] for q in pulse.bank] == ["Is the pace OK?"]
    # Leaving out one question, or 5 of 11, is not "most": saved at once.
    half = "\n".join(f"{q['kind']} | {q['text']}" for q in DEFAULT_BANK[:11])
    response = await submit(world, BANK_FORM, {"bank0": half}, state=str(pulse_id))
    assert isinstance(response, Reply) and "Saved 11 question(s)" in rendered(response.message)
    six = "\n".join(f"{q['kind']} | {q['text']}" for q in DEFAULT_BANK[:6])
    response = await submit(world, BANK_FORM, {"bank0": six}, state=str(pulse_id))
    assert isinstance(response, Reply) and "Saved 6 question(s)" in rendered(response.message)


async def test_help_lists_the_pulse_commands(world: World) -> None:
    response = await command(world, "help", who="alice")
    shown = rendered(response.message)
    for sub in (
        "setup",
        "edit",
        "questions",
        "pause",
        "resume",
        "run",
        "list",
        "results",
        "digest",
    ):
        assert f"/pulse {sub}" in shown
    assert "(team leads and admins only)" in shown
    unknown = await command(world, "edit Nope", who="lead")
    assert 'No team named "Nope" has a pulse check' in rendered(unknown.message)
