"""When digests go out, and what one occurrence does.

One schedule per digest on ``day_of_week`` at ``time_of_day`` in its zone, keyed by the local
date (``digest:3@2026-03-16``): the scheduler claims that key in ``occurrence_claims`` before
anything is written (invariant 1), so two replicas, a restart or a double firing post each
team's digest once. The missed-occurrence policy is the pulse digest's: after downtime only the
latest missed digest goes out, and only within :data:`GRACE` (a day); older ones are skipped.

An occurrence posts one message per team to the digest's channel and one DM per leader, each
with an outbox key derived from the occurrence key (``digest:3@2026-03-16:standup:5:post``), in
the claim's transaction. Workspaces that removed syncup schedule nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Message
from bot.features.digest.figures import Scope, TeamFigures, team_figures
from bot.features.digest.render import digest_message
from bot.features.digest.signals import signals
from bot.features.standups.schedules import LocalDateSchedule, StandupTrigger, parse_time_of_day
from bot.port import Method, Target
from bot.scheduling.scheduler import Occurrence, Schedule, Scheduler
from storage.digest import Digest, DigestLeader, DigestTeam
from storage.models import Channel, Member, Standup, Workspace
from storage.raci import RaciArea

log = logging.getLogger(__name__)

HANDLER = "digest"
GRACE = timedelta(days=1)


def trigger(digest: Digest) -> StandupTrigger:
    return StandupTrigger(
        days=[digest.day_of_week],
        at=parse_time_of_day(digest.time_of_day),
        zone=digest.timezone,
        not_before=digest.created_at,  # a digest set up after its hour starts next week
    )


def schedule_key(digest_id: int) -> str:
    return f"digest:{digest_id}"


class DigestSchedules:
    """The :class:`bot.scheduling.scheduler.ScheduleSource` of weekly digests."""

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        rows = await session.scalars(
            select(Digest)
            .join(Workspace, Workspace.id == Digest.workspace_id)
            .where(Workspace.uninstalled_at.is_(None))
            .order_by(Digest.id)
        )
        out: list[Schedule] = []
        for digest in rows:
            try:
                out.append(
                    LocalDateSchedule(
                        schedule_key(digest.id),
                        HANDLER,
                        trigger(digest),
                        grace=GRACE,
                        payload={"digest_id": digest.id},
                        zone=digest.timezone,
                    )
                )
            except (ValueError, KeyError) as exc:  # a row the setup should have refused
                log.error("digest %s has an unusable schedule: %s", digest.id, exc)
        return out


async def scopes_of(session: AsyncSession, digest: Digest) -> list[Scope]:
    """The digest's teams in the order they were given."""
    rows = await session.execute(
        select(DigestTeam, Standup.name, RaciArea.name)
        .outerjoin(Standup, Standup.id == DigestTeam.standup_id)
        .outerjoin(RaciArea, RaciArea.id == DigestTeam.area_id)
        .where(DigestTeam.digest_id == digest.id)
        .order_by(DigestTeam.position, DigestTeam.id)
    )
    out = []
    for team, standup, area in rows.all():
        if team.standup_id is not None and standup is not None:
            out.append(Scope(digest.workspace_id, "standup", team.standup_id, standup))
        elif team.area_id is not None and area is not None:
            out.append(Scope(digest.workspace_id, "area", team.area_id, area))
    return out


@dataclass(frozen=True)
class TeamDigest:
    figures: TeamFigures
    message: Message


async def compose(
    session: AsyncSession, digest: Digest, end: datetime, base_url: str
) -> list[TeamDigest]:
    """Each team's figures and message for the week ending at ``end``."""
    out = []
    for scope in await scopes_of(session, digest):
        figures = await team_figures(session, scope, end, digest.timezone, digest.sections)
        fired = signals(figures) if "signals" in digest.sections else []
        message = digest_message(
            figures, digest.sections, fired, zone=digest.timezone, base_url=base_url
        )
        out.append(TeamDigest(figures, message))
    return out


class DigestRuntime:
    def __init__(self, base_url: Callable[[], str]) -> None:
        self.base_url = base_url

    async def on_occurrence(self, occurrence: Occurrence) -> None:
        session = occurrence.session
        digest = await session.get(Digest, occurrence.schedule.payload["digest_id"])
        if digest is None:
            return
        channel = await session.get(Channel, digest.channel_id)
        leaders = list(
            await session.scalars(
                select(Member)
                .join(DigestLeader, DigestLeader.member_id == Member.id)
                .where(DigestLeader.digest_id == digest.id)
                .order_by(Member.id)
            )
        )
        for team in await compose(session, digest, occurrence.fire_at, self.base_url()):
            key = f"{occurrence.key}:{team.figures.scope.key}"
            if channel is not None:
                await occurrence.send(
                    digest.workspace_id,
                    Method.POST,
                    Target(channel_id=channel.external_id),
                    team.message,
                    key=f"{key}:post",
                )
            for leader in leaders:
                await occurrence.send(
                    digest.workspace_id,
                    Method.DM,
                    Target(user_id=leader.platform_user_id, dm_channel_id=leader.dm_channel_id),
                    team.message,
                    key=f"{key}:dm:{leader.id}",
                )

    def register(self, scheduler: Scheduler) -> None:
        scheduler.add_source(DigestSchedules())
        scheduler.add_handler(HANDLER, self.on_occurrence)
