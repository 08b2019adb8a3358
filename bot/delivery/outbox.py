"""Writing to the outbox, always inside the transaction of the change that causes the message."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import MESSAGE_ADAPTER, Message
from bot.port import Method, Target
from storage.models import OutboxMessage, OutboxStatus
from storage.upsert import insert_unless_exists


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
) -> int:
    """Add a message to the outbox; returns its id.

    ``key`` is the idempotency key: enqueuing the same key again (a retried occurrence, a
    duplicated event that slipped through) keeps the first row and returns its id.
    """
    values = {
        "idempotency_key": key,
        "workspace_id": workspace_id,
        "method": method.value,
        "target": {k: v for k, v in dataclasses.asdict(target).items() if v is not None},
        "payload": MESSAGE_ADAPTER.dump_python(message, mode="json"),
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
