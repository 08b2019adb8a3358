"""``syncup export kudos``: one row per kudos and receiver, streamed (see :mod:`bot.export`).

``--since``/``--until`` are UTC dates of ``given_at``. Private kudos are included (the operator
holds the database anyway) and say so in the ``private`` column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.export import BATCH, ExportFormat, write_rows
from storage.kudos import Kudos, KudosReceiver
from storage.models import Member, Workspace


@dataclass(frozen=True)
class KudosExportRow:
    workspace: str
    kudos_id: int
    given_at: str  # UTC ISO 8601
    giver: str
    giver_platform_id: str
    receiver: str
    receiver_platform_id: str
    value: str
    private: bool
    channel_id: str
    reason: str


KUDOS_FIELDS = tuple(f.name for f in dataclasses.fields(KudosExportRow))


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def kudos_rows(
    session: AsyncSession, since: date | None = None, until: date | None = None
) -> AsyncIterator[KudosExportRow]:
    giver = aliased(Member)
    receiver = aliased(Member)
    stmt = (
        select(
            Workspace.name,
            Workspace.external_id,
            Kudos.id,
            Kudos.given_at,
            giver.display_name,
            giver.platform_user_id,
            receiver.display_name,
            receiver.platform_user_id,
            Kudos.value,
            Kudos.private,
            Kudos.channel_id,
            Kudos.reason,
        )
        .select_from(Kudos)
        .join(Workspace, Workspace.id == Kudos.workspace_id)
        .join(giver, giver.id == Kudos.giver_id)
        .join(KudosReceiver, KudosReceiver.kudos_id == Kudos.id)
        .join(receiver, receiver.id == KudosReceiver.receiver_id)
        .order_by(Workspace.id, Kudos.given_at, Kudos.id, receiver.display_name)
        .execution_options(yield_per=BATCH)
    )
    if since is not None:
        stmt = stmt.where(Kudos.given_at >= _start(since))
    if until is not None:
        stmt = stmt.where(Kudos.given_at < _start(until + timedelta(days=1)))
    result = await session.stream(stmt)
    async for row in result:
        (ws_name, ws_id, kudos_id, at, gname, gid, rname, rid, value, private, channel, why) = row
        yield KudosExportRow(
            workspace=ws_name or ws_id,
            kudos_id=kudos_id,
            given_at=at.isoformat(timespec="seconds"),
            giver=gname or gid,
            giver_platform_id=gid,
            receiver=rname or rid,
            receiver_platform_id=rid,
            value=value or "",
            private=bool(private),
            channel_id=channel or "",
            reason=why,
        )


async def export_kudos(
    session: AsyncSession,
    out: TextIO,
    since: date | None = None,
    until: date | None = None,
    fmt: ExportFormat = "csv",
) -> int:
    """Stream the kudos export to ``out``; returns the number of rows written."""
    return await write_rows(kudos_rows(session, since, until), out, fmt, KUDOS_FIELDS)
