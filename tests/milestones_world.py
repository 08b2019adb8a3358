"""The harness of the milestone tests: the core with ``/milestone`` (the hooks feature registers
it, milestones extend it) and the real Scheduler on a FakeClock over one database (SQLite and
PostgreSQL), a workspace with #team and #launches, members in several zones (frank an admin,
gina a team lead), a platform directory that knows a bot, and the outbox read directly (no
delivery worker runs here)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from bot import directory
from bot.chat import Actions, Button, Reply, Response
from bot.config import SecuritySection, Settings
from bot.core import Core
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import hooks, milestones
from bot.port import ChannelInfo
from bot.scheduling.scheduler import Scheduler
from bot.webhooks.keys import Keys
from storage.db import Database
from storage.milestones import Milestone, MilestoneContributor
from storage.models import OutboxMessage, RoleAssignment, RoleName
from tests.fakes.clock import FakeClock
from tests.test_kudos import KudosDirectory
from tests.test_polls_create import said
from tests.test_standup_runtime import render as render_payload

KEY = "kJ0Xz8oQm1yVbq3M0nW5bJp7nZ5n8bQw0qYc3y1xH2E="
TEAM = "C-team"
LAUNCHES = "C-launch"
# Monday 9 March 2026, 12:00 UTC (13:00 in Berlin).
START = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
ZONES = {
    "alice": "Europe/Berlin",
    "bob": "America/New_York",
    "carol": "Asia/Tokyo",
    "dana": "Asia/Kolkata",
    "frank": "Europe/Berlin",
    "gina": "Europe/London",
}


class Directory(KudosDirectory):
    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        for known, known_name in ((TEAM, "team"), (LAUNCHES, "launches")):
            if channel_id == known or (name and name.removeprefix("#") == known_name):
                return ChannelInfo(known, known_name)
        if name == "random":
            return ChannelInfo("C-random", "random", can_post=False, reason="Invite me first.")
        return None


@dataclass
class World:
    db: Database
    clock: FakeClock
    core: Core
    scheduler: Scheduler
    members: dict[str, int]
    admins: set[str] = field(default_factory=lambda: {"frank"})
    _events: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    def actor(self, name: str) -> Actor:
        return Actor(name, name, ZONES.get(name), is_platform_admin=name in self.admins)

    def origin(self, channel: str | None = TEAM) -> Origin:
        event = f"e{next(self._events)}"  # type: ignore[call-overload]
        names = {TEAM: "team", LAUNCHES: "launches"}
        return Origin("test", "T1", event, "Test", channel, names.get(channel or "", ""))

    async def command(self, line: str, by: str = "alice", channel: str | None = TEAM) -> Response:
        event = CommandInvocation(self.origin(channel), self.actor(by), "milestone", line)
        return await self.core.handle(event)

    async def say(self, line: str, by: str = "alice", channel: str | None = TEAM) -> str:
        return said(await self.command(line, by, channel))

    async def submit(
        self, form_id: str, values: dict[str, Any], by: str = "alice", state: str = ""
    ) -> Response:
        event = FormSubmission(self.origin(None), self.actor(by), form_id, values, state)
        return await self.core.handle(event)

    async def press(self, response: Response, label: str, by: str = "alice") -> str:
        assert isinstance(response, Reply), response
        buttons = [
            element
            for block in response.message.blocks
            if isinstance(block, Actions)
            for element in block.elements
            if isinstance(element, Button) and element.label == label
        ]
        assert buttons, f"no button {label!r}"
        event = ActionInvocation(self.origin(), self.actor(by), buttons[0].action_id)
        return said(await self.core.handle(event))

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def sent(self, method: str = "post", to: str | None = None) -> list[str]:
        return [
            render_payload(row.payload)
            for row in await self.outbox()
            if row.method == method
            and (to is None or to in (row.target.get("user_id"), row.target.get("channel_id")))
        ]

    async def milestone(self, name: str) -> Milestone:
        async with self.db.transaction() as session:
            found = await session.scalar(select(Milestone).where(Milestone.name == name))
            assert found is not None, name
            return found

    async def count(self) -> int:
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Milestone)) or 0)

    async def contributors(self, name: str) -> set[str]:
        milestone = await self.milestone(name)
        names = {v: k for k, v in self.members.items()}
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(MilestoneContributor.member_id).where(
                    MilestoneContributor.milestone_id == milestone.id
                )
            )
            return {names[r] for r in rows}

    async def jump(self, when: datetime) -> None:
        """The clock jumps; the scheduler runs what fell due (as after a sleep)."""
        self.clock.set(when)
        await self.scheduler.reconcile()


def settings() -> Settings:
    return Settings.model_construct(security=SecuritySection.model_validate({"secret_key": KEY}))


def build_core(db: Database, clock: FakeClock, instance: str = "a") -> tuple[Core, Scheduler]:
    """One syncup process: /milestone with hooks and milestones, and its scheduler."""
    core = Core(db, clock)
    core.directory = Directory(ZONES, {TEAM: list(ZONES), LAUNCHES: []})
    scheduler = Scheduler(db, clock, instance=instance, reconcile_interval=3600)
    core.on_schedules_changed.append(scheduler.reconcile)  # as bot.app wires them
    hooks.register(core, db, Keys(settings()), per_minute=100, base_url=lambda: "http://x")
    milestones.register(core, scheduler)
    return core, scheduler


@asynccontextmanager
async def milestone_world(db: Database, start: datetime = START) -> AsyncIterator[World]:
    clock = FakeClock(start)
    members: dict[str, int] = {}
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, "test", "T1", "Test", start)
        for channel, name in ((TEAM, "team"), (LAUNCHES, "launches")):
            await directory.ensure_channel(session, workspace, channel, name, start)
        for name, zone in ZONES.items():
            member = await directory.ensure_member(
                session, workspace, Actor(name, name, zone), start
            )
            member.dm_channel_id = f"D-{name}"
            members[name] = member.id
        session.add(
            RoleAssignment(
                workspace_id=workspace.id,
                member_id=members["gina"],
                role=RoleName.TEAM_LEAD,
                granted_at=start,
            )
        )
    core, scheduler = build_core(db, clock)
    await scheduler.start()
    try:
        yield World(db, clock, core, scheduler, members)
    finally:
        await core.idle()
        await scheduler.stop()
