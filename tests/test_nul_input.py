"""A NUL character in any text input gets a clear private error that says what to fix, and
nothing is saved (PostgreSQL refuses NUL in text, so without the check the vote or answer failed
in the database with "Sorry, something went wrong")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.chat import FormErrors
from storage.db import Database
from storage.polls import Poll, PollBallot
from tests.test_polls_create import PollWorld, running_world, said
from tests.test_standup_runtime import (
    World,
    local_nine,
    running_standups,
    text_of,
)

NUL_ANSWER = "Remove the NUL character (\\0) from your answer"


@pytest.fixture
async def standups(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        yield built


@pytest.fixture
async def polls(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


async def test_a_dm_answer_with_a_nul_is_refused_and_the_conversation_waits(
    standups: World,
) -> None:
    await standups.add_standup(["alice"])
    await standups.advance_to(local_nine())
    refused = text_of(await standups.dm("alice", "did\x00things"))
    assert refused.startswith(NUL_ANSWER)
    assert await standups.answers("alice") == {}
    assert (await standups.prompt("alice")).step == 0  # still at the first question
    assert text_of(await standups.dm("alice", "did things")).startswith("(2/")


async def test_a_form_with_a_nul_keeps_the_form_open_on_that_field(standups: World) -> None:
    await standups.add_standup(["alice"])
    await standups.advance_to(local_nine())
    errors = await standups.answer("alice", "fine", "plan\x00b", "none")
    assert isinstance(errors, FormErrors)
    assert list(errors.errors) == ["q1"]
    assert errors.errors["q1"].startswith(NUL_ANSWER)
    assert await standups.answers("alice") == {}


async def test_a_poll_open_text_vote_with_a_nul_is_refused(polls: PollWorld) -> None:
    poll_id = await polls.create('"What should change?" --text --anonymous')
    errors = await polls.submit("bob", "poll-answer", {"answer": "less\x00meetings"}, str(poll_id))
    assert isinstance(errors, FormErrors)
    assert errors.errors == {"answer": NUL_ANSWER + ": syncup can't store it."}
    assert await polls.count(PollBallot, PollBallot.poll_id == poll_id) == 0
    assert (await polls.participants(poll_id))["bob"] == (False, False)
    ok = await polls.submit("bob", "poll-answer", {"answer": "less meetings"}, str(poll_id))
    assert said(ok).startswith("Your answer is in.")


async def test_a_command_with_a_nul_is_refused(polls: PollWorld) -> None:
    refused = said(await polls.command('"Lunch\x00?" Pizza Sushi'))
    assert refused.startswith("Remove the NUL character (\\0) from your command")
    assert await polls.count(Poll) == 0
