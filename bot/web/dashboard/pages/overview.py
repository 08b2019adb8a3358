"""The workspace at a glance: a card per team (each standup, each pulse team) with its
latest participation, its open blockers and its pulse, and the workspace's totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.features.blockers.service import ACTIVE
from bot.web.dashboard.pages.context import PageContext
from bot.web.dashboard.pages.pulse import number, team_results
from storage.kudos import Kudos
from storage.milestones import Milestone, MilestoneStatus
from storage.models import (
    Blocker,
    PromptStatus,
    Standup,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Team,
    TeamMember,
)
from storage.polls import Pulse


@dataclass
class TeamCard:
    name: str
    kind: str  # "standup" | "pulse"
    members: int
    link: str
    facts: list[str] = field(default_factory=list)


async def _open_blockers(ctx: PageContext, member_ids: Any) -> int:
    return int(
        await ctx.db.scalar(
            select(func.count())
            .select_from(Blocker)
            .where(
                Blocker.workspace_id == ctx.workspace_id,
                Blocker.status.in_(ACTIVE),
                Blocker.member_id.in_(member_ids),
            )
        )
        or 0
    )


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    base = f"/w/{ctx.workspace_id}"
    cards: list[TeamCard] = []
    standups = await ctx.db.scalars(
        select(Standup).where(Standup.workspace_id == ctx.workspace_id).order_by(Standup.name)
    )
    for standup in standups:
        who = select(StandupParticipant.member_id).where(
            StandupParticipant.standup_id == standup.id
        )
        size = int(await ctx.db.scalar(select(func.count()).select_from(who.subquery())) or 0)
        card = TeamCard(standup.name, "standup", size, f"{base}/standups?standup={standup.id}")
        run = await ctx.db.scalar(
            select(StandupRun)
            .where(StandupRun.standup_id == standup.id, StandupRun.occasion == "")
            .order_by(StandupRun.run_date.desc())
            .limit(1)
        )
        if run is not None:
            counts = dict(
                (
                    await ctx.db.execute(
                        select(StandupPrompt.status, func.count())
                        .where(StandupPrompt.run_id == run.id)
                        .group_by(StandupPrompt.status)
                    )
                ).all()
            )
            asked = sum(n for s, n in counts.items() if s != PromptStatus.AWAY)
            done = counts.get(PromptStatus.ANSWERED, 0)
            card.facts.append(f"{run.run_date.isoformat()}: {done} of {asked} answered")
        else:
            card.facts.append("No standup run yet")
        if standup.paused:
            card.facts.append("Paused")
        card.facts.append(f"Open blockers: {await _open_blockers(ctx, who)}")
        cards.append(card)
    pulses = await ctx.db.execute(
        select(Pulse, Team)
        .join(Team, Team.id == Pulse.team_id)
        .where(Pulse.workspace_id == ctx.workspace_id)
        .order_by(Team.name)
    )
    for pulse, team in pulses:
        who = select(TeamMember.member_id).where(TeamMember.team_id == team.id)
        size = int(await ctx.db.scalar(select(func.count()).select_from(who.subquery())) or 0)
        card = TeamCard(team.name, "pulse", size, f"{base}/pulse#team-{team.id}")
        shown = [r for r in await team_results(ctx, pulse) if r.shown is not None]
        for row in shown[:3]:
            assert row.shown is not None
            card.facts.append(f"{row.text}: {number(row.shown)}")
        if not shown:
            card.facts.append("No pulse result to show yet")
        card.facts.append(f"Open blockers: {await _open_blockers(ctx, who)}")
        cards.append(card)
    week = ctx.now - timedelta(days=7)
    totals = {
        "open_blockers": int(
            await ctx.db.scalar(
                select(func.count())
                .select_from(Blocker)
                .where(Blocker.workspace_id == ctx.workspace_id, Blocker.status.in_(ACTIVE))
            )
            or 0
        ),
        "kudos_week": int(
            await ctx.db.scalar(
                select(func.count())
                .select_from(Kudos)
                .where(
                    Kudos.workspace_id == ctx.workspace_id,
                    Kudos.given_at >= week,
                    Kudos.private.is_(False),
                )
            )
            or 0
        ),
        "milestones_due": int(
            await ctx.db.scalar(
                select(func.count())
                .select_from(Milestone)
                .where(
                    Milestone.workspace_id == ctx.workspace_id,
                    Milestone.status == MilestoneStatus.OPEN.value,
                    Milestone.due_on <= (ctx.now + timedelta(days=14)).date(),
                )
            )
            or 0
        ),
    }
    return "overview.html", {"cards": cards, "totals": totals}
