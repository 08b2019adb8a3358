"""Typed SQLAlchemy 2 models shared by every feature.

All times are aware UTC (:class:`UTCDateTime`); time zones are IANA names kept as text and applied
only at the edges. The schema is created and changed only by the Alembic migrations in
``migrations/``; ``tests/test_migrations.py`` proves that these models and the migrations agree.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class RoleName(enum.StrEnum):
    ADMIN = "admin"
    TEAM_LEAD = "team_lead"
    MEMBER = "member"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Workspace(Base):
    """A Slack workspace, a Discord guild, or the console's demo workspace."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the platform told us the app was removed (Slack's app_uninstalled / tokens_revoked);
    # the workspace's rows are deleted after a grace period (bot.workspace_removal).
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The database deletes a workspace's rows (ON DELETE CASCADE); without this the ORM would
    # instead load the members and set their NOT NULL workspace_id to NULL on session.delete().
    members: Mapped[list[Member]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "platform_user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    # IANA zone; None until the platform or the member tells us.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # True once the member chose the zone themselves: a platform profile no longer overrides it.
    timezone_set_by_member: Mapped[bool] = mapped_column(default=False)
    # A workspace admin on the platform when last seen: a syncup admin whatever their role.
    is_platform_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    dm_channel_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    workspace: Mapped[Workspace] = relationship(back_populates="members")


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelMember(Base):
    """Who is in a channel, as far as the adapter has told syncup (for "everyone in #team")."""

    __tablename__ = "channel_members"

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )


class Team(Base):
    """A group of members with a home channel and a zone for team-wide schedules."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )


class RoleAssignment(Base):
    """An elevated role. Everyone is a member; admins are workspace-wide, leads per team."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("member_id", "role", "team_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    role: Mapped[RoleName] = mapped_column(_enum(RoleName, "role_name"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OccurrenceClaim(Base):
    """Invariant 1: a scheduled occurrence runs only in the transaction that inserted its key."""

    __tablename__ = "occurrence_claims"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    handler: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str] = mapped_column(String(128))


class OutboxMessage(Base):
    """Invariant 2: a message to send, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # An update or thread reply waits until the message it refers to has been sent.
    depends_on_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[OutboxStatus] = mapped_column(
        _enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    rate_limited: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(128))
    # Set just before a send and cleared when its outcome is recorded; still set after a crash
    # means the platform may have the message already (the adapter is told so).
    sending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    platform_channel_id: Mapped[str | None] = mapped_column(String(64))
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessedEvent(Base):
    """Invariant 3: the platform ids of inbound events already handled."""

    __tablename__ = "processed_events"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- standups ------------------------------------------------------------------------------


class PromptStatus(enum.StrEnum):
    PENDING = "pending"  # prompted, not (fully) answered yet
    ANSWERED = "answered"
    SKIPPED = "skipped"  # the member skipped this day
    AWAY = "away"  # out of office: not prompted, not counted as missing
    UNREACHABLE = "unreachable"  # the platform refused the DM (closed DMs)


class Standup(Base):
    """A recurring standup: who is asked what, when, and where the report goes."""

    __tablename__ = "standups"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    report_channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    # When set, everyone in this channel takes part (kept in standup_participants by sync).
    participants_channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL")
    )
    # [{"text": str, "kind": "text"|"choice"|"mood", "choices": [str], "blocker": bool}]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    days: Mapped[list[int]] = mapped_column(JSON)  # ISO weekdays 1 (Mon) .. 7 (Sun)
    every_weeks: Mapped[int] = mapped_column(default=1)
    anchor_date: Mapped[date] = mapped_column(Date)  # a Monday; weeks count from it
    time_of_day: Mapped[str] = mapped_column(String(5))  # "09:00", local
    # None: each member's own zone; else the team's IANA zone for everyone.
    team_timezone: Mapped[str | None] = mapped_column(String(64))
    reminder_minutes: Mapped[int | None] = mapped_column()
    window_minutes: Mapped[int] = mapped_column(default=240)
    report_mode: Mapped[str] = mapped_column(String(16), default="each")  # each | cutoff
    report_layout: Mapped[str] = mapped_column(String(16), default="thread")  # thread | inline
    group_by: Mapped[str] = mapped_column(String(16), default="person")  # person | question
    tag_missing: Mapped[bool] = mapped_column(default=False)
    channel_nudge: Mapped[bool] = mapped_column(default=False)
    holidays: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO dates
    paused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StandupParticipant(Base):
    __tablename__ = "standup_participants"

    standup_id: Mapped[int] = mapped_column(
        ForeignKey("standups.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )


class StandupRun(Base):
    """One day of a standup (the participants' local date), with its report; or one run started
    by hand (``/standup run``), which is a run of its own beside the day's scheduled one."""

    __tablename__ = "standup_runs"
    __table_args__ = (UniqueConstraint("standup_id", "run_date", "occasion"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    standup_id: Mapped[int] = mapped_column(ForeignKey("standups.id", ondelete="CASCADE"))
    run_date: Mapped[date] = mapped_column(Date)
    # "" for the scheduled run of ``run_date``; a run started by hand gets its own key here
    # (``manual:<event id>``), so it takes no member's scheduled prompt of that date.
    occasion: Mapped[str] = mapped_column(String(120), default="", server_default="")
    # The report's parent message in the outbox; later edits are updates of it.
    report_outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL")
    )
    report_version: Mapped[int] = mapped_column(default=0)
    # Set (if unset) by an answer, skip or edit that the report does not show yet; cleared by the
    # refresh that renders it. A run left dirty (the process died first) is found by the sweep.
    report_dirty_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every refresh when it takes the marks. A refresh that renders outside the lock
    # publishes only if it is still the latest to have taken them (see report.refresh_apart).
    report_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StandupPrompt(Base):
    """Participation: one member in one run. Kept apart from what they answered."""

    __tablename__ = "standup_prompts"
    __table_args__ = (
        UniqueConstraint("run_id", "member_id"),
        Index("ix_standup_prompts_remind", "status", "remind_at"),
        # By member (a new prompt closes the member's other DM conversations), covering what
        # the digest's silences and the dashboard read per member (migration 0022).
        Index("ix_standup_prompts_member_run", "member_id", "run_id", "status", "answered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("standup_runs.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    status: Mapped[PromptStatus] = mapped_column(
        _enum(PromptStatus, "prompt_status"), default=PromptStatus.PENDING
    )
    prompted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The DM conversation's next question (0-based); None when no conversation is open.
    step: Mapped[int | None] = mapped_column()
    # This member's reply in the report thread, when the report has one per person.
    report_outbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox.id", ondelete="SET NULL")
    )
    report_version: Mapped[int] = mapped_column(default=0)
    # This member's reply in the report is out of date (see StandupRun.report_dirty_since).
    report_dirty: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StandupAnswer(Base):
    __tablename__ = "standup_answers"
    __table_args__ = (UniqueConstraint("prompt_id", "question_index"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("standup_prompts.id", ondelete="CASCADE"))
    question_index: Mapped[int] = mapped_column()
    text: Mapped[str] = mapped_column(Text)


class Absence(Base):
    """Out of office: no prompts, shown as away (all standups when ``standup_id`` is None)."""

    __tablename__ = "absences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    standup_id: Mapped[int | None] = mapped_column(ForeignKey("standups.id", ondelete="CASCADE"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlockerStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class BlockerSeverity(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Blocker(Base):
    """Something in the way of a member (``member_id``: the reporter), from a standup answer,
    ``/blocker add`` or a message reported as a blocker; see ``bot.features.blockers``.

    Escalation (``bot.features.blockers.escalation``) is driven by ``next_escalation_at``
    (indexed: the sweep finds due blockers without a scan); ``escalation_level`` is how many
    levels of the ladder have fired in ``escalation_round``, and ``escalation_generation`` is
    bumped whenever the ladder restarts (an acknowledgement, a reassignment, a severity
    change), so an occurrence key booked for an older ladder never matches a newer one."""

    __tablename__ = "blockers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    standup_answer_id: Mapped[int | None] = mapped_column(
        ForeignKey("standup_answers.id", ondelete="SET NULL"), unique=True
    )
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[BlockerStatus] = mapped_column(
        _enum(BlockerStatus, "blocker_status"), default=BlockerStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "standup", "command" or "message" (a message reported as a blocker; ``source_link``).
    source: Mapped[str] = mapped_column(String(16), default="standup", server_default="standup")
    source_link: Mapped[str | None] = mapped_column(Text)
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("raci_areas.id", ondelete="SET NULL"), index=True
    )
    # What it waits on: a member, or another area (a cross-team dependency), or neither.
    waiting_on_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    waiting_on_area_id: Mapped[int | None] = mapped_column(
        ForeignKey("raci_areas.id", ondelete="SET NULL"), index=True
    )
    severity: Mapped[BlockerSeverity] = mapped_column(
        _enum(BlockerSeverity, "blocker_severity"),
        default=BlockerSeverity.NORMAL,
        server_default=BlockerSeverity.NORMAL.value,
    )
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last time its reporter named it again (a later standup): the age still counts from
    # ``created_at``.
    last_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The card in the area's channel: the outbox row that posted it (updates depend on it).
    card_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    card_version: Mapped[int] = mapped_column(default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    escalation_round: Mapped[int] = mapped_column(default=0, server_default="0")
    escalation_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the ladder (re)started, and for which generation (migration 0012): a newer
    # generation restarts it from a new anchor (see bot.features.blockers.escalation).
    escalation_anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_anchor_generation: Mapped[int] = mapped_column(default=-1, server_default="-1")


class BlockerEvent(Base):
    """A blocker's timeline: who did what when (opened, acknowledged, escalated, noted...)."""

    __tablename__ = "blocker_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    blocker_id: Mapped[int] = mapped_column(
        ForeignKey("blockers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Tables that live in their own modules but on this metadata (migrations see every table).
import storage.celebrations  # noqa: E402
import storage.digest  # noqa: E402
import storage.hooks  # noqa: E402
import storage.kudos  # noqa: E402
import storage.milestones  # noqa: E402
import storage.pacing  # noqa: E402
import storage.polls  # noqa: E402
import storage.raci  # noqa: E402
import storage.slack_installs  # noqa: E402
import storage.teams  # noqa: E402
import storage.web_sessions  # noqa: E402
import storage.webhooks  # noqa: E402, F401
