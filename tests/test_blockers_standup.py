"""Standup blocker answers become tracked blockers, on both paths (the answer batch and the
one-event path), on SQLite and PostgreSQL: one card each, the same blocker named again in the
next standup updates the open one, a different one opens a second, "no" resolves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.features.blockers import dedupe
from bot.features.blockers.timeline import Kind
from storage.db import Database
from storage.models import Blocker, BlockerEvent, BlockerStatus, StandupAnswer
from tests.test_answer_batching import at_once, submission
from tests.test_standup_runtime import BERLIN_TEAM, MONDAY, World, local_nine, running_standups

TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        await built.add_standup(list(BERLIN_TEAM))
        await built.advance_to(local_nine())
        yield built


async def blockers_of(world: World) -> list[Blocker]:
    async with world.db.transaction() as session:
        return list(await session.scalars(select(Blocker).order_by(Blocker.id)))


async def timeline(world: World, blocker_id: int) -> list[str]:
    async with world.db.transaction() as session:
        return list(
            await session.scalars(
                select(BlockerEvent.kind)
                .where(BlockerEvent.blocker_id == blocker_id)
                .order_by(BlockerEvent.id)
            )
        )


async def answer_id(world: World, name: str, day: date) -> int:
    prompt = await world.prompt(name, day)
    async with world.db.transaction() as session:
        found = await session.scalar(
            select(StandupAnswer.id).where(
                StandupAnswer.prompt_id == prompt.id, StandupAnswer.question_index == 2
            )
        )
        assert found is not None
        return found


async def test_the_batch_opens_tracked_blockers_with_cards(world: World) -> None:
    events = [
        await submission(world, "alice", ("a1", "a2", "no"), "b-1"),
        await submission(world, "bob", ("b1", "b2", "Waiting on the VPN"), "b-2"),
        await submission(world, "carol", ("c1", "c2", "Need the ETL creds"), "b-3"),
    ]
    await at_once(world, events)
    found = await blockers_of(world)
    assert [(b.text, b.source, b.status) for b in found] == [
        ("Waiting on the VPN", "standup", BlockerStatus.OPEN),
        ("Need the ETL creds", "standup", BlockerStatus.OPEN),
    ]
    for blocker in found:
        assert await timeline(world, blocker.id) == [Kind.OPENED]
        assert blocker.card_outbox_id is not None
    cards = [r for r in await world.outbox() if r.idempotency_key.startswith("blocker:")]
    assert sorted(r.idempotency_key for r in cards) == ["blocker:1:card:dm", "blocker:2:card:dm"]
    assert {r.target["user_id"] for r in cards} == {"bob", "carol"}


async def test_the_same_blocker_next_day_updates_the_open_one(world: World) -> None:
    await world.answer("bob", "b1", "b2", "Waiting for staging access")
    await world.advance_to(local_nine(day=TUESDAY))
    await world.answer("bob", "b1", "b2", "Still waiting for staging access!", run_date=TUESDAY)
    (blocker,) = await blockers_of(world)
    assert blocker.created_at == local_nine()  # the age keeps counting from Monday
    assert blocker.last_reported_at == local_nine(day=TUESDAY)
    assert blocker.standup_answer_id == await answer_id(world, "bob", TUESDAY)
    assert blocker.text == "Waiting for staging access"  # the first words stay
    assert await timeline(world, 1) == [Kind.OPENED, Kind.REPORTED_AGAIN]
    # Wednesday: a different blocker (prod, not staging) opens a second one
    await world.advance_to(local_nine(day=WEDNESDAY))
    await world.answer("bob", "b1", "b2", "Waiting for prod access", run_date=WEDNESDAY)
    first, second = await blockers_of(world)
    assert second.text == "Waiting for prod access" and second.id == 2
    assert first.standup_answer_id == await answer_id(world, "bob", TUESDAY)


async def test_the_dm_conversation_path_and_no_resolves(world: World) -> None:
    await world.dm("bob", "b1")
    await world.dm("bob", "b2")
    await world.dm("bob", "The labeling export is late")
    (blocker,) = await blockers_of(world)
    assert blocker.text == "The labeling export is late"
    # editing the answer to "none" resolves it; back to a blocker reopens it
    prompt = await world.prompt("bob")
    await world.submit("bob", prompt.id, {"q0": "b1", "q1": "b2", "q2": "none"})
    (blocker,) = await blockers_of(world)
    assert blocker.status == BlockerStatus.RESOLVED
    await world.submit("bob", prompt.id, {"q0": "b1", "q1": "b2", "q2": "export still late"})
    (blocker,) = await blockers_of(world)
    assert blocker.status == BlockerStatus.OPEN and blocker.text == "export still late"
    assert await timeline(world, 1) == [Kind.OPENED, Kind.RESOLVED, Kind.REOPENED]


async def test_another_members_same_text_is_their_own_blocker(world: World) -> None:
    await world.answer("bob", "b1", "b2", "Waiting for staging access")
    await world.answer("carol", "c1", "c2", "Waiting for staging access")
    assert [b.member_id for b in await blockers_of(world)] == [
        world.members["bob"],
        world.members["carol"],
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Waiting for staging access", "Still waiting for staging access!"),
        ("Waiting for staging access", "waiting for STAGING access."),
        ("Waiting for staging access", "Waiting for staging acess"),  # a typo
        ("Blocked on the labeling export from data", "labeling export from data still blocking"),
        ("Need review on PR #42", "need review on PR 42 again"),
    ],
)
def test_near_duplicates_are_the_same(first: str, second: str) -> None:
    assert dedupe.is_same(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Waiting for staging access", "Waiting for prod access"),
        ("Waiting for staging access", "GPU quota exhausted"),
        ("Need review on PR 42", "Need review on PR 57"),
        ("The ETL job fails", "The ETL job is slow and the dashboard is empty"),
    ],
)
def test_different_blockers_are_not(first: str, second: str) -> None:
    assert not dedupe.is_same(first, second)


def test_best_match_prefers_the_closest() -> None:
    class B:
        def __init__(self, text: str) -> None:
            self.text = text

    staging, prod = B("Waiting for staging access"), B("Waiting for staging access on prod box")
    assert dedupe.best_match("still waiting for staging access", [prod, staging]) is staging
    assert dedupe.best_match("GPU quota", [prod, staging]) is None
