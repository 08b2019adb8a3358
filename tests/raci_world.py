"""The harness of the RACI tests: the core with /raci registered on a FakeClock over one database
(SQLite and PostgreSQL), a fake platform directory that knows members, channels and user
groups, and helpers to run commands, submit the form and press buttons."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.chat import Message, Reply, Response
from bot.core import Core
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import raci
from bot.features.raci.fields import FORM_ID
from bot.port import ChannelInfo, DirectoryUnavailable, GroupInfo, MemberInfo
from storage.db import Database
from tests.fakes.clock import FakeClock

START = datetime(2026, 3, 9, 9, tzinfo=UTC)
WORKSPACE = "W1"
CHANNEL = "C-team"
PIPELINE = (
    '/raci setup "Data pipeline" --responsible @bob @data-eng --accountable @alice '
    "--consulted @ml --informed #data --channel #data --timezone Europe/Berlin "
    "--days mon-fri --hours 08:30-17:00 --holidays DE BE --dates 2026-12-24, 2026-12-31 "
    "--keywords etl, airflow, data pipeline"
)


@dataclass
class FakeDirectory:
    """Members, channels and user groups of one workspace, as a platform would answer."""

    members: dict[str, str] = field(default_factory=dict)  # user id -> display name
    channels: dict[str, str] = field(default_factory=dict)  # channel id -> name
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (name, ids)
    groups_unavailable: bool = False
    group_calls: int = 0

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        for uid, shown in self.members.items():
            if uid == user_id or (name and shown.lower() == name.lower().removeprefix("@")):
                return MemberInfo(uid, shown, "Europe/Berlin")
        return None

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        for cid, shown in self.channels.items():
            if cid == channel_id or (name and shown == name.removeprefix("#")):
                return ChannelInfo(cid, shown, can_post=shown != "random", reason="Invite me")
        return None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        return []

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None:
        self.group_calls += 1
        if self.groups_unavailable:
            raise DirectoryUnavailable("syncup lacks the scope usergroups:read.")
        for gid, (shown, _) in self.groups.items():
            if gid == group_id or (name and shown.lower() == name.lower().removeprefix("@")):
                return GroupInfo(gid, shown)
        return None

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        if self.groups_unavailable:
            raise DirectoryUnavailable("syncup lacks the scope usergroups:read.")
        _, ids = self.groups.get(group_id, ("", []))
        return [MemberInfo(uid, self.members[uid]) for uid in ids]


@dataclass
class RaciWorld:
    core: Core
    database: Database
    clock: FakeClock
    directory: FakeDirectory
    admins: set[str] = field(default_factory=lambda: {"alice"})
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def actor(self, name: str) -> Actor:
        return Actor(name, name, None, is_platform_admin=name in self.admins)

    def origin(self, channel: str | None = CHANNEL) -> Origin:
        return Origin(
            "test", WORKSPACE, f"e{next(self._ids)}", "Acme", channel, "team" if channel else ""
        )

    async def command(self, line: str, by: str = "alice", channel: str | None = CHANNEL) -> Any:
        name, _, rest = line.removeprefix("/").partition(" ")
        event = CommandInvocation(self.origin(channel), self.actor(by), name, rest)
        return await self.core.handle(event)

    async def text(self, line: str, by: str = "alice") -> str:
        """The private reply to a command, as plain text."""
        return said(await self.command(line, by))

    async def submit(self, values: dict[str, Any], state: str = "", by: str = "alice") -> Any:
        event = FormSubmission(self.origin(), self.actor(by), FORM_ID, values, state)
        return await self.core.handle(event)

    async def press(self, action_id: str, by: str = "alice") -> Any:
        event = ActionInvocation(self.origin(), self.actor(by), action_id)
        return await self.core.handle(event)


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    return plain(response.message)


def plain(msg: Message) -> str:
    from bot.chat import Chart, Context, Header, Section

    lines = []
    for block in msg.blocks:
        if isinstance(block, Header):
            lines.append(block.text)
        elif isinstance(block, Section | Context):
            lines.append(block.text.plain())
        elif isinstance(block, Chart):
            lines.append(f"[chart: {block.alt}]")
    return "\n".join(lines)


@asynccontextmanager
async def raci_world(database: Database) -> AsyncIterator[RaciWorld]:
    clock = FakeClock(START)
    core = Core(database, clock)
    directory = FakeDirectory(
        members={n: n for n in ("alice", "bob", "carol", "dan", "erin")},
        channels={CHANNEL: "team", "C-data": "data", "C-random": "random"},
        groups={"S-eng": ("data-eng", ["bob", "carol"]), "S-ml": ("ml", ["dan", "erin"])},
    )
    core.directory = directory
    raci.register(core)
    world = RaciWorld(core, database, clock, directory)
    # Everyone has been seen once (ensure_member on their first event): a harmless /raci help.
    for name in directory.members:
        await world.command("/raci help", by=name)
    yield world
