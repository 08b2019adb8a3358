"""Standup answer forms submitted at the same moment are group-committed (``bot/batching.py``,
``answer_batch.py``): one transaction for the batch, with the same outcome as one at a time:
answers, blockers, statuses, the report, duplicates handled once, edits and mistakes handed to
the one-event path, and a failing batch retried one by one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.chat import FormErrors, Reply, Response
from bot.events import FormSubmission, Origin
from bot.features.standups import answer_batch, refresher, runtime
from storage.db import Database
from storage.models import Blocker, PromptStatus, StandupAnswer
from tests.test_standup_runtime import (
    BERLIN_TEAM,
    PLATFORM,
    World,
    local_nine,
    render,
    running_standups,
    text_of,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        await built.add_standup(list(BERLIN_TEAM))
        await built.advance_to(local_nine())
        yield built


async def submission(
    world: World, name: str, values: tuple[str, ...], event_id: str, prompt_of: str | None = None
) -> FormSubmission:
    prompt = await world.prompt(prompt_of or name)
    return FormSubmission(
        Origin(PLATFORM, "T1", event_id, "Test", f"D-{name}"),
        world.actor(name),
        runtime.FORM_ID,
        {f"q{i}": v for i, v in enumerate(values)},
        str(prompt.id),
    )


async def at_once(world: World, events: list[FormSubmission]) -> list[Response]:
    """Submit every event before any is handled, as a burst of platform requests would."""
    responses = await asyncio.gather(*(world.core.handle(e) for e in events))
    await world.core.idle()
    return list(responses)


def batches(world: World) -> int:
    batcher = world.core.batcher(runtime.FORM_ID)
    assert batcher is not None
    return batcher.batches


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_burst_is_one_batch_with_the_same_outcome(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    before = batches(world)
    events = [
        await submission(world, "alice", ("a1", "a2", "no"), "burst-1"),
        await submission(world, "bob", ("b1", "b2", "Waiting on the VPN"), "burst-2"),
        await submission(world, "carol", ("c1", "", "no"), "burst-3"),  # one answer missing
        await submission(world, "dana", ("d1", "d2", "none"), "burst-4"),
    ]
    alice, bob, carol, dana = await at_once(world, events)
    assert batches(world) == before + 1
    for response in (alice, bob, dana):
        assert isinstance(response, Reply)
        assert text_of(response).startswith("Thanks! Saved your answers for Daily")
    assert isinstance(carol, FormErrors)
    assert set(carol.errors) == {"q1"}
    assert await world.answers("alice") == {0: "a1", 1: "a2", 2: "no"}
    assert await world.answers("bob") == {0: "b1", 1: "b2", 2: "Waiting on the VPN"}
    assert await world.answers("carol") == {}  # nothing saved for the form with an error
    assert (await world.prompt("carol")).status == PromptStatus.PENDING
    for name in ("alice", "bob", "dana"):
        prompt = await world.prompt(name)
        assert prompt.status == PromptStatus.ANSWERED
        assert prompt.answered_at == world.clock.now() and prompt.step is None
    async with world.db.transaction() as session:
        texts = list(await session.scalars(select(Blocker.text)))
    assert texts == ["Waiting on the VPN"]
    # The report followed, once for the batch: a parent and three replies.
    posts = await world.posts()
    parents = [p for p in posts if p.depends_on_id is None]
    assert len(parents) == 1
    assert "Heard from 3 of 4.\nNot answered yet: carol" in render(parents[0].payload)
    assert len([p for p in posts if p.method == "post" and p.depends_on_id is not None]) == 3
    assert errors_logged(caplog) == []  # nothing for an operator to look into


async def test_duplicates_and_a_second_submission_for_one_prompt(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.batching")
    first = await submission(world, "alice", ("a1", "a2", "no"), "dup-1")
    again = await submission(world, "alice", ("a1", "a2", "no"), "dup-1")  # a platform retry
    edit = await submission(world, "alice", ("a1", "a2 changed", "no"), "dup-2")  # a 2nd click
    saved, duplicate, edited = await at_once(world, [first, again, edit])
    assert isinstance(saved, Reply) and text_of(saved).startswith("Thanks! Saved")
    assert duplicate is None
    # The second submission for the same prompt went the one-event way: an edit.
    assert isinstance(edited, Reply) and text_of(edited).startswith("Updated your answers")
    assert await world.answers("alice") == {0: "a1", 1: "a2 changed", 2: "no"}
    # A retry of an id handled in an earlier batch is a duplicate too.
    before = batches(world)
    assert await at_once(world, [await submission(world, "alice", ("x", "y", "z"), "dup-1")]) == [
        None
    ]
    assert batches(world) == before + 1  # counted, as every batch is
    ignored = [r.getMessage() for r in caplog.records if r.name == "bot.batching"]
    assert ignored == [f"duplicate {PLATFORM} event dup-1 ignored"]
    assert await world.answers("alice") == {0: "a1", 1: "a2 changed", 2: "no"}
    # All in the batch, with no failure and no retry alone.
    assert errors_logged(caplog) == []


async def test_someone_elses_prompt_is_refused_and_the_rest_saved(world: World) -> None:
    mine = await submission(world, "bob", ("b1", "b2", "no"), "other-1")
    theirs = await submission(world, "carol", ("c1", "c2", "no"), "other-2", prompt_of="dana")
    saved, refused = await at_once(world, [mine, theirs])
    assert isinstance(saved, Reply) and text_of(saved).startswith("Thanks! Saved")
    assert isinstance(refused, Reply) and "someone else's" in text_of(refused)
    assert await world.answers("dana") == {}
    assert await world.answers("bob") == {0: "b1", 1: "b2", 2: "no"}
    # The refusal was recorded like any handled event: its retry does nothing.
    assert await at_once(world, [theirs]) == [None]


async def test_a_failing_batch_is_retried_one_by_one(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("the batch statement failed")

    monkeypatch.setattr(answer_batch, "_store", broken)
    events = [
        await submission(world, name, (f"{name} 1", f"{name} 2", "no"), f"fail-{name}")
        for name in ("alice", "bob", "carol")
    ]
    responses = await at_once(world, events)
    # The operator is told what failed and what became of it.
    assert errors_logged(caplog) == ["a batch of 3 form submissions failed; each is retried alone"]
    for response in responses:
        assert isinstance(response, Reply) and text_of(response).startswith("Thanks! Saved")
    for name in ("alice", "bob", "carol"):
        assert await world.answers(name) == {0: f"{name} 1", 1: f"{name} 2", 2: "no"}
    async with world.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(StandupAnswer)) == 9
    # Handled once each: retries are duplicates.
    assert await at_once(world, events) == [None, None, None]


async def test_a_failing_step_after_the_commit_costs_nobody_their_answer(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What runs once a batch has committed (starting the report's refresh) may fail; the
    answers are saved and acknowledged all the same, and the operator is told."""

    def broken(*_: object) -> None:
        raise RuntimeError("no refresh today")

    monkeypatch.setattr(refresher.ReportRefresher, "poke", broken)
    events = [
        await submission(world, name, (f"{name} 1", f"{name} 2", "no"), f"after-{name}")
        for name in ("alice", "bob")
    ]
    for response in await at_once(world, events):
        assert isinstance(response, Reply) and text_of(response).startswith("Thanks! Saved")
    for name in ("alice", "bob"):
        assert await world.answers(name) == {0: f"{name} 1", 1: f"{name} 2", 2: "no"}
    assert errors_logged(caplog) == ["after-commit callback of a form batch failed"]
