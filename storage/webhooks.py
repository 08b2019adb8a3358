"""Outbound webhook endpoints: where a workspace's events go (``bot.webhooks``).

An endpoint has a ``format``: ``standard`` (a JSON event signed as the Standard Webhooks
specification says, with the endpoint's ``whsec_`` secret) or ``pagerduty`` (PagerDuty Events
API v2, with the service's routing key). ``secret`` holds that secret or routing key encrypted
with Fernet (``bot.webhooks.keys``), never in clear. ``events`` is the event filter: the event
types (``blocker.opened``...) the endpoint is sent; an escalation level that names the endpoint
(``webhook:<id>``) reaches it whatever its filter.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class WebhookFormat(enum.StrEnum):
    STANDARD = "standard"
    PAGERDUTY = "pagerduty"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    # ``key`` is the name folded (lower case): "Ops" and "ops" are one endpoint.
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    # The receiver's https URL; for PagerDuty the events URL of [webhooks] is used instead
    # and this is empty.
    url: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Fernet token of the whsec_ secret (standard) or the routing key (pagerduty).
    secret: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
