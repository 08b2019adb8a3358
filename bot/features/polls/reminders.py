"""Poll reminders: a DM to everyone who may answer and has not, read from the participation
record only (what anyone chose is never read here), scheduled or by hand (``/poll remind``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Context
from bot.delivery.outbox import Outgoing, enqueue_many
from bot.errors import UserError
from bot.features.polls import render
from bot.features.polls.options import describe_local
from bot.features.polls.service import dm_target, get_channel, zone_of
from bot.port import Method
from storage.models import Member, OccurrenceClaim
from storage.polls import Poll, PollParticipant
from storage.upsert import insert_unless_exists

# `/poll remind` sends at most one round of reminders per poll in this time.
REMIND_EVERY = timedelta(hours=1)


async def non_voters(session: AsyncSession, poll: Poll) -> list[Member]:
    """Who may answer and has not: only the participation record is read."""
    return list(
        await session.scalars(
            select(Member)
            .join(PollParticipant, PollParticipant.member_id == Member.id)
            .where(PollParticipant.poll_id == poll.id, PollParticipant.voted.is_(False))
            .order_by(Member.id)
        )
    )


async def remind(session: AsyncSession, poll: Poll, now: datetime, *, key: str) -> int:
    """DM everyone who has not answered yet; returns how many. Keys ``{key}:dm:<member>``."""
    channel = await get_channel(session, poll.channel_id)
    name = channel.name if channel is not None else ""
    out = [
        Outgoing(
            poll.workspace_id,
            Method.DM,
            dm_target(member),
            render.reminder_message(poll, zone=zone_of(member), channel=name),
            f"{key}:dm:{member.id}",
        )
        for member in await non_voters(session, poll)
    ]
    await enqueue_many(session, out, now)
    return len(out)


async def last_reminder(session: AsyncSession, poll: Poll) -> datetime | None:
    """When the poll's latest reminder round (scheduled or by hand) went out."""
    return await session.scalar(
        select(func.max(OccurrenceClaim.claimed_at)).where(
            OccurrenceClaim.key.like(f"poll:{poll.id}:remind%")
        )
    )


async def remind_now(ctx: Context, poll: Poll) -> int:
    """``/poll remind``: one round of reminders, at most one an hour (claimed like an
    occurrence, so two clicks in the same hour send one round)."""
    last = await last_reminder(ctx.session, poll)
    zone = zone_of(ctx.member)
    if last is not None and ctx.now - last < REMIND_EVERY:
        raise UserError(
            f"Reminders for poll #{poll.id} went out {describe_local(last, zone)}; the next "
            f"can go at {describe_local(last + REMIND_EVERY, zone)}."
        )
    if not await non_voters(ctx.session, poll):
        raise UserError(f"Everyone has answered poll #{poll.id}; there is nobody to remind.")
    key = f"poll:{poll.id}:remind-now@{ctx.now:%Y-%m-%dT%H}"
    claimed = await insert_unless_exists(
        ctx.session,
        OccurrenceClaim,
        {
            "key": key,
            "handler": "poll-remind-now",
            "scheduled_for": ctx.now,
            "claimed_at": ctx.now,
            "claimed_by": f"member:{ctx.member.id}",
        },
        OccurrenceClaim.key,
    )
    if claimed is None:
        raise UserError(f"Reminders for poll #{poll.id} went out this hour already.")
    count = await remind(ctx.session, poll, ctx.now, key=key)
    ctx.sent_something = True
    return count
