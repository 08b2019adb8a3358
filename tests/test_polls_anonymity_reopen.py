"""Invariant 6 against subtraction: an anonymous poll closed, reopened and closed again shows
a second result only if it differs from the first by at least the threshold of answers, or
one late voter's answer is the difference (and the reminder after the reopen named who was
still missing). The result waits, with the reason shown; exports hold it back the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.export import poll_rows
from storage.db import Database
from tests.test_polls_create import PollWorld, running_world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


async def exported(world: PollWorld, poll_id: int) -> list[tuple[str, int | None]]:
    async with world.db.transaction() as session:
        return [(r.status, r.count) async for r in poll_rows(session) if r.poll_id == poll_id]


async def test_a_result_after_a_reopen_waits_until_it_differs_by_the_threshold(
    world: PollWorld,
) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, poll_id, 0)
    await world.command(f"close {poll_id}")
    first = (await world.sent("post"))[-1]
    assert "Yes\n██████████ 100% (3)" in first
    assert await exported(world, poll_id) == [("closed", 3), ("closed", 0)]

    # Reopened: one late voter, then closed again. Shown, their answer would be the
    # difference between the two results.
    await world.command(f"reopen {poll_id}")
    await world.vote("dana", poll_id, 1)
    await world.command(f"close {poll_id}")
    second = (await world.sent("post"))[-1]
    assert "No\n" not in second and "(1)" not in second
    assert (
        "Results held: 1 answered since the results shown at the earlier close. The difference "
        "between two results would show how they answered, so the next result is shown once "
        "at least 3 have answered since (2 more)."
    ) in second
    assert await exported(world, poll_id) == [("held", None), ("held", None)]
    results = "\n".join(await world.sent("post"))
    assert results.count("██") == first.count("██")  # nothing new was shown anywhere

    # Two more: three since the first result; the new one may be shown.
    await world.command(f"reopen {poll_id}")
    for name in ("erin", "frank"):
        await world.vote(name, poll_id, 1)
    await world.command(f"close {poll_id}")
    third = (await world.sent("post"))[-1]
    assert "No\n█████░░░░░ 50% (3)" in third
    assert await exported(world, poll_id) == [("closed", 3), ("closed", 3)]


async def test_a_close_with_nobody_new_shows_the_same_result_again(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, poll_id, 0)
    await world.command(f"close {poll_id}")
    await world.command(f"reopen {poll_id}")
    await world.command(f"close {poll_id}")
    assert "Yes\n██████████ 100% (3)" in (await world.sent("post"))[-1]


async def test_named_polls_show_every_result(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --results closed --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, poll_id, 0)
    await world.command(f"close {poll_id}")
    await world.command(f"reopen {poll_id}")
    await world.vote("dana", poll_id, 1)
    await world.command(f"close {poll_id}")
    assert "No\n██░░░░░░░░ 25% (1)" in (await world.sent("post"))[-1]
