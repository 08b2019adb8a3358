"""One-time dashboard sign-in links (``syncup web login-link``), kept hashed.

Only the SHA-256 of a link's token is stored: someone who reads the database (or a backup)
cannot sign in with it. A link is spent by one conditional ``UPDATE ... WHERE used_at IS NULL
AND expires_at > now``: of two replicas (or two tabs) that redeem it at once, exactly one gets
the row. Spent and expired links are deleted by :func:`tidy`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import UTCDateTime

TOKEN_BYTES = 32


class WebLoginLink(Base):
    __tablename__ = "web_login_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def create_link(
    session: AsyncSession, member_id: int, now: datetime, lifetime: timedelta
) -> str:
    """A new link's token (shown once; only its hash is kept)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WebLoginLink(
            token_hash=token_hash(token),
            member_id=member_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    await session.flush()
    return token


async def redeem(session: AsyncSession, token: str, now: datetime) -> int | None:
    """The member the link signs in, spending it; None if it is unknown, spent or expired."""
    digest = token_hash(token)
    spent = await session.execute(
        update(WebLoginLink)
        .where(
            WebLoginLink.token_hash == digest,
            WebLoginLink.used_at.is_(None),
            WebLoginLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await session.scalar(
        select(WebLoginLink.member_id).where(WebLoginLink.token_hash == digest)
    )


async def link_state(session: AsyncSession, token: str, now: datetime) -> str:
    """ "valid", "used", "expired" or "unknown": what the sign-in page tells the person."""
    row = await session.scalar(
        select(WebLoginLink).where(WebLoginLink.token_hash == token_hash(token))
    )
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    if row.expires_at <= now:
        return "expired"
    return "valid"


async def tidy(session: AsyncSession, now: datetime, keep: timedelta) -> int:
    """Delete links spent or expired more than ``keep`` ago (a spent one is kept a while so
    a second use is told "already used", not "unknown")."""
    done = await session.execute(
        delete(WebLoginLink).where(
            or_(WebLoginLink.used_at < now - keep, WebLoginLink.expires_at < now - keep)
        )
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]
