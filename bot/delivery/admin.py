"""Operator tools behind ``syncup outbox``: look at the queue and the dead letters, retry them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update

from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Workspace
from storage.pacing import DeliveryRate

StatusFilter = Literal["pending", "dead", "all"]


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as the CLI shows it (never the message text)."""

    id: int
    workspace: str  # the platform's id
    method: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class RetryResult:
    """What :func:`retry_dead` did; ``int(result)`` is the number queued again."""

    retried: int
    retried_ids: tuple[int, ...]
    # Ids asked for that were not dead-lettered (pending, sent, or no such message): left alone.
    not_dead: tuple[int, ...]
    missing: tuple[int, ...]  # the subset of ``not_dead`` that does not exist at all

    def __int__(self) -> int:
        return self.retried


async def list_messages(
    db: Database, status: StatusFilter = "all", limit: int = 50
) -> list[OutboxEntry]:
    """Up to ``limit`` rows with that status, oldest first. ``all`` means pending and dead:
    sent rows are history, not something an operator acts on."""
    if status not in ("pending", "dead", "all"):
        raise ValueError(f'Unknown status "{status}"; use pending, dead or all.')
    if limit < 1:
        raise ValueError("limit must be at least 1")
    wanted = (
        [OutboxStatus.PENDING, OutboxStatus.DEAD] if status == "all" else [OutboxStatus(status)]
    )
    stmt = (
        select(OutboxMessage, Workspace.external_id)
        .join(Workspace, Workspace.id == OutboxMessage.workspace_id)
        .where(OutboxMessage.status.in_(wanted))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    async with db.transaction() as session:
        rows = (await session.execute(stmt)).all()
    return [
        OutboxEntry(
            id=msg.id,
            workspace=external_id,
            method=msg.method,
            status=OutboxStatus(msg.status).value,
            attempts=msg.attempts,
            next_attempt_at=msg.next_attempt_at,
            last_error=msg.last_error,
            created_at=msg.created_at,
        )
        for msg, external_id in rows
    ]


async def retry_dead(db: Database, ids: Sequence[int] | None, now: datetime) -> RetryResult:
    """Put dead rows back in the queue (attempts 0, due ``now``, error cleared).

    ``ids=None`` retries every dead row. Ids that are not dead (pending, sent, or no such row)
    are left alone and reported in ``not_dead``. ``sending_since`` is kept: if the last
    attempt's outcome was unknown, the retry still goes out flagged ``maybe_sent``.
    """
    async with db.transaction() as session:
        if ids is None:
            wanted = select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.DEAD)
            dead = sorted((await session.scalars(wanted)).all())
            not_dead: list[int] = []
            missing: list[int] = []
        else:
            asked = sorted(set(ids))
            result = await session.execute(
                select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(asked))
            )
            found: dict[int, OutboxStatus] = {row_id: status for row_id, status in result.all()}
            dead = [i for i in asked if found.get(i) == OutboxStatus.DEAD]
            not_dead = [i for i in asked if found.get(i) != OutboxStatus.DEAD]
            missing = [i for i in asked if i not in found]
        if dead:
            retried = await session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(dead), OutboxMessage.status == OutboxStatus.DEAD)
                .values(
                    status=OutboxStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    lease_until=None,
                    leased_by=None,
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            # A row another operator retried meanwhile (PostgreSQL) is not dead any more.
            again = set(retried.all())
            not_dead = sorted([*not_dead, *(i for i in dead if i not in again)])
            dead = [i for i in dead if i in again]
    return RetryResult(len(dead), tuple(dead), tuple(not_dead), tuple(missing))


@dataclass(frozen=True)
class LearnedRate:
    """One bucket's learned pacing as ``syncup outbox rates`` shows it."""

    workspace: str  # the platform's id
    bucket: str  # a method, or channel:<id>
    rate: float  # sends a second now
    burst: int
    learned: bool  # a 429 was seen: the rate is below what the platform refused
    measured: float | None  # the limit the last measurement between two 429s found
    rate_limited: int
    updated_at: datetime


async def learned_rates(db: Database) -> list[LearnedRate]:
    """Every bucket's learned rate, by workspace and bucket (channels' fixed ones left out)."""
    async with db.transaction() as session:
        rows = await session.execute(
            select(DeliveryRate, Workspace.external_id)
            .join(Workspace, Workspace.id == DeliveryRate.workspace_id)
            .where(DeliveryRate.bucket.not_like("channel:%"))
            .order_by(Workspace.external_id, DeliveryRate.bucket)
        )
        return [
            LearnedRate(
                workspace=external,
                bucket=row.bucket,
                rate=row.rate,
                burst=row.burst,
                learned=row.learned,
                measured=row.measured,
                rate_limited=row.rate_limited,
                updated_at=row.updated_at,
            )
            for row, external in rows.all()
        ]
