"""``/standup run`` on a large team: the first DMs leave while the rest are being queued.

Queueing 5,000 prompts takes a second or more, and nothing of a transaction is visible before it
commits: with every prompt in the command's transaction the first DM would wait for the last
one to be queued. So the command prompts the first :data:`FIRST_SLICE` participants itself (run,
prompts and DMs in its transaction; the delivery worker is woken at its commit), and once it has
committed :func:`finish` prompts the others, :data:`FANOUT_SLICE` per transaction, waking the
worker after each (on SQLite, the one writer, the worker claims the first DMs in between).
Queueing the others is a second or more of the process's CPU: while it runs, every step of the
first send (the claim, the pacing, the request) waits for its turn of the event loop, which put
the first DM 450 ms after the command on PostgreSQL. So :func:`finish` first waits, briefly,
until one of the command's own DMs has left.

Nothing is lost and nothing doubled (invariants 1 and 2): what is left is derived from the
database (a manual run with participants who have no prompt row in it), so after a crash the
scheduler finds it (:class:`FanoutSchedules`, one-shot occurrences claimed by the run's key and
its progress) and another replica or the next start finishes it; a prompt row is unique per run
and member, and each DM keeps the key the command would have given it
(``standup:{standup}:now:{event}:prompt:{member}``), with the member's local date as of the
command, so the finisher and a recovering occurrence racing each other queue nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.date import DateTrigger
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.standups.prompts import away_members, prompt_members, run_for
from bot.features.standups.schedules import OnceSchedule, edit_deadline, member_zone
from bot.scheduling.scheduler import Occurrence, Schedule
from bot.timezones import zone as zone_info
from storage.models import (
    Absence,
    Member,
    OutboxMessage,
    OutboxStatus,
    Standup,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)
from storage.outages import DatabaseUnavailable

if TYPE_CHECKING:
    from bot.core import Core

FANOUT_HANDLER = "standup-fanout"
# Participants the command prompts itself: its transaction stays a few milliseconds long.
FIRST_SLICE = 20
MANUAL = "manual:"
# Participants prompted per transaction after the first slice.
FANOUT_SLICE = 250
# How long the rest waits after the command's commit when no worker runs in this process.
WORKER_FIRST = 0.02
# With a worker in this process: how long the rest waits, at most, for one of the command's own
# DMs to leave (a workspace paused by a 429 sends nothing for a while), and how often it looks.
FIRST_SENT_WAIT = 0.5
FIRST_SENT_POLL = 0.01
# A run whose fan-out did not finish is looked for this long (a crash, then a restart).
LOOK_BACK = timedelta(hours=6)


def key_prefix(standup_id: int, occasion: str) -> str:
    """The DMs' key prefix of a manual run (its occasion is ``manual:<event id>``)."""
    return f"standup:{standup_id}:now:{occasion.removeprefix(MANUAL)}"


def local_dates(standup: Standup, people: Iterable[Member], at: datetime) -> dict[int, date]:
    """Each member's date at ``at``, in their zone: what their absences count on."""
    return {m.id: at.astimezone(zone_info(member_zone(standup, m))).date() for m in people}


async def start(
    session: AsyncSession,
    standup: Standup,
    people: Sequence[Member],
    run_date: date,
    now: datetime,
    occasion: str,
) -> tuple[int, set[int]]:
    """Prompt the first participants now; :func:`finish` (after the commit) prompts the others.
    Returns the run's id and the members this call queued a DM for."""
    run = await run_for(session, standup, run_date, edit_deadline(standup, now), now, occasion)
    first = people[:FIRST_SLICE]
    asked = await prompt_members(
        session,
        standup,
        first,
        run_date,
        now,
        key_prefix=key_prefix(standup.id, occasion),
        occasion=occasion,
        local_dates=local_dates(standup, first, now),
        run=run,
    )
    return run.id, asked


async def the_others(
    session: AsyncSession, standup: Standup, first: Sequence[Member], now: datetime
) -> tuple[int, int]:
    """How many participants the run has, and how many of those after ``first`` are away
    (for the command's answer), without loading them all: only members with an absence near
    today are looked at."""
    everyone = await session.scalar(
        select(func.count()).where(StandupParticipant.standup_id == standup.id)
    )
    today = now.date()
    near = list(
        await session.scalars(
            select(Member)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .join(Absence, Absence.member_id == Member.id)
            .where(
                StandupParticipant.standup_id == standup.id,
                Member.id.not_in([m.id for m in first]),
                or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
                # Local dates are within a day of the UTC date.
                Absence.start_date <= today + timedelta(days=1),
                Absence.end_date >= today - timedelta(days=1),
            )
            .distinct()
        )
    )
    away = await away_members(session, standup.id, local_dates(standup, near, now))
    return int(everyone or 0), len(away)


async def finish(core: Core, run_id: int, first_keys: Sequence[str] = ()) -> None:
    """After the command's commit: the rest of the run's participants, a slice per
    transaction, the delivery worker woken after each; then the scheduler books their
    reminders and the run's report. ``first_keys``: the outbox keys of the DMs the command
    queued itself, when there are others to queue."""
    await first_ones_out(core, first_keys)
    while True:
        async with core.db.transaction() as session:
            done = await prompt_next(session, run_id, core.clock.now())
        if not done:
            break
        for wake in core.on_outbox:
            wake()
    for changed in core.on_schedules_changed:
        await changed()


async def first_ones_out(core: Core, keys: Sequence[str]) -> None:
    """Wait until one of the DMs of ``keys`` has left (sent, or given up on), at most
    :data:`FIRST_SENT_WAIT`; without a worker in this process (another replica sends), just
    long enough for a woken worker to claim the first DMs before a slice takes the database's
    writer (SQLite has one)."""
    if not keys or not core.on_outbox:
        await asyncio.sleep(WORKER_FIRST)
        return
    left = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.idempotency_key.in_(list(keys)),
            OutboxMessage.status != OutboxStatus.PENDING,
        )
        .limit(1)
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FIRST_SENT_WAIT
    while loop.time() < deadline:
        await asyncio.sleep(FIRST_SENT_POLL)
        try:
            async with core.db.read() as session:
                if await session.scalar(left) is not None:
                    return
        except DatabaseUnavailable:
            return  # the slices' own transactions meet the outage (and the recovery, below)


async def prompt_next(session: AsyncSession, run_id: int, now: datetime) -> int:
    """Prompt the next :data:`FANOUT_SLICE` participants of the run who have no prompt in it;
    returns how many (0: none left, or the standup is gone or paused)."""
    run = await session.get(StandupRun, run_id)
    standup = await session.get(Standup, run.standup_id) if run is not None else None
    if run is None or standup is None or standup.paused:
        return 0
    people = list(
        await session.scalars(
            select(Member)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .where(
                StandupParticipant.standup_id == standup.id,
                ~select(StandupPrompt.id)
                .where(StandupPrompt.run_id == run.id, StandupPrompt.member_id == Member.id)
                .exists(),
            )
            .order_by(Member.display_name, Member.id)
            .limit(FANOUT_SLICE)
        )
    )
    await prompt_members(
        session,
        standup,
        people,
        run.run_date,
        now,
        key_prefix=key_prefix(standup.id, run.occasion),
        occasion=run.occasion,
        local_dates=local_dates(standup, people, run.created_at),
    )
    return len(people)


class FanoutSchedules:
    """After a crash: a one-shot, due at once, for each recent manual run with participants not
    prompted yet, keyed by how many prompts the run has (each occurrence prompts the next
    slice, and the next key is due as it commits)."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        unfinished = await session.execute(
            select(StandupRun.id, StandupRun.standup_id, StandupRun.created_at)
            .join(StandupParticipant, StandupParticipant.standup_id == StandupRun.standup_id)
            .outerjoin(
                StandupPrompt,
                (StandupPrompt.run_id == StandupRun.id)
                & (StandupPrompt.member_id == StandupParticipant.member_id),
            )
            .where(
                StandupRun.occasion.startswith(MANUAL),
                StandupRun.created_at > now - LOOK_BACK,
                StandupPrompt.id.is_(None),
            )
            .group_by(StandupRun.id, StandupRun.standup_id, StandupRun.created_at)
        )
        runs = unfinished.tuples().all()
        if not runs:
            return []
        done = dict(
            (
                await session.execute(
                    select(StandupPrompt.run_id, func.count())
                    .where(StandupPrompt.run_id.in_([run_id for run_id, _, _ in runs]))
                    .group_by(StandupPrompt.run_id)
                )
            )
            .tuples()
            .all()
        )
        return [
            OnceSchedule(
                f"standup:{standup_id}:run:{run_id}:fanout@{done.get(run_id, 0)}",
                FANOUT_HANDLER,
                DateTrigger(run_date=created_at.astimezone(UTC), timezone=UTC),
                grace=LOOK_BACK,
                payload={"run_id": run_id},
            )
            for run_id, standup_id, created_at in runs
        ]


async def on_fanout_occurrence(occurrence: Occurrence) -> None:
    """A fan-out a crash cut short: the next slice (the next key is due once this commits)."""
    if await prompt_next(occurrence.session, occurrence.schedule.payload["run_id"], occurrence.now):
        occurrence.sent_something = True
        occurrence.schedules_changed = True
