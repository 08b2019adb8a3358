"""Milestones in storage: finding one by name, who may change it, adding, editing, marking
done and cancelling. Everything is checked before anything is written; a refusal is a
:class:`UserError`, and the core rolls the event back, so bad input saves nothing.

Names are unique per workspace among milestones that are not cancelled, by ``name_key`` (the
name casefolded, spaces collapsed); the unique index decides a race between two adds (the
loser gets the same answer as if it had come second). Marking done is a conditional update
(``WHERE status = 'open'``), so a hand and a webhook at once celebrate once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.chat import ChannelMention
from bot.commands.parse import ChannelRef, MemberRef
from bot.commands.spec import Permission
from bot.core import Context
from bot.errors import PermissionDenied, UserError
from bot.features.milestones import celebrate
from bot.features.milestones.dates import due_date, parse_countdown, show_day
from bot.features.milestones.inputs import ADD_EXAMPLE, Changes
from bot.features.raci import people
from bot.timezones import zone
from storage.milestones import (
    DEFAULT_COUNTDOWN_DAYS,
    Milestone,
    MilestoneContributor,
    MilestoneStatus,
)
from storage.models import Channel, Member
from storage.raci import RaciArea
from storage.upsert import insert_unless_exists

OPEN = MilestoneStatus.OPEN.value
DONE = MilestoneStatus.DONE.value


def name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def local_today(now: datetime, zone_name: str) -> date:
    return now.astimezone(zone(zone_name)).date()


def zone_of(member: Member | None) -> str:
    return (member.timezone if member is not None else None) or "UTC"


async def by_name(session: AsyncSession, workspace_id: int, name: str) -> Milestone | None:
    """The open or done milestone called ``name`` (case and spacing ignored)."""
    return await session.scalar(
        select(Milestone).where(
            Milestone.workspace_id == workspace_id, Milestone.name_key == name_key(name)
        )
    )


async def find(session: AsyncSession, workspace_id: int, name: str) -> Milestone:
    """:func:`by_name`, or a :class:`UserError` with the closest name."""
    found = await by_name(session, workspace_id, name)
    if found is not None:
        return found
    raise UserError(await unknown(session, workspace_id, name))


async def unknown(session: AsyncSession, workspace_id: int, name: str) -> str:
    names = list(
        await session.scalars(
            select(Milestone.name).where(
                Milestone.workspace_id == workspace_id, Milestone.name_key.is_not(None)
            )
        )
    )
    if not names:
        return (
            f'There is no milestone named "{name[:80]}", nor any other yet. '
            f"Add one: `{ADD_EXAMPLE}`."
        )
    by_key = {name_key(n): n for n in names}
    close = difflib.get_close_matches(name_key(name), list(by_key), n=1, cutoff=0.5)
    hint = f' Did you mean "{by_key[close[0]]}"?' if close else ""
    return f'There is no milestone named "{name[:80]}".{hint} `/milestone list` shows them.'


async def channel_names(session: AsyncSession, workspace_id: int) -> dict[str, str]:
    """Channel id → name, for mentions' fallbacks (what a platform-free rendering shows)."""
    rows = await session.execute(
        select(Channel.external_id, Channel.name).where(Channel.workspace_id == workspace_id)
    )
    return {external: name for external, name in rows}


def channel_mention(milestone: Milestone, names: dict[str, str]) -> ChannelMention:
    channel = milestone.channel_id or ""
    return ChannelMention(channel, names.get(channel, ""))


async def member_name(session: AsyncSession, member_id: int | None) -> str:
    member = await session.get(Member, member_id) if member_id is not None else None
    return member.display_name or member.platform_user_id if member is not None else "someone"


async def check_can_change(ctx: Context, milestone: Milestone, what: str) -> None:
    """The owner, whoever added it, team leads and admins may change a milestone."""
    if ctx.permission >= Permission.TEAM_LEAD:
        return
    if ctx.member.id in (milestone.owner_id, milestone.created_by_id):
        return
    owner = await member_name(ctx.session, milestone.owner_id)
    creator = await member_name(ctx.session, milestone.created_by_id)
    who = owner if owner == creator else f"{owner}, {creator} (who added it)"
    raise PermissionDenied(
        f'Only the owner ({who}), team leads and admins can {what} "{milestone.name}".'
    )


async def done_already(ctx: Context, milestone: Milestone) -> UserError:
    """``"Launch v2" was already marked done by bob on Thu 14 Jan 2027 at 10:12 (zone).``"""
    assert milestone.done_at is not None
    when_zone = zone_of(ctx.member)
    local = milestone.done_at.astimezone(zone(when_zone))
    if milestone.done_by_id is not None:
        by = await member_name(ctx.session, milestone.done_by_id)
    else:
        by = "a webhook" if (milestone.done_source or "").startswith("hook") else "someone"
    return UserError(
        f'"{milestone.name}" was already marked done by {by} on {show_day(local.date())} at '
        f"{local:%H:%M} ({when_zone}); there is nothing left to do."
    )


def check_open(milestone: Milestone) -> None:
    if milestone.status != OPEN:
        raise UserError(f'"{milestone.name}" is {milestone.status}; only an open one changes.')


# -- adding ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    milestone: Milestone
    zone_source: str  # "the area data pipeline's zone", "your zone", "UTC (...)"
    channel_id: str


def _zone_for(member: Member, area: RaciArea | None) -> tuple[str, str]:
    if area is not None:
        return area.timezone or "UTC", f"the zone of the area {area.name}"
    if member.timezone:
        return member.timezone, "your zone"
    return "UTC", "UTC: syncup doesn't know your zone (`/syncup timezone Area/City`)"


async def _member(ctx: Context, ref: MemberRef) -> Member:
    return await directory.resolve_member(
        ctx.session, ctx.workspace, ref, ctx.core.directory, now=ctx.now
    )


def in_dm(ctx: Context, channel_id: str | None) -> bool:
    return (
        not channel_id
        or channel_id == ctx.member.dm_channel_id
        or channel_id.startswith(("dm-", "D"))  # the console's and Slack's DMs
    )


async def where(
    ctx: Context, ref: ChannelRef | None, area: RaciArea | None, here: ChannelRef | None
) -> str:
    """The channel for countdowns and the celebration: the one named, else the area's, else
    the one the command was typed in (not a DM)."""
    if ref is None and area is not None and area.channel_id:
        return area.channel_id
    if ref is None and here is not None and not in_dm(ctx, here.channel_id):
        ref = here
        if ctx.core.directory is None:
            assert here.channel_id is not None
            channel = await directory.ensure_channel(
                ctx.session, ctx.workspace, here.channel_id, here.name, ctx.now
            )
            return channel.external_id
    if ref is None:
        raise UserError(
            "Say where to count down and celebrate: add a #channel after the date, e.g. "
            f"`{ADD_EXAMPLE}` (or run it in that channel).",
            field="channel",
        )
    channel = await directory.resolve_channel(
        ctx.session, ctx.workspace, ref, ctx.core.directory, now=ctx.now, to_post=True
    )
    return channel.external_id


def duplicate(name: str, existing: Milestone | None) -> UserError:
    if existing is None:
        return UserError(
            f'There is already a milestone named "{name}"; pick another name.', field="name"
        )
    state = f"due {show_day(existing.due_on)}" if existing.status == OPEN else "done"
    return UserError(
        f'There is already a milestone named "{existing.name}" ({state}); pick another name, '
        f"or change that one: `/milestone edit {existing.name}`.",
        field="name",
    )


async def _flush_unique(ctx: Context, name: str) -> None:
    """Flush; a name taken meanwhile by another transaction (the unique index) is a duplicate."""
    try:
        await ctx.session.flush()
    except IntegrityError:
        raise duplicate(name, None) from None


async def add_contributors(session: AsyncSession, milestone_id: int, members: list[Member]) -> None:
    for member in members:
        await insert_unless_exists(
            session,
            MilestoneContributor,
            {"milestone_id": milestone_id, "member_id": member.id},
            MilestoneContributor.member_id,
        )


async def add(ctx: Context, changes: Changes, here: ChannelRef | None) -> Added:
    assert changes.name is not None and changes.date is not None
    area = (
        await people.find_area(ctx.session, ctx.workspace.id, changes.area)
        if changes.area
        else None
    )
    zone_name, zone_source = _zone_for(ctx.member, area)
    due = due_date(changes.date, local_today(ctx.now, zone_name), zone_name)
    countdown = (
        parse_countdown(changes.countdown)
        if changes.countdown is not None
        else list(DEFAULT_COUNTDOWN_DAYS)
    )
    owner = await _member(ctx, changes.owner) if changes.owner is not None else ctx.member
    others = [await _member(ctx, ref) for ref in changes.with_ or ()]
    channel_id = await where(ctx, changes.channel, area, here)
    existing = await by_name(ctx.session, ctx.workspace.id, changes.name)
    if existing is not None:
        raise duplicate(changes.name, existing)
    milestone = Milestone(
        workspace_id=ctx.workspace.id,
        name=changes.name,
        name_key=name_key(changes.name),
        due_on=due,
        timezone=zone_name,
        channel_id=channel_id,
        area_id=area.id if area is not None else None,
        owner_id=owner.id,
        created_by_id=ctx.member.id,
        created_at=ctx.now,
        countdown_days=countdown,
        status=OPEN,
    )
    ctx.session.add(milestone)
    await _flush_unique(ctx, changes.name)
    await add_contributors(ctx.session, milestone.id, [owner, *others])
    ctx.schedules_changed = True
    return Added(milestone, zone_source, channel_id)


# -- editing --------------------------------------------------------------------------------------


async def edit(
    ctx: Context, milestone: Milestone, changes: Changes, here: ChannelRef | None = None
) -> list[str]:
    """Apply ``changes``; returns what changed, in words (empty: nothing did)."""
    check_open(milestone)
    said: list[str] = []
    if changes.area is not None:
        area = await people.find_area(ctx.session, ctx.workspace.id, changes.area)
        if area.id != milestone.area_id:
            milestone.area_id = area.id
            milestone.timezone = area.timezone or "UTC"
            said.append(f"area {area.name} (its date now counts in {milestone.timezone})")
    if changes.name is not None and changes.name != milestone.name:
        if name_key(changes.name) != milestone.name_key:
            existing = await by_name(ctx.session, ctx.workspace.id, changes.name)
            if existing is not None:
                raise duplicate(changes.name, existing)
        said.append(f'name "{changes.name}"')
        milestone.name, milestone.name_key = changes.name, name_key(changes.name)
    if changes.date is not None:
        today = local_today(ctx.now, milestone.timezone)
        due = due_date(changes.date, today, milestone.timezone)
        if due != milestone.due_on:
            milestone.due_on = due
            milestone.overdue_notified_at = None  # a new date: a new chance to be late
            said.append(f"date {show_day(due)} ({milestone.timezone}); countdowns re-armed")
    if changes.countdown is not None:
        days = parse_countdown(changes.countdown)
        if days != list(milestone.countdown_days):
            milestone.countdown_days = days
            said.append("countdown " + (", ".join(f"T-{d}" for d in days) or "none"))
    if changes.owner is not None:
        owner = await _member(ctx, changes.owner)
        if owner.id != milestone.owner_id:
            milestone.owner_id = owner.id
            await add_contributors(ctx.session, milestone.id, [owner])
            said.append(f"owner {owner.display_name}")
    if changes.with_:
        added = [await _member(ctx, ref) for ref in changes.with_]
        await add_contributors(ctx.session, milestone.id, added)
        said.append("with " + ", ".join(m.display_name for m in added))
    if changes.channel is not None:
        channel_id = await where(ctx, changes.channel, None, here)
        if channel_id != milestone.channel_id:
            milestone.channel_id = channel_id
            said.append("channel")
    if said:
        await _flush_unique(ctx, milestone.name)
        ctx.schedules_changed = True
    return said


# -- done and cancelled ---------------------------------------------------------------------------


async def mark_done(
    session: AsyncSession,
    milestone: Milestone,
    now: datetime,
    *,
    by: Member | None,
    source: str,
) -> bool:
    """Mark an open milestone done and queue its celebration, in the caller's transaction;
    False when it was not open any more (someone else was first)."""
    done = await session.execute(
        update(Milestone)
        .where(Milestone.id == milestone.id, Milestone.status == OPEN)
        .values(status=DONE, done_at=now, done_by_id=by.id if by else None, done_source=source)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(milestone)
        return False
    await session.refresh(milestone)
    if by is not None:
        await add_contributors(session, milestone.id, [by])
    await celebrate.queue(session, milestone, now)
    return True


async def cancel(session: AsyncSession, milestone: Milestone, now: datetime) -> None:
    milestone.status = MilestoneStatus.CANCELLED.value
    milestone.name_key = None  # the name is free again
    milestone.cancelled_at = now
    await session.flush()


async def done_by_hook(session: AsyncSession, workspace_id: int, name: str, now: datetime) -> str:
    """:data:`bot.features.hooks.service.MILESTONE_DONE`: what a webhook rule's ``--milestone``
    does, in the delivery's transaction; returns a note for the hook's deliveries list."""
    milestone = await by_name(session, workspace_id, name)
    if milestone is None:
        return f'no open milestone "{name[:80]}"'
    if milestone.status == DONE or not await mark_done(
        session, milestone, now, by=None, source="hook"
    ):
        return f'milestone "{milestone.name}" was already done'
    return f'milestone "{milestone.name}" marked done'
