"""The dispatcher: routing, help, per-member settings, permissions, dedup (invariant 3) and
clear private errors that save nothing (invariant 8)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.chat import Reply, Response, reply
from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import Actor, CommandInvocation, DirectMessageReceived, Origin
from bot.features import account
from storage.db import Database
from storage.models import Member, OutboxMessage, ProcessedEvent, RoleAssignment, Team
from tests.fakes.clock import FakeClock

ALICE = Actor("U1", "alice", "Europe/Berlin", is_platform_admin=True)
BOB = Actor("U2", "bob", "America/New_York")
CAROL = Actor("U3", "carol", "Asia/Kolkata")
_ids = itertools.count(1)


def command(line: str, actor: Actor = ALICE, event_id: str | None = None) -> CommandInvocation:
    name, _, rest = line.lstrip("/").partition(" ")
    origin = Origin("test", "W1", event_id or f"e{next(_ids)}", "Test", channel_id="C1")
    return CommandInvocation(origin, actor, name, rest)


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    return "\n".join(
        getattr(b, "text", None).plain()
        if hasattr(getattr(b, "text", None), "plain")
        else str(getattr(b, "text", "")) or repr(b)
        for b in response.message.blocks
    )


async def _count(db: Database, model: type[Any]) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _member(db: Database, user_id: str) -> Member:
    async with db.transaction() as session:
        member = await session.scalar(select(Member).where(Member.platform_user_id == user_id))
        assert member is not None
        return member


TEST_SPEC = CommandSpec(
    "probe",
    "test command",
    (
        SubcommandSpec("post", "queue a post", (OptionSpec("words", OptionType.TEXT, "what"),)),
        SubcommandSpec("half", "write, then fail with a user error"),
        SubcommandSpec("crash", "write, then fail with a bug"),
    ),
)


@pytest.fixture
def core(database: Database) -> Core:
    core = Core(database, FakeClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC)))
    account.register(core)

    async def post(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("C1", reply(args["words"]).message)
        return reply("queued")

    async def half(ctx: Context, args: dict[str, Any]) -> Response:
        ctx.session.add(Team(workspace_id=ctx.workspace.id, name="half", created_at=ctx.now))
        await ctx.session.flush()
        await ctx.post("C1", reply("never").message)
        raise UserError("The second step is wrong: fix X.")

    async def crash(ctx: Context, args: dict[str, Any]) -> Response:
        ctx.session.add(Team(workspace_id=ctx.workspace.id, name="crash", created_at=ctx.now))
        await ctx.session.flush()
        raise RuntimeError("boom")

    core.add_command(TEST_SPEC, {"post": post, "half": half, "crash": crash})
    return core


async def test_help_lists_every_command(core: Core) -> None:
    text = said(await core.handle(command("/syncup help")))
    for usage in ("/syncup timezone <ZONE>", "/syncup me", "/syncup role <WHO>", "/probe post"):
        assert usage in text
    assert "(admins only)" in text
    detail = said(await core.handle(command("/syncup help timezone")))
    assert "Example: /syncup timezone Europe/Paris" in detail
    assert said(await core.handle(command("/syncup"))) == text  # bare command shows help


async def test_timezone_saved_and_shown(core: Core, database: Database) -> None:
    answer = said(await core.handle(command("/syncup timezone europe/paris", BOB)))
    assert "Saved: your time zone is Europe/Paris" in answer
    member = await _member(database, "U2")
    assert (member.timezone, member.timezone_set_by_member) == ("Europe/Paris", True)
    # The platform's profile zone no longer overrides the member's own choice.
    await core.handle(command("/syncup me", BOB))
    assert (await _member(database, "U2")).timezone == "Europe/Paris"
    me = said(await core.handle(command("/syncup me", BOB)))
    assert "Europe/Paris (set by you)" in me


async def test_bad_timezone_gets_suggestion_and_saves_nothing(
    core: Core, database: Database
) -> None:
    await core.handle(command("/syncup me", BOB))
    answer = said(await core.handle(command("/syncup timezone Europe/Pari", BOB)))
    assert answer == 'Unknown timezone "Europe/Pari"; try Europe/Paris.'
    member = await _member(database, "U2")
    assert (member.timezone, member.timezone_set_by_member) == ("America/New_York", False)


@pytest.mark.parametrize("role", ["member", "team_lead"])
async def test_a_platform_admin_cannot_be_given_a_lesser_role(
    core: Core, database: Database, role: str
) -> None:
    await core.handle(command("/syncup me", ALICE))
    await core.handle(command("/syncup me", BOB))
    await core.handle(command("/syncup role @bob admin", ALICE))
    before = await _count(database, RoleAssignment)
    answer = said(await core.handle(command(f"/syncup role @alice {role}", BOB)))
    assert answer.startswith("alice is an admin of the workspace on the platform")
    assert "would change nothing" in answer and "Saved" not in answer
    assert await _count(database, RoleAssignment) == before
    listing = said(await core.handle(command("/syncup roles", BOB)))
    assert listing.splitlines()[1:3] == [
        "alice: admin (a workspace admin on the platform)",
        "bob: admin",
    ]


async def test_a_member_who_is_no_longer_a_platform_admin_can_be_given_a_role(
    core: Core, database: Database
) -> None:
    await core.handle(command("/syncup me", ALICE))
    await core.handle(command("/syncup me", BOB))
    assert "Saved" in said(await core.handle(command("/syncup role @bob admin", ALICE)))
    demoted = Actor("U1", "alice", "Europe/Berlin", is_platform_admin=False)
    await core.handle(command("/syncup me", demoted))
    assert "alice" not in said(await core.handle(command("/syncup roles", BOB)))
    assert "is now team lead" in said(
        await core.handle(command("/syncup role @alice team_lead", BOB))
    )


@pytest.mark.parametrize(
    "zone", ["localtime", "Factory", "GMT", "EST5EDT", "Etc/GMT+5", "Zulu", "Etc/UTC"]
)
async def test_zones_that_are_not_places_are_refused(
    core: Core, database: Database, zone: str
) -> None:
    await core.handle(command("/syncup me", BOB))
    answer = said(await core.handle(command(f"/syncup timezone {zone}", BOB)))
    assert f'"{zone}" is not' in answer and "Area/City" in answer, answer
    member = await _member(database, "U2")
    assert (member.timezone, member.timezone_set_by_member) == ("America/New_York", False)


@pytest.mark.parametrize(
    ("zone", "saved"), [("UTC", "UTC"), ("us/eastern", "US/Eastern"), ("Asia/Kolkata", None)]
)
async def test_place_zones_and_utc_are_saved(
    core: Core, database: Database, zone: str, saved: str | None
) -> None:
    answer = said(await core.handle(command(f"/syncup timezone {zone}", BOB)))
    assert answer.startswith("Saved: your time zone is"), answer
    assert (await _member(database, "U2")).timezone == (saved or zone)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/syncup timezone", "ZONE is missing. Usage: /syncup timezone <ZONE>."),
        ("/syncup tz Europe/Paris", "Did you mean /syncup timezone?"),
        ("/syncup me please", 'I did not expect "please"'),
        ("/syncup role @bob boss", "ROLE must be one of admin, team_lead, member"),
        (
            "/syncup role @bobby admin",
            "No member named @bobby in this workspace. Did you mean @bob?",
        ),
        ("/nosuch thing", "Unknown command /nosuch"),
    ],
)
async def test_malformed_commands_get_usage(core: Core, line: str, expected: str) -> None:
    await core.handle(command("/syncup me", BOB))
    assert expected in said(await core.handle(command(line)))


async def test_permissions(core: Core, database: Database) -> None:
    await core.handle(command("/syncup me", BOB))
    denied = said(await core.handle(command("/syncup role @alice member", BOB)))
    assert denied == "Only admins can do that."
    assert await _count(database, RoleAssignment) == 0

    granted = said(await core.handle(command("/syncup role @bob admin", ALICE)))
    assert granted == "Saved: @bob is now admin."
    # bob is now an admin by role (not by platform) and may grant roles himself.
    await core.handle(command("/syncup me", CAROL))
    assert "is now team lead" in said(
        await core.handle(command("/syncup role @carol team_lead", BOB))
    )
    # ...but may not demote himself while he is the only admin by role.
    assert "only admin" in said(await core.handle(command("/syncup role @bob member", BOB)))
    listing = said(await core.handle(command("/syncup roles", BOB)))
    assert "bob: admin" in listing and "carol: team lead" in listing
    assert "alice: admin (a workspace admin on the platform)" in listing


async def test_duplicate_event_is_handled_once(core: Core, database: Database) -> None:
    first = await core.handle(command("/probe post hello", event_id="dup-1"))
    second = await core.handle(command("/probe post hello", event_id="dup-1"))
    assert said(first) == "queued"
    assert second is None
    assert await _count(database, OutboxMessage) == 1
    assert await _count(database, ProcessedEvent) == 1


async def test_concurrent_duplicates_are_handled_once(core: Core, database: Database) -> None:
    """A double click: the same event id arrives twice at the same moment."""
    await core.handle(command("/syncup me"))
    results = await asyncio.gather(
        *(core.handle(command("/probe post hi", event_id="click-1")) for _ in range(5))
    )
    assert sum(r is not None for r in results) == 1
    assert await _count(database, OutboxMessage) == 1


async def test_user_error_saves_nothing(core: Core, database: Database) -> None:
    answer = said(await core.handle(command("/probe half", event_id="half-1")))
    assert answer == "The second step is wrong: fix X."
    assert await _count(database, Team) == 0
    assert await _count(database, OutboxMessage) == 0
    # The event itself is recorded: a platform retry does not run it again.
    assert await core.handle(command("/probe half", event_id="half-1")) is None


async def test_bug_gets_apology_not_traceback(
    core: Core, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = said(await core.handle(command("/probe crash")))
    assert answer.startswith("Sorry, something went wrong on syncup's side (ref ")
    assert "boom" not in answer and "Traceback" not in answer
    assert await _count(database, Team) == 0
    assert any("probe crash" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_typed_options_from_discord_style_invocations(core: Core, database: Database) -> None:
    origin = Origin("test", "W1", "typed-1", "Test")
    event = CommandInvocation(
        origin, BOB, "syncup", subcommand="timezone", options={"zone": "Asia/Kolkata"}
    )
    assert "Asia/Kolkata" in said(await core.handle(event))
    bad = CommandInvocation(
        Origin("test", "W1", "typed-2"),
        BOB,
        "syncup",
        subcommand="timezone",
        options={"zone": "Mars/Base"},
    )
    assert said(await core.handle(bad)).startswith('Unknown timezone "Mars/Base"')
    assert (await _member(database, "U2")).timezone == "Asia/Kolkata"


async def test_plain_dm_without_handler_points_to_help(core: Core, database: Database) -> None:
    event = DirectMessageReceived(Origin("test", "W1", "dm-1"), BOB, "hello?", dm_channel_id="D2")
    assert "/syncup help" in said(await core.handle(event))
    assert (await _member(database, "U2")).dm_channel_id == "D2"


async def test_after_commit_runs_only_when_the_event_committed(database: Database) -> None:
    core = Core(database, FakeClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC)))
    ran: list[str] = []
    seen_committed: list[int] = []

    async def background() -> None:
        # Started after commit: a new transaction sees what the event wrote.
        seen_committed.append(await _count(database, Team))
        ran.append("background")

    async def ok(ctx: Context, args: dict[str, Any]) -> Response:
        ctx.session.add(Team(workspace_id=ctx.workspace.id, name="ok", created_at=ctx.now))
        ctx.after_commit(lambda: ran.append("ok"))
        ctx.after_commit(lambda: core.spawn(background(), name="probe-background"))
        return reply("done")

    async def refused(ctx: Context, args: dict[str, Any]) -> Response:
        ctx.after_commit(lambda: ran.append("refused"))
        raise UserError("No.")

    async def crashed(ctx: Context, args: dict[str, Any]) -> Response:
        ctx.after_commit(lambda: ran.append("crashed"))
        raise RuntimeError("bug")

    spec = CommandSpec(
        "after",
        "after-commit probe",
        (
            SubcommandSpec("ok", "commits"),
            SubcommandSpec("refused", "user error"),
            SubcommandSpec("crashed", "bug"),
        ),
    )
    core.add_command(spec, {"ok": ok, "refused": refused, "crashed": crashed})
    assert said(await core.handle(command("/after refused"))) == "No."
    await core.handle(command("/after crashed"))
    assert ran == [] and not core.busy()
    await core.handle(command("/after ok"))
    await core.idle()
    assert ran == ["ok", "background"] and seen_committed == [1]
    assert not core.busy()
