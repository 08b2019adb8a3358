"""Standup answers to the blocker question become tracked blockers.

A new blocker answer opens a blocker (timeline "opened", an area suggested from its text, its
card, its escalation), all in the transaction that saves the answer: the card and webhooks are
outbox rows, sent after commit. The same member naming the same blocker again (``dedupe``) in a
later standup updates the open blocker instead: ``last_reported_at`` is set, a "reported_again"
entry is added, its age keeps counting, and the blocker now follows the newest answer (the
report of that standup shows its number). An answer edited to "no" resolves its blocker.

:func:`track` is written for the answer batch: one query for the answers' blockers, one for the
members' open blockers, whatever the number of answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.blockers import dedupe, service
from bot.features.blockers.timeline import Kind
from storage.models import Blocker, BlockerStatus, Member


@dataclass(frozen=True)
class Answered:
    """One answer to a blocker question: its id, who gave it, what it says."""

    answer_id: int
    member: Member
    text: str
    is_blocker: bool


async def track(
    session: AsyncSession, workspace_id: int, answers: list[Answered], now: datetime
) -> int:
    """Open, update or resolve the blockers these answers name; returns how many changed."""
    if not answers:
        return 0
    linked = {
        b.standup_answer_id: b
        for b in await session.scalars(
            select(Blocker)
            .where(Blocker.standup_answer_id.in_([a.answer_id for a in answers]))
            .execution_options(populate_existing=True)
        )
    }
    reporters = {a.member.id for a in answers if a.is_blocker}
    open_of: dict[int, list[Blocker]] = {}
    if reporters:
        for blocker in await session.scalars(
            select(Blocker)
            .where(
                Blocker.workspace_id == workspace_id,
                Blocker.member_id.in_(reporters),
                Blocker.status.in_(service.ACTIVE),
            )
            .order_by(Blocker.created_at.desc(), Blocker.id.desc())
        ):
            open_of.setdefault(blocker.member_id, []).append(blocker)
    changed = 0
    for answer in answers:
        existing = linked.get(answer.answer_id)
        value = answer.text.strip()
        if not answer.is_blocker:
            if existing is not None and existing.status in service.ACTIVE:
                await service.close(
                    session,
                    existing,
                    BlockerStatus.RESOLVED,
                    Kind.RESOLVED,
                    existing.member_id,
                    now,
                    {"standup": True},
                )
                changed += 1
            continue
        if existing is not None:
            if existing.status not in service.ACTIVE:  # edited back from "no"
                existing.text = value
                await service.reopened(session, existing, now, existing.member_id)
                changed += 1
            elif existing.text != value:
                existing.text = value
                await service.reported_again(session, existing, now, value, answer.answer_id)
                changed += 1
            continue
        candidates = [
            b for b in open_of.get(answer.member.id, []) if b.standup_answer_id != answer.answer_id
        ]
        same = dedupe.best_match(value, candidates)
        if same is not None:
            same.standup_answer_id = answer.answer_id
            await service.reported_again(session, same, now, value, answer.answer_id)
        else:
            blocker = await service.open_blocker(
                session,
                workspace_id=workspace_id,
                reporter=answer.member,
                text=value,
                now=now,
                source="standup",
                standup_answer_id=answer.answer_id,
            )
            open_of.setdefault(answer.member.id, []).insert(0, blocker)
        changed += 1
    return changed
