"""Every message a handler sends from one event is queued, each once (invariant 2).

One event often causes several messages (a poll's post and its creator's note, a standup's
prompts). Each gets its own idempotency key derived from the event, so none of them is taken
for a duplicate of another, and the same event handled again queues nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.chat import Response, message, reply
from bot.commands.spec import CommandSpec, SubcommandSpec
from bot.core import Context, Core
from bot.features import account
from bot.port import Method
from storage.db import Database
from storage.models import OutboxMessage
from tests.fakes.clock import FakeClock
from tests.test_core import ALICE, command

SPEC = CommandSpec("fanout", "test command", (SubcommandSpec("three", "send three messages"),))


@pytest.fixture
def core(database: Database) -> Core:
    core = Core(database, FakeClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC)))
    account.register(core)

    async def three(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("C1", message("first post"))
        await ctx.post("C1", message("second post"))
        await ctx.dm(ctx.member, message("a DM"))
        return reply("sent")

    core.add_command(SPEC, {"three": three})
    return core


async def outbox(database: Database) -> list[tuple[str, str, str]]:
    async with database.read() as session:
        found = await session.execute(
            select(
                OutboxMessage.idempotency_key, OutboxMessage.method, OutboxMessage.payload
            ).order_by(OutboxMessage.id)
        )
        return [(key, method, str(payload)) for key, method, payload in found.all()]


async def test_three_sends_from_one_event_are_three_rows_and_a_replay_adds_none(
    core: Core, database: Database
) -> None:
    event = command("/fanout three", ALICE, event_id="ev-1")
    await core.handle(event)
    rows = await outbox(database)
    assert [method for _, method, _ in rows] == [Method.POST, Method.POST, Method.DM]
    assert ["first post" in p for _, _, p in rows] == [True, False, False]
    assert ["second post" in p for _, _, p in rows] == [False, True, False]
    assert len({key for key, _, _ in rows}) == 3

    await core.handle(event)  # the platform's retry of the same event
    assert await outbox(database) == rows
