"""DMs through the real outbox and delivery worker, for the adapters' DM tests (Slack, Discord):
members and their DM rows queued, the worker run until nothing is pending, the stored channels."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot import directory
from bot.chat import message
from bot.clock import SystemClock
from bot.config import DeliverySection
from bot.delivery.outbox import enqueue
from bot.delivery.worker import DeliveryWorker
from bot.events import Actor
from bot.port import Method, PlatformPort, Target
from storage.db import Database
from storage.models import Member, OutboxMessage, OutboxStatus


async def queue_dms(
    database: Database,
    platform: str,
    workspace: str,
    users: Sequence[str],
    *,
    key: str = "prompt",
    channels: dict[str, str | None] | None = None,
) -> tuple[int, list[int]]:
    """Each user a member of ``workspace`` with a DM ``"<key> <n>"`` queued (to the DM channel in
    ``channels`` when given); returns the workspace's id and the DM rows' ids."""
    now = datetime.now(UTC)
    ids = []
    async with database.transaction() as session:
        space = await directory.ensure_workspace(session, platform, workspace, "Acme", now)
        for n, user in enumerate(users):
            await directory.ensure_member(session, space, Actor(user, f"member{n}"), now)
            ids.append(
                await enqueue(
                    session,
                    workspace_id=space.id,
                    method=Method.DM,
                    target=Target(user_id=user, dm_channel_id=(channels or {}).get(user)),
                    message=message(f"{key} {n}"),
                    key=f"{key}:{n}",
                    now=now,
                )
            )
    return space.id, ids


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        return len(list(rows))


async def deliver_until_done(database: Database, port: PlatformPort, **settings: Any) -> None:
    """The real worker until no row is pending (at most a minute)."""
    options: dict[str, Any] = {"poll_interval_seconds": 0.05, **settings}
    worker = DeliveryWorker(
        database, port, DeliverySection(**options), clock=SystemClock(), instance="t"
    )
    await worker.start()
    try:
        for _ in range(1200):
            if not await pending(database):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()


async def stored_dm_channels(database: Database) -> dict[str, str | None]:
    """Each member's stored DM channel, by user id."""
    async with database.transaction() as session:
        rows = await session.execute(select(Member.platform_user_id, Member.dm_channel_id))
        return {user: channel for user, channel in rows}
