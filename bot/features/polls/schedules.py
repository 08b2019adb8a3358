"""When polls close and remind, from the database (invariant 1).

Every open poll with a deadline has a one-shot close, keyed ``poll:<id>:close:<generation>``
(:class:`~bot.features.standups.schedules.OnceSchedule`: the key is the occurrence, so it runs
once even if the deadline moves). The close is claimed in the database before anything else, so
two replicas, a scheduler that fires twice or a restart close a poll once; and its handler closes
only a poll that is still open *with that generation*, so a poll closed by hand, or closed and
reopened, is never closed twice by a stale occurrence.

Missed closes are never skipped: a close whose deadline passed while syncup was down runs as
soon as it is back, however long that was (its trigger is moved into the grace window, its key
stays the same). Votes stop at the deadline whatever the scheduler does (see
``service.check_open``), so a late close changes nothing but when the results appear.

A reminder, keyed ``poll:<id>:remind:<generation>``, goes at ``remind_at``; its grace is what is
left until the deadline: a reminder is never sent after the poll closed, and downtime replays
none that came too late.

Polls of a pulse round (``round_id`` set) are the pulse feature's: they have no schedules here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Core
from bot.features.polls import reminders, service
from bot.features.standups.schedules import OnceSchedule
from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.models import Workspace
from storage.polls import Poll

log = logging.getLogger(__name__)

CLOSE_HANDLER = "poll-close"
REMIND_HANDLER = "poll-remind"
# How far back a missed close is looked for; older ones are moved inside it (never skipped).
CLOSE_GRACE = timedelta(days=7)
MIN_REMINDER_GRACE = timedelta(minutes=5)


def close_key(poll: Poll) -> str:
    return f"poll:{poll.id}:close:{poll.close_generation}"


def remind_key(poll: Poll) -> str:
    return f"poll:{poll.id}:remind:{poll.close_generation}"


class PollSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of polls."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        polls = await session.scalars(
            select(Poll)
            .join(Workspace, Workspace.id == Poll.workspace_id)
            .where(
                Poll.closed_at.is_(None),
                Poll.closes_at.is_not(None),
                Poll.round_id.is_(None),
                Workspace.uninstalled_at.is_(None),
            )
            .order_by(Poll.id)
        )
        out: list[Schedule] = []
        for poll in polls:
            assert poll.closes_at is not None
            payload = {"poll_id": poll.id, "generation": poll.close_generation}
            # A deadline older than the grace (long downtime) is due now rather than skipped.
            due = max(poll.closes_at, now - CLOSE_GRACE + timedelta(hours=1))
            out.append(
                OnceSchedule(
                    close_key(poll),
                    CLOSE_HANDLER,
                    DateTrigger(run_date=due, timezone=UTC),
                    grace=CLOSE_GRACE,
                    payload=payload,
                )
            )
            if poll.remind_at is not None and poll.remind_at < poll.closes_at:
                out.append(
                    OnceSchedule(
                        remind_key(poll),
                        REMIND_HANDLER,
                        DateTrigger(run_date=poll.remind_at, timezone=UTC),
                        grace=max(MIN_REMINDER_GRACE, poll.closes_at - poll.remind_at),
                        payload=payload,
                    )
                )
        return out


def _still_due(poll: Poll | None, payload: Mapping[str, Any]) -> TypeGuard[Poll]:
    """The occurrence's poll is still open with the deadline it was booked for (a reopen
    books new ones), and is not a pulse question (the pulse feature closes those)."""
    return (
        poll is not None
        and poll.closed_at is None
        and poll.round_id is None
        and poll.close_generation == payload["generation"]
    )


class PollOccurrences:
    """The close and reminder handlers. The core says what the platform lets be edited
    (``core.edit_window``, set by the app after the features registered)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def edit_window(self) -> timedelta | None:
        return self.core.edit_window

    async def on_close(self, occurrence: Occurrence) -> None:
        payload = occurrence.schedule.payload
        session = occurrence.session
        poll = await service.load_poll(session, payload["poll_id"], lock="update")
        if not _still_due(poll, payload):
            return
        assert poll.closes_at is not None
        await service.close_and_announce(
            session,
            poll,
            occurrence.now,
            self.edit_window,
            closed_at=min(occurrence.now, poll.closes_at),
        )
        occurrence.sent_something = True
        occurrence.schedules_changed = True

    async def on_remind(self, occurrence: Occurrence) -> None:
        payload = occurrence.schedule.payload
        session = occurrence.session
        poll = await service.load_poll(session, payload["poll_id"], lock="share")
        if not _still_due(poll, payload) or (
            poll.closes_at is not None and poll.closes_at <= occurrence.now
        ):
            return
        if await reminders.remind(session, poll, occurrence.now, key=occurrence.key):
            occurrence.sent_something = True


def register(core: Core, scheduler: Scheduler) -> None:
    scheduler.add_source(PollSchedules())
    handlers = PollOccurrences(core)
    scheduler.add_handler(CLOSE_HANDLER, handlers.on_close)
    scheduler.add_handler(REMIND_HANDLER, handlers.on_remind)
