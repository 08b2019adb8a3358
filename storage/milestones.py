"""Milestones: a named date a team works towards, counted down and celebrated when done.

One :class:`Milestone` per ``/milestone add``; :class:`MilestoneContributor` rows name who was
involved (the owner, people added by hand or by a webhook rule) for the celebration.
``due_on`` is a calendar date in the milestone's ``timezone`` (the team's zone when it was
added); countdown reminders go out at 09:00 there on the days before it in ``countdown_days``,
and the owner gets one DM on the day after an overdue one (``overdue_notified_at``).

Names are unique per workspace among milestones that are not cancelled: ``name_key`` (the
name folded for comparison) is set while the milestone is open or done, and cleared when it is
cancelled, so that a cancelled name can be used again (NULLs never collide in a unique index).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime

DEFAULT_COUNTDOWN_DAYS = (7, 1)


class MilestoneStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name_key", name="uq_milestones_workspace_id_name_key"),
        Index("ix_milestones_status_due_on", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    # casefolded name while open or done; None once cancelled (frees the name)
    name_key: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    # IANA zone the date is in and the countdowns' 09:00 is counted in
    timezone: Mapped[str] = mapped_column(String(64))
    # platform channel id for countdowns and the celebration; None: the workspace's default
    channel_id: Mapped[str | None] = mapped_column(String(64))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("raci_areas.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # days before due_on that get a countdown post, e.g. [7, 1]
    countdown_days: Mapped[list[int]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_COUNTDOWN_DAYS)
    )
    status: Mapped[str] = mapped_column(String(16), default=MilestoneStatus.OPEN.value)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    # what marked it done: "hand", or "hook:<hook name>"
    done_source: Mapped[str | None] = mapped_column(String(160))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MilestoneContributor(Base):
    __tablename__ = "milestone_contributors"

    milestone_id: Mapped[int] = mapped_column(
        ForeignKey("milestones.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
