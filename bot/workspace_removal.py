"""Deleting a workspace's data after the app was removed from it, once a grace period has passed.

A platform adapter calls :func:`mark_uninstalled` when the platform says the app is gone (Slack's
``app_uninstalled`` and ``tokens_revoked``) and :func:`mark_installed` when it is installed again.
While one is marked, an hourly occurrence deletes every workspace marked longer ago than the
grace period (the adapter asks the scheduler to reconcile after marking); the
database cascades the delete to everything the workspace owns (members, channels, standups and
their answers, outbox rows...). Slack's policy asks for deletion within 14 business days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.db import Database
from storage.models import Workspace

HANDLER = "workspace-removal"


async def mark_uninstalled(db: Database, platform: str, external_id: str, now: datetime) -> bool:
    """Start the grace period of a workspace (kept if it is already running); False when
    syncup never saw that workspace."""
    async with db.transaction() as session:
        found = await session.scalar(
            select(Workspace).where(
                Workspace.platform == platform, Workspace.external_id == external_id
            )
        )
        if found is None:
            return False
        if found.uninstalled_at is None:
            found.uninstalled_at = now
        return True


async def mark_installed(db: Database, platform: str, external_id: str) -> None:
    """The app is back: the workspace's data is kept."""
    async with db.transaction() as session:
        await session.execute(
            update(Workspace)
            .where(Workspace.platform == platform, Workspace.external_id == external_id)
            .values(uninstalled_at=None)
        )


async def remove_expired(session: AsyncSession, now: datetime, grace: timedelta) -> list[str]:
    """Delete every workspace uninstalled before ``now - grace``; returns their ids."""
    cutoff = now - grace
    gone = list(
        await session.execute(
            select(Workspace.id, Workspace.platform, Workspace.external_id).where(
                Workspace.uninstalled_at.is_not(None), Workspace.uninstalled_at <= cutoff
            )
        )
    )
    if gone:
        await session.execute(delete(Workspace).where(Workspace.id.in_([row[0] for row in gone])))
    return [f"{platform}:{external}" for _, platform, external in gone]


class WorkspaceRemoval:
    """The scheduler source and handler of the hourly deletion."""

    def __init__(self, grace: timedelta) -> None:
        self.grace = grace
        self.removed: list[str] = []

    def register(self, scheduler: Scheduler) -> None:
        scheduler.add_source(self)
        scheduler.add_handler(HANDLER, self.run)

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        """Hourly while some workspace waits for deletion; nothing otherwise."""
        waiting = await session.scalar(
            select(Workspace.id).where(Workspace.uninstalled_at.is_not(None)).limit(1)
        )
        if waiting is None:
            return []
        trigger = CronTrigger(minute=41, timezone=UTC)
        return [Schedule("workspace-removal", HANDLER, trigger, grace=timedelta(days=1))]

    async def run(self, occurrence: Occurrence) -> None:
        self.removed.extend(await remove_expired(occurrence.session, occurrence.now, self.grace))
