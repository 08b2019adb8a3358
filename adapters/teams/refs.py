"""Conversation references (storage.teams): kept from every activity and installation, read
when a proactive message goes out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.events import Actor
from storage.db import Database
from storage.models import Workspace
from storage.teams import TeamsReference
from storage.upsert import insert_unless_exists

log = logging.getLogger(__name__)

PLATFORM = "teams"
MEMBER = "member"
CHANNEL = "channel"
INSTALL = "install"  # a scope syncup is installed in (adapters.teams.installs)
REMOVED = "removed"  # a team syncup was removed from


@dataclass(frozen=True)
class Reference:
    service_url: str
    teams_id: str | None
    conversation_id: str | None
    name: str


class References:
    """Reads and writes references; a small cache in front (the rows change rarely). Reads
    take no write lock (``Database.read``): the core's directory look-ups call them from inside
    its own transaction."""

    def __init__(self) -> None:
        self.db: Database | None = None
        self._cache: dict[tuple[str, str, str], Reference] = {}
        self._later: set[asyncio.Task[None]] = set()
        self._pending: dict[tuple[str, str, str], tuple[Reference, datetime]] = {}
        self._warm: set[str] = set()  # tenants whose references were all read at once

    def remember_later(
        self, tenant: str, kind: str, key: str, ref: Reference, now: datetime
    ) -> None:
        """:meth:`remember` from inside a transaction of the core's (a directory look-up), or
        from a send that must not wait for a write (a 1:1 chat just created): kept in memory at
        once, stored once that transaction has let go of the database. What is waiting is
        stored together, in one transaction (a fan-out creates hundreds of chats a minute)."""
        cached = self._cache.get((tenant, kind, key))
        if cached is None:
            self._cache[(tenant, kind, key)] = ref
        elif ref.conversation_id and ref.conversation_id != cached.conversation_id:
            self._cache[(tenant, kind, key)] = replace(cached, conversation_id=ref.conversation_id)
        waiting = self._pending.get((tenant, kind, key))
        if waiting is not None and not ref.conversation_id:
            ref = replace(ref, conversation_id=waiting[0].conversation_id)
        self._pending[(tenant, kind, key)] = (ref, now)
        if not self._later:
            task = asyncio.get_running_loop().create_task(self._store())
            self._later.add(task)
            task.add_done_callback(self._later.discard)

    async def _store(self) -> None:
        assert self.db is not None
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                async with self.db.transaction() as session:
                    kept = {
                        where: await self._write(session, *where, ref, now, "")
                        for where, (ref, now) in batch.items()
                    }
            except Exception:
                log.exception("teams: storing %d conversation references failed", len(batch))
                continue
            for where, ref in kept.items():
                if where not in self._pending:
                    self._cache[where] = ref

    async def settled(self) -> None:
        """Every reference :meth:`remember_later` was given is stored."""
        while self._later:
            await asyncio.gather(*list(self._later), return_exceptions=True)

    async def remember(
        self,
        tenant: str,
        kind: str,
        key: str,
        ref: Reference,
        now: datetime,
        *,
        workspace_name: str = "",
    ) -> None:
        """Store or refresh a reference; a member's known 1:1 chat is kept when this activity
        does not name one."""
        cached = self._cache.get((tenant, kind, key))
        if (
            cached is not None
            and _same(cached, ref)
            and ref.conversation_id in (None, cached.conversation_id)
        ):
            return
        assert self.db is not None
        async with self.db.transaction() as session:
            kept = await self._write(session, tenant, kind, key, ref, now, workspace_name)
        self._cache[(tenant, kind, key)] = kept

    async def _write(
        self,
        session: AsyncSession,
        tenant: str,
        kind: str,
        key: str,
        ref: Reference,
        now: datetime,
        workspace_name: str,
    ) -> Reference:
        workspace = await directory.ensure_workspace(session, PLATFORM, tenant, workspace_name, now)
        row = await _row(session, workspace, kind, key)
        if row is None:
            values = {
                "workspace_id": workspace.id,
                "kind": kind,
                "key": key,
                "service_url": ref.service_url,
                "teams_id": ref.teams_id,
                "conversation_id": ref.conversation_id,
                "name": ref.name,
                "updated_at": now,
            }
            await insert_unless_exists(
                session,
                TeamsReference,
                values,
                TeamsReference.id,
                ["workspace_id", "kind", "key"],
            )
            row = await _row(session, workspace, kind, key)
            assert row is not None
        row.service_url = ref.service_url
        row.teams_id = ref.teams_id or row.teams_id
        row.conversation_id = ref.conversation_id or row.conversation_id
        row.name = ref.name or row.name
        row.updated_at = now
        if kind == CHANNEL and ref.name:
            await directory.ensure_channel(session, workspace, key, ref.name, now)
        elif kind == MEMBER and ref.name:
            await directory.ensure_member(session, workspace, Actor(key, ref.name), now)
        return Reference(row.service_url, row.teams_id, row.conversation_id, row.name)

    async def find(self, tenant: str, kind: str, key: str) -> Reference | None:
        cached = self._cache.get((tenant, kind, key))
        if cached is not None:
            return cached
        assert self.db is not None
        if tenant not in self._warm:
            # The first miss reads the tenant's references at once: a fan-out to a thousand
            # members then needs no read each.
            await self._warm_up(tenant)
            cached = self._cache.get((tenant, kind, key))
            if cached is not None:
                return cached
        async with self.db.read() as session:
            workspace = await session.scalar(
                select(Workspace).where(
                    Workspace.platform == PLATFORM, Workspace.external_id == tenant
                )
            )
            if workspace is None:
                return None
            row = await _row(session, workspace, kind, key)
            if row is None:
                return None
            found = Reference(row.service_url, row.teams_id, row.conversation_id, row.name)
        self._cache[(tenant, kind, key)] = found
        return found

    async def forget(self, tenant: str, kind: str, key: str) -> None:
        assert self.db is not None
        self._cache.pop((tenant, kind, key), None)
        async with self.db.transaction() as session:
            workspace = await session.scalar(
                select(Workspace).where(
                    Workspace.platform == PLATFORM, Workspace.external_id == tenant
                )
            )
            if workspace is not None:
                await session.execute(
                    delete(TeamsReference).where(
                        TeamsReference.workspace_id == workspace.id,
                        TeamsReference.kind == kind,
                        TeamsReference.key == key,
                    )
                )

    async def count(self, tenant: str, kind: str) -> int:
        assert self.db is not None
        async with self.db.read() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(TeamsReference)
                .join(Workspace, Workspace.id == TeamsReference.workspace_id)
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    TeamsReference.kind == kind,
                )
            )
        return int(found or 0)

    async def _warm_up(self, tenant: str) -> None:
        assert self.db is not None
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(
                        TeamsReference.kind,
                        TeamsReference.key,
                        TeamsReference.service_url,
                        TeamsReference.teams_id,
                        TeamsReference.conversation_id,
                        TeamsReference.name,
                    )
                    .join(Workspace, Workspace.id == TeamsReference.workspace_id)
                    .where(Workspace.platform == PLATFORM, Workspace.external_id == tenant)
                )
            ).all()
        for kind, key, *ref in rows:
            self._cache.setdefault((tenant, kind, key), Reference(*ref))
        self._warm.add(tenant)

    async def member_of(self, tenant: str, teams_id: str) -> str | None:
        """The Entra object id of the member with this Teams id ("29:..."), if syncup met them."""
        assert self.db is not None
        async with self.db.read() as session:
            key = await session.scalar(
                select(TeamsReference.key)
                .join(Workspace, Workspace.id == TeamsReference.workspace_id)
                .where(
                    Workspace.platform == PLATFORM,
                    Workspace.external_id == tenant,
                    TeamsReference.kind == MEMBER,
                    TeamsReference.teams_id == teams_id,
                )
                .limit(1)
            )
        return key

    async def channel_named(self, tenant: str, name: str) -> tuple[str, str] | None:
        """A channel syncup has a reference for, by name (any case): its id and name."""
        assert self.db is not None
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(TeamsReference.key, TeamsReference.name)
                    .join(Workspace, Workspace.id == TeamsReference.workspace_id)
                    .where(
                        Workspace.platform == PLATFORM,
                        Workspace.external_id == tenant,
                        TeamsReference.kind == CHANNEL,
                    )
                )
            ).all()
        wanted = name.lower()
        return next(((k, n) for k, n in rows if n.lower() == wanted), None)

    async def any_service_url(self, tenant: str) -> str | None:
        """The service URL of any reference in the tenant (they share one per region)."""
        assert self.db is not None
        async with self.db.read() as session:
            url = await session.scalar(
                select(TeamsReference.service_url)
                .join(Workspace, Workspace.id == TeamsReference.workspace_id)
                .where(Workspace.platform == PLATFORM, Workspace.external_id == tenant)
                .order_by(TeamsReference.updated_at.desc())
                .limit(1)
            )
        return url


def _same(old: Reference, new: Reference) -> bool:
    return (old.service_url, old.teams_id, old.name) == (new.service_url, new.teams_id, new.name)


async def _row(
    session: AsyncSession, workspace: Workspace, kind: str, key: str
) -> TeamsReference | None:
    return await session.scalar(
        select(TeamsReference).where(
            TeamsReference.workspace_id == workspace.id,
            TeamsReference.kind == kind,
            TeamsReference.key == key,
        )
    )
