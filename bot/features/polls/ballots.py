"""Storing polls, votes and counts: the one place that writes ``poll_ballots``.

What keeps an anonymous poll anonymous (invariant 6; the tables are described in
:mod:`storage.polls`):

* A ballot's key is ``HMAC-SHA256(poll secret, member id)``. While the poll is open the same
  member finds their ballot again and replaces it; nobody holding only the ballots can tell whose
  it is without the secret.
* :func:`seal` (run in the transaction that closes the poll) erases the secret and rewrites the
  ballots with fresh random keys in choice order, so no key and no storage order survives that
  could be matched with the participation rows. Voters are marked ``final``: after a reopen their
  earlier answer stands (it can no longer be found to replace it).
* Participation (``poll_participants.voted``) is written in the same transaction as the ballot,
  with no time on either row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from storage.polls import Poll, PollBallot, PollKind, PollParticipant

SECRET_BYTES = 32
# Rows per INSERT when writing many (participants of a large audience, a seal's rewrite).
WRITE_SLICE = 500


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def voter_key(poll: Poll, member_id: int) -> str:
    """The key of ``member_id``'s ballot in ``poll``; see the module docstring."""
    if not poll.anonymous:
        return f"m{member_id}"
    if poll.secret is None:
        raise UserError("This poll has closed; anonymous answers can no longer be changed.")
    return hmac.new(poll.secret, str(member_id).encode(), hashlib.sha256).hexdigest()


async def create_poll(
    session: AsyncSession, poll: Poll, audience: Iterable[int], *, now: datetime
) -> Poll:
    """Insert ``poll`` (its fields filled by the caller) and its audience as participants.
    An anonymous poll gets its secret here."""
    if poll.anonymous and poll.secret is None:
        poll.secret = new_secret()
    poll.created_at = poll.created_at or now
    poll.updated_at = now
    session.add(poll)
    await session.flush()
    members = sorted(set(audience))
    for start in range(0, len(members), WRITE_SLICE):
        await session.execute(
            insert(PollParticipant),
            [
                {"poll_id": poll.id, "member_id": m, "voted": False, "final": False}
                for m in members[start : start + WRITE_SLICE]
            ],
        )
    return poll


async def add_participant(session: AsyncSession, poll: Poll, member_id: int) -> None:
    """Let one more member answer (someone who joined the poll's channel after it started)."""
    await session.execute(
        insert(PollParticipant).values(
            poll_id=poll.id, member_id=member_id, voted=False, final=False
        )
    )


@dataclass(frozen=True)
class Cast:
    replaced: bool  # the member had voted before and their ballot was replaced


async def cast(
    session: AsyncSession,
    poll: Poll,
    member_id: int,
    choices: Sequence[int],
    *,
    text: str | None = None,
) -> Cast | None:
    """Record ``member_id``'s vote, replacing their earlier one. None if they are not in the
    poll's audience (the caller decides whether to add them or refuse). ``choices`` must be
    validated by the caller (:func:`check_choices`)."""
    # Lock this member's participation row first: two clicks of the same member at once are
    # serialised here (PostgreSQL row lock; SQLite has one writer), different members are not.
    row = (
        await session.execute(
            select(PollParticipant.voted, PollParticipant.final)
            .where(PollParticipant.poll_id == poll.id, PollParticipant.member_id == member_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None
    voted, final = row
    if final:
        raise UserError(
            "You answered this poll before it was closed and reopened. Anonymous answers can't "
            "be changed after a close: nobody, syncup included, can tell which one was yours."
        )
    key = voter_key(poll, member_id)
    if voted:
        await session.execute(
            delete(PollBallot).where(PollBallot.poll_id == poll.id, PollBallot.voter_key == key)
        )
    else:
        await session.execute(
            update(PollParticipant)
            .where(PollParticipant.poll_id == poll.id, PollParticipant.member_id == member_id)
            .values(voted=True)
        )
    named = None if poll.anonymous else member_id
    await session.execute(
        insert(PollBallot),
        [
            {"poll_id": poll.id, "voter_key": key, "choice": c, "text": text, "member_id": named}
            for c in sorted(set(choices))
        ],
    )
    return Cast(replaced=voted)


def check_choices(poll: Poll, choices: Sequence[int], text: str | None) -> None:
    """Refuse a vote the poll's kind does not allow, with what to do instead."""
    kind = PollKind(poll.kind)
    if kind is PollKind.TEXT:
        if not text or not text.strip():
            raise UserError("Write an answer before sending it.")
        return
    if not choices:
        raise UserError("Pick an option.")
    if kind is PollKind.SCALE:
        valid = range(1, 6)
    elif kind is PollKind.ENPS:
        valid = range(0, 11)
    else:
        valid = range(len(poll.options))
    if any(c not in valid for c in choices):
        raise UserError("That option is not in this poll any more; run the poll's buttons again.")
    if len(set(choices)) > (poll.max_choices if kind is PollKind.MULTIPLE else 1):
        limit = poll.max_choices if kind is PollKind.MULTIPLE else 1
        raise UserError(f"Pick at most {limit} option{'s' if limit > 1 else ''}.")


@dataclass
class Tally:
    counts: dict[int, int] = field(default_factory=dict)  # choice -> ballots
    voters: int = 0  # members who answered
    eligible: int = 0  # members who may answer
    texts: list[str] = field(default_factory=list)  # open answers, sorted (no order of arrival)


async def tally(session: AsyncSession, poll: Poll, *, with_texts: bool = True) -> Tally:
    """Counts per choice and participation, in SQL."""
    out = Tally()
    rows = await session.execute(
        select(PollBallot.choice, func.count())
        .where(PollBallot.poll_id == poll.id)
        .group_by(PollBallot.choice)
    )
    out.counts = {choice: count for choice, count in rows.all()}
    part = await session.execute(
        select(
            func.count(),
            func.count().filter(PollParticipant.voted.is_(True)),
        ).where(PollParticipant.poll_id == poll.id)
    )
    out.eligible, out.voters = part.one()
    if with_texts and PollKind(poll.kind) is PollKind.TEXT:
        texts = await session.scalars(
            select(PollBallot.text)
            .where(PollBallot.poll_id == poll.id, PollBallot.text.is_not(None))
            .order_by(PollBallot.text)
        )
        out.texts = [t for t in texts if t]
    return out


async def seal(session: AsyncSession, poll: Poll) -> None:
    """At close: make an anonymous poll's ballots unlinkable for good (module docstring).
    Named polls are left as they are."""
    if not poll.anonymous:
        return
    poll.secret = None
    rows = (
        await session.execute(
            select(PollBallot.choice, PollBallot.text)
            .where(PollBallot.poll_id == poll.id)
            .order_by(PollBallot.choice, PollBallot.text)
        )
    ).all()
    await session.execute(delete(PollBallot).where(PollBallot.poll_id == poll.id))
    fresh = [
        {
            "poll_id": poll.id,
            "voter_key": secrets.token_hex(32),
            "choice": choice,
            "text": text,
            "member_id": None,
        }
        for choice, text in rows
    ]
    # Random keys, but inserted in choice order: the storage order says nothing either.
    for start in range(0, len(fresh), WRITE_SLICE):
        await session.execute(insert(PollBallot), fresh[start : start + WRITE_SLICE])
    await session.execute(
        update(PollParticipant)
        .where(PollParticipant.poll_id == poll.id, PollParticipant.voted.is_(True))
        .values(final=True)
    )


async def close_poll(session: AsyncSession, poll: Poll, now: datetime) -> None:
    """Close ``poll`` now, announcing nothing: its close time is set and, for an anonymous
    poll, its ballots are sealed (:func:`seal`). The caller holds the poll's row lock and has
    checked that it is open. The polls feature announces its closes itself
    (``service.close_and_announce``); the pulse feature closes its rounds' polls with this."""
    poll.closed_at = now
    poll.updated_at = now
    await seal(session, poll)
