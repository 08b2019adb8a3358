"""Platform directory lookups: names syncup has not stored yet are asked of the platform, a report
channel the bot cannot post to is refused with the platform's reason, "#channel" participants come
from the platform; without a directory, what syncup knows is all there is.

The core runs with a small fake of the port's :class:`~bot.port.PlatformDirectory`; the console
test shows the same through the console's demo directory (``#random``, which syncup is not in).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.console.adapter import ConsolePort
from bot import directory
from bot.chat import FormErrors, Reply, Response
from bot.commands.parse import channel_ref, member_ref
from bot.core import Core
from bot.errors import UserError
from bot.events import Actor, CommandInvocation, FormSubmission, Origin
from bot.features import account
from bot.features.standups import commands
from bot.features.standups.settings import FORM_ID
from bot.port import ChannelInfo, DirectoryUnavailable, MemberInfo, PlatformDirectory
from storage.db import Database
from storage.models import (
    Channel,
    ChannelMember,
    Member,
    RoleAssignment,
    Standup,
    StandupParticipant,
    Workspace,
)
from tests.fakes.clock import FakeClock
from tests.test_console import run_console
from tests.test_standup_settings import GOOD as FORM

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ALICE = Actor("U1", "alice", "Europe/Berlin", is_platform_admin=True)
_ids = itertools.count(1)


class FakeDirectory:
    """What a platform knows, answered like a port would; every lookup is recorded."""

    def __init__(self) -> None:
        self.members: dict[str, MemberInfo] = {
            "U1": MemberInfo("U1", "alice", "Europe/Berlin"),
            "U2": MemberInfo("U2", "bob", "America/New_York"),
            "U7": MemberInfo("U7", "gita", "Asia/Kolkata"),
            "U8": MemberInfo("U8", "hugo", "Europe/Paris"),
            "B1": MemberInfo("B1", "deploybot", None, is_bot=True),
        }
        self.channels: dict[str, ChannelInfo] = {
            "C1": ChannelInfo("C1", "team"),
            "C5": ChannelInfo("C5", "eng"),
            "C9": ChannelInfo(
                "C9",
                "random",
                can_post=False,
                reason="I can't post in #random: invite @syncup to it first (/invite @syncup).",
            ),
        }
        self.in_channel: dict[str, list[str]] = {"C5": ["U7", "U8", "B1"], "C1": ["U1", "U2"]}
        self.unavailable: str | None = None
        self.calls: list[tuple[str, str | None]] = []

    def _check(self) -> None:
        if self.unavailable is not None:
            raise DirectoryUnavailable(self.unavailable)

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        self.calls.append(("member", user_id or name))
        self._check()
        if user_id:
            return self.members.get(user_id)
        return next((m for m in self.members.values() if m.display_name == name), None)

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        self.calls.append(("channel", channel_id or name))
        self._check()
        if channel_id:
            return self.channels.get(channel_id)
        return next((c for c in self.channels.values() if c.name == name), None)

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        self.calls.append(("channel_members", channel_id))
        self._check()
        return [self.members[u] for u in self.in_channel.get(channel_id, [])]


def test_the_fake_is_a_platform_directory() -> None:
    assert isinstance(FakeDirectory(), PlatformDirectory)


def origin() -> Origin:
    return Origin("test", "W1", f"e{next(_ids)}", "Test", channel_id="C1")


def submit(**changes: Any) -> FormSubmission:
    return FormSubmission(origin(), ALICE, FORM_ID, {**FORM, **changes}, "")


def command(line: str) -> CommandInvocation:
    name, _, rest = line.lstrip("/").partition(" ")
    return CommandInvocation(origin(), ALICE, name, rest)


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    return "\n".join(
        block.text.plain() if hasattr(block, "text") and not isinstance(block.text, str) else ""
        for block in response.message.blocks
    )


@pytest.fixture
async def core(database: Database) -> Core:
    """alice and bob known, #team known with both; gita, hugo, #eng and #random only on the
    platform (when a test gives the core a directory)."""
    core = Core(database, FakeClock(NOW))
    account.register(core)
    commands.register(core)
    async with database.transaction() as session:
        ws = await directory.ensure_workspace(session, "test", "W1", "Test", NOW)
        alice = await directory.ensure_member(session, ws, ALICE, NOW)
        bob = await directory.ensure_member(session, ws, Actor("U2", "bob"), NOW)
        team = await directory.ensure_channel(session, ws, "C1", "team", NOW)
        await directory.add_channel_members(session, team, [alice, bob])
    return core


async def count(db: Database, model: type[Any], *where: Any) -> int:
    async with db.transaction() as session:
        stmt = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(stmt) or 0)


async def member(db: Database, user_id: str) -> Member | None:
    async with db.transaction() as session:
        return await session.scalar(select(Member).where(Member.platform_user_id == user_id))


# -- members --------------------------------------------------------------------------------


async def test_an_unknown_member_is_looked_up_on_the_platform_and_stored(
    core: Core, database: Database
) -> None:
    platform = FakeDirectory()
    core.directory = platform
    saved = said(await core.handle(submit(participants="@bob @gita <@U8>")))
    assert "3 participant(s)" in saved
    gita = await member(database, "U7")
    hugo = await member(database, "U8")
    assert gita is not None and (gita.display_name, gita.timezone) == ("gita", "Asia/Kolkata")
    assert hugo is not None and (hugo.display_name, hugo.timezone) == ("hugo", "Europe/Paris")
    assert not gita.timezone_set_by_member
    assert ("member", "gita") in platform.calls and ("member", "U8") in platform.calls
    assert ("member", "bob") not in platform.calls  # known: not asked
    assert await count(database, StandupParticipant) == 3


async def test_someone_the_platform_does_not_know_either_is_a_clear_error(
    core: Core, database: Database
) -> None:
    core.directory = FakeDirectory()
    response = await core.handle(submit(participants="@bob @zed"))
    assert isinstance(response, FormErrors)
    assert response.errors["participants"].startswith("No member named @zed in this workspace.")
    response = await core.handle(submit(participants="<@U404>"))
    assert isinstance(response, FormErrors)
    assert "is not a member of this workspace" in response.errors["participants"]
    response = await core.handle(submit(participants="@deploybot"))
    assert isinstance(response, FormErrors)
    assert response.errors["participants"] == "@deploybot is a bot; name a person instead."
    assert await count(database, Standup) == 0
    assert await count(database, Member) == 2  # nobody stored on the way


async def test_role_for_a_member_only_the_platform_knows(core: Core, database: Database) -> None:
    core.directory = FakeDirectory()
    assert "is now team lead" in said(await core.handle(command("/syncup role @gita team_lead")))
    gita = await member(database, "U7")
    assert gita is not None
    assert await count(database, RoleAssignment, RoleAssignment.member_id == gita.id) == 1


async def test_directory_unavailable_is_shown_as_it_is(core: Core, database: Database) -> None:
    platform = FakeDirectory()
    platform.unavailable = "Turn on the Server Members intent in the Developer Portal."
    core.directory = platform
    response = await core.handle(submit(participants="@gita"))
    assert isinstance(response, FormErrors)
    assert response.errors["participants"] == (
        "Turn on the Server Members intent in the Developer Portal."
    )
    reply = said(await core.handle(command("/syncup role @gita team_lead")))
    assert reply == "Turn on the Server Members intent in the Developer Portal."
    assert await count(database, Standup) == 0
    assert await member(database, "U7") is None


# -- channels -------------------------------------------------------------------------------


async def test_an_unknown_report_channel_by_name_is_looked_up_and_stored(
    core: Core, database: Database
) -> None:
    platform = FakeDirectory()
    core.directory = platform
    saved = said(await core.handle(submit(channel="#eng")))
    assert "report in #eng." in saved
    async with database.transaction() as session:
        eng = await session.scalar(select(Channel).where(Channel.external_id == "C5"))
        row = await session.scalar(select(Standup))
    assert eng is not None and eng.name == "eng"
    assert row is not None and row.report_channel_id == eng.id
    assert ("channel", "eng") in platform.calls


async def test_a_channel_the_bot_cannot_post_to_is_refused_and_nothing_saved(
    core: Core, database: Database
) -> None:
    core.directory = FakeDirectory()
    said(await core.handle(submit(name="First")))
    assert await count(database, Standup) == 1
    response = await core.handle(submit(name="Second", channel="#random"))
    assert isinstance(response, FormErrors)
    assert response.errors == {
        "channel": "I can't post in #random: invite @syncup to it first (/invite @syncup)."
    }
    assert await count(database, Standup) == 1  # unchanged
    assert await count(database, Channel, Channel.external_id == "C9") == 0


async def test_a_known_channel_is_checked_with_the_platform_too(
    core: Core, database: Database
) -> None:
    platform = FakeDirectory()
    # syncup stored #team long ago; since then the bot was removed from it.
    platform.channels["C1"] = ChannelInfo(
        "C1", "team", can_post=False, reason="I was removed from #team; invite me back."
    )
    core.directory = platform
    response = await core.handle(submit())
    assert isinstance(response, FormErrors)
    assert response.errors["channel"] == "I was removed from #team; invite me back."
    # Gone from the platform altogether.
    del platform.channels["C1"]
    response = await core.handle(submit())
    assert isinstance(response, FormErrors)
    assert response.errors["channel"].startswith("I can't see #team any more")
    assert await count(database, Standup) == 0


async def test_participants_from_a_channel_come_from_the_platform(
    core: Core, database: Database
) -> None:
    platform = FakeDirectory()
    core.directory = platform
    saved = said(await core.handle(submit(participants="#eng")))
    assert "2 participant(s)" in saved  # gita and hugo; the bot left out
    async with database.transaction() as session:
        names = set(
            await session.scalars(
                select(Member.display_name)
                .join(StandupParticipant, StandupParticipant.member_id == Member.id)
                .order_by(Member.display_name)
            )
        )
        eng = await session.scalar(select(Channel).where(Channel.external_id == "C5"))
        assert eng is not None
        in_eng = await directory.channel_members(session, eng)
    assert names == {"gita", "hugo"}
    assert {m.display_name for m in in_eng} == {"gita", "hugo"}
    assert ("channel_members", "C5") in platform.calls
    assert await member(database, "B1") is None


async def test_channel_participants_when_the_platform_will_not_list_them(
    core: Core, database: Database
) -> None:
    platform = FakeDirectory()
    core.directory = platform
    platform.in_channel["C5"] = ["B1"]
    response = await core.handle(submit(participants="#eng"))
    assert isinstance(response, FormErrors)
    assert response.errors["participants"] == "Nobody but bots is in #eng."
    platform.unavailable = "Everyone in a channel needs the Server Members intent."
    response = await core.handle(submit(participants="#team"))
    assert isinstance(response, FormErrors)
    assert response.errors["participants"] == (
        "Everyone in a channel needs the Server Members intent."
    )
    assert await count(database, Standup) == 0


# -- no directory: as before ----------------------------------------------------------------


async def test_without_a_directory_only_what_syncup_knows(core: Core, database: Database) -> None:
    assert core.directory is None
    response = await core.handle(submit(channel="#eng", participants="@gita"))
    assert isinstance(response, FormErrors)
    assert response.errors["channel"] == (
        "I don't know the channel #eng. Invite syncup to it, then try again."
    )
    assert response.errors["participants"].startswith("No member named @gita")
    # "#team" is everyone syncup has seen in it.
    assert "2 participant(s), report in #team." in said(
        await core.handle(submit(participants="#team"))
    )
    assert await count(database, ChannelMember) == 2


async def test_resolve_functions_without_and_with_a_platform(database: Database) -> None:
    platform = FakeDirectory()
    async with database.transaction() as session:
        ws = await directory.ensure_workspace(session, "test", "W1", "Test", NOW)
        with pytest.raises(UserError):
            await directory.resolve_member(session, ws, member_ref("@gita"))
        with pytest.raises(UserError):
            await directory.resolve_channel(session, ws, channel_ref("<#C5|eng>"))
        gita = await directory.resolve_member(session, ws, member_ref("@gita"), platform, now=NOW)
        eng = await directory.resolve_channel(
            session, ws, channel_ref("<#C5|eng>"), platform, now=NOW
        )
        # Stored now: the next lookups do not ask the platform.
        asked = len(platform.calls)
        assert (await directory.resolve_member(session, ws, member_ref("gita"), platform)) is gita
        assert (await directory.resolve_channel(session, ws, channel_ref("#eng"), platform)) is eng
        assert len(platform.calls) == asked
        workspace_id = ws.id
    assert await count(database, Member, Member.workspace_id == workspace_id) == 1
    assert await count(database, Workspace) == 1


# -- the console's demo directory ---------------------------------------------------------------


async def test_console_port_is_the_demo_directory(tmp_path: Path) -> None:
    port = ConsolePort.__new__(ConsolePort)
    assert isinstance(port, PlatformDirectory)
    random = await port.channel_info("demo", name="random")
    assert random is not None and not random.can_post and "invite @syncup" in random.reason
    team = await port.channel_info("demo", channel_id="team")
    assert team is not None and team.can_post
    bob = await port.member_info("demo", name="@bob")
    assert bob is not None and bob.timezone == "America/New_York"
    assert await port.member_info("demo", name="zed") is None
    assert [m.user_id for m in await port.channel_members("demo", "random")] == [
        "alice",
        "bob",
        "chandra",
    ]


async def test_console_setup_with_a_channel_syncup_is_not_in(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/standup setup",
            "Daily",
            "#random",
            "#random",
            *[""] * 10,
            "#team",
        ],
    )
    form = run.after("Report channel: #random")
    assert (
        "  ! I can't post in #random: invite @syncup to it first (/invite @syncup), or choose "
        "a channel I am in, like #team.\n"
        "  Report channel: #team\n"
    ) in form
    assert "Created Daily: Mon-Fri at 09:00 (each member's local time), 3 participant(s), " in (
        form
    )
    assert "report in #team." in form
    db = Database(run.url)
    try:
        async with db.transaction() as session:
            standups = list(await session.scalars(select(Standup)))
            random = await session.scalar(select(Channel).where(Channel.external_id == "random"))
            assert random is not None  # learnt from the directory, as the participants' source
            in_random = await directory.channel_members(session, random)
    finally:
        await db.dispose()
    assert [s.name for s in standups] == ["Daily"]
    assert [m.platform_user_id for m in in_random] == ["alice", "bob", "chandra"]
