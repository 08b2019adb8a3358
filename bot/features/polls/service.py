"""A poll's life: created with its audience, voted in, reminded, closed exactly once (by its
deadline or by hand), announced, reopened.

Every change runs in the transaction of the event or occurrence that causes it, and every
message goes to the outbox in that transaction with a key derived from the poll and its
``close_generation``, so a rerun never queues twice (invariants 1 and 2).

Locking: a vote takes a shared lock on the poll's row (``FOR SHARE`` on PostgreSQL; SQLite has a
single writer anyway) and a close an exclusive one (``FOR UPDATE``). A vote and a close of the
same poll are therefore never interleaved: a ballot is either in before the close counts and
seals, or refused after it. Votes of different members do not wait for each other.

Anonymity (invariant 6, see :mod:`bot.features.polls.ballots`): nothing here stores when a vote
came in, logs a vote's choice, or writes a vote's choice to the outbox; the private reply to a
vote goes back through the platform's response, not the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.chat import Message, Response, reply
from bot.commands.spec import Permission
from bot.core import Context
from bot.delivery.outbox import Outgoing, enqueue, enqueue_many
from bot.errors import UserError
from bot.features.polls import ballots, render
from bot.features.polls.ballots import close_poll
from bot.features.polls.options import PollInput, describe_local
from bot.port import DirectoryUnavailable, Method, Target
from storage.models import Channel, ChannelMember, Member, OutboxMessage, Team
from storage.polls import Poll, PollBallot, PollParticipant, ResultsVisibility

log = logging.getLogger(__name__)

# A reminder goes out this long before the deadline when the poll runs at least twice as long;
# shorter polls are reminded half-way.
REMIND_BEFORE = timedelta(hours=24)


# -- lookups ---------------------------------------------------------------------------------------


async def load_poll(
    session: AsyncSession, poll_id: int, *, lock: Literal["share", "update"] | None = None
) -> Poll | None:
    """The poll, fresh from the database, locked as asked (see the module docstring)."""
    query = select(Poll).where(Poll.id == poll_id).execution_options(populate_existing=True)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    return await session.scalar(query)


def parse_id(raw: str) -> int:
    value = raw.strip().removeprefix("#")
    if not value.isdigit():
        raise UserError(f'"{raw}" is not a poll number; `/poll list` shows them (e.g. 12).')
    return int(value)


async def find_poll(
    ctx: Context, raw_id: str, *, lock: Literal["share", "update"] | None = None
) -> Poll:
    poll = await load_poll(ctx.session, parse_id(raw_id), lock=lock)
    if poll is None or poll.workspace_id != ctx.workspace.id:
        raise UserError(f"There is no poll #{raw_id.strip().removeprefix('#')} here.")
    return poll


def zone_of(member: Member | None) -> str:
    return (member.timezone if member is not None else None) or "UTC"


def display_name(member: Member | None) -> str:
    if member is None:
        return ""
    return member.display_name or member.platform_user_id


async def _get_member(session: AsyncSession, member_id: int | None) -> Member | None:
    return await session.get(Member, member_id) if member_id is not None else None


async def get_channel(session: AsyncSession, channel_id: int | None) -> Channel | None:
    return await session.get(Channel, channel_id) if channel_id is not None else None


async def require_audience(ctx: Context, poll: Poll) -> None:
    """The poll's audience, its creator or an admin: nobody else learns about a poll of a
    channel they are not in."""
    if poll.creator_id == ctx.member.id or ctx.permission >= Permission.ADMIN:
        return
    found = await ctx.session.scalar(
        select(PollParticipant.member_id).where(
            PollParticipant.poll_id == poll.id, PollParticipant.member_id == ctx.member.id
        )
    )
    if found is None:
        channel = await get_channel(ctx.session, poll.channel_id)
        where = f"#{channel.name}" if channel is not None else "its channel"
        raise UserError(f"Poll #{poll.id} is for the members of {where}.")


def require_manager(ctx: Context, poll: Poll) -> None:
    """The creator or an admin (Permission.ADMIN)."""
    if poll.creator_id == ctx.member.id or ctx.permission >= Permission.ADMIN:
        return
    raise UserError(f"Only the creator of poll #{poll.id} and admins can do that.")


# -- the audience ----------------------------------------------------------------------------------


async def _stored_members(session: AsyncSession, channel: Channel) -> set[int]:
    return set(
        await session.scalars(
            select(ChannelMember.member_id).where(ChannelMember.channel_id == channel.id)
        )
    )


async def workspace_wide(session: AsyncSession, channel: Channel | None) -> bool:
    """Whether syncup knew nobody in the poll's channel when it was created (no platform
    directory, no member seen there): then every known member of the workspace may answer."""
    if channel is None:
        return False
    found = await session.scalar(
        select(ChannelMember.member_id).where(ChannelMember.channel_id == channel.id).limit(1)
    )
    return found is None


def audience_note(channel: Channel | None, wide: bool, eligible: int) -> str:
    if wide and channel is not None:
        return (
            f"syncup can't see who is in #{channel.name}, so everyone it knows in this "
            f"workspace may answer ({eligible} people)."
        )
    return ""


async def audience(ctx: Context, channel: Channel) -> set[int]:
    """Who may answer a poll created in ``channel``: its members as the platform lists them
    (when it can), plus those syncup has seen there, plus the creator; with neither a platform
    list nor anyone seen there, every member syncup knows in the workspace."""
    session = ctx.session
    people: set[int] = set()
    listed = False
    if ctx.core.directory is not None:
        try:
            members = await directory.members_in_channel(
                session, ctx.workspace, channel, ctx.core.directory, now=ctx.now
            )
        except UserError as exc:  # the platform won't say (a missing scope or intent)
            log.info("poll audience of #%s from stored members only: %s", channel.name, exc)
        else:
            people.update(m.id for m in members)
            listed = True
    people.update(await _stored_members(session, channel))
    if not listed and not people:
        people.update(
            await session.scalars(select(Member.id).where(Member.workspace_id == ctx.workspace.id))
        )
    people.add(ctx.member.id)
    return people


async def may_join(ctx: Context, poll: Poll) -> bool:
    """A member outside the poll's audience: may they answer after all (they joined its channel
    since the poll started)?"""
    if poll.round_id is not None:
        return False  # a pulse round's audience is its team, fixed when the round went out
    channel = await get_channel(ctx.session, poll.channel_id)
    if channel is None:
        return False
    platform = ctx.core.directory
    if platform is not None:
        try:
            infos = await platform.channel_members(ctx.workspace.external_id, channel.external_id)
        except DirectoryUnavailable:
            pass
        else:
            user = ctx.member.platform_user_id
            return any(info.user_id == user and not info.is_bot for info in infos)
    stored = await _stored_members(ctx.session, channel)
    if stored:
        return ctx.member.id in stored
    return platform is None  # workspace-wide: everyone syncup knows may answer


# -- results ---------------------------------------------------------------------------------------


async def gather(session: AsyncSession, poll: Poll) -> render.Results:
    """Counts and participation; for named polls also who chose what."""
    tally = await ballots.tally(session, poll)
    results = render.Results(poll, tally, place=await _place(session, poll))
    if poll.anonymous:
        return results
    rows = await session.execute(
        select(PollBallot.choice, Member.display_name, Member.platform_user_id, PollBallot.text)
        .join(Member, Member.id == PollBallot.member_id)
        .where(PollBallot.poll_id == poll.id)
        .order_by(PollBallot.choice, Member.display_name, Member.id)
    )
    pairs: list[tuple[int, str]] = []
    for choice, name, user_id, answer in rows.all():
        who = name or user_id
        pairs.append((choice, who))
        if answer:
            results.named_answers.append((who, answer))
    results.names = render.names_by_choice(pairs)
    return results


async def _place(session: AsyncSession, poll: Poll) -> str:
    """The poll's team, else its channel, as a chart names it."""
    team = await session.get(Team, poll.team_id) if poll.team_id is not None else None
    if team is not None:
        return team.name
    channel = await get_channel(session, poll.channel_id)
    return f"#{channel.name}" if channel is not None and channel.name else ""


def results_refusal(poll: Poll, results: render.Results, viewer_id: int) -> str | None:
    """Why ``viewer_id`` may not see the results now (None: they may)."""
    visibility = ResultsVisibility(poll.results)
    tally = results.tally
    if poll.closed_at is None:
        if poll.anonymous:
            return (
                f"The results of anonymous poll #{poll.id} are shown when it closes, and only "
                f"if at least {poll.threshold} answered ({tally.voters} of {tally.eligible} so "
                "far)."
            )
        if visibility is ResultsVisibility.LIVE:
            if results.shown:
                return None
            return (
                f"Results of poll #{poll.id} appear once {poll.threshold} have answered "
                f"({tally.voters} so far)."
            )
        if visibility is ResultsVisibility.CREATOR:
            return f"The results of poll #{poll.id} go to its creator when it closes."
        return f"The results of poll #{poll.id} are shown when it closes."
    if visibility is ResultsVisibility.CREATOR and poll.creator_id != viewer_id:
        return f"Only the creator of poll #{poll.id} sees its results."
    return None


# -- creating --------------------------------------------------------------------------------------


def remind_time(opens_at: datetime, closes_at: datetime | None) -> datetime | None:
    """24 h before the deadline if the poll runs at least 48 h, else half-way; none without a
    deadline."""
    if closes_at is None:
        return None
    length = closes_at - opens_at
    if length >= 2 * REMIND_BEFORE:
        return closes_at - REMIND_BEFORE
    return opens_at + length / 2


async def create(ctx: Context, parsed: PollInput, channel: Channel) -> Poll:
    """Store the poll and its audience and post it in ``channel``."""
    session = ctx.session
    poll = Poll(
        workspace_id=ctx.workspace.id,
        channel_id=channel.id,
        creator_id=ctx.member.id,
        question=parsed.question,
        kind=parsed.kind.value,
        options=list(parsed.options),
        max_choices=parsed.max_choices,
        anonymous=parsed.anonymous,
        results=parsed.results.value,
        threshold=parsed.threshold,
        opens_at=ctx.now,
        closes_at=parsed.closes_at,
        remind_at=remind_time(ctx.now, parsed.closes_at),
        close_generation=0,
        results_version=0,
        created_at=ctx.now,
    )
    people = await audience(ctx, channel)
    await ballots.create_poll(session, poll, people, now=ctx.now)
    await post_poll(session, poll, ctx.now, key=f"poll:{poll.id}:post")
    ctx.sent_something = True
    if poll.closes_at is not None:
        ctx.schedules_changed = True
    return poll


async def post_poll(session: AsyncSession, poll: Poll, now: datetime, *, key: str) -> int | None:
    """Post the open poll in its channel; the post becomes its message (and its live one)."""
    channel = await get_channel(session, poll.channel_id)
    if channel is None:
        return None
    msg = await _poll_message(session, poll, channel)
    outbox_id = await enqueue(
        session,
        workspace_id=poll.workspace_id,
        method=Method.POST,
        target=Target(channel_id=channel.external_id),
        message=msg,
        key=key,
        now=now,
    )
    poll.message_outbox_id = outbox_id
    if not poll.anonymous and poll.results == ResultsVisibility.LIVE.value:
        poll.live_outbox_id = outbox_id
        poll.live_posted_at = now
    return outbox_id


async def _poll_message(session: AsyncSession, poll: Poll, channel: Channel | None) -> Message:
    creator = await _get_member(session, poll.creator_id)
    live: render.Results | None = None
    note = ""
    if poll.closed_at is None:
        tally_needed = not poll.anonymous and poll.results == ResultsVisibility.LIVE.value
        if tally_needed:
            live = await gather(session, poll)
        if await workspace_wide(session, channel):
            eligible = (
                live.tally.eligible
                if live is not None
                else (await ballots.tally(session, poll, with_texts=False)).eligible
            )
            note = audience_note(channel, True, eligible)
    return render.poll_message(
        poll,
        creator=display_name(creator),
        zone=zone_of(creator),
        audience_note=note,
        live=live,
    )


# -- voting ----------------------------------------------------------------------------------------


def check_open(poll: Poll, now: datetime, zone: str) -> None:
    """Votes stop at the deadline, even before the close has run."""
    if poll.closed_at is not None:
        raise UserError(
            f"Poll #{poll.id} closed {describe_local(poll.closed_at, zone)}; votes are no "
            "longer taken."
        )
    if poll.closes_at is not None and poll.closes_at <= now:
        raise UserError(
            f"Poll #{poll.id} closed {describe_local(poll.closes_at, zone)}; votes are no "
            "longer taken."
        )


async def vote(
    ctx: Context, poll_id: int, choices: Sequence[int], answer: str | None = None
) -> Response:
    """Record the acting member's vote (replacing an earlier one) and say what was recorded."""
    poll = await load_poll(ctx.session, poll_id, lock="share")
    if poll is None or poll.workspace_id != ctx.workspace.id:
        raise UserError("That poll no longer exists.")
    check_open(poll, ctx.now, zone_of(ctx.member))
    if answer is not None:
        answer = answer.strip()
        if len(answer) > render.MAX_ANSWER_CHARS:
            raise UserError(
                f"Your answer is {len(answer)} characters; keep it to {render.MAX_ANSWER_CHARS}.",
                field="answer",
            )
    ballots.check_choices(poll, choices, answer)
    cast = await ballots.cast(ctx.session, poll, ctx.member.id, choices, text=answer)
    if cast is None:
        if not await may_join(ctx, poll):
            channel = await get_channel(ctx.session, poll.channel_id)
            where = f"#{channel.name}" if channel is not None else "its channel"
            raise UserError(f"This poll is for the members of {where}; you can't answer it.")
        await ballots.add_participant(ctx.session, poll, ctx.member.id)
        cast = await ballots.cast(ctx.session, poll, ctx.member.id, choices, text=answer)
        assert cast is not None
    if (
        not poll.anonymous
        and poll.round_id is None
        and poll.results == ResultsVisibility.LIVE.value
    ):
        from bot.features.polls import live

        refresher = live.live_of(ctx.core)
        if refresher is not None:
            ctx.after_commit(lambda: refresher.poke(poll_id))
    return reply(render.vote_receipt(poll, choices, cast.replaced))


async def refresh_live(
    session: AsyncSession, poll_id: int, now: datetime, edit_window: timedelta | None
) -> bool:
    """Queue the live results of a named live poll (see :mod:`bot.features.polls.live`)."""
    poll = await load_poll(session, poll_id, lock="update")
    if (
        poll is None
        or poll.closed_at is not None
        or poll.anonymous
        or poll.round_id is not None
        or poll.results != ResultsVisibility.LIVE.value
    ):
        return False
    channel = await get_channel(session, poll.channel_id)
    if channel is None:
        return False
    poll.results_version += 1
    msg = await _poll_message(session, poll, channel)
    key = f"poll:{poll.id}:live:{poll.results_version}"
    target = Target(channel_id=channel.external_id)
    posted = poll.live_posted_at or poll.created_at
    # The live message's outbox row is gone (cleaned up long after it was sent) or too old for
    # the platform to edit: the poll is posted again.
    editable = poll.live_outbox_id is not None and (
        edit_window is None or now - posted < edit_window
    )
    queued = await enqueue(
        session,
        workspace_id=poll.workspace_id,
        method=Method.UPDATE if editable else Method.POST,
        target=target,
        message=msg,
        key=key,
        now=now,
        depends_on=poll.live_outbox_id if editable else None,
    )
    if not editable:
        poll.live_outbox_id = queued
        poll.live_posted_at = now
    return True


# -- closing ---------------------------------------------------------------------------------------


async def announce_close(
    session: AsyncSession, poll: Poll, now: datetime, edit_window: timedelta | None
) -> None:
    """After :func:`close_poll`: the results where the poll says (in its channel, or to its
    creator with a note in the channel), and the poll's message updated to show it closed
    without its controls, where the platform still lets it be edited. Keyed on the poll's
    close generation: a rerun queues nothing new."""
    base = f"poll:{poll.id}:close:{poll.close_generation}"
    channel = await get_channel(session, poll.channel_id)
    creator = await _get_member(session, poll.creator_id)
    zone = zone_of(creator)
    results = await gather(session, poll)
    if poll.anonymous and results.shown:
        poll.published_voters = results.tally.voters  # what the next result must differ by
    report = render.results_message(results, heading=f"Poll #{poll.id} results", zone=zone)
    out: list[Outgoing] = []
    to_creator = poll.results == ResultsVisibility.CREATOR.value or channel is None
    if to_creator:
        if creator is not None:
            out.append(
                Outgoing(poll.workspace_id, Method.DM, dm_target(creator), report, f"{base}:dm")
            )
        if channel is not None:
            notice = render.closed_notice(poll, results.tally)
            target = Target(channel_id=channel.external_id)
            out.append(Outgoing(poll.workspace_id, Method.POST, target, notice, f"{base}:notice"))
    else:
        assert channel is not None
        target = Target(channel_id=channel.external_id)
        out.append(Outgoing(poll.workspace_id, Method.POST, target, report, f"{base}:results"))
    if channel is not None:
        closed = await _poll_message(session, poll, channel)
        for outbox_id in sorted({poll.message_outbox_id, poll.live_outbox_id} - {None}):
            assert outbox_id is not None
            if await _editable(session, outbox_id, now, edit_window):
                out.append(
                    Outgoing(
                        poll.workspace_id,
                        Method.UPDATE,
                        Target(channel_id=channel.external_id),
                        closed,
                        f"{base}:update:{outbox_id}",
                        depends_on=outbox_id,
                    )
                )
    await enqueue_many(session, out, now)


async def _editable(
    session: AsyncSession, outbox_id: int, now: datetime, edit_window: timedelta | None
) -> bool:
    row = await session.get(OutboxMessage, outbox_id)
    if row is None:
        return False
    if edit_window is None:
        return True
    return now - (row.sent_at or row.created_at) < edit_window


def dm_target(member: Member) -> Target:
    return Target(user_id=member.platform_user_id, dm_channel_id=member.dm_channel_id)


async def close_and_announce(
    session: AsyncSession,
    poll: Poll,
    now: datetime,
    edit_window: timedelta | None,
    *,
    closed_at: datetime | None = None,
) -> None:
    """Close (as of ``closed_at``, default now) and announce. A close by the deadline is dated
    at the deadline even when it runs later (after downtime): votes stopped then, and the poll's
    dates stay the stored ones."""
    await close_poll(session, poll, closed_at or now)
    await announce_close(session, poll, now, edit_window)
    log.info("poll %s closed (generation %s)", poll.id, poll.close_generation)


# -- reopening -------------------------------------------------------------------------------------


async def reopen(ctx: Context, poll: Poll, closes_at: datetime | None) -> None:
    """Open a closed poll again: a new close generation (its own close and reminder), a new
    secret for an anonymous poll (earlier voters are final: see ``ballots.cast``), and the poll
    posted again with its controls."""
    poll.closed_at = None
    poll.closes_at = closes_at
    poll.close_generation += 1
    poll.remind_at = remind_time(ctx.now, closes_at)
    poll.updated_at = ctx.now
    if poll.anonymous:
        await ballots.open_keyed(ctx.session, poll)
    await post_poll(
        ctx.session, poll, ctx.now, key=f"poll:{poll.id}:reopen:{poll.close_generation}"
    )
    ctx.sent_something = True
    ctx.schedules_changed = True


# -- listing ---------------------------------------------------------------------------------------


async def open_polls(session: AsyncSession, channel_ids: Iterable[int]) -> list[Poll]:
    ids = list(channel_ids)
    if not ids:
        return []
    return list(
        await session.scalars(
            select(Poll)
            .where(
                Poll.channel_id.in_(ids),
                Poll.closed_at.is_(None),
                Poll.round_id.is_(None),
            )
            .order_by(Poll.id)
        )
    )


__all__ = ["close_and_announce", "close_poll", "create", "reopen", "vote"]
