"""Storing polls, votes and counts: the one place that writes ballots.

What keeps an anonymous poll anonymous (invariant 6; the tables are described in
:mod:`storage.polls`):

* While the poll is open, its ballots and its secret live in two tables of its own,
  ``poll_<id>_keyed`` and ``poll_<id>_secret`` (:func:`storage.polls.keyed_table`), made when the
  poll opens. A ballot's key is ``HMAC-SHA256(secret, member id)``: the same member finds their
  ballot again and replaces it; nobody holding only the ballots can tell whose it is. The secret
  is written once and never updated in place.
* :func:`seal` (run in the transaction that closes the poll) copies the choices into
  ``poll_ballots`` with fresh random keys, in choice order, and drops both tables. Dropping a
  table removes its file (PostgreSQL truncates and unlinks the relation's files; SQLite, with
  ``secure_delete``, overwrites the freed pages), so neither the keys, nor the secret, nor the
  dead row versions and free space that an update or delete leaves behind (with the transaction
  ids that tie a ballot to its voter's participation row) outlive the close in the data files.
  Voters are marked ``final``: after a reopen their earlier answer stands (it can no longer be
  found to replace it); a reopen makes new tables with a new secret.
* Participation (``poll_participants.voted``) is written in the same transaction as the ballot,
  with no time on either row.

Named polls keep their ballots in ``poll_ballots`` from the start, with the member on them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Table, delete, func, insert, inspect, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from storage.db import Database
from storage.polls import (
    Poll,
    PollBallot,
    PollKind,
    PollParticipant,
    keyed_table,
    secret_table,
)
from storage.wal import checkpoint, checkpoint_after_commit

OWN_TABLE = re.compile(r"poll_(\d+)_(?:keyed|secret)")

SECRET_BYTES = 32
# Rows per INSERT when writing many (participants of a large audience, a seal's rewrite).
WRITE_SLICE = 500


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


async def _create(session: AsyncSession, table: Table) -> None:
    await session.run_sync(lambda sync: table.create(sync.connection()))


async def _drop(session: AsyncSession, table: Table) -> None:
    # IF EXISTS in the statement itself: another replica's start-up may drop it first.
    await session.execute(sql_text(f"DROP TABLE IF EXISTS {table.name}"))


async def open_keyed(session: AsyncSession, poll: Poll) -> None:
    """Make an anonymous poll's own tables, with a new secret (at creation and at a reopen)."""
    await _create(session, keyed_table(poll.id))
    secrets_of = secret_table(poll.id)
    await _create(session, secrets_of)
    await session.execute(insert(secrets_of).values(secret=new_secret()))


async def drop_keyed(session: AsyncSession, poll_id: int) -> None:
    await _drop(session, keyed_table(poll_id))
    await _drop(session, secret_table(poll_id))


async def read_secret(session: AsyncSession, poll_id: int) -> bytes | None:
    """The secret of an open anonymous poll; None once it closed (or for a named poll)."""
    table = secret_table(poll_id)
    exists = await session.run_sync(lambda sync: inspect(sync.connection()).has_table(table.name))
    if not exists:
        return None
    return await session.scalar(select(table.c.secret))


async def voter_key(session: AsyncSession, poll: Poll, member_id: int) -> str:
    """The key of ``member_id``'s ballot in ``poll`` (open: the caller checked, holding the
    poll's row lock); see the module docstring."""
    if not poll.anonymous:
        return f"m{member_id}"
    return _hmac_key(await _open_secret(session, poll), member_id)


async def _open_secret(session: AsyncSession, poll: Poll) -> bytes:
    secret = await session.scalar(select(secret_table(poll.id).c.secret))
    if secret is None:
        raise UserError("This poll has closed; anonymous answers can no longer be changed.")
    return secret


def _hmac_key(secret: bytes, member_id: int) -> str:
    return hmac.new(secret, str(member_id).encode(), hashlib.sha256).hexdigest()


async def tidy(db: Database) -> list[int]:
    """At start: drop the own tables of polls that are closed or gone (a workspace removed
    while they were open), then checkpoint SQLite's WAL, for a close whose checkpoint a crash
    cut short. The ids of the polls whose tables were dropped."""
    async with db.transaction() as session:
        names = await session.run_sync(lambda sync: inspect(sync.connection()).get_table_names())
        ids = sorted({int(m.group(1)) for n in names if (m := OWN_TABLE.fullmatch(n))})
        still_open = set(
            await session.scalars(
                select(Poll.id).where(
                    Poll.id.in_(ids), Poll.anonymous.is_(True), Poll.closed_at.is_(None)
                )
            )
        )
        stale = [i for i in ids if i not in still_open]
        for poll_id in stale:
            await drop_keyed(session, poll_id)
    await checkpoint(db.engine)
    return stale


async def _still_open(session: AsyncSession, poll_id: int) -> bool:
    closed_at = await session.scalar(
        select(Poll.closed_at).where(Poll.id == poll_id).with_for_update(read=True)
    )
    return closed_at is None


def open_ballots(poll: Poll) -> Table:
    """Where ``poll``'s ballots are while it takes votes."""
    return keyed_table(poll.id) if poll.anonymous else PollBallot.__table__  # type: ignore[return-value]


async def create_poll(
    session: AsyncSession, poll: Poll, audience: Iterable[int], *, now: datetime
) -> Poll:
    """Insert ``poll`` (its fields filled by the caller) and its audience as participants.
    An anonymous poll gets its own tables and secret here."""
    poll.created_at = poll.created_at or now
    poll.updated_at = now
    session.add(poll)
    await session.flush()
    if poll.anonymous:
        await open_keyed(session, poll)
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


FINAL_MESSAGE = (
    "You answered this poll before it was closed and reopened. Anonymous answers can't be "
    "changed after a close: nobody, syncup included, can tell which one was yours."
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
        raise UserError(FINAL_MESSAGE)
    key = await voter_key(session, poll, member_id)
    table = open_ballots(poll)
    if voted:
        where = [table.c.voter_key == key]
        if not poll.anonymous:
            where.append(table.c.poll_id == poll.id)
        await session.execute(delete(table).where(*where))
    else:
        await session.execute(
            update(PollParticipant)
            .where(PollParticipant.poll_id == poll.id, PollParticipant.member_id == member_id)
            .values(voted=True)
        )
    if poll.anonymous:
        rows = [{"voter_key": key, "choice": c, "text": text} for c in sorted(set(choices))]
    else:
        rows = [
            {
                "poll_id": poll.id,
                "voter_key": key,
                "choice": c,
                "text": text,
                "member_id": member_id,
            }
            for c in sorted(set(choices))
        ]
    await session.execute(insert(table), rows)
    return Cast(replaced=voted)


async def lock_voters(
    session: AsyncSession, poll: Poll, member_ids: Iterable[int]
) -> dict[int, tuple[bool, bool]]:
    """``member id -> (voted, final)`` of those of ``member_ids`` in the poll's audience, their
    participation rows locked (in member order, so batches never deadlock each other) as
    :func:`cast` locks one."""
    rows = await session.execute(
        select(PollParticipant.member_id, PollParticipant.voted, PollParticipant.final)
        .where(
            PollParticipant.poll_id == poll.id, PollParticipant.member_id.in_(sorted(member_ids))
        )
        .order_by(PollParticipant.member_id)
        .with_for_update()
    )
    return {member: (voted, final) for member, voted, final in rows.all()}


async def cast_many(
    session: AsyncSession,
    poll: Poll,
    votes: dict[int, Sequence[int]],
    voted_before: Iterable[int],
) -> None:
    """:func:`cast` for a batch of voters (group commit, ``vote_batch``): ``votes`` maps each
    member to their last choices; ``voted_before`` are those with a ballot to replace. The
    caller locked their rows (:func:`lock_voters`) and checked each vote.

    Rows are written sorted by key, so their order in the table (PostgreSQL's heap keeps
    insertion order) follows neither the voters nor when they clicked; nothing has a time."""
    if not votes:
        return
    table = open_ballots(poll)
    if poll.anonymous:
        secret = await _open_secret(session, poll)
        keys = {member: _hmac_key(secret, member) for member in votes}
    else:
        keys = {member: f"m{member}" for member in votes}
    before = set(voted_before)
    replaced = sorted(keys[m] for m in votes if m in before)
    if replaced:
        where = [table.c.voter_key.in_(replaced)]
        if not poll.anonymous:
            where.append(table.c.poll_id == poll.id)
        await session.execute(delete(table).where(*where))
    new = sorted(m for m in votes if m not in before)
    if new:
        await session.execute(
            update(PollParticipant)
            .where(PollParticipant.poll_id == poll.id, PollParticipant.member_id.in_(new))
            .values(voted=True)
        )
    rows: list[dict[str, object]] = []
    for member in sorted(votes, key=keys.__getitem__):
        for choice in sorted(set(votes[member])):
            row: dict[str, object] = {"voter_key": keys[member], "choice": choice, "text": None}
            if not poll.anonymous:
                row |= {"poll_id": poll.id, "member_id": member}
            rows.append(row)
    for start in range(0, len(rows), WRITE_SLICE):
        await session.execute(insert(table), rows[start : start + WRITE_SLICE])


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
    table = PollBallot.__table__
    where = [PollBallot.poll_id == poll.id]
    if poll.anonymous and await _still_open(session, poll.id):
        # Its ballots are in its own table until the close drops it; the shared lock on the
        # poll's row keeps a close from dropping it while they are counted.
        table = keyed_table(poll.id)
        where = []
    rows = await session.execute(
        select(table.c.choice, func.count()).where(*where).group_by(table.c.choice)
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
            select(table.c.text).where(*where, table.c.text.is_not(None)).order_by(table.c.text)
        )
        out.texts = [t for t in texts if t]
    return out


async def seal(session: AsyncSession, poll: Poll) -> None:
    """At close: move an anonymous poll's choices into ``poll_ballots`` under random keys and
    drop its own tables (module docstring). Named polls are left as they are."""
    if not poll.anonymous:
        return
    keyed = keyed_table(poll.id)
    rows = (
        await session.execute(
            select(keyed.c.choice, keyed.c.text).order_by(keyed.c.choice, keyed.c.text)
        )
    ).all()
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
    await drop_keyed(session, poll.id)
    await session.execute(
        update(PollParticipant)
        .where(PollParticipant.poll_id == poll.id, PollParticipant.voted.is_(True))
        .values(final=True)
    )
    checkpoint_after_commit(session)


async def close_poll(session: AsyncSession, poll: Poll, now: datetime) -> None:
    """Close ``poll`` now, announcing nothing: its close time is set and, for an anonymous
    poll, its ballots are sealed (:func:`seal`). The caller holds the poll's row lock and has
    checked that it is open. The polls feature announces its closes itself
    (``service.close_and_announce``); the pulse feature closes its rounds' polls with this."""
    poll.closed_at = now
    poll.updated_at = now
    await seal(session, poll)
