"""Learned pacing: the rate each delivery bucket has learned, kept across restarts.

One row per (workspace, bucket), ``bucket`` being a method's name (``dm``, ``post`` ...) or
``channel:<id>`` for a channel's own limit. On SQLite (one process) a row is written when the
rate it learned changes; on PostgreSQL the row *is* the bucket every replica shares: each send
reserves its slot in it (``tat``, the theoretical arrival time of the generic cell rate
algorithm, and ``paused_until``, both in the database's epoch seconds), under a row lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import UTCDateTime


class DeliveryRate(Base):
    __tablename__ = "delivery_rates"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[str] = mapped_column(String(96), primary_key=True)
    rate: Mapped[float] = mapped_column(Float)
    burst: Mapped[int] = mapped_column(Integer)
    learned: Mapped[bool] = mapped_column(Boolean, default=False)
    measured: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)  # the highest rate that held
    high: Mapped[float | None] = mapped_column(Float)  # the lowest rate that drew a 429
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The shared bucket's state (PostgreSQL; unused on SQLite): database epoch seconds.
    tat: Mapped[float] = mapped_column(Float, default=0.0)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
    window_start: Mapped[float | None] = mapped_column(Float)
    window_sends: Mapped[int] = mapped_column(Integer, default=0)
    window_after_429: Mapped[bool] = mapped_column(Boolean, default=False)
    round_sends: Mapped[int] = mapped_column(Integer, default=0)
    hold: Mapped[int] = mapped_column(Integer, default=0)
