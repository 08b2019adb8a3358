"""The celebrations' occurrences: each checks that it still applies, claims its celebration by
its unique key, and queues its post in the same transaction (invariants 1 and 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Bold, Message, Section, UserMention, message, text
from bot.features.celebrations import streaks
from bot.features.celebrations.dates import day_in
from bot.features.celebrations.rules import rules_of
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence
from bot.timezones import zone as zone_info
from storage.celebrations import Celebration, CelebrationProfile
from storage.models import (
    Channel,
    Member,
    PromptStatus,
    Standup,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from storage.upsert import insert_unless_exists


def mention(member: Member) -> UserMention:
    return UserMention(member.platform_user_id, member.display_name or member.platform_user_id)


async def claim(session: AsyncSession, key: str, member: Member, kind: str, now: datetime) -> bool:
    """Insert the celebration's row; False when it was posted already."""
    values = {
        "key": key,
        "workspace_id": member.workspace_id,
        "member_id": member.id,
        "kind": kind,
        "posted_at": now,
    }
    return await insert_unless_exists(session, Celebration, values, Celebration.id) is not None


@dataclass(frozen=True)
class Due:
    """A birthday or anniversary occurrence that still applies."""

    member: Member
    profile: CelebrationProfile
    channel_id: str
    day: date  # the member's local date


async def _due(occurrence: Occurrence, kind: str) -> Due | None:
    session = occurrence.session
    member = await session.get(Member, occurrence.schedule.payload["member_id"])
    profile = await session.get(CelebrationProfile, occurrence.schedule.payload["member_id"])
    if member is None or profile is None or profile.opted_out:
        return None
    rules = await rules_of(session, member.workspace_id)
    if rules.channel_id is None or not getattr(rules, kind):
        return None
    day = occurrence.fire_at.astimezone(zone_info(occurrence.schedule.payload["zone"])).date()
    return Due(member, profile, rules.channel_id, day)


async def _post(occurrence: Occurrence, due: Due, kind: str, msg: Message) -> None:
    """Claim ``kind`` for the member's year, then queue the post (nothing if claimed)."""
    key = f"{kind}:{due.member.id}:{due.day.year}"
    if not await claim(occurrence.session, key, due.member, kind, occurrence.now):
        return
    await occurrence.send(
        due.member.workspace_id,
        Method.POST,
        Target(channel_id=due.channel_id),
        msg,
        key=f"{occurrence.key}:post",
    )


async def on_birthday(occurrence: Occurrence) -> None:
    due = await _due(occurrence, "birthdays")
    if due is None:
        return
    month, day = due.profile.birthday_month, due.profile.birthday_day
    # A date changed since this occurrence was booked is not today's.
    if month is None or day is None or day_in(due.day.year, month, day) != due.day:
        return
    await _post(occurrence, due, "birthday", birthday_message(due.member))


async def on_anniversary(occurrence: Occurrence) -> None:
    due = await _due(occurrence, "anniversaries")
    if due is None:
        return
    started = due.profile.started_on
    if started is None or due.day.year <= started.year:
        return
    if day_in(due.day.year, started.month, started.day) != due.day:
        return
    workspace = await occurrence.session.get(Workspace, due.member.workspace_id)
    where = (workspace.name if workspace else "") or "work"
    msg = anniversary_message(due.member, due.day.year - started.year, where)
    await _post(occurrence, due, "anniversary", msg)


async def on_streak_check(occurrence: Occurrence) -> None:
    """A scheduled run's window ended: celebrate the streaks its answers completed."""
    session = occurrence.session
    run = await session.get(StandupRun, occurrence.schedule.payload["run_id"])
    if run is None or run.occasion:
        return
    standup = await session.get(Standup, run.standup_id)
    if standup is None:
        return
    rules = await rules_of(session, standup.workspace_id)
    if not rules.streaks:
        return
    opted_out = select(CelebrationProfile.member_id).where(CelebrationProfile.opted_out.is_(True))
    answered = list(
        await session.scalars(
            select(StandupPrompt.member_id)
            .where(
                StandupPrompt.run_id == run.id,
                StandupPrompt.status == PromptStatus.ANSWERED,
                StandupPrompt.member_id.not_in(opted_out),
            )
            .order_by(StandupPrompt.member_id)
        )
    )
    found = await streaks.streaks_at(session, run, answered, occurrence.now)
    reached: list[tuple[Member, int]] = []
    for member_id, streak in found.items():
        multiple = streaks.milestone(streak, rules.streak_length)
        if multiple < rules.streak_length:
            continue
        member = await session.get(Member, member_id)
        if member is None:
            continue
        key = streaks.claim_key(standup.id, member_id, streak, multiple)
        if await claim(session, key, member, "streak", occurrence.now):
            reached.append((member, streak.length))
    if not reached:
        return
    channel_id = rules.channel_id
    if channel_id is None:
        channel = await session.get(Channel, standup.report_channel_id)
        if channel is None:
            return
        channel_id = channel.external_id
    await occurrence.send(
        standup.workspace_id,
        Method.POST,
        Target(channel_id=channel_id),
        streak_message(standup, reached),
        key=f"{occurrence.key}:post",
    )


def birthday_message(member: Member) -> Message:
    name = member.display_name or member.platform_user_id
    return message(
        text("🎂 Happy birthday, ", mention(member), "! Have a wonderful day."),
        summary=f"Happy birthday, {name}!",
    )


def anniversary_message(member: Member, years: int, where: str) -> Message:
    count = f"{years} year{'s' if years != 1 else ''}"
    name = member.display_name or member.platform_user_id
    return message(
        text(
            "🎉 ",
            mention(member),
            " celebrates ",
            Bold(f"{count} at {where}"),
            " today. Thank you!",
        ),
        summary=f"{name}: {count} at {where}",
    )


def streak_message(standup: Standup, reached: list[tuple[Member, int]]) -> Message:
    blocks = [Section(text("🔥 Standup streaks in ", Bold(standup.name), ":"))]
    for member, length in reached:
        blocks.append(
            Section(text(mention(member), f" answered {length} scheduled standups in a row."))
        )
    return message(*blocks, summary=f"Standup streaks in {standup.name}")
