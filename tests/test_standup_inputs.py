"""Standup answers that must be refused, not stored: ``same`` with no earlier plan, and an
answer longer than the form allows, in a DM or a form. Harness:
:class:`tests.test_standup_runtime.World` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.chat import FormErrors
from storage.db import Database
from tests.test_standup_runtime import (
    World,
    local_nine,
    running_standups,
    text_of,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        yield built


async def test_same_with_no_earlier_plan_is_refused(world: World) -> None:
    await world.add_standup(["alice"])
    await world.advance_to(local_nine())
    refused = text_of(await world.dm("alice", "same"))
    assert refused.startswith("You have no earlier plan to reuse; type your answer.")
    assert "(1/3) What did you do?" in refused  # the question again
    assert await world.answers("alice") == {}
    assert "(2/3)" in text_of(await world.dm("alice", "fixed the build"))
    assert await world.answers("alice") == {0: "fixed the build"}


async def test_a_dm_answer_longer_than_the_form_allows_is_refused(world: World) -> None:
    await world.add_standup(["alice"])
    await world.advance_to(local_nine())
    refused = text_of(await world.dm("alice", "x" * 10_000))
    assert refused.startswith(
        "That answer is 10,000 characters long; answers stop at 3,000 (as in the form)."
    )
    assert await world.answers("alice") == {}
    await world.dm("alice", "y" * 3_000)  # the limit itself is fine
    assert await world.answers("alice") == {0: "y" * 3_000}


async def test_a_form_answer_longer_than_the_field_allows_is_refused(world: World) -> None:
    await world.add_standup(["alice"])
    await world.advance_to(local_nine())
    prompt = await world.prompt("alice")
    response = await world.submit("alice", prompt.id, {"q0": "x" * 3_001, "q1": "plan", "q2": "no"})
    assert isinstance(response, FormErrors)
    assert response.errors == {"q0": "This answer is 3,001 characters long; keep it to 3,000."}
    assert await world.answers("alice") == {}
