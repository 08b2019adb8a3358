"""Microsoft Teams conversation references: what a proactive message needs.

Teams has no "open a DM with this user id" call that works without context: the connector
needs its service URL (per tenant and region), and a 1:1 chat is created with the member's
Teams id and the tenant. The adapter keeps one reference per member (``kind="member"``, keyed
by the member's Entra object id, the id syncup knows them by) and one per channel
(``kind="channel"``, keyed by the channel's conversation id), from every activity and from
installation events.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime


class TeamsReference(Base):
    __tablename__ = "teams_references"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "member" or "channel"
    key: Mapped[str] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(512))
    # The member's Teams id ("29:..."), for creating the 1:1 chat; None for a channel.
    teams_id: Mapped[str | None] = mapped_column(Text)
    # The 1:1 chat (once created or seen), or the channel's conversation id.
    conversation_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
