"""The celebration a milestone gets when it is done (by hand or by a webhook rule): a post in
its channel, through the outbox in the transaction that marked it done, with who was involved
(the owner first, then the other contributors, as mentions: they are meant to be notified), how
long it took from the day it was added, how that compares with its date, and a PNG card
(:mod:`bot.charts.card`: the name, the dates, the people)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Chart, Context, Header, Message, Section, UserMention, message, text
from bot.delivery.outbox import enqueue
from bot.features.milestones.dates import show_day
from bot.port import Method, Target
from bot.timezones import zone
from storage.milestones import Milestone, MilestoneContributor
from storage.models import Member, Workspace

MAX_NAMED = 30  # people named in the post and on the card; more are counted


def took(start: datetime, end: datetime) -> str:
    """``3 hours``, ``1 day``, ``38 days``."""
    span = max(end - start, timedelta(0))
    if span < timedelta(hours=1):
        minutes = max(1, int(span.total_seconds() // 60))
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    if span < timedelta(days=2):
        hours = int(span.total_seconds() // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{span.days} days"


def against_date(milestone: Milestone, done_on_local: date) -> str:
    """``2 days early``, ``on its date``, ``1 day late``."""
    days = (milestone.due_on - done_on_local).days
    if days == 0:
        return "on its date"
    word = "early" if days > 0 else "late"
    return f"{abs(days)} day{'s' if abs(days) != 1 else ''} {word}"


async def involved(session: AsyncSession, milestone: Milestone) -> list[Member]:
    """The owner first, then the other contributors by name."""
    found = list(
        await session.scalars(
            select(Member)
            .join(MilestoneContributor, MilestoneContributor.member_id == Member.id)
            .where(MilestoneContributor.milestone_id == milestone.id)
            .order_by(Member.display_name, Member.id)
        )
    )
    found.sort(key=lambda m: m.id != milestone.owner_id)
    return found


def name_of(member: Member) -> str:
    return member.display_name or member.platform_user_id


def celebration(
    milestone: Milestone, people: list[Member], done_by: Member | None, team: str = ""
) -> Message:
    assert milestone.done_at is not None
    done_local = milestone.done_at.astimezone(zone(milestone.timezone)).date()
    duration = took(milestone.created_at, milestone.done_at)
    when = against_date(milestone, done_local)
    shown = people[:MAX_NAMED]
    who: list[str | UserMention] = []
    for n, member in enumerate(shown):
        if n:
            who.append(", ")
        who.append(UserMention(member.platform_user_id, name_of(member)))
        if member.id == milestone.owner_id:
            who.append(" (owner)")
    if len(people) > len(shown):
        who.append(f" and {len(people) - len(shown)} more")
    by = (
        text("Marked done by ", UserMention(done_by.platform_user_id, name_of(done_by)), ".")
        if done_by is not None
        else text("Marked done by a webhook.")
    )
    names = [name_of(m) for m in people]
    extra = len(names) - MAX_NAMED
    rows = tuple(names[:MAX_NAMED]) + ((f"+{extra} more",) if extra > 0 else ())
    card = Chart(
        title=milestone.name,
        labels=(),
        series=(),
        alt=(
            f"Milestone {milestone.name}: due {show_day(milestone.due_on)}, done "
            f"{show_day(done_local)} ({when}), {duration} after it was added; with "
            f"{', '.join(names) or 'nobody named'}."
        ),
        style="card",
        team=team,
        period=f"Due {show_day(milestone.due_on)} · done {show_day(done_local)} ({when})",
        headline=f"Done in {duration}",
        rows=rows,
    )
    return message(
        Header(f"🎉 Milestone done: {milestone.name}"[:150]),
        Section(
            text(
                f"Done {show_day(done_local)}, {when} (it was due {show_day(milestone.due_on)}). "
                f"It took {duration} from the day it was added."
            )
        ),
        Section(text("Who was involved: ", *who) if who else text("Nobody was named.")),
        card,
        Context(by),
        summary=f"🎉 Milestone done: {milestone.name}"[:150],
    )


async def queue(session: AsyncSession, milestone: Milestone, now: datetime) -> None:
    """The celebration, into the outbox (key ``milestone:<id>:done``: one per milestone)."""
    if milestone.channel_id is None:
        return
    people = await involved(session, milestone)
    done_by = (
        await session.get(Member, milestone.done_by_id)
        if milestone.done_by_id is not None
        else None
    )
    workspace = await session.get(Workspace, milestone.workspace_id)
    team = workspace.name if workspace is not None else ""
    await enqueue(
        session,
        workspace_id=milestone.workspace_id,
        method=Method.POST,
        target=Target(channel_id=milestone.channel_id),
        message=celebration(milestone, people, done_by, team),
        key=f"milestone:{milestone.id}:done",
        now=now,
    )
