"""A standup's latest day (each participant's answers as the report shows them) and its
participation as a member-by-day heatmap (an accessible table: one row a member, one column a
day, each cell the day's status in words as well as colour)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select

from bot.charts.heatmap import ANSWERED, MISSED, NOT_ASKED, OFF, participation_heatmap
from bot.commands.spec import Permission
from bot.web.dashboard.pages.context import PageContext
from storage.models import (
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)

# The chart's words for the statuses (bot.charts.heatmap): not answering is "missed".
CHART_STATUS = {
    PromptStatus.ANSWERED.value: ANSWERED,
    PromptStatus.PENDING.value: MISSED,
    PromptStatus.UNREACHABLE.value: MISSED,
    PromptStatus.SKIPPED.value: OFF,
    PromptStatus.AWAY.value: OFF,
    "": NOT_ASKED,
}
DAYS = 14  # columns of the heatmap: the standup's latest scheduled days
STATUS_WORDS = {
    PromptStatus.ANSWERED.value: "answered",
    PromptStatus.PENDING.value: "no answer",
    PromptStatus.SKIPPED.value: "skipped",
    PromptStatus.AWAY.value: "away",
    PromptStatus.UNREACHABLE.value: "unreachable",
}


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    query = select(Standup).where(Standup.workspace_id == ctx.workspace_id)
    if ctx.seat.permission < Permission.TEAM_LEAD:
        # A member reads the answers of the standups they take part in or own; leads and
        # admins, every standup of the workspace (as /standup history lets them).
        me = ctx.seat.member.id
        mine = select(StandupParticipant.standup_id).where(StandupParticipant.member_id == me)
        query = query.where(or_(Standup.id.in_(mine), Standup.owner_id == me))
    standups = list(await ctx.db.scalars(query.order_by(Standup.name)))
    wanted = ctx.query.get("standup", "")
    chosen = next((s for s in standups if str(s.id) == wanted), standups[0] if standups else None)
    if chosen is None:
        return "standups.html", {"standups": [], "chosen": None}
    runs = list(
        await ctx.db.scalars(
            select(StandupRun)
            .where(StandupRun.standup_id == chosen.id, StandupRun.occasion == "")
            .order_by(StandupRun.run_date.desc())
            .limit(DAYS)
        )
    )
    runs.reverse()
    days: list[date] = [r.run_date for r in runs]
    run_day = {r.id: r.run_date for r in runs}
    prompts = (
        list(await ctx.db.scalars(select(StandupPrompt).where(StandupPrompt.run_id.in_(run_day))))
        if runs
        else []
    )
    participants = set(
        await ctx.db.scalars(
            select(StandupParticipant.member_id).where(StandupParticipant.standup_id == chosen.id)
        )
    )
    members = participants | {p.member_id for p in prompts}
    names = await ctx.names(set(members))
    grid: dict[int, dict[date, str]] = {m: {} for m in members}
    for p in prompts:
        grid[p.member_id][run_day[p.run_id]] = p.status.value
    heatmap = [
        (names.get(m, "someone"), [grid[m].get(d, "") for d in days])
        for m in sorted(members, key=lambda m: names.get(m, "").casefold())
    ]
    chart = participation_heatmap(
        f"Participation in {chosen.name}",
        [name for name, _ in heatmap],
        [d.strftime("%d %b") for d in days],
        [[CHART_STATUS.get(cell, NOT_ASKED) for cell in cells] for _, cells in heatmap],
        team=chosen.name,
    )
    latest = runs[-1] if runs else None
    report: list[tuple[str, str, list[tuple[str, str]]]] = []
    if latest is not None:
        latest_prompts = [p for p in prompts if p.run_id == latest.id]
        answers: dict[int, dict[int, str]] = {}
        if latest_prompts:
            rows = await ctx.db.execute(
                select(
                    StandupAnswer.prompt_id, StandupAnswer.question_index, StandupAnswer.text
                ).where(StandupAnswer.prompt_id.in_([p.id for p in latest_prompts]))
            )
            for row in rows:
                answers.setdefault(row.prompt_id, {})[row.question_index] = row.text
        questions = [q.get("text", "") for q in chosen.questions]
        for p in sorted(latest_prompts, key=lambda p: names.get(p.member_id, "").casefold()):
            given = answers.get(p.id, {})
            report.append(
                (
                    names.get(p.member_id, "someone"),
                    STATUS_WORDS.get(p.status.value, p.status.value),
                    [(q, given[i]) for i, q in enumerate(questions) if i in given],
                )
            )
    answered = sum(1 for _, status, _ in report if status == "answered")
    return "standups.html", {
        "standups": standups,
        "chosen": chosen,
        "days": days,
        "heatmap": heatmap,
        "status_words": STATUS_WORDS,
        "latest": latest,
        "report": report,
        "answered": answered,
        "chart": chart if days else None,
    }
