"""The workspace at a glance: a card per team (each standup, each pulse team) with its
latest participation, its open blockers and its pulse, and the workspace's totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from bot.features.blockers.service import ACTIVE
from bot.features.pulse.bulk import latest_shown
from bot.web.dashboard.pages.context import PageContext
from bot.web.dashboard.pages.pulse import ROUNDS, number
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


async def _open_blockers(ctx: PageContext, group: Any, members: Any) -> dict[int, int]:
    """``group id -> its members' active blockers`` for every group at once (a blocker counts
    once per group, whatever the member's rows in it)."""
    rows = await ctx.db.execute(
        select(group, func.count(func.distinct(Blocker.id)))
        .join(Blocker, Blocker.member_id == members)
        .where(Blocker.workspace_id == ctx.workspace_id, Blocker.status.in_(ACTIVE))
        .group_by(group)
    )
    return {gid: int(n) for gid, n in rows.all()}


async def _sizes(ctx: PageContext, group: Any, groups: Any) -> dict[int, int]:
    """``group id -> its rows`` (members) for every group ``groups`` selects, in one query."""
    rows = await ctx.db.execute(
        select(group, func.count()).where(group.in_(groups)).group_by(group)
    )
    return {gid: int(n) for gid, n in rows.all()}


async def _standup_cards(ctx: PageContext, base: str) -> list[TeamCard]:
    """One query per figure over every standup of the workspace, none per standup."""
    standups = list(
        await ctx.db.scalars(
            select(Standup).where(Standup.workspace_id == ctx.workspace_id).order_by(Standup.name)
        )
    )
    if not standups:
        return []
    ids = select(Standup.id).where(Standup.workspace_id == ctx.workspace_id)
    sizes = await _sizes(ctx, StandupParticipant.standup_id, ids)
    # Each standup's latest day, one index look-up per standup (uq standup_id, run_date,
    # occasion), rather than a max over every run of the workspace.
    day = (
        select(func.max(StandupRun.run_date))
        .where(StandupRun.standup_id == Standup.id, StandupRun.occasion == "")
        .correlate(Standup)
        .scalar_subquery()
    )
    last = (
        select(Standup.id.label("standup_id"), day.label("day"))
        .where(Standup.workspace_id == ctx.workspace_id)
        .subquery()
    )
    runs = {
        run.standup_id: run
        for run in await ctx.db.scalars(
            select(StandupRun).join(
                last,
                (StandupRun.standup_id == last.c.standup_id)
                & (StandupRun.run_date == last.c.day)
                & (StandupRun.occasion == ""),
            )
        )
    }
    counts: dict[int, dict[PromptStatus, int]] = {r.id: {} for r in runs.values()}
    rows = await ctx.db.execute(
        select(StandupPrompt.run_id, StandupPrompt.status, func.count())
        .where(StandupPrompt.run_id.in_([r.id for r in runs.values()]))
        .group_by(StandupPrompt.run_id, StandupPrompt.status)
    )
    for run_id, status, n in rows.all():
        counts[run_id][status] = n
    blocked = await _open_blockers(ctx, StandupParticipant.standup_id, StandupParticipant.member_id)
    cards = []
    for standup in standups:
        card = TeamCard(
            standup.name,
            "standup",
            int(sizes.get(standup.id, 0)),
            f"{base}/standups?standup={standup.id}",
        )
        run = runs.get(standup.id)
        if run is not None:
            found = counts[run.id]
            asked = sum(n for s, n in found.items() if s != PromptStatus.AWAY)
            done = found.get(PromptStatus.ANSWERED, 0)
            card.facts.append(f"{run.run_date.isoformat()}: {done} of {asked} answered")
        else:
            card.facts.append("No standup run yet")
        if standup.paused:
            card.facts.append("Paused")
        card.facts.append(f"Open blockers: {blocked.get(standup.id, 0)}")
        cards.append(card)
    return cards


async def _pulse_cards(ctx: PageContext, base: str) -> list[TeamCard]:
    """Each pulse team's latest published results (:func:`latest_shown`, for every team in
    one pass): no figure of the overview is computed from ballots below a threshold."""
    pulses = (
        await ctx.db.execute(
            select(Pulse.id, Team)
            .join(Team, Team.id == Pulse.team_id)
            .where(Pulse.workspace_id == ctx.workspace_id)
            .order_by(Team.name)
        )
    ).all()
    if not pulses:
        return []
    mine = select(Pulse.team_id).where(Pulse.workspace_id == ctx.workspace_id)
    sizes = await _sizes(ctx, TeamMember.team_id, mine)
    shown = await latest_shown(
        ctx.db, select(Pulse.id).where(Pulse.workspace_id == ctx.workspace_id), ROUNDS, 3
    )
    blocked = await _open_blockers(ctx, TeamMember.team_id, TeamMember.member_id)
    cards = []
    for pulse_id, team in pulses:
        card = TeamCard(
            team.name,
            "pulse",
            int(sizes.get(team.id, 0)),
            f"{base}/pulse?team={team.id}#team-{team.id}",
        )
        results = shown.get(pulse_id, [])
        for text, _, score in results:
            card.facts.append(f"{text}: {number(score)}")
        if not results:
            card.facts.append("No pulse result to show yet")
        card.facts.append(f"Open blockers: {blocked.get(team.id, 0)}")
        cards.append(card)
    return cards


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    base = f"/w/{ctx.workspace_id}"
    cards = await _standup_cards(ctx, base) + await _pulse_cards(ctx, base)
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
