"""A daily clean-up of rows that only matter for a while: handled event ids, sent outbox rows,
old occurrence claims and expired OAuth states. It runs through the scheduler like any
feature's work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.models import OccurrenceClaim, OutboxMessage, OutboxStatus, ProcessedEvent
from storage.slack_installs import SlackOAuthState

HANDLER = "housekeeping"


class Housekeeping:
    def __init__(self, retention_days: int) -> None:
        self.retention = timedelta(days=retention_days)

    def register(self, scheduler: Scheduler) -> None:
        scheduler.add_source(self)
        scheduler.add_handler(HANDLER, self.run)

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        trigger = CronTrigger(hour=3, minute=17, timezone=UTC)
        return [Schedule("housekeeping", HANDLER, trigger, grace=timedelta(days=1))]

    async def run(self, occurrence: Occurrence) -> None:
        cutoff = occurrence.now - self.retention
        session = occurrence.session
        await session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff))
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.sent_at < cutoff
            )
        )
        # Claims must outlive every grace window; retention is at least a day.
        await session.execute(delete(OccurrenceClaim).where(OccurrenceClaim.claimed_at < cutoff))
        # Installs started and never finished (anyone may start one).
        await session.execute(
            delete(SlackOAuthState).where(SlackOAuthState.expire_at < occurrence.now)
        )
