"""Automatic celebrations: standup streaks, birthdays and work anniversaries.

* :class:`CelebrationSettings`: a workspace's switches (no row: everything on, streaks every
  :data:`DEFAULT_STREAK_LENGTH` answered standups, no celebrations channel).
* :class:`CelebrationProfile`: what a member told syncup about themselves. A birthday is a month
  and a day only: the year is never asked for and has no column. ``started_on`` is the first day
  at work, for anniversaries. ``opted_out``: nothing about the member is posted; their dates are
  kept (an opt-in brings them back), and ``/syncup birthday off`` deletes one.
* :class:`Celebration`: one row per celebration posted, claimed by its unique ``key``
  (``birthday:<member>:<year>``, ``anniversary:<member>:<year>``,
  ``streak:<standup>:<member>:<first run date>:<length>``) in the transaction that queues the
  post, so two replicas, a rerun or a changed date never post one twice.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime

DEFAULT_STREAK_LENGTH = 20


class CelebrationSettings(Base):
    __tablename__ = "celebration_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    streaks: Mapped[bool] = mapped_column(default=True)
    birthdays: Mapped[bool] = mapped_column(default=True)
    anniversaries: Mapped[bool] = mapped_column(default=True)
    streak_length: Mapped[int] = mapped_column(Integer, default=DEFAULT_STREAK_LENGTH)
    # The platform channel id; None: streaks go to the standup's channel, and birthdays and
    # anniversaries are not posted (there is nowhere to post them).
    channel_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CelebrationProfile(Base):
    __tablename__ = "celebration_profiles"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    birthday_month: Mapped[int | None] = mapped_column(SmallInteger)
    birthday_day: Mapped[int | None] = mapped_column(SmallInteger)
    started_on: Mapped[date | None] = mapped_column(Date)
    opted_out: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Celebration(Base):
    __tablename__ = "celebrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # birthday | anniversary | streak
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
