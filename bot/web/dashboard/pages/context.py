"""What a page's renderer gets: the open (read) transaction, the viewer's seat, the query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.dashboard.access import Seat
from bot.web.dashboard.sessions import Session
from storage.models import Member


class NotFound(Exception):
    """Something the query string names is not in the workspace: a 404 page saying what."""


@dataclass
class PageContext:
    db: AsyncSession
    seat: Seat
    query: dict[str, str]
    now: datetime
    viewer: Session

    @property
    def workspace_id(self) -> int:
        return self.seat.workspace.id

    async def names(self, ids: set[int | None]) -> dict[int, str]:
        """Display names of the workspace's members among ``ids``."""
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await self.db.execute(
            select(Member.id, Member.display_name, Member.platform_user_id).where(
                Member.id.in_(wanted), Member.workspace_id == self.workspace_id
            )
        )
        return {row.id: row.display_name or row.platform_user_id for row in rows}
