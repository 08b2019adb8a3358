"""Weekly leadership digests: which teams, where and when, which sections, who gets a DM.

One :class:`Digest` per ``/digest setup`` (its ``name`` unique in the workspace), posted on
``day_of_week`` at ``time_of_day`` in ``timezone`` to ``channel_id``; ``sections`` lists the
sections it shows. :class:`DigestTeam` rows name its teams, each a standup (its participants)
or a RACI area (its people and its blockers); :class:`DigestLeader` rows name who also gets it
by DM. The indexes on ``blockers`` serve the digest's figures (see
``bot.features.digest.figures``): blockers by workspace and time, and by reporter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId, Blocker
from storage.types import UTCDateTime

SECTIONS = ("standups", "blockers", "pulse", "kudos", "signals")


class Digest(Base):
    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    day_of_week: Mapped[int] = mapped_column(Integer)  # ISO weekday 1 (Mon) .. 7 (Sun)
    time_of_day: Mapped[str] = mapped_column(String(5))  # "09:00", in ``timezone``
    timezone: Mapped[str] = mapped_column(String(64))
    sections: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DigestTeam(Base):
    """A team of a digest: exactly one of ``standup_id`` and ``area_id`` is set."""

    __tablename__ = "digest_teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digests.id", ondelete="CASCADE"), index=True
    )
    standup_id: Mapped[int | None] = mapped_column(
        ForeignKey("standups.id", ondelete="CASCADE"), index=True
    )
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("raci_areas.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class DigestLeader(Base):
    __tablename__ = "digest_leaders"

    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digests.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )


Index("ix_blockers_workspace_created", Blocker.workspace_id, Blocker.created_at)
Index("ix_blockers_member_id", Blocker.member_id)
