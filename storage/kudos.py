"""Kudos: peer recognition with a daily quota per giver, company values and boards.

One :class:`Kudos` row per ``/kudos`` (or "Give kudos" form), with one :class:`KudosReceiver`
row per person it thanks: the quota and the weekly cap count receiver rows, so thanking two
people uses two of the day's kudos. ``given_at`` is UTC; "today" and "this week" are worked out
in the giver's zone when the quota is checked (``bot.features.kudos.quota``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime

DEFAULT_DAILY_QUOTA = 5
DEFAULT_WEEKLY_PER_RECEIVER = 3
DEFAULT_VALUES = ("ownership", "craft", "helpfulness")


class KudosSettings(Base):
    """A workspace's kudos rules; no row: the defaults above."""

    __tablename__ = "kudos_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    daily_quota: Mapped[int] = mapped_column(Integer, default=DEFAULT_DAILY_QUOTA)
    weekly_per_receiver: Mapped[int] = mapped_column(Integer, default=DEFAULT_WEEKLY_PER_RECEIVER)
    # Value names without the "#", lower case, in the order admins gave them.
    values: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(DEFAULT_VALUES))
    # The platform channel id kudos are posted in; None: where each one is given.
    channel_id: Mapped[str | None] = mapped_column(String(64))
    # True: post each kudos where it was given, even when a kudos channel is set.
    post_where_given: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Kudos(Base):
    __tablename__ = "kudos"
    __table_args__ = (Index("ix_kudos_giver_given", "giver_id", "given_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    giver_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[str | None] = mapped_column(String(64))
    # Private: not posted in any channel; only the receivers (and their team leads) are told.
    private: Mapped[bool] = mapped_column(default=False)
    # The platform channel id it was posted in (None for a private one or a DM).
    channel_id: Mapped[str | None] = mapped_column(String(64))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class KudosReceiver(Base):
    __tablename__ = "kudos_receivers"

    kudos_id: Mapped[int] = mapped_column(
        ForeignKey("kudos.id", ondelete="CASCADE"), primary_key=True
    )
    receiver_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class KudosOptOut(Base):
    """A member who asked to appear on no kudos board (``/kudos optout``)."""

    __tablename__ = "kudos_optouts"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
