"""Skipping a day: the Skip today button and ``/standup skip``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    Response,
    reply,
)
from bot.core import Context
from bot.errors import UserError
from bot.events import ActionInvocation
from bot.features.standups.answers import own_prompt, report_changed
from bot.features.standups.prompts import is_away, run_for
from bot.features.standups.report_messages import day_label
from bot.features.standups.schedules import (
    edit_deadline,
    member_zone,
    prompt_time,
    runs_on,
)
from bot.timezones import zone as zone_info
from storage.models import (
    Member,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)
from storage.upsert import insert_unless_exists


async def on_skip_button(ctx: Context, event: ActionInvocation) -> Response:
    prompt, run, standup = await own_prompt(ctx, event.action_id.partition(":")[2])
    return reply(await skip(ctx.session, standup, run, prompt, ctx.now, ctx))


async def skip(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    prompt: StandupPrompt,
    now: datetime,
    ctx: Context | None = None,
) -> str:
    label = f"{standup.name} ({day_label(run.run_date)})"
    status = PromptStatus(prompt.status)
    if status == PromptStatus.ANSWERED:
        raise UserError(f"You already answered {label}; press Answer to change your answers.")
    if status == PromptStatus.SKIPPED:
        return f"You already skipped {label}."
    if status == PromptStatus.AWAY:
        return f"You are out of office on {day_label(run.run_date)}; nothing to skip."
    prompt.status = PromptStatus.SKIPPED
    prompt.step = None
    prompt.updated_at = now
    prompt.report_dirty = True
    await session.execute(delete(StandupAnswer).where(StandupAnswer.prompt_id == prompt.id))
    await session.flush()
    await report_changed(session, run.id, now, ctx)
    return f"Skipped {label}: no reminder for it today."


async def skip_today(
    session: AsyncSession,
    standup_or_none: Standup | None,
    member: Member,
    now: datetime,
    ctx: Context | None = None,
) -> str:
    """``/standup skip [NAME]``: skip today's prompt of one standup, or of every standup the
    member takes part in. "Today" is the member's local date in each standup's zone. Before the
    prompt time the prompt row is created already skipped, so no DM goes out at all."""
    if standup_or_none is not None:
        standups = [standup_or_none]
        member_of = await session.scalar(
            select(StandupParticipant.member_id).where(
                StandupParticipant.standup_id == standup_or_none.id,
                StandupParticipant.member_id == member.id,
            )
        )
        if member_of is None:
            raise UserError(f"You are not a participant of {standup_or_none.name}.")
    else:
        standups = list(
            await session.scalars(
                select(Standup)
                .join(StandupParticipant, StandupParticipant.standup_id == Standup.id)
                .where(StandupParticipant.member_id == member.id)
                .order_by(Standup.name)
            )
        )
    done: list[str] = []
    notes: list[str] = []
    for standup in standups:
        zone = member_zone(standup, member)
        today = now.astimezone(zone_info(zone)).date()
        # A run by hand still waiting for the member is part of their day: skipped too.
        by_hand = await session.execute(
            select(StandupPrompt, StandupRun)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .where(
                StandupRun.standup_id == standup.id,
                StandupRun.occasion != "",
                StandupRun.closes_at > now,
                StandupPrompt.member_id == member.id,
                StandupPrompt.status == PromptStatus.PENDING,
            )
        )
        for pending, manual in by_hand.all():
            await skip(session, standup, manual, pending, now, ctx)
            if standup.name not in done:
                done.append(standup.name)
        run = await session.scalar(
            select(StandupRun).where(
                StandupRun.standup_id == standup.id,
                StandupRun.run_date == today,
                StandupRun.occasion == "",
            )
        )
        prompt = None
        if run is not None:
            prompt = await session.scalar(
                select(StandupPrompt).where(
                    StandupPrompt.run_id == run.id, StandupPrompt.member_id == member.id
                )
            )
        if prompt is not None and run is not None:
            status = PromptStatus(prompt.status)
            if status == PromptStatus.PENDING:
                await skip(session, standup, run, prompt, now, ctx)
                if standup.name not in done:
                    done.append(standup.name)
            elif standup.name in done:
                pass  # its run by hand was skipped: that is today's news
            elif status == PromptStatus.ANSWERED:
                notes.append(f"you already answered {standup.name}")
            elif status == PromptStatus.SKIPPED:
                notes.append(f"you already skipped {standup.name}")
            else:
                notes.append(f"you are away for {standup.name}")
            continue
        if standup.paused or not runs_on(standup, today):
            continue
        if await is_away(session, standup.id, member.id, today):
            notes.append(f"you are away for {standup.name}")
            continue
        closes = edit_deadline(standup, max(now, prompt_time(standup, zone, today)))
        run = await run_for(session, standup, today, closes, now)
        await insert_unless_exists(
            session,
            StandupPrompt,
            {
                "run_id": run.id,
                "member_id": member.id,
                "status": PromptStatus.SKIPPED,
                "report_version": 0,
                "report_dirty": True,
                "updated_at": now,
            },
            StandupPrompt.id,
            ["run_id", "member_id"],
        )
        await report_changed(session, run.id, now, ctx)
        if standup.name not in done:
            done.append(standup.name)
    if not done:
        if notes:
            raise UserError(f"Nothing to skip today: {'; '.join(notes)}.")
        raise UserError("You have no standup today, so there is nothing to skip.")
    names = _join(done)
    extra = f" (Also: {'; '.join(notes)}.)" if notes else ""
    return f"Skipped today's {names}: no prompt or reminder for it today.{extra}"


def _join(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
