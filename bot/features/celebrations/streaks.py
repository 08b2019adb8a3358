"""Standup streaks: N scheduled standups answered in a row.

A member's streak in a standup, at one of its scheduled runs, counts their answered prompts of
the scheduled runs (``occasion`` "", so ``/standup run`` extras never count) walking back from
that run:

* answered: counts;
* away (out of office), unreachable (the platform refused the DM), or still pending in a run
  that can still be answered: neither counts nor breaks;
* a holiday, or a day the member was not asked (not yet a participant, the bot was down), has
  no prompt at all: neither counts nor breaks;
* skipped, or still pending once the run has closed (a missed standup): the streak ends there.

The check runs once per scheduled run, at the end of its answer window (an occurrence keyed on
the run), for the members who answered it by then; a late answer counts from the next run on.
A streak is celebrated at every multiple of the workspace's streak length (20, 40, 60, ...):
the highest multiple reached, claimed in ``celebrations`` with the streak's first run date in
its key, so each multiple of one streak is posted once, and a new streak after a break is
celebrated again. All of a run's celebrations are one post.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import PromptStatus, StandupPrompt, StandupRun

NEUTRAL = (PromptStatus.AWAY, PromptStatus.UNREACHABLE)


@dataclass(frozen=True)
class Streak:
    length: int
    first: date | None  # the run date of its first answered standup


def walk(rows: Iterable[tuple[PromptStatus | str, date, datetime]], now: datetime) -> Streak:
    """The streak of one member from rows (status, run date, run closes at), newest first."""
    length, first = 0, None
    for status, run_date, closes_at in rows:
        status = PromptStatus(status)
        if status == PromptStatus.ANSWERED:
            length, first = length + 1, run_date
        elif status in NEUTRAL or (status == PromptStatus.PENDING and closes_at > now):
            continue
        else:
            break
    return Streak(length, first)


async def streaks_at(
    session: AsyncSession, run: StandupRun, member_ids: list[int], now: datetime
) -> dict[int, Streak]:
    """Each member's streak in the run's standup, ending at (and including) ``run``."""
    if not member_ids:
        return {}
    rows = await session.execute(
        select(
            StandupPrompt.member_id,
            StandupPrompt.status,
            StandupRun.run_date,
            StandupRun.closes_at,
        )
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(
            StandupRun.standup_id == run.standup_id,
            StandupRun.occasion == "",
            StandupRun.run_date <= run.run_date,
            StandupPrompt.member_id.in_(member_ids),
        )
        .order_by(StandupPrompt.member_id, StandupRun.run_date.desc())
    )
    by_member: dict[int, list[tuple[PromptStatus, date, datetime]]] = {}
    for member_id, status, run_date, closes_at in rows.all():
        by_member.setdefault(member_id, []).append((status, run_date, closes_at))
    return {m: walk(by_member.get(m, []), now) for m in member_ids}


def milestone(streak: Streak, every: int) -> int:
    """The highest multiple of ``every`` the streak has reached; 0 for none."""
    return (streak.length // every) * every if every > 0 else 0


def claim_key(standup_id: int, member_id: int, streak: Streak, reached: int) -> str:
    first = streak.first.isoformat() if streak.first else "-"
    return f"streak:{standup_id}:{member_id}:{first}:{reached}"
