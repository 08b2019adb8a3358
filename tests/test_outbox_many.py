"""Queuing many messages at once (a report refresh, a poll's DMs): the same promise as queuing
one (invariant 2): a key queued again keeps its first row, and the caller learns every key's
outbox id and which keys it queued now, which is how a report's replies find their rows again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.chat import Message, message
from bot.delivery.outbox import Outgoing, decode_message, enqueue, enqueue_many
from bot.port import Method, Target
from storage.db import Database
from storage.models import OutboxMessage
from tests.test_delivery import add_workspace

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def reply(workspace_id: int, key: str, text: str) -> Outgoing:
    return Outgoing(workspace_id, Method.POST, Target(channel_id="C1"), message(text), key)


async def stored(db: Database) -> dict[str, tuple[int, Message]]:
    async with db.transaction() as session:
        rows = await session.execute(select(OutboxMessage))
        return {m.idempotency_key: (m.id, decode_message(m.payload)) for (m,) in rows}


async def test_each_key_gets_its_row_id_and_a_key_queued_again_keeps_its_first_row(
    database: Database,
) -> None:
    ws = await add_workspace(database, "W-1")
    async with database.transaction() as session:
        early = await enqueue(
            session,
            workspace_id=ws,
            method=Method.POST,
            target=Target(channel_id="C1"),
            message=message("first words"),
            key="reply:bob",
            now=NOW,
        )
    async with database.transaction() as session:
        ids, new = await enqueue_many(
            session,
            [reply(ws, "reply:ann", "ann"), reply(ws, "reply:bob", "bob again")],
            NOW + timedelta(minutes=1),
        )
    rows = await stored(database)
    assert ids == {key: row_id for key, (row_id, _) in rows.items()}
    assert ids["reply:bob"] == early
    assert new == {"reply:ann"}
    assert rows["reply:bob"][1] == message("first words")  # the first one wins

    # The whole batch again (a refresh retried): nothing new, the same ids.
    async with database.transaction() as session:
        again, new = await enqueue_many(
            session, [reply(ws, "reply:ann", "x"), reply(ws, "reply:bob", "y")], NOW
        )
    assert (again, new) == (ids, set())
    assert len(await stored(database)) == 2


async def test_a_message_queued_in_bulk_is_the_row_one_queued_alone_would_be(
    database: Database,
) -> None:
    """Same status, attempts, pacing count, due time and content: a bulk-queued message gets
    every try and every treatment a message queued alone gets."""
    ws = await add_workspace(database, "W-1")
    async with database.transaction() as session:
        await enqueue(
            session,
            workspace_id=ws,
            method=Method.POST,
            target=Target(channel_id="C1"),
            message=message("same words"),
            key="alone",
            now=NOW,
        )
        await enqueue_many(session, [reply(ws, "bulk", "same words")], NOW)
    own = ("id", "idempotency_key")
    columns = [c.name for c in OutboxMessage.__table__.columns if c.name not in own]
    async with database.transaction() as session:
        rows = {m.idempotency_key: m for m in await session.scalars(select(OutboxMessage))}
    alone, bulk = ({c: getattr(rows[k], c) for c in columns} for k in ("alone", "bulk"))
    assert bulk == alone
    assert (bulk["status"], bulk["attempts"], bulk["rate_limited"]) == ("pending", 0, 0)
