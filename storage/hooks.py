"""Inbound webhooks (``bot.features.hooks``): a hook per sender, its rules, what it received.

A :class:`Hook` is one URL, ``/hooks/{source}/{token}``: ``source`` says how deliveries are
signed (github, gitlab, mlflow, standard), ``token`` is random and unguessable (the URL is not
the secret, the signature is), ``secret`` the signing secret or GitLab token encrypted with
Fernet (``bot.webhooks.keys``), never in clear. A :class:`HookRule` turns one event (and its
filters) into a post in a channel; ``milestone`` names the milestone a delivery marks done once
milestones exist. :class:`HookDelivery` keeps the last few deliveries with what came of them;
:class:`HookSeen` the delivery ids already acted on, until ``expires_at`` (dedupe).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class Hook(Base):
    __tablename__ = "hooks"
    # ``key`` is the name folded (lower case): "CI" and "ci" are one hook.
    __table_args__ = (UniqueConstraint("workspace_id", "key"), UniqueConstraint("token"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HookRule(Base):
    __tablename__ = "hook_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    # {"branch": "main", "labels": ["release"], "environment": "production", ...}
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    channel_id: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(Text)
    # Arrives with milestones: the milestone a matching delivery marks done.
    milestone: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HookDelivery(Base):
    __tablename__ = "hook_deliveries"
    __table_args__ = (Index("ix_hook_deliveries_hook_id_id", "hook_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # posted | ignored | test
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")


class HookSeen(Base):
    __tablename__ = "hook_seen"

    hook_id: Mapped[int] = mapped_column(
        ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
