"""Kudos through the real core on SQLite and PostgreSQL: giving (line, form, the "Give kudos"
shortcut), what is posted and DMed, every bad input answered privately with nothing saved, the
daily quota across each giver's own midnight, the weekly cap, private kudos and who sees them,
settings, and the export.

:class:`KudosWorld` is the harness of the kudos tests: the core with kudos registered on a
FakeClock over one database, a workspace with a channel, members in several zones, a platform
directory that knows a bot, and the outbox read directly (no delivery worker runs here).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import directory
from bot.chat import MESSAGE_ADAPTER, FormErrors, OpenForm, Plain, Response, UserMention
from bot.core import Core
from bot.events import (
    Actor,
    CommandInvocation,
    FormSubmission,
    Origin,
    ShortcutInvocation,
)
from bot.features import kudos
from bot.features.kudos import give as give_module
from bot.features.kudos.commands import GIVE_FORM
from bot.features.kudos.export import export_kudos
from bot.features.kudos.give import parse_line
from bot.port import ChannelInfo, MemberInfo
from storage.db import Database
from storage.kudos import Kudos, KudosReceiver
from storage.models import (
    OutboxMessage,
    RoleAssignment,
    RoleName,
    Team,
    TeamMember,
    Workspace,
)
from tests.fakes.clock import FakeClock
from tests.test_polls_create import FakeDirectory, said
from tests.test_standup_runtime import render as render_payload

PLATFORM = "test"
TEAM_CHANNEL = "C-team"
KUDOS_CHANNEL = "C-kudos"
# Monday 9 March 2026, 12:00 UTC.
START = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
ZONES = {
    "alice": "Europe/Berlin",
    "bob": "Europe/Berlin",
    "carol": "America/New_York",
    "dana": "Asia/Kolkata",
    "erin": "Europe/Berlin",
    "frank": "Europe/Berlin",
}
BOT = "USYNCUP"


class KudosDirectory(FakeDirectory):
    """The fake directory of the poll tests, plus a bot user (``@syncup``)."""

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        if BOT in (user_id, name) or name == "syncup":
            return MemberInfo(BOT, "syncup", None, is_bot=True)
        return await super().member_info(workspace_id, user_id=user_id, name=name)

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        names = {TEAM_CHANNEL: "team", KUDOS_CHANNEL: "kudos"}
        for known, known_name in names.items():
            if channel_id == known or (name and name.removeprefix("#") == known_name):
                return ChannelInfo(known, known_name)
        return None


@dataclass
class KudosWorld:
    db: Database
    clock: FakeClock
    core: Core
    members: dict[str, int]
    admins: set[str] = field(default_factory=lambda: {"frank"})
    _events: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    def actor(self, name: str) -> Actor:
        return Actor(name, name, ZONES.get(name), is_platform_admin=name in self.admins)

    def origin(self, channel: str | None = TEAM_CHANNEL) -> Origin:
        event = f"e{next(self._events)}"  # type: ignore[call-overload]
        return Origin(PLATFORM, "T1", event, "Test", channel, "team")

    async def kudos(self, line: str, by: str = "alice", channel: str = TEAM_CHANNEL) -> Response:
        event = CommandInvocation(self.origin(channel), self.actor(by), "kudos", line)
        return await self.core.handle(event)

    async def say(self, line: str, by: str = "alice") -> str:
        return said(await self.kudos(line, by))

    async def submit(self, by: str, values: dict[str, Any], state: str = "") -> Response:
        event = FormSubmission(self.origin(), self.actor(by), GIVE_FORM, values, state)
        return await self.core.handle(event)

    async def shortcut(self, by: str, target: str) -> Response:
        event = ShortcutInvocation(
            self.origin(), self.actor(by), "give_kudos", target_user_id=target
        )
        return await self.core.handle(event)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def sent(self, method: str, to: str | None = None) -> list[str]:
        return [
            render_payload(row.payload)
            for row in await self.outbox()
            if row.method == method
            and (to is None or to in (row.target.get("user_id"), row.target.get("channel_id")))
        ]

    async def stored(self) -> tuple[int, int]:
        """How many kudos and receiver rows are stored."""
        async with self.db.transaction() as session:
            kudos_count = await session.scalar(select(func.count()).select_from(Kudos))
            receivers = await session.scalar(select(func.count()).select_from(KudosReceiver))
            return int(kudos_count or 0), int(receivers or 0)

    async def make_team(self, name: str, members: list[str], lead: str) -> None:
        async with self.db.transaction() as session:
            workspace_id = await session.scalar(select(Workspace.id))
            assert workspace_id is not None
            team = Team(workspace_id=workspace_id, name=name, timezone="UTC", created_at=START)
            session.add(team)
            await session.flush()
            for who in [*members, lead]:
                session.add(TeamMember(team_id=team.id, member_id=self.members[who]))
            session.add(
                RoleAssignment(
                    workspace_id=workspace_id,
                    member_id=self.members[lead],
                    role=RoleName.TEAM_LEAD,
                    granted_at=START,
                )
            )


async def make_world(db: Database, start: datetime = START) -> KudosWorld:
    clock = FakeClock(start)
    members: dict[str, int] = {}
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, "T1", "Test", start)
        for channel, name in ((TEAM_CHANNEL, "team"), (KUDOS_CHANNEL, "kudos")):
            await directory.ensure_channel(session, workspace, channel, name, start)
        for name, zone in ZONES.items():
            member = await directory.ensure_member(
                session, workspace, Actor(name, name, zone), start
            )
            member.dm_channel_id = f"D-{name}"
            members[name] = member.id
    core = Core(db, clock)
    core.directory = KudosDirectory(ZONES, {TEAM_CHANNEL: list(ZONES), KUDOS_CHANNEL: []})
    kudos.register(core)
    return KudosWorld(db, clock, core, members)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[KudosWorld]:
    yield await make_world(database)


# -- giving ----------------------------------------------------------------------------------


async def test_kudos_are_posted_where_given_and_dmed_to_each_receiver(world: KudosWorld) -> None:
    answer = await world.say("@bob @carol Shipped the export on time @channel <@dana> #craft")
    assert answer.startswith("Kudos to @bob and @carol (#craft) posted in #C-team.")
    assert "You have 3 of 5 kudos left today; the count resets at 00:00 Tue 10 Mar " in answer
    assert "(Europe/Berlin), in 11 h." in answer
    [post] = [row for row in await world.outbox() if row.method == "post"]
    assert post.target["channel_id"] == TEAM_CHANNEL
    assert render_payload(post.payload) == (
        "Kudos from alice to @bob and @carol\nShipped the export on time @channel @dana\n#craft"
    )
    message = MESSAGE_ADAPTER.validate_python(post.payload)
    head, reason = message.blocks[0].text.parts, message.blocks[1].text.parts  # type: ignore[union-attr]
    # The receivers are the only mentions; the reason (with "@channel" in it) is plain text,
    # and a mention typed in it became a name.
    assert [p for p in head if isinstance(p, UserMention)] == [
        UserMention("bob", "bob"),
        UserMention("carol", "carol"),
    ]
    assert all(isinstance(p, Plain) for p in reason)
    for name in ("bob", "carol"):
        [dm] = await world.sent("dm", name)
        assert dm.startswith("alice gave you kudos (with @")
        assert "Shipped the export on time" in dm and "#craft · Posted in #C-team" in dm
    assert await world.stored() == (1, 2)


async def test_the_kudos_channel_setting_and_post_where_given(world: KudosWorld) -> None:
    assert "Saved: kudos are posted in #kudos." in await world.say(
        "settings channel #kudos", by="frank"
    )
    await world.say("@bob Great review")
    assert len(await world.sent("post", KUDOS_CHANNEL)) == 1
    assert "Saved: each kudos is posted where it is given." in await world.say(
        "settings where given", by="frank"
    )
    await world.say("@carol Great docs")
    assert len(await world.sent("post", TEAM_CHANNEL)) == 1
    # Given in a DM: the kudos channel, since there is no channel "where it was given".
    await world.kudos("@dana Great talk", channel="D-alice")
    assert len(await world.sent("post", KUDOS_CHANNEL)) == 2
    # --channel picks another channel for one kudos.
    await world.say("@erin Thanks --channel #kudos")
    assert len(await world.sent("post", KUDOS_CHANNEL)) == 3


async def test_settings_show_and_change_the_rules(world: KudosWorld) -> None:
    shown = await world.say("settings", by="frank")
    assert "5 kudos a day per giver" in shown and "#ownership #craft #helpfulness" in shown
    assert "Saved: the values are #impact #care." in await world.say(
        "settings values #Impact, <#C7|care> #impact", by="frank"
    )
    assert "Saved: each member may give 2 kudos a day" in await world.say(
        "settings quota 2", by="frank"
    )
    assert "at most 1 kudos a week" in await world.say("settings weekly 1", by="frank")
    assert "#craft is not one of this workspace's values: #impact #care." in await world.say(
        "@bob thanks #craft"
    )
    bad = {
        "settings quota 0": 'The quota is a whole number from 1 to 100, not "0".',
        "settings weekly lots": "The weekly is a whole number from 1 to 50",
        "settings values #ok #no!": '"#no!" is not a value name',
        "settings where somewhere": '"somewhere" is not a choice',
        "settings channel #nowhere": "I don't know the channel #nowhere.",
        "settings quota": "Give the new quota",
    }
    for line, problem in bad.items():
        assert problem in await world.say(line, by="frank"), line
    assert "Only admins can do that." in await world.say("settings quota 9", by="bob")
    assert "2 kudos a day per giver" in await world.say("settings", by="frank")


# -- bad input: a clear private answer, nothing saved ----------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("@alice Thanks me", "you can't give yourself kudos"),
        ("<@USYNCUP> Thanks bot", "is a bot; name a person instead."),
        ("@syncup Thanks bot", "is a bot; name a person instead."),
        ("Thanks everyone for the launch", "Name who the kudos are for"),
        ("@channel Thanks all", "Kudos go to people, not to @channel"),
        ("@bob", "Say what the kudos are for"),
        ("@bob #craft", "Say what the kudos are for"),
        (
            "@bob Great work #teamwork",
            "#teamwork is not one of this workspace's values: #ownership #craft #helpfulness.",
        ),
        ("@bob Thanks --private --channel #kudos", "A private kudos is posted in no channel"),
        ("@bob Thanks --loud", "Unknown option --loud"),
        ("@zed Thanks", "No member named @zed"),
        ("@bob " + "x" * 1001, "Keep the reason to 1,000 characters (this one has 1,001)."),
    ],
)
async def test_bad_kudos_are_refused_privately_and_save_nothing(
    world: KudosWorld, line: str, problem: str
) -> None:
    assert problem in await world.say(line)
    assert await world.stored() == (0, 0)
    assert await world.outbox() == []


async def test_over_the_quota_says_when_it_resets_in_the_givers_zone(world: KudosWorld) -> None:
    await world.say("@bob @carol @dana One", by="alice")
    await world.say("@erin @frank Two", by="alice")
    refused = await world.say("@bob Three", by="alice")
    assert refused == (
        "You have given all 5 of today's kudos. Your quota resets at midnight your time: "
        "00:00 Tue 10 Mar (Europe/Berlin), in 11 h."
    )
    assert await world.stored() == (2, 5)
    # Partly over: the reply says how many are left.
    await world.say("@alice @bob @dana @erin One", by="carol")
    assert (
        "You have 1 kudos left today, not 2: thank fewer people now, or the rest after midnight "
        "your time (00:00 Tue 10 Mar (America/New_York), in 16 h)."
    ) in await world.say("@frank @bob Two", by="carol")
    assert "0 of 5 kudos" not in await world.say("left", by="alice")
    assert "That was the last of your 5 kudos for today" in await world.say("left", by="alice")


async def test_the_quota_resets_at_each_givers_own_midnight(database: Database) -> None:
    # Monday 22:30 UTC: 23:30 in Berlin, 18:30 in New York.
    world = await make_world(database, datetime(2026, 3, 9, 22, 30, tzinfo=UTC))
    await world.say("settings quota 2", by="frank")
    for giver in ("alice", "carol"):
        await world.say("@bob @dana Thanks", by=giver)
        assert "You have given all 2 of today's kudos" in await world.say("@erin Thanks", by=giver)
    # 23:10 UTC: past midnight in Berlin (Tuesday), not in New York (still Monday).
    world.clock.set(datetime(2026, 3, 9, 23, 10, tzinfo=UTC))
    assert "You have 2 of 2 kudos left today" in await world.say("left", by="alice")
    assert "Kudos to @erin posted" in await world.say("@erin Thanks", by="alice")
    carol = await world.say("@erin Thanks", by="carol")
    assert (
        "resets at midnight your time: 00:00 Tue 10 Mar (America/New_York), in 4 h 50 min." in carol
    )
    # 04:10 UTC Tuesday: 00:10 in New York (EDT since 8 March).
    world.clock.set(datetime(2026, 3, 10, 4, 10, tzinfo=UTC))
    assert "Kudos to @erin posted" in await world.say("@erin Thanks", by="carol")
    assert "You have 1 of 2 kudos left today" in await world.say("left", by="carol")


async def test_at_most_n_kudos_a_week_from_one_giver_to_the_same_person(
    world: KudosWorld,
) -> None:
    for _ in range(3):
        await world.say("@bob Thanks", by="alice")
    refused = await world.say("@bob @carol Thanks again", by="alice")
    assert refused.startswith(
        "You have already given @bob 3 kudos this week, the most one person may give another; "
        "thank someone else, or again from 00:00 Mon 16 Mar (Europe/Berlin)"
    )
    assert await world.stored() == (3, 3)
    assert "Kudos to @bob posted" in await world.say("@bob Thanks", by="carol")
    world.clock.set(datetime(2026, 3, 15, 23, 30, tzinfo=UTC))  # Monday 00:30 in Berlin
    assert "Kudos to @bob posted" in await world.say("@bob Thanks", by="alice")


# -- private kudos ---------------------------------------------------------------------------


async def test_a_private_kudos_reaches_only_the_receivers_and_their_team_leads(
    world: KudosWorld,
) -> None:
    await world.make_team("Data", ["bob", "carol"], lead="dana")
    await world.make_team("Web", ["erin"], lead="frank")
    answer = await world.say("@bob Thanks for covering on-call --private #ownership")
    assert answer.startswith("Kudos to @bob (#ownership) sent privately")
    assert await world.sent("post") == []
    [to_bob] = await world.sent("dm", "bob")
    assert "Private: only you and your team leads see it." in to_bob
    [to_lead] = await world.sent("dm", "dana")
    assert to_lead.startswith(
        "alice gave private kudos to @bob; you see it as their team lead:\n"
        "Thanks for covering on-call"
    )
    assert await world.sent("dm", "frank") == [] and await world.sent("dm", "carol") == []
    # History: the giver, the receiver and the lead see it; a teammate and others do not.
    for viewer in ("alice", "bob", "dana"):
        shown = await world.say("history @bob", by=viewer)
        assert "alice → bob #ownership (private): Thanks for covering on-call" in shown, viewer
    for viewer in ("carol", "frank"):
        shown = await world.say("history @bob", by=viewer)
        assert "covering" not in shown and "1 private kudos not shown" in shown, viewer


# -- the form and the "Give kudos" shortcut --------------------------------------------------


async def test_the_form_and_the_give_kudos_shortcut(world: KudosWorld) -> None:
    opened = await world.kudos("")
    assert isinstance(opened, OpenForm)
    assert [f.name for f in opened.form.fields] == ["who", "reason", "value", "private"]
    errors = await world.submit("alice", {"who": "@bob", "reason": " ", "private": "no"})
    assert (
        isinstance(errors, FormErrors) and "Say what the kudos are for" in errors.errors["reason"]
    )
    errors = await world.submit("alice", {"who": "", "reason": "Thanks", "private": "no"})
    assert isinstance(errors, FormErrors) and "Name who" in errors.errors["who"]
    done = said(await world.submit("alice", {"who": "@bob @carol", "reason": "Thanks"}))
    assert done.startswith("Kudos to @bob and @carol posted in #C-team.")

    form = await world.shortcut("alice", "dana")
    assert isinstance(form, OpenForm) and form.form.state == "dana"
    assert form.form.title == "Kudos for dana"
    assert [f.name for f in form.form.fields] == ["reason", "value", "private"]
    done = said(
        await world.submit(
            "alice", {"reason": "Great talk", "value": ["craft"], "private": ["yes"]}, "dana"
        )
    )
    assert done.startswith("Kudos to @dana (#craft) sent privately")
    assert "You can't give yourself kudos" in said(await world.shortcut("alice", "alice")).replace(
        "you can't", "You can't"
    )
    assert "is a bot" in said(await world.shortcut("alice", BOT))
    assert await world.stored() == (2, 3)


# -- export ----------------------------------------------------------------------------------


async def test_the_export_has_a_row_per_kudos_and_receiver(world: KudosWorld) -> None:
    await world.say("@bob @carol =SUM(A1) shipped #craft")
    world.clock.advance(timedelta(days=2))
    await world.say("@dana quiet thanks --private")
    out = io.StringIO()
    async with world.db.transaction() as session:
        assert await export_kudos(session, out) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "workspace,kudos_id,given_at,giver,giver_platform_id,receiver,receiver_platform_id,"
        "value,private,channel_id,reason"
    )
    assert lines[1].startswith("Test,1,2026-03-09T12:00:00+00:00,alice,alice,bob,bob,craft,")
    assert lines[1].endswith(",False,C-team,'=SUM(A1) shipped")  # no formula in a spreadsheet
    out = io.StringIO()
    async with world.db.transaction() as session:
        since = (START + timedelta(days=1)).date()
        assert await export_kudos(session, out, since=since, fmt="json") == 1
    [row] = json.loads(out.getvalue())
    assert row["receiver"] == "dana" and row["private"] is True and row["channel_id"] == ""


# -- boards ----------------------------------------------------------------------------------


async def test_the_board_ranks_received_and_given_and_leaves_out_who_opted_out(
    world: KudosWorld,
) -> None:
    await world.say("@bob @carol Launch #craft", by="alice")
    await world.say("@bob Review #helpfulness", by="dana")
    await world.say("@carol Docs #craft", by="erin")
    await world.say("@dana Pairing", by="bob")
    world.clock.set(datetime(2026, 3, 2, 12, tzinfo=UTC))  # last week: only on the month board
    await world.say("@erin Old news #craft", by="frank")
    world.clock.set(START + timedelta(hours=1))
    board = await world.say("board", by="frank")
    assert board.splitlines()[:4] == [
        "Kudos board: this week",
        "Since Mon 9 Mar 2026 (Europe/Berlin).",
        "Received",
        "1. bob: 2 (#craft 1, #helpfulness 1)",
    ]
    assert "1. carol: 2 (#craft 2)\n3. dana: 1\nGiven\n1. alice: 2 (#craft 2)\n" in board
    assert "2. bob: 1\n2. dana: 1 (#helpfulness 1)\n2. erin: 1 (#craft 1)\n" in board
    assert "frank" not in board
    month = await world.say("board #craft month", by="frank")
    assert month.startswith("Kudos board: this month, #craft\nSince Sun 1 Mar 2026")
    received, given = month.split("Given\n")
    assert received.endswith("Received\n1. carol: 2\n2. bob: 1\n2. erin: 1\n")
    assert given.startswith("1. alice: 2\n2. erin: 1\n2. frank: 1\n")
    # bob opts out: he appears nowhere ranked, received or given; others keep their counts.
    assert "You are off the kudos boards" in await world.say("optout", by="bob")
    board = await world.say("board", by="frank")
    assert "bob" not in board and "1. carol: 2 (#craft 2)\n2. dana: 1\n" in board
    assert "1. alice: 2" in board
    assert "Launch" in await world.say("history", by="bob")  # still his history
    await world.say("optin", by="bob")
    assert "1. bob: 2" in await world.say("board", by="frank")
    for line, problem in {
        "board year": '"year" is neither a period (week, month or quarter) nor a #value',
        "board #speed": "#speed is not one of this workspace's values",
    }.items():
        assert problem in await world.say(line), line


async def test_the_quarter_board_starts_with_the_quarter_in_the_viewers_zone(
    world: KudosWorld,
) -> None:
    world.clock.set(datetime(2026, 3, 31, 23, 30, tzinfo=UTC))  # 1 April in Berlin and Kolkata
    await world.say("@carol Q2 already #ownership", by="alice")
    assert "Since Wed 1 Apr 2026 (Europe/Berlin)" in await world.say("board quarter", by="bob")
    # In New York it is still 31 March: the first quarter, which has the kudos too.
    carol = await world.say("board quarter", by="carol")
    assert "Since Thu 1 Jan 2026 (America/New_York)" in carol and "1. carol: 1" in carol


async def test_two_kudos_at_once_cannot_both_take_the_last_one(
    world: KudosWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each giver's kudos are serialised (a row lock on PostgreSQL, SQLite's one writer): with
    a pause between the quota check and the insert, five at once still give one."""
    checked = give_module.check_limits

    async def slow_check(*args: Any) -> None:
        await checked(*args)
        await asyncio.sleep(0.2)

    monkeypatch.setattr(give_module, "check_limits", slow_check)
    await world.say("settings quota 1", by="frank")
    names = ("bob", "carol", "dana", "erin", "frank")
    answers = await asyncio.gather(*(world.say(f"@{name} Thanks") for name in names))
    assert sum("posted in" in a for a in answers) == 1, answers
    assert sum("You have given all 1 of today's kudos" in a for a in answers) == 4, answers
    assert await world.stored() == (1, 1)


@pytest.mark.parametrize(
    ("line", "receivers", "reason", "value", "private"),
    [
        ("@bob @carol Shipped it #craft", ("bob", "carol"), "Shipped it", "craft", False),
        ("<@U1|bob>, <@U2> Shipped it", ("<@U1|bob>", "<@U2>"), "Shipped it", None, False),
        ("@bob @carol's help #1 team --private", ("bob",), "@carol's help #1 team", None, True),
        (
            "@bob Fixed #123 and #456 #ownership",
            ("bob",),
            "Fixed #123 and #456",
            "ownership",
            False,
        ),
        ("@bob Thanks <#C9|craft>", ("bob",), "Thanks", "craft", False),
        ("@bob @bob Thanks --channel #wins", ("bob",), "Thanks", None, False),
    ],
)
def test_the_one_line_syntax(
    line: str, receivers: tuple[str, ...], reason: str, value: str | None, private: bool
) -> None:
    parsed = parse_line(line)
    assert tuple(r.name if r.user_id is None else r.raw for r in parsed.receivers) == receivers
    assert (parsed.reason, parsed.value, parsed.private) == (reason, value, private)
