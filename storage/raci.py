"""The RACI matrix: areas (workstreams) and who is Responsible, Accountable, Consulted and
Informed in each.

An area also carries what its blockers need: the channel where their cards live, the business
hours and holidays their escalation counts in (``bot.features.blockers.business_time``), the
keywords that suggest it for a blocker's text, and its escalation policy (JSON, see
``bot.features.blockers.policy``; None: the workspace default in ``blocker_settings``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class RaciRole(enum.StrEnum):
    RESPONSIBLE = "R"
    ACCOUNTABLE = "A"
    CONSULTED = "C"
    INFORMED = "I"


class RaciArea(Base):
    __tablename__ = "raci_areas"
    # ``key`` is the name folded (lower case, single spaces): "Data Pipeline" and
    # "data  pipeline" are one area.
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(80))
    # The platform channel id where the area's blocker cards are posted; None: not set yet.
    channel_id: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # ISO weekdays (1 = Monday) that are working days, and the working hours on them, in
    # minutes after local midnight (09:00-17:00 is 540-1020).
    work_days: Mapped[list[int]] = mapped_column(JSON, default=lambda: [1, 2, 3, 4, 5])
    day_start_minute: Mapped[int] = mapped_column(Integer, default=540)
    day_end_minute: Mapped[int] = mapped_column(Integer, default=1020)
    # Public holidays from the ``holidays`` package (ISO country code, optional subdivision),
    # plus custom dates (ISO "YYYY-MM-DD" strings).
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    custom_holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The escalation policy (bot.features.blockers.policy); None: the workspace default.
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RaciAssignment(Base):
    """One cell of the matrix: ``who`` has ``role`` in the area.

    ``who`` is ``member:<members.id>``, ``group:<platform group id>`` (a Slack user group, a
    Discord role) or ``channel:<platform channel id>``; ``member_id`` is set for a member (so a
    member's removal removes the cell), ``label`` is what to show for a group or a channel."""

    __tablename__ = "raci_assignments"
    __table_args__ = (UniqueConstraint("area_id", "role", "who"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    area_id: Mapped[int] = mapped_column(
        ForeignKey("raci_areas.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(1))
    who: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(255), default="")


class BlockerSettings(Base):
    """Per-workspace blocker settings: the default escalation policy (None: the built-in one)."""

    __tablename__ = "blocker_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    default_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
