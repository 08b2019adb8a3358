"""Kudos and milestones on one timeline, newest first; milestones still due listed apart.

A private kudos is shown only to its giver and its receivers (in chat, only they are told)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from bot.web.dashboard.pages.context import PageContext
from storage.kudos import Kudos, KudosReceiver
from storage.milestones import Milestone, MilestoneStatus

DAYS = 90
SHOWN = 200


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "kudos" | "milestone"
    title: str
    detail: str
    tag: str


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    since = ctx.now - timedelta(days=DAYS)
    me = ctx.seat.member.id
    mine = select(KudosReceiver.kudos_id).where(KudosReceiver.receiver_id == me)
    kudos = list(
        await ctx.db.scalars(
            select(Kudos)
            .where(
                Kudos.workspace_id == ctx.workspace_id,
                Kudos.given_at >= since,
                or_(Kudos.private.is_(False), Kudos.giver_id == me, Kudos.id.in_(mine)),
            )
            .order_by(Kudos.given_at.desc())
            .limit(SHOWN)
        )
    )
    receivers: dict[int, list[int]] = {}
    if kudos:
        rows = await ctx.db.execute(
            select(KudosReceiver.kudos_id, KudosReceiver.receiver_id).where(
                KudosReceiver.kudos_id.in_([k.id for k in kudos])
            )
        )
        for row in rows:
            receivers.setdefault(row.kudos_id, []).append(row.receiver_id)
    done = list(
        await ctx.db.scalars(
            select(Milestone)
            .where(
                Milestone.workspace_id == ctx.workspace_id,
                Milestone.status == MilestoneStatus.DONE.value,
                Milestone.done_at >= since,
            )
            .order_by(Milestone.done_at.desc())
            .limit(SHOWN)
        )
    )
    upcoming = list(
        await ctx.db.scalars(
            select(Milestone)
            .where(
                Milestone.workspace_id == ctx.workspace_id,
                Milestone.status == MilestoneStatus.OPEN.value,
            )
            .order_by(Milestone.due_on)
            .limit(SHOWN)
        )
    )
    ids: set[int | None] = {k.giver_id for k in kudos}
    for found in receivers.values():
        ids.update(found)
    ids.update(m.owner_id for m in done + upcoming)
    names = await ctx.names(ids)
    entries: list[Entry] = []
    for k in kudos:
        to = ", ".join("@" + names.get(r, "someone") for r in sorted(receivers.get(k.id, [])))
        tag = f"#{k.value}" if k.value else ""
        if k.private:
            tag = (tag + " private").strip()
        entries.append(
            Entry(
                k.given_at, "kudos", f"@{names.get(k.giver_id, 'someone')} to {to}", k.reason, tag
            )
        )
    for m in done:
        assert m.done_at is not None
        entries.append(Entry(m.done_at, "milestone", m.name, m.description or "", "shipped"))
    entries.sort(key=lambda e: e.at, reverse=True)
    today: date = ctx.now.date()
    return "celebrations.html", {
        "entries": entries,
        "days": DAYS,
        "upcoming": [
            (m, names.get(m.owner_id or 0, ""), (m.due_on - today).days) for m in upcoming
        ],
    }
