"""Polls, pulse checks and their ballots.

Anonymity (invariant 6) is a property of these tables, not of the views over them:

* While an anonymous poll is open, its ballots are in a table of its own, ``poll_<id>_keyed``,
  keyed by ``voter_key``: an HMAC of the member id under the poll's secret, which is in another
  table of its own, ``poll_<id>_secret`` (:func:`keyed_table`, :func:`secret_table`; made by
  ``bot.features.polls.ballots``, not by a migration, since there is a pair per open poll). A
  voter can replace their vote while the poll is open.
* Closing copies the choices into ``poll_ballots`` under fresh random keys, in choice order, and
  drops both tables: their files go, with every key, the secret and the old row versions a
  vote change leaves behind. ``poll_ballots`` rows of an anonymous poll therefore carry no
  member id, no time, no sequential id and no key anything can be matched with. They are only
  ever inserted (in one transaction, at close), never updated.
* ``poll_participants`` is who may answer and whether they have (for "7 of 9" and reminders).
  It has no time either, and nothing in it points at a ballot.
* On SQLite the tables are ``WITHOUT ROWID``: stored in key order, with no hidden insertion
  counter; the database runs with ``secure_delete`` so deleted rows and freed pages are
  overwritten, and its WAL is checkpointed after every close (:mod:`storage.wal`).

Named polls keep their ballots in ``poll_ballots`` with ``member_id``: their voters are meant to
be seen.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class PollKind(enum.StrEnum):
    SINGLE = "single"  # one option
    MULTIPLE = "multiple"  # up to ``max_choices`` options
    SCALE = "scale"  # 1..5
    ENPS = "enps"  # 0..10, scored as % promoters (9-10) minus % detractors (0-6)
    TEXT = "text"  # an open answer


class ResultsVisibility(enum.StrEnum):
    LIVE = "live"  # counts update as votes come in (named polls only)
    CLOSED = "closed"  # shown in the channel when the poll closes
    CREATOR = "creator"  # sent to the creator only, at close


class Pulse(Base):
    """A team's recurring pulse check and weekly digest. The team (``teams``) holds the name,
    the channel, the zone and the members."""

    __tablename__ = "pulses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    day_of_week: Mapped[int] = mapped_column(default=3)  # ISO weekday the pulse goes out
    time_of_day: Mapped[str] = mapped_column(String(5), default="10:00")  # team-local
    every_weeks: Mapped[int] = mapped_column(default=1)
    anchor_date: Mapped[date] = mapped_column(Date)  # a Monday; weeks count from it
    open_days: Mapped[int] = mapped_column(default=4)  # how long a round takes answers
    questions_per_round: Mapped[int] = mapped_column(default=3)
    # [{"key": str, "text": str, "kind": "scale" | "enps"}], asked in turn; editable per team.
    bank: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    next_question: Mapped[int] = mapped_column(default=0)  # rotation pointer into ``bank``
    threshold: Mapped[int] = mapped_column(default=5)
    digest_day: Mapped[int] = mapped_column(default=1)  # ISO weekday of the weekly digest
    digest_time: Mapped[str] = mapped_column(String(5), default="09:00")
    paused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PulseRound(Base):
    """One occurrence of a pulse: its questions are polls with ``round_id`` set."""

    __tablename__ = "pulse_rounds"
    __table_args__ = (UniqueConstraint("pulse_id", "period_date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pulse_id: Mapped[int] = mapped_column(ForeignKey("pulses.id", ondelete="CASCADE"))
    period_date: Mapped[date] = mapped_column(Date)  # the team-local date it went out
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the round's polls were closed and its results posted (None while it takes answers).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Poll(Base):
    __tablename__ = "polls"
    __table_args__ = (
        Index("ix_polls_open", "closed_at", "closes_at"),
        Index("ix_polls_team_closed", "team_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    round_id: Mapped[int | None] = mapped_column(
        ForeignKey("pulse_rounds.id", ondelete="CASCADE"), index=True
    )
    # The same bank question across rounds (for trends and pooling); None for ad-hoc polls.
    question_key: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # PollKind
    options: Mapped[list[str]] = mapped_column(JSON)
    max_choices: Mapped[int] = mapped_column(default=1)
    anonymous: Mapped[bool] = mapped_column(default=False)
    results: Mapped[str] = mapped_column(String(16))  # ResultsVisibility
    threshold: Mapped[int] = mapped_column(default=5)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every reopen, so each deadline has its own close occurrence.
    close_generation: Mapped[int] = mapped_column(default=0)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Pulse questions: the asking (poll) whose shown result included this poll's answers; None
    # while they have not been part of any shown result. Shown results never overlap, so no two
    # can be subtracted to reveal a group under the threshold (bot/features/pulse/scores.py).
    result_pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("polls.id", ondelete="SET NULL"), index=True
    )
    # The poll's message, and the message live results are edited into (a newer one where the
    # platform refuses edits of old messages).
    message_outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL")
    )
    live_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    live_posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results_version: Mapped[int] = mapped_column(default=0)
    # Anonymous polls: how many had answered when its results were last shown (at a close);
    # None while none were. See :func:`more_answers_needed`.
    published_voters: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PollParticipant(Base):
    """Who may answer a poll and whether they have. No time, no link to a ballot."""

    __tablename__ = "poll_participants"
    __table_args__ = ({"sqlite_with_rowid": False},)

    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    voted: Mapped[bool] = mapped_column(default=False)
    # Voted before the poll closed: an anonymous ballot can no longer be found (its key was
    # erased), so after a reopen this vote stands and cannot be changed.
    final: Mapped[bool] = mapped_column(default=False)


class PollBallot(Base):
    """One chosen option (or an open answer) of one voter; see the module docstring."""

    __tablename__ = "poll_ballots"
    __table_args__ = ({"sqlite_with_rowid": False},)

    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    # Anonymous: random, written at close. Named: "m<id>".
    voter_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The option's index; the value itself for scale (1-5) and eNPS (0-10); 0 for open text.
    choice: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str | None] = mapped_column(Text)
    # Named polls only.
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )


def more_answers_needed(poll: Poll, voters: int) -> int:
    """How many more answers an anonymous poll's result needs before it may follow the result
    shown at an earlier close (0: it may be shown). Results of one poll, closed, reopened and
    closed again, must differ by at least ``threshold`` answers: their difference is a result
    of its own, and one late voter's answer would be it (invariant 6). None answered since:
    the same result again, nothing new."""
    if not poll.anonymous or poll.published_voters is None:
        return 0
    since = voters - poll.published_voters
    if since <= 0 or since >= poll.threshold:
        return 0
    return poll.threshold - since


SECRET_BYTES_MAX = 64


def keyed_table_name(poll_id: int) -> str:
    return f"poll_{poll_id}_keyed"


def secret_table_name(poll_id: int) -> str:
    return f"poll_{poll_id}_secret"


@lru_cache(maxsize=1024)
def keyed_table(poll_id: int) -> Table:
    """An open anonymous poll's ballots: ``voter_key`` is HMAC(secret, member id), hex."""
    return Table(
        keyed_table_name(poll_id),
        MetaData(),
        Column("voter_key", String(64), primary_key=True),
        Column("choice", Integer, primary_key=True, autoincrement=False),
        Column("text", Text),
        sqlite_with_rowid=False,
    )


@lru_cache(maxsize=1024)
def secret_table(poll_id: int) -> Table:
    """An open anonymous poll's secret: one row, written once, never updated."""
    return Table(
        secret_table_name(poll_id),
        MetaData(),
        Column("secret", LargeBinary(SECRET_BYTES_MAX), nullable=False),
    )
