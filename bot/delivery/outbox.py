"""Writing to the outbox, always inside the transaction of the change that causes the message."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import MESSAGE_ADAPTER, Message
from bot.port import Method, Target
from storage.models import OutboxMessage, OutboxStatus
from storage.upsert import insert_do_nothing, insert_unless_exists

# Keys per IN (...) list, inside SQLite's and asyncpg's bound-parameter limits.
_IN_CHUNK = 5000
# Rows per statement when writing many (see enqueue_many).
WRITE_SLICE = 100


def encode_target(target: Target) -> dict[str, Any]:
    """The target as stored on its row: the fields that are set (None and no parts are left
    out, so rows stay as they were before a field existed)."""
    # Field by field, not dataclasses.asdict: its deep copy was most of the cost of queueing
    # thousands of DMs (the fields are strings and a tuple of strings).
    return {
        f.name: v for f in _TARGET_FIELDS if (v := getattr(target, f.name)) is not None and v != ()
    }


_TARGET_FIELDS = dataclasses.fields(Target)


async def enqueue(
    session: AsyncSession,
    *,
    workspace_id: int,
    method: Method,
    target: Target,
    message: Message,
    key: str,
    now: datetime,
    depends_on: int | None = None,
    payload: dict[str, Any] | None = None,
) -> int:
    """Add a message to the outbox; returns its id. ``payload``: the message already dumped,
    when the caller has it.

    ``key`` is the idempotency key: enqueuing the same key again (a retried occurrence, a
    duplicated event that slipped through) keeps the first row and returns its id.
    """
    values = {
        "idempotency_key": key,
        "workspace_id": workspace_id,
        "method": method.value,
        "target": encode_target(target),
        "payload": payload or MESSAGE_ADAPTER.dump_python(message, mode="json"),
        "depends_on_id": depends_on,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "rate_limited": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    new_id = await insert_unless_exists(
        session, OutboxMessage, values, OutboxMessage.id, ["idempotency_key"]
    )
    if new_id is not None:
        return new_id
    existing = await session.execute(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    )
    return existing.scalar_one()


def decode_message(payload: dict[str, object]) -> Message:
    return MESSAGE_ADAPTER.validate_python(payload)


def decode_target(raw: dict[str, object]) -> Target:
    return Target(**{k: v for k, v in raw.items() if k in Target.__dataclass_fields__})  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One message for :func:`enqueue_many`; the fields of :func:`enqueue`."""

    workspace_id: int
    method: Method
    target: Target
    message: Message
    key: str
    depends_on: int | None = None
    payload: dict[str, Any] | None = None  # the message already dumped


async def enqueue_many(
    session: AsyncSession, messages: Sequence[Outgoing], now: datetime
) -> tuple[dict[str, int], set[str]]:
    """:func:`enqueue` for many messages in two statements (a report refresh can queue
    thousands). Returns every key's outbox id and the keys that were new; a key already queued
    keeps its first row, as with :func:`enqueue`."""
    if not messages:
        return {}, set()
    # The table, not the mapped class: a Core executemany skips the ORM's bulk-insert
    # bookkeeping, a third of the time for thousands of rows.
    table = OutboxMessage.__table__
    stmt = insert_do_nothing(session, table, ["idempotency_key"]).returning(
        table.c.id, table.c.idempotency_key
    )
    rows = [
        {
            "idempotency_key": m.key,
            "workspace_id": m.workspace_id,
            "method": m.method.value,
            "target": encode_target(m.target),
            "payload": m.payload or MESSAGE_ADAPTER.dump_python(m.message, mode="json"),
            "depends_on_id": m.depends_on,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "rate_limited": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    ids: dict[str, int] = {}
    # In slices: each is an await, so the event loop serves others (answers) in between
    # instead of waiting for thousands of rows to be encoded in one go.
    for start in range(0, len(rows), WRITE_SLICE):
        result = await session.execute(stmt, rows[start : start + WRITE_SLICE])
        ids.update({key: row_id for row_id, key in result})
    new = set(ids)
    missing = [m.key for m in messages if m.key not in ids]
    for start in range(0, len(missing), _IN_CHUNK):
        found = await session.execute(
            select(OutboxMessage.id, OutboxMessage.idempotency_key).where(
                OutboxMessage.idempotency_key.in_(missing[start : start + _IN_CHUNK])
            )
        )
        ids.update({key: row_id for row_id, key in found})
    return ids, new
