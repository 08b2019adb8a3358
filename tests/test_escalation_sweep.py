"""Escalation end to end on SQLite and PostgreSQL: blockers opened with /blocker, steps fired by
real schedulers (reconciled by hand on a fake clock), the outbox and the timeline checked.

The world (tests/blocker_world.py): "data pipeline" works 09:00-17:00 Europe/Berlin, its
Responsible is dana and its Accountable erin (both in Berlin), its channel C-data. The clock
starts on Monday 9 March 2026, 10:00 UTC (11:00 in Berlin)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core import Core
from bot.features import blockers, raci
from bot.features.blockers import escalation
from bot.features.blockers.timeline import Kind
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import Blocker, BlockerEvent, OutboxMessage
from tests.blocker_world import BOB, DANA, World, make_world

MONDAY_10 = datetime(2026, 3, 9, 10, tzinfo=UTC)


@dataclass
class Replica:
    core: Core
    scheduler: Scheduler


def replica(db: Database, world: World, name: str) -> Replica:
    """One more syncup process on the same database: its own core and scheduler."""
    core = Core(db, world.clock)
    raci.register(core)
    blockers.register(core)
    scheduler = Scheduler(db, world.clock, instance=name, reconcile_interval=3600)
    escalation.register(core, scheduler)
    return Replica(core, scheduler)


@pytest.fixture
async def world(database: Database) -> World:
    return await make_world(database)


async def escalations(world: World, blocker_id: int | None = None) -> list[dict]:
    async with world.db.transaction() as session:
        query = select(BlockerEvent).where(BlockerEvent.kind == Kind.ESCALATED)
        if blocker_id is not None:
            query = query.where(BlockerEvent.blocker_id == blocker_id)
        return [e.detail for e in await session.scalars(query.order_by(BlockerEvent.id))]


async def steps_sent(world: World) -> list[OutboxMessage]:
    """The escalation messages (DMs and posts), not the card updates."""
    return [row for row in await world.outbox() if ":esc:" in row.idempotency_key]


def texts(row: OutboxMessage) -> str:
    out = []
    for block in row.payload["blocks"]:
        if "text" in block and isinstance(block["text"], dict):
            out.extend(p.get("text", "") for p in block["text"]["parts"])
        elif "text" in block:
            out.append(block["text"])
        for _label, value in block.get("items", ()):
            out.extend(p.get("text", "") for p in value["parts"])
    return " ".join(out)


async def open_blocker(world: World, line: str, actor=None) -> int:
    answer = (
        await world.run(f"/blocker add {line}", actor)
        if actor
        else await world.run(f"/blocker add {line}")
    )
    assert answer.startswith("Blocker #"), answer
    return int(answer.split("#")[1].split(" ")[0])


async def test_the_ladder_fires_each_level_once_and_survives_a_restart(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "The nightly ETL job fails --area data pipeline")
    blocker = await world.blocker(number)
    # 4 business hours after Monday 11:00 in Berlin: 15:00 (14:00 UTC).
    assert blocker.next_escalation_at == datetime(2026, 3, 9, 14, tzinfo=UTC)
    first = replica(database, world, "first")
    world.clock.set(datetime(2026, 3, 9, 13, 59, tzinfo=UTC))
    await first.scheduler.reconcile()
    assert await escalations(world) == []
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await first.scheduler.reconcile()
    await first.scheduler.reconcile()
    [level1] = await escalations(world)
    dana = world.members["dana"]
    assert level1 == {
        "level": 1,
        "round": 0,
        "targets": [dana],
        "target": "responsible",
        "label": "@dana",
        "delayed": False,
    }
    [dm] = await steps_sent(world)
    assert dm.idempotency_key == f"blocker:{number}:esc:0:0:1:dm:{dana}"
    assert dm.method == "dm" and dm.target["user_id"] == DANA.user_id
    assert dm.next_attempt_at == world.clock.now()  # dana is at work
    body = texts(dm)
    assert "The nightly ETL job fails" in body and "@alice since Mon 9 Mar 11:00" in body
    assert "R: @dana" in body and "A: @erin" in body
    actions = [b["action_id"] for b in dm.payload["blocks"][-1]["elements"]]
    assert f"blocker:ack:{number}" in actions and f"blocker:resolve:{number}" in actions

    # The process restarts: a new scheduler (another instance name) carries on.
    del first
    second = replica(database, world, "second")
    world.clock.set(datetime(2026, 3, 10, 10, 0, 5, tzinfo=UTC))  # Tuesday 11:00 Berlin
    await second.scheduler.reconcile()
    await second.scheduler.reconcile()
    details = await escalations(world)
    assert [(d["level"], d["label"], d["delayed"]) for d in details] == [
        (1, "@dana", False),
        (2, "@erin", False),
    ]
    world.clock.set(datetime(2026, 3, 11, 10, 0, 5, tzinfo=UTC))  # Wednesday 11:00
    await second.scheduler.reconcile()
    sent = await steps_sent(world)
    assert [row.method for row in sent] == ["dm", "dm", "post"]
    assert sent[-1].target == {"channel_id": "C-data"}
    assert (await escalations(world))[-1]["label"] == "#C-data"
    assert (await world.blocker(number)).next_escalation_at is None
    world.clock.advance(timedelta(days=30))
    await second.scheduler.reconcile()
    assert len(await steps_sent(world)) == 3


async def test_downtime_across_two_levels_fires_only_the_highest_once_marked_delayed(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "Airflow is down --area data pipeline")
    back = replica(database, world, "back")
    # Down from Monday to Tuesday 12:00 Berlin: levels 1 (Mon 15:00) and 2 (Tue 11:00) passed.
    world.clock.set(datetime(2026, 3, 10, 11, tzinfo=UTC))
    await back.scheduler.reconcile()
    await back.scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert detail["level"] == 2 and detail["delayed"] is True and detail["skipped"] == 1
    [dm] = await steps_sent(world)
    assert dm.target["user_id"] == "U5"  # erin, the Accountable; dana is not paged late
    assert "Escalation was delayed (syncup was not running)" in texts(dm)
    blocker = await world.blocker(number)
    assert (blocker.escalation_level, blocker.escalation_round) == (2, 0)
    # The card line that H1's card draws from the entry says so too.
    answer = await world.run(f"/blocker show {number}")
    assert "level 2" in answer


async def test_two_schedulers_on_one_database_fire_each_step_once(
    database: Database, world: World
) -> None:
    numbers = [
        await open_blocker(world, f"ETL step {i} fails --area data pipeline") for i in range(12)
    ]
    a, b = replica(database, world, "a"), replica(database, world, "b")
    for when in (datetime(2026, 3, 9, 14, 1, tzinfo=UTC), datetime(2026, 3, 10, 10, 1, tzinfo=UTC)):
        world.clock.set(when)
        await asyncio.gather(a.scheduler.reconcile(), b.scheduler.reconcile())
        await asyncio.gather(a.scheduler.reconcile(), b.scheduler.reconcile())
    sent = await steps_sent(world)
    keys = [row.idempotency_key for row in sent]
    assert len(keys) == len(set(keys)) == 2 * len(numbers)
    for number in numbers:
        assert [d["level"] for d in await escalations(world, number)] == [1, 2]
        assert not any(d["delayed"] for d in await escalations(world, number))
    async with world.db.transaction() as session:
        claimed = await session.scalars(
            select(Blocker.escalation_level).where(Blocker.id.in_(numbers))
        )
        assert set(claimed) == {2}


async def test_a_batch_larger_than_the_sweep_is_done_in_several_sweeps(
    database: Database, world: World
) -> None:
    numbers = [
        await open_blocker(world, f"ETL shard {i} fails --area data pipeline") for i in range(7)
    ]
    core = Core(database, world.clock)
    raci.register(core)
    scheduler = Scheduler(database, world.clock, instance="small", reconcile_interval=3600)
    escalation.register(core, scheduler, batch_size=3)
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await scheduler.reconcile()
    assert len(await steps_sent(world)) == len(numbers)


async def test_critical_starts_at_the_accountable_at_once_at_any_hour(
    database: Database, world: World
) -> None:
    saturday_night = datetime(2026, 3, 14, 22, tzinfo=UTC)
    world.clock.set(saturday_night)
    number = await open_blocker(world, "Prod data lost --area data pipeline --severity critical")
    assert (await world.blocker(number)).next_escalation_at == saturday_night
    r = replica(database, world, "r")
    await r.scheduler.reconcile()
    [detail] = await escalations(world, number)
    assert detail["level"] == 2 and detail["label"] == "@erin" and not detail["delayed"]
    [dm] = await steps_sent(world)
    assert dm.next_attempt_at == saturday_night  # not held for Monday
    # The channel follows one working day's length later, at night too.
    assert (await world.blocker(number)).next_escalation_at == saturday_night + timedelta(hours=8)


async def test_low_never_goes_past_the_first_level(database: Database, world: World) -> None:
    number = await open_blocker(
        world, "Docs typo in the ETL readme --area data pipeline --severity low"
    )
    r = replica(database, world, "r")
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await r.scheduler.reconcile()
    assert (await world.blocker(number)).next_escalation_at is None
    world.clock.advance(timedelta(days=10))
    await r.scheduler.reconcile()
    assert [d["level"] for d in await escalations(world, number)] == [1]


async def test_a_target_outside_their_working_hours_gets_the_dm_when_their_day_starts(
    database: Database, world: World
) -> None:
    # Opened Monday 06:00 UTC waiting on bob (New York): due 4 business hours after 09:00
    # Berlin = 12:00 UTC, which is 08:00 in New York; bob's day starts at 13:00 UTC.
    world.clock.set(datetime(2026, 3, 9, 6, tzinfo=UTC))
    number = await open_blocker(
        world, "Need the ETL credentials --area data pipeline --waiting-on @bob"
    )
    r = replica(database, world, "r")
    world.clock.set(datetime(2026, 3, 9, 12, 0, 30, tzinfo=UTC))
    await r.scheduler.reconcile()
    [detail] = await escalations(world, number)
    bob = world.members["bob"]
    assert detail["targets"] == [bob]
    assert detail["held"] == {str(bob): "2026-03-09T13:00:00+00:00"}
    [dm] = await steps_sent(world)
    assert dm.target["user_id"] == BOB.user_id
    assert dm.next_attempt_at == datetime(2026, 3, 9, 13, tzinfo=UTC)
    # Resolved before bob's day starts: the held DM is withdrawn.
    await world.run(f"/blocker resolve {number}")
    assert await steps_sent(world) == []
    assert (await world.blocker(number)).next_escalation_at is None


async def test_acknowledging_pauses_then_the_ladder_starts_again(
    database: Database, world: World
) -> None:
    number = await open_blocker(world, "ETL schema drift --area data pipeline")
    r = replica(database, world, "r")
    world.clock.set(datetime(2026, 3, 9, 14, 1, tzinfo=UTC))
    await r.scheduler.reconcile()
    await world.run(f"/blocker ack {number}", DANA)
    blocker = await world.blocker(number)
    # Paused one business day: Monday 15:01 Berlin -> Tuesday 15:01.
    assert blocker.next_escalation_at == datetime(2026, 3, 10, 14, 1, tzinfo=UTC)
    assert blocker.escalation_generation == 1
    world.clock.set(datetime(2026, 3, 10, 14, 2, tzinfo=UTC))
    await r.scheduler.reconcile()
    details = await escalations(world, number)
    assert [(d["level"], d["round"]) for d in details] == [(1, 0), (1, 0)]
    keys = [row.idempotency_key for row in await steps_sent(world)]
    assert keys[-1].startswith(f"blocker:{number}:esc:1:0:1:")
    assert "acknowledged, but is still not resolved" in texts((await steps_sent(world))[-1])
    await world.run(f"/blocker resolve {number}", DANA)
    assert (await world.blocker(number)).next_escalation_at is None
    world.clock.advance(timedelta(days=5))
    await r.scheduler.reconcile()
    assert len(await escalations(world, number)) == 2


async def test_the_sweep_books_one_schedule_at_the_earliest_due_time(
    database: Database, world: World
) -> None:
    source = escalation.EscalationSchedules()
    async with database.transaction() as session:
        assert list(await source.schedules(session, MONDAY_10)) == []
    first = await open_blocker(world, "ETL A --area data pipeline")
    world.clock.advance(timedelta(minutes=5))
    await open_blocker(world, "ETL B --area data pipeline")
    async with database.transaction() as session:
        [schedule] = await source.schedules(session, MONDAY_10)
        due = datetime(2026, 3, 9, 14, tzinfo=UTC)
        assert schedule.trigger.run_date == due
        assert (
            schedule.occurrence_key(due)
            == f"blockers:escalation:{first}@2026-03-09T14:00:00.000000Z"
        )
        late = datetime(2026, 3, 9, 15, tzinfo=UTC)
        [overdue] = await source.schedules(session, late)
        assert overdue.trigger.run_date == late
