"""A pulse at run time: a round goes out, reminders, the round's close with its results, and the
weekly digest.

Life of a round::

    round occurrence / /pulse run ──> pulse_rounds row + one anonymous poll per question
         (each member gets ONE DM with every question's controls; votes are the polls feature's)
    reminder one-shot (a day before close) ──> a DM to each member with questions unanswered
    close one-shot (closes_at) ──> close_poll each poll (sealed), decide what can be shown
         (scores.publish_round), post the results in the team channel

Every message goes through the outbox in the transaction that causes it, with keys derived from
the occurrence or the round, so a rerun never queues twice (invariants 1 and 2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    MESSAGE_ADAPTER,
    Block,
    Bold,
    Context,
    Header,
    Message,
    Plain,
    Section,
    message,
    text,
)
from bot.delivery.outbox import Outgoing, enqueue, enqueue_many
from bot.features.polls import render as poll_render
from bot.features.polls.ballots import close_poll, create_poll
from bot.features.polls.options import describe_local
from bot.features.pulse import digest as views
from bot.features.pulse.bank import next_questions
from bot.features.pulse.schedules import (
    CLOSE_HANDLER,
    DIGEST_HANDLER,
    REMIND_HANDLER,
    ROUND_HANDLER,
    PulseSchedules,
)
from bot.features.pulse.scores import compute_digest, publish_round, round_results
from bot.features.standups.runtime import dm_target
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Scheduler
from bot.timezones import zone as zone_info
from storage.models import Channel, Member, Team, TeamMember
from storage.polls import Poll, PollParticipant, Pulse, PulseRound, ResultsVisibility
from storage.upsert import insert_unless_exists

log = logging.getLogger(__name__)


# -- small queries ------------------------------------------------------------------------------


async def team_members(session: AsyncSession, team_id: int) -> list[Member]:
    return list(
        await session.scalars(
            select(Member)
            .join(TeamMember, TeamMember.member_id == Member.id)
            .where(TeamMember.team_id == team_id)
            .order_by(Member.id)
        )
    )


async def open_round(session: AsyncSession, pulse_id: int, now: datetime) -> PulseRound | None:
    """A round of the pulse still taking answers, if any."""
    return await session.scalar(
        select(PulseRound)
        .where(
            PulseRound.pulse_id == pulse_id,
            PulseRound.closed_at.is_(None),
            PulseRound.closes_at > now,
        )
        .order_by(PulseRound.period_date.desc())
        .limit(1)
    )


async def channel_of(session: AsyncSession, team: Team) -> Channel | None:
    return await session.get(Channel, team.channel_id) if team.channel_id is not None else None


async def round_polls(session: AsyncSession, round_id: int) -> list[Poll]:
    return list(
        await session.scalars(select(Poll).where(Poll.round_id == round_id).order_by(Poll.id))
    )


def closes_at_for(sent: datetime, zone: str, open_days: int) -> datetime:
    """``open_days`` days after ``sent`` on the team's wall clock (a round sent Wednesday 10:00
    closes Sunday 10:00, DST change or not)."""
    local = sent.astimezone(zone_info(zone))
    return (local + timedelta(days=open_days)).astimezone(sent.tzinfo)


# -- a round goes out ---------------------------------------------------------------------------


def anonymity_line(threshold: int, channel: str, closes: str) -> str:
    where = f" in #{channel}" if channel else ""
    return (
        "Anonymous: nobody, not even an admin, can see who chose what. Results are posted"
        f"{where} when the round closes, {closes}, and only if at least {threshold} people "
        "answered; you can change your answers until then."
    )


def question_blocks(polls: Sequence[Poll]) -> list[Block]:
    """Each question with its vote controls (those of the polls feature, which counts votes)."""
    blocks: list[Block] = []
    for n, poll in enumerate(polls, 1):
        blocks.append(Section(text(Bold(f"{n}/{len(polls)} "), Plain(poll.question))))
        blocks.extend(poll_render.vote_blocks(poll))
    return blocks


def round_dm(team: Team, channel: str, polls: Sequence[Poll], closes_at: datetime) -> Message:
    """The one DM a member gets for a round: every question, and what anonymity means here."""
    threshold = polls[0].threshold if polls else 0
    count = len(polls)
    return message(
        Header(f"Pulse check: {team.name}"[:150]),
        Section(
            text(
                f"{count} quick question{'s' if count != 1 else ''} about how work is going for "
                "the team. Pick an answer under each."
            )
        ),
        *question_blocks(polls),
        Context(text(anonymity_line(threshold, channel, describe_local(closes_at, team.timezone)))),
        summary=f"Pulse check: {team.name}",
    )


async def start_round(
    session: AsyncSession,
    pulse: Pulse,
    team: Team,
    *,
    period: date,
    now: datetime,
    closes_at: datetime,
    key_prefix: str,
) -> PulseRound | None:
    """Create the round of ``period`` with its polls and DM every member, unless that period
    already has a round (another replica, a rerun, ``/pulse run`` earlier that day): then None.
    The questions are the next ones of the bank's rotation."""
    round_id = await insert_unless_exists(
        session,
        PulseRound,
        {"pulse_id": pulse.id, "period_date": period, "sent_at": now, "closes_at": closes_at},
        PulseRound.id,
        ["pulse_id", "period_date"],
    )
    if round_id is None:
        return None
    round_ = await session.get(PulseRound, round_id)
    assert round_ is not None
    questions, pointer = next_questions(pulse.bank, pulse.next_question, pulse.questions_per_round)
    pulse.next_question = pointer
    pulse.updated_at = now
    members = await team_members(session, team.id)
    audience = [m.id for m in members]
    polls: list[Poll] = []
    for question in questions:
        poll = Poll(
            workspace_id=pulse.workspace_id,
            team_id=team.id,
            round_id=round_id,
            question_key=question["key"],
            channel_id=team.channel_id,
            creator_id=None,  # nobody's poll: no creator can ask for anything more
            question=question["text"],
            kind=question["kind"],
            options=[],
            max_choices=1,
            anonymous=True,
            results=ResultsVisibility.CLOSED.value,
            threshold=pulse.threshold,
            opens_at=now,
            closes_at=closes_at,
            close_generation=0,
            results_version=0,
            created_at=now,
        )
        polls.append(await create_poll(session, poll, audience, now=now))
    channel = await channel_of(session, team)
    dm = round_dm(team, channel.name if channel else "", polls, closes_at)
    payload = MESSAGE_ADAPTER.dump_python(dm, mode="json")
    await enqueue_many(
        session,
        [
            Outgoing(
                pulse.workspace_id,
                Method.DM,
                dm_target(member),
                dm,
                key=f"{key_prefix}:dm:{member.id}",
                payload=payload,
            )
            for member in members
        ],
        now,
    )
    return round_


# -- closing a round ----------------------------------------------------------------------------


async def close_round(session: AsyncSession, round_id: int, now: datetime) -> bool:
    """Close the round's polls (sealed), decide what its results may show and post them in the
    team channel. False if it was closed already. Safe against a concurrent close (the round
    row is locked first)."""
    round_ = await session.scalar(
        select(PulseRound)
        .where(PulseRound.id == round_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if round_ is None or round_.closed_at is not None:
        return False
    pulse = await session.get(Pulse, round_.pulse_id)
    team = await session.get(Team, pulse.team_id) if pulse is not None else None
    if pulse is None or team is None:
        return False
    # A round closed late (downtime) still closes as of its deadline, so that it belongs to
    # the week it was meant for.
    when = min(now, round_.closes_at)
    # Locked like the polls feature's own close: a vote in flight (it holds a share lock) ends
    # first, and none starts on a poll being sealed.
    polls = await session.scalars(
        select(Poll)
        .where(Poll.round_id == round_.id)
        .order_by(Poll.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    for poll in list(polls):
        if poll.closed_at is None:
            await close_poll(session, poll, when)
    await session.flush()
    await publish_round(session, pulse, round_)
    round_.closed_at = now
    results = await round_results(session, pulse, round_)
    channel = await channel_of(session, team)
    if channel is None:
        log.warning("pulse %s: team %s has no channel for the round's results", pulse.id, team.id)
        return True
    await enqueue(
        session,
        workspace_id=pulse.workspace_id,
        method=Method.POST,
        target=Target(channel_id=channel.external_id),
        message=views.round_message(team.name, round_.period_date, results, pulse.every_weeks),
        key=f"pulse:{pulse.id}:round:{round_.id}:results",
        now=now,
    )
    return True


async def close_due_rounds(session: AsyncSession, pulse_id: int, now: datetime) -> bool:
    """Close every round of the pulse whose time has come (the close one-shot may not have run
    yet: downtime). True if any was closed here."""
    due = list(
        await session.scalars(
            select(PulseRound.id)
            .where(
                PulseRound.pulse_id == pulse_id,
                PulseRound.closed_at.is_(None),
                PulseRound.closes_at <= now,
            )
            .order_by(PulseRound.period_date)
        )
    )
    closed = False
    for round_id in due:
        closed = await close_round(session, round_id, now) or closed
    return closed


# -- reminders ----------------------------------------------------------------------------------


async def unanswered(session: AsyncSession, round_id: int) -> dict[int, list[int]]:
    """``member id -> ids of the round's polls they have not answered``, from participation
    (which says who answered, never what)."""
    rows = await session.execute(
        select(PollParticipant.member_id, PollParticipant.poll_id)
        .join(Poll, Poll.id == PollParticipant.poll_id)
        .where(Poll.round_id == round_id, PollParticipant.voted.is_(False))
        .order_by(PollParticipant.member_id, PollParticipant.poll_id)
    )
    out: dict[int, list[int]] = {}
    for member_id, poll_id in rows.all():
        out.setdefault(member_id, []).append(poll_id)
    return out


def reminder_dm(
    team: Team, channel: str, polls: Sequence[Poll], total: int, closes_at: datetime
) -> Message:
    closes = describe_local(closes_at, team.timezone)
    left = len(polls)
    if left == total:
        what = "its question still waits" if left == 1 else f"its {left} questions still wait"
    else:
        what = f"{left} question{'s' if left != 1 else ''} of {total} still wait"
        what += "s" if left == 1 else ""
    return message(
        Section(
            text(
                f"A reminder: the {team.name} pulse check closes {closes}, and {what} for your "
                "answer."
            )
        ),
        *question_blocks(polls),
        Context(text(anonymity_line(polls[0].threshold if polls else 0, channel, closes))),
        summary=f"Reminder: {team.name} pulse check",
    )


# -- occurrences ----------------------------------------------------------------------------------


async def _pulse_and_team(session: AsyncSession, pulse_id: int) -> tuple[Pulse, Team] | None:
    pulse = await session.get(Pulse, pulse_id)
    if pulse is None:
        return None
    team = await session.get(Team, pulse.team_id)
    return None if team is None else (pulse, team)


async def on_round_occurrence(occurrence: Occurrence) -> None:
    """The pulse's day and time in the team's zone: a round goes out, unless the previous one
    is still open (a ``/pulse run`` shortly before)."""
    session = occurrence.session
    found = await _pulse_and_team(session, occurrence.schedule.payload["pulse_id"])
    if found is None:
        return
    pulse, team = found
    if pulse.paused:
        return
    if await close_due_rounds(session, pulse.id, occurrence.now):
        occurrence.sent_something = True
    still_open = await open_round(session, pulse.id, occurrence.now)
    if still_open is not None:
        log.info("pulse %s: round of %s still open; none sent", pulse.id, still_open.period_date)
        return
    period = occurrence.fire_at.astimezone(zone_info(occurrence.schedule.payload["zone"])).date()
    closes_at = closes_at_for(occurrence.fire_at, team.timezone, pulse.open_days)
    if await start_round(
        session,
        pulse,
        team,
        period=period,
        now=occurrence.now,
        closes_at=closes_at,
        key_prefix=occurrence.key,
    ):
        occurrence.sent_something = True
    occurrence.schedules_changed = True  # the round's reminder and close


async def on_remind_occurrence(occurrence: Occurrence) -> None:
    """A day before a round closes: one DM to each member with questions still unanswered,
    with just those questions."""
    session = occurrence.session
    round_ = await session.get(PulseRound, occurrence.schedule.payload["round_id"])
    if round_ is None or round_.closed_at is not None or occurrence.now >= round_.closes_at:
        return
    found = await _pulse_and_team(session, round_.pulse_id)
    if found is None or found[0].paused:
        return
    pulse, team = found
    missing = await unanswered(session, round_.id)
    if not missing:
        return
    polls = {p.id: p for p in await round_polls(session, round_.id)}
    members = {
        m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(sorted(missing))))
    }
    channel = await channel_of(session, team)
    # Members missing the same questions get the same message: built and encoded once.
    built: dict[tuple[int, ...], tuple[Message, dict[str, Any]]] = {}
    outgoing = []
    for member_id, poll_ids in sorted(missing.items()):
        member = members.get(member_id)
        if member is None:
            continue
        wanted = tuple(pid for pid in poll_ids if pid in polls)
        if wanted not in built:
            dm = reminder_dm(
                team,
                channel.name if channel else "",
                [polls[pid] for pid in wanted],
                len(polls),
                round_.closes_at,
            )
            built[wanted] = (dm, MESSAGE_ADAPTER.dump_python(dm, mode="json"))
        dm, payload = built[wanted]
        outgoing.append(
            Outgoing(
                pulse.workspace_id,
                Method.DM,
                dm_target(member),
                dm,
                key=f"{occurrence.key}:dm:{member_id}",
                payload=payload,
            )
        )
    await enqueue_many(session, outgoing, occurrence.now)
    occurrence.sent_something = bool(outgoing)


async def on_close_occurrence(occurrence: Occurrence) -> None:
    if await close_round(
        occurrence.session, occurrence.schedule.payload["round_id"], occurrence.now
    ):
        occurrence.sent_something = True


async def post_digest(
    session: AsyncSession, pulse: Pulse, team: Team, week_end: datetime, now: datetime, key: str
) -> bool:
    """Close what is due, then post the digest of the week ending at ``week_end`` in the team
    channel. False when there is nothing to say (no round and no poll closed that week) or no
    channel to say it in."""
    await close_due_rounds(session, pulse.id, now)
    digest = await compute_digest(session, pulse.id, week_end)
    channel = await channel_of(session, team)
    if digest.empty or channel is None:
        return False
    await enqueue(
        session,
        workspace_id=pulse.workspace_id,
        method=Method.POST,
        target=Target(channel_id=channel.external_id),
        message=views.digest_message(digest),
        key=key,
        now=now,
    )
    return True


async def on_digest_occurrence(occurrence: Occurrence) -> None:
    """The weekly digest at the team's digest day and time."""
    session = occurrence.session
    found = await _pulse_and_team(session, occurrence.schedule.payload["pulse_id"])
    if found is None or found[0].paused:
        return
    pulse, team = found
    await post_digest(
        session, pulse, team, occurrence.fire_at, occurrence.now, f"{occurrence.key}:post"
    )
    occurrence.sent_something = True  # also any round closed on the way


# -- wiring ------------------------------------------------------------------------------------


def register(scheduler: Scheduler) -> None:
    scheduler.add_source(PulseSchedules())
    scheduler.add_handler(ROUND_HANDLER, on_round_occurrence)
    scheduler.add_handler(REMIND_HANDLER, on_remind_occurrence)
    scheduler.add_handler(CLOSE_HANDLER, on_close_occurrence)
    scheduler.add_handler(DIGEST_HANDLER, on_digest_occurrence)
