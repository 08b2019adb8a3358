"""A workspace for blocker tests: a Core with /blocker registered, members, and two RACI areas
written straight to the database (the /raci command is another feature's)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bot.chat import Reply, Response
from bot.core import Core
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import blockers
from storage.db import Database
from storage.models import Blocker, BlockerEvent, Member, OutboxMessage, Workspace
from storage.raci import RaciArea, RaciAssignment
from tests.fakes.clock import FakeClock

# Monday 9 March 2026, 10:00 UTC.
START = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)

ALICE = Actor("U1", "alice", "Europe/Berlin")  # reports blockers
BOB = Actor("U2", "bob", "America/New_York")  # an unrelated member
DANA = Actor("U4", "dana", "Europe/Berlin")  # Responsible for data pipeline
ERIN = Actor("U5", "erin", "Europe/Berlin")  # Accountable for data pipeline
FRANK = Actor("U6", "frank", "Europe/London")  # Accountable for labeling
ADMIN = Actor("U9", "root", "UTC", is_platform_admin=True)
PEOPLE = (ALICE, BOB, DANA, ERIN, FRANK, ADMIN)
_ids = itertools.count(1)


def origin(workspace: str = "W1", channel: str = "C1") -> Origin:
    return Origin("test", workspace, f"e{next(_ids)}", "Test", channel_id=channel)


def command(line: str, actor: Actor = ALICE, workspace: str = "W1") -> CommandInvocation:
    name, _, rest = line.lstrip("/").partition(" ")
    return CommandInvocation(origin(workspace), actor, name, rest)


def press(action_id: str, actor: Actor, value: str = "") -> ActionInvocation:
    return ActionInvocation(origin(), actor, action_id, value)


def submit(form_id: str, actor: Actor, values: dict[str, Any], state: str = "") -> FormSubmission:
    return FormSubmission(origin(), actor, form_id, values, state)


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    lines = []
    for block in response.message.blocks:
        content = getattr(block, "text", None)
        if hasattr(content, "plain"):
            lines.append(content.plain())
        elif isinstance(content, str):
            lines.append(content)
        elif hasattr(block, "items"):
            lines.extend(f"{label}: {value.plain()}" for label, value in block.items)
    return "\n".join(lines)


@dataclass
class World:
    db: Database
    core: Core
    clock: FakeClock
    members: dict[str, int] = field(default_factory=dict)
    areas: dict[str, int] = field(default_factory=dict)

    async def run(self, line: str, actor: Actor = ALICE) -> str:
        return said(await self.core.handle(command(line, actor)))

    async def blocker(self, blocker_id: int) -> Blocker:
        async with self.db.transaction() as session:
            found = await session.get(Blocker, blocker_id)
            assert found is not None
            return found

    async def count(self, model: type[Any]) -> int:
        async with self.db.transaction() as session:
            return len(list(await session.scalars(select(model))))

    async def kinds(self, blocker_id: int) -> list[str]:
        async with self.db.transaction() as session:
            return list(
                await session.scalars(
                    select(BlockerEvent.kind)
                    .where(BlockerEvent.blocker_id == blocker_id)
                    .order_by(BlockerEvent.id)
                )
            )

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def make_world(db: Database) -> World:
    core = Core(db, FakeClock(START))
    blockers.register(core)
    world = World(db, core, core.clock)  # type: ignore[arg-type]
    for person in PEOPLE:
        await core.handle(command("/blocker list", person))
    async with db.transaction() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.external_id == "W1"))
        assert workspace is not None
        for member in await session.scalars(select(Member)):
            world.members[member.display_name] = member.id
        data = RaciArea(
            workspace_id=workspace.id,
            name="data pipeline",
            key="data pipeline",
            channel_id="C-data",
            timezone="Europe/Berlin",
            keywords=["pipeline", "etl", "airflow"],
            created_at=START,
            updated_at=START,
        )
        labeling = RaciArea(
            workspace_id=workspace.id,
            name="labeling",
            key="labeling",
            channel_id=None,
            timezone="Europe/London",
            keywords=["labeling", "annotation", "labelers"],
            created_at=START,
            updated_at=START,
        )
        session.add_all([data, labeling])
        await session.flush()
        world.areas = {"data pipeline": data.id, "labeling": labeling.id}
        for area, role, name in (
            (data, "R", "dana"),
            (data, "A", "erin"),
            (labeling, "A", "frank"),
        ):
            member_id = world.members[name]
            session.add(
                RaciAssignment(
                    area_id=area.id, role=role, who=f"member:{member_id}", member_id=member_id
                )
            )
    return world
