"""Delivery to Teams: the outbox worker through :class:`TeamsPort` (the Teams SDK's connector
client) against the fake connector, on SQLite and PostgreSQL.

429 with Retry-After pauses and loses nothing, and the port's pacing keeps a channel under
Teams' per-conversation limits; a message over one card's size goes out as several activities
(none over the fake's 28 KB) and is updated part by part; a member syncup never met, or one
Teams will not open a chat with, is unreachable; 1:1 chat ids never reach the outbox's columns.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from adapters.teams.ids import member_key
from adapters.teams.port import DM_PREFIX
from bot.chat import Header, Message, Section, message, text
from bot.delivery.outbox import enqueue
from bot.port import Delivery, Method, RecipientUnreachable, Target
from storage.models import OutboxMessage, Workspace
from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    TEAM_CHANNEL,
    TeamsWorld,
    shown,
)
from tests.fakes.teams.server import TENANT

fake = harness.fake
world = harness.world
installed = harness.installed


async def _queue(world: TeamsWorld, method: Method, target: Target, msgs: list[Message]) -> None:
    async with world.app.db.transaction() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.external_id == TENANT))
        assert workspace is not None
        for n, msg in enumerate(msgs):
            await enqueue(
                session,
                workspace_id=workspace.id,
                method=method,
                target=target,
                message=msg,
                key=f"test:{method.value}:{n}",
                now=world.clock.now(),
            )
    world.app.worker.wake()


async def _rows(world: TeamsWorld) -> list[OutboxMessage]:
    async with world.app.db.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def _until_sent(world: TeamsWorld, count: int) -> list[OutboxMessage]:
    for _ in range(400):
        await world.settle()
        rows = await _rows(world)
        if len(rows) >= count and all(r.status != "pending" for r in rows):
            return rows
    raise AssertionError(f"not every row was sent: {[(r.id, r.status) for r in rows]}")


async def test_429_pauses_and_pacing_keeps_under_the_channel_limits(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    fake.faults.extend([(429, {"Retry-After": "0.4"}), (429, {"Retry-After": "0.2"})])
    notes = [message(f"note {n}") for n in range(12)]
    await _queue(world, Method.POST, Target(channel_id=TEAM_CHANNEL), notes)
    rows = await _until_sent(world, 12)
    assert [r.status for r in rows] == ["sent"] * 12
    assert sum(r.rate_limited for r in rows) >= 1
    posted = sorted(shown(s) for s in fake.posts(TEAM_CHANNEL))
    assert posted == sorted(f"note {n}" for n in range(12))  # each exactly once
    limited = [c for c in fake.calls if c.status == 429]
    # Only the two 429s the test forced: the port's pacing never ran into Teams' own limits
    # (7 a second, 8 in 2 s, 60 in 30 s per conversation, which the fake enforces).
    assert len(limited) == 2


async def test_a_long_message_is_split_and_updated_part_by_part(installed: TeamsWorld) -> None:
    world = installed
    fake, port = world.fake, world.adapter.port
    long = Message(
        (Header("Weekly digest"), *[Section(text(f"line {n} " + "x" * 700)) for n in range(60)])
    )
    first = await port.deliver(
        Delivery(1, TENANT, Method.POST, Target(channel_id=TEAM_CHANNEL), long, "long", 1)
    )
    assert first.part_ids is not None and len(first.part_ids) >= 2
    assert [s.activity_id for s in fake.posts(TEAM_CHANNEL)] == list(first.part_ids)
    everything = "\n".join(shown(s) for s in fake.posts(TEAM_CHANNEL))
    assert all(f"line {n} " in everything for n in range(60)), "nothing cut"
    # An update to a shorter message edits the first part and removes the rest.
    short = message("Weekly digest (corrected)")
    target = Target(channel_id=TEAM_CHANNEL, message_id=first.message_id, part_ids=first.part_ids)
    updated = await port.deliver(Delivery(2, TENANT, Method.UPDATE, target, short, "upd", 1))
    assert updated.message_id == first.message_id
    assert [s.activity_id for s in fake.posts(TEAM_CHANNEL)] == [first.message_id]
    assert shown(fake.posts(TEAM_CHANNEL)[0]) == "Weekly digest (corrected)"
    assert len(fake.deleted) == len(first.part_ids) - 1


async def test_dms_open_the_chat_once_and_keep_short_ids(installed: TeamsWorld) -> None:
    world = installed
    fake = world.fake
    await _queue(
        world, Method.DM, Target(user_id=member_key(BOB)), [message("one"), message("two")]
    )
    rows = await _until_sent(world, 2)
    creates = [c for c in fake.calls if c.path.endswith("/v3/conversations")]
    assert len(creates) == 1 and creates[0].body["tenantId"] == TENANT
    assert [shown(s) for s in fake.dms_to(BOB)] == ["one", "two"]
    # The outbox keeps the member's id for the chat (Teams' chat ids run past 64 characters).
    assert {r.platform_channel_id for r in rows} == {DM_PREFIX + member_key(BOB)}
    # An update of a DM finds the chat again.
    target = Target(channel_id=DM_PREFIX + member_key(BOB), message_id=rows[0].platform_message_id)
    await world.adapter.port.deliver(
        Delivery(9, TENANT, Method.UPDATE, target, message("one, edited"), "edit", 1)
    )
    assert [shown(s) for s in fake.dms_to(BOB)] == ["one, edited", "two"]


async def test_members_syncup_cannot_reach_are_unreachable(installed: TeamsWorld) -> None:
    world = installed
    port = world.adapter.port
    never_met = member_key("cccccccc-0000-4000-8000-00000000c0c0")
    with pytest.raises(RecipientUnreachable, match="never met"):
        await port.deliver(
            Delivery(1, TENANT, Method.DM, Target(user_id=never_met), message("hi"), "k", 1)
        )
    # Teams refuses a chat with bob (blocked the app, left the tenant).
    world.fake.users[BOB].teams_id = "29:someone-else"
    with pytest.raises(RecipientUnreachable, match="refused a chat"):
        await port.deliver(
            Delivery(2, TENANT, Method.DM, Target(user_id=member_key(BOB)), message("hi"), "k2", 1)
        )


async def test_a_burst_of_first_dms_stays_within_the_tenants_requests_a_second(
    installed: TeamsWorld,
) -> None:
    """60 first DMs at once are 120 connector calls (a chat's creation and the send each): the
    tenant's budget lets 50 go in the first second and keeps every second under Teams' 50, as
    the fake counts them on arrival, so none draws a 429."""
    world = installed
    fake, port = world.fake, world.adapter.port
    members = [f"dddddddd-0000-4000-8000-{n:012d}" for n in range(60)]
    for n, aad in enumerate(members):
        fake.add_user(aad, f"member{n}", "Europe/Berlin")
    await world.install([ALICE, *members], TEAM_CHANNEL)
    limited = fake.rate_limited

    def first_dm(n: int, aad: str) -> Delivery:
        target = Target(user_id=member_key(aad))
        return Delivery(n, TENANT, Method.DM, target, message(f"hi {n}"), f"k{n}", 1)

    receipts = await asyncio.gather(
        *(port.deliver(first_dm(n, aad)) for n, aad in enumerate(members))
    )
    assert len(receipts) == 60
    assert all(len(fake.dms_to(aad)) == 1 for aad in members)
    assert fake.rate_limited == limited
