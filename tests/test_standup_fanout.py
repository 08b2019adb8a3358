"""``/standup run`` on a large team (``bot/features/standups/fanout.py``): the command prompts
the first participants in its own transaction and the others follow, a slice per transaction,
once it has committed; a crash in between loses nobody (the scheduler finishes the run), and
nothing is queued twice. Prompts queued in bulk (``prompts.prompt_members``) keep the keys and
the outcome of one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.chat import MESSAGE_ADAPTER, message
from bot.delivery.outbox import enqueue
from bot.events import Actor, CommandInvocation, Origin
from bot.features.standups import commands, fanout, runtime
from bot.features.standups.prompts import prompt_members, prompt_message
from bot.port import Method, Target
from storage.db import Database
from storage.models import (
    Absence,
    Member,
    OutboxMessage,
    OutboxStatus,
    Standup,
    StandupPrompt,
    StandupRun,
)
from tests.test_standup_runtime import PLATFORM, START, World, running_standups, text_of

TEAM = {f"m{n:02d}": "Europe/Berlin" for n in range(12)}


@pytest.fixture
async def world(database: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setattr(fanout, "FIRST_SLICE", 3)
    monkeypatch.setattr(fanout, "FANOUT_SLICE", 4)
    async with running_standups(database, TEAM) as built:
        commands.register(built.core)
        built.core.on_schedules_changed.append(built.scheduler.reconcile)  # as bot.app does
        yield built


async def run_by_hand(world: World, event_id: str, *, idle: bool = True) -> str:
    """``/standup run Daily``; ``idle``: then wait for what it started after its commit."""
    origin = Origin(PLATFORM, "T1", event_id, "Test", "C-team")
    actor = Actor("m00", "m00", "Europe/Berlin", is_platform_admin=True)
    event = CommandInvocation(origin, actor, "standup", "run Daily")
    return text_of(await (world.handle if idle else world.core.handle)(event))


async def prompt_keys(world: World) -> list[str]:
    return sorted(
        r.idempotency_key for r in await world.outbox() if ":prompt:" in r.idempotency_key
    )


async def statuses(world: World, run_id: int) -> dict[int, str]:
    async with world.db.transaction() as session:
        rows = await session.execute(
            select(StandupPrompt.member_id, StandupPrompt.status).where(
                StandupPrompt.run_id == run_id
            )
        )
        return {member: status for member, status in rows.tuples().all()}


async def runs(world: World) -> list[StandupRun]:
    async with world.db.transaction() as session:
        return list(await session.scalars(select(StandupRun).order_by(StandupRun.id)))


async def away(world: World, name: str) -> None:
    async with world.db.transaction() as session:
        session.add(
            Absence(
                member_id=world.members[name],
                start_date=START.date() - timedelta(days=1),
                end_date=START.date() + timedelta(days=1),
                created_at=START,
            )
        )


def keys_of(world: World, standup_id: int, event_id: str, names: list[str]) -> list[str]:
    return sorted(f"standup:{standup_id}:now:{event_id}:prompt:{world.members[n]}" for n in names)


async def test_the_rest_of_the_team_follows_the_first_slice(world: World) -> None:
    standup_id = await world.add_standup(list(TEAM))
    await away(world, "m07")  # after the first slice: counted in the answer all the same
    await away(world, "m01")  # in the first slice
    said = await run_by_hand(world, "run-1")
    assert said.startswith('Sent "Daily" to 10 participant(s) now (2 away)'), said
    (run,) = await runs(world)
    present = [n for n in TEAM if n not in ("m01", "m07")]
    assert await prompt_keys(world) == keys_of(world, standup_id, "run-1", present)
    got = await statuses(world, run.id)
    assert len(got) == len(TEAM)
    assert got[world.members["m07"]] == got[world.members["m01"]] == "away"
    # A second run by hand (its participants prompted in the first run already) is whole too.
    said = await run_by_hand(world, "run-2")
    assert said.startswith('Sent "Daily" to 10 participant(s) now (2 away)'), said
    second = (await runs(world))[-1]
    assert len(await statuses(world, second.id)) == len(TEAM)
    assert await prompt_keys(world) == sorted(
        keys_of(world, standup_id, "run-1", present) + keys_of(world, standup_id, "run-2", present)
    )


async def test_a_crash_after_the_command_is_finished_by_the_scheduler_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies once the command has committed (the rest never started): the
    scheduler's next pass finds the run unfinished and prompts the others, slice by slice;
    running it again, or the finisher racing it, queues nothing twice."""
    standup_id = await world.add_standup(list(TEAM))

    async def crashed(core: object, run_id: int, first_keys: object = ()) -> None:
        return None

    monkeypatch.setattr(fanout, "finish", crashed)
    said = await run_by_hand(world, "run-1")
    assert said.startswith('Sent "Daily" to 12 participant(s) now'), said
    (run,) = await runs(world)
    assert len(await statuses(world, run.id)) == fanout.FIRST_SLICE
    monkeypatch.undo()
    await world.scheduler.reconcile()  # the next start, or another replica
    assert len(await statuses(world, run.id)) == len(TEAM)
    want = keys_of(world, standup_id, "run-1", list(TEAM))
    assert await prompt_keys(world) == want
    await world.scheduler.reconcile()
    await fanout.finish(world.core, run.id)
    assert await prompt_keys(world) == want
    assert len(await world.outbox()) == len(want)


async def test_bulk_prompts_match_one_at_a_time_and_a_rerun_queues_nothing(world: World) -> None:
    standup_id = await world.add_standup(list(TEAM))
    await away(world, "m05")
    now = world.clock.now()
    async with world.db.transaction() as session:
        standup = await session.get_one(Standup, standup_id)
        people = list(await session.scalars(select(Member).order_by(Member.id)))
        alone = await runtime.prompt_member(
            session, standup, people[0], START.date(), now, key_prefix="k"
        )
        asked = await prompt_members(session, standup, people, START.date(), now, key_prefix="k")
        again = await prompt_members(session, standup, people, START.date(), now, key_prefix="k")
    assert alone is True
    # The one prompted alone and the one away are not asked (again).
    assert asked == {m.id for m in people[1:]} - {world.members["m05"]}
    assert again == set()
    rows = [r for r in await world.outbox() if ":prompt:" in r.idempotency_key]
    assert sorted(r.idempotency_key for r in rows) == sorted(
        f"k:prompt:{m.id}" for m in people if m.id != world.members["m05"]
    )
    # Each DM is the message prompt_member renders, for that member and prompt.
    async with world.db.transaction() as session:
        standup = await session.get_one(Standup, standup_id)
        (run,) = list(await session.scalars(select(StandupRun)))
        prompts = {p.member_id: p.id for p in await session.scalars(select(StandupPrompt))}
        members = {m.id: m for m in await session.scalars(select(Member))}
    for row in rows:
        member_id = int(row.idempotency_key.rsplit(":", 1)[1])
        want = prompt_message(standup, run, prompts[member_id], members[member_id], None)
        assert row.payload == MESSAGE_ADAPTER.dump_python(want, mode="json")


# -- the first DMs leave before the others are queued --------------------------------------------


async def prompted(world: World) -> int:
    (run,) = await runs(world)
    return len(await statuses(world, run.id))


async def test_the_others_wait_until_one_of_the_first_dms_has_left(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a delivery worker in the process, queueing the others (a second or more of CPU
    for thousands) waits until one of the command's own DMs has been sent, so that it does
    not hold up every step of that first send."""
    monkeypatch.setattr(fanout, "FIRST_SENT_WAIT", 60.0)
    monkeypatch.setattr(fanout, "FIRST_SENT_POLL", 0.005)
    woken: list[str] = []
    world.core.on_outbox.append(lambda: woken.append("worker"))
    standup_id = await world.add_standup(list(TEAM))
    said = await run_by_hand(world, "run-1", idle=False)
    assert said.startswith('Sent "Daily" to 12 participant(s) now'), said
    assert woken  # the command's commit woke the worker
    await asyncio.sleep(0.2)  # many polls: none of the first DMs has left
    assert await prompted(world) == fanout.FIRST_SLICE
    first = keys_of(world, standup_id, "run-1", list(TEAM)[: fanout.FIRST_SLICE])
    assert await prompt_keys(world) == first
    async with world.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key == first[1])
            .values(status=OutboxStatus.SENT, sent_at=datetime.now(UTC))
        )
    async with asyncio.timeout(30):
        await world.core.idle()
    assert await prompted(world) == len(TEAM)
    assert await prompt_keys(world) == keys_of(world, standup_id, "run-1", list(TEAM))


async def test_the_others_go_after_the_wait_if_no_first_dm_leaves(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace paused by a 429 sends nothing for a while: the others are queued all the
    same once FIRST_SENT_WAIT has passed. A dead-lettered first DM counts as gone."""
    monkeypatch.setattr(fanout, "FIRST_SENT_WAIT", 0.3)
    world.core.on_outbox.append(lambda: None)
    await world.add_standup(list(TEAM))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_by_hand(world, "run-1")
    await world.core.idle()
    assert loop.time() - started >= 0.3
    assert await prompted(world) == len(TEAM)


async def test_the_wait_ends_at_a_dead_first_dm_and_without_a_worker_is_short(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "FIRST_SENT_WAIT", 0.3)
    async with world.db.transaction() as session:
        for key in ("first:a", "first:b"):
            await enqueue(
                session,
                workspace_id=world.workspace_id,
                method=Method.DM,
                target=Target(user_id=key),
                message=message("hi"),
                key=key,
                now=world.clock.now(),
            )
    loop = asyncio.get_running_loop()

    async def waited(keys: list[str]) -> float:
        started = loop.time()
        await fanout.first_ones_out(world.core, keys)
        return loop.time() - started

    # No worker in this process (another replica sends): only the short head start.
    assert await waited(["first:a", "first:b"]) < 0.3
    world.core.on_outbox.append(lambda: None)
    assert await waited([]) < 0.3  # the whole team was in the command's slice
    assert await waited(["first:a", "first:b"]) >= 0.3  # both pending: the whole wait
    async with world.db.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key == "first:b")
            .values(status=OutboxStatus.DEAD)
        )
    assert await waited(["first:a", "first:b"]) < 0.3  # given up on counts as gone
