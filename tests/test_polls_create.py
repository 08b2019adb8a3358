"""Creating polls: by the one-line syntax and by the form, every kind, and every bad input
answered privately with nothing saved; the `/poll` default subcommand on line-based platforms
and Discord's typed options.

This module also holds :class:`PollWorld`, the harness of the poll tests: the core and the
scheduler (polls registered) on a FakeClock over one database (SQLite and PostgreSQL), with a
workspace, a channel, members, an optional fake platform directory, and the outbox read directly
(no delivery worker runs here).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, null, select

from bot import directory
from bot.chat import MESSAGE_ADAPTER, FormErrors, OpenForm, Reply, Response, SelectField
from bot.commands.parse import pick_subcommand
from bot.core import Core
from bot.errors import UserError
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import polls
from bot.features.polls import ballots, live, options, render
from bot.features.polls.commands import CREATE_FORM
from bot.features.polls.spec import POLL
from bot.port import ChannelInfo, DirectoryUnavailable, MemberInfo
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import Channel, ChannelMember, OutboxMessage
from storage.polls import (
    Poll,
    PollBallot,
    PollKind,
    PollParticipant,
    ResultsVisibility,
    keyed_table,
)
from tests.fakes.clock import FakeClock
from tests.test_standup_runtime import render as render_payload

PLATFORM = "test"
CHANNEL = "C-team"
CHANNEL_NAME = "team"
# Monday 9 March 2026, 09:00 UTC: 10:00 in Berlin.
START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
TEAM = {
    "alice": "Europe/Berlin",
    "bob": "Europe/Berlin",
    "carol": "America/New_York",
    "dana": "Asia/Kolkata",
    "erin": "Europe/Berlin",
    "frank": "Europe/Berlin",
}


class FakeDirectory:
    """A platform's view of people and channels: ``in_channel`` maps a channel to user ids."""

    def __init__(self, zones: dict[str, str], in_channel: dict[str, list[str]]) -> None:
        self.zones = zones
        self.in_channel = in_channel
        self.unavailable = False

    def _info(self, user_id: str) -> MemberInfo:
        return MemberInfo(user_id, user_id, self.zones.get(user_id))

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        wanted = user_id or name
        return self._info(wanted) if wanted in self.zones else None

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        if channel_id in self.in_channel:
            return ChannelInfo(channel_id, CHANNEL_NAME if channel_id == CHANNEL else channel_id)
        return None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        if self.unavailable:
            raise DirectoryUnavailable("Turn on the members intent.")
        return [self._info(u) for u in self.in_channel.get(channel_id, [])]


@dataclass
class PollWorld:
    db: Database
    clock: FakeClock
    core: Core
    scheduler: Scheduler
    workspace_id: int
    channel_id: int
    zones: dict[str, str]
    members: dict[str, int]
    admins: set[str] = field(default_factory=set)
    _events: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    # -- events --------------------------------------------------------------------------

    def actor(self, name: str) -> Actor:
        return Actor(name, name, self.zones.get(name), is_platform_admin=name in self.admins)

    def origin(self, channel: str | None = CHANNEL, event_id: str | None = None) -> Origin:
        return Origin(
            PLATFORM,
            "T1",
            event_id or f"e{next(self._events)}",  # type: ignore[call-overload]
            "Test",
            channel,
            CHANNEL_NAME if channel == CHANNEL else "",
        )

    async def handle(self, event: Any) -> Response:
        """One event through the core, then what it started after commit (live results)."""
        response = await self.core.handle(event)
        await self.core.idle()
        return response

    async def command(self, line: str, by: str = "alice", channel: str = CHANNEL) -> Response:
        return await self.handle(
            CommandInvocation(self.origin(channel), self.actor(by), "poll", line)
        )

    async def options(self, sub: str, by: str = "alice", **values: Any) -> Response:
        """A Discord-style invocation: the subcommand and typed options."""
        event = CommandInvocation(
            self.origin(), self.actor(by), "poll", subcommand=sub, options=values
        )
        return await self.handle(event)

    async def vote(
        self,
        name: str,
        poll_id: int,
        *choices: int,
        event_id: str | None = None,
        menu: bool = False,
    ) -> Response:
        """A button press (one choice) or a menu selection (``menu``, or several choices)."""
        origin = self.origin(event_id=event_id)
        if menu or len(choices) != 1:
            event = ActionInvocation(
                origin,
                self.actor(name),
                render.vote_action_id(poll_id),
                str(choices[0]) if choices else "",
                tuple(str(c) for c in choices),
                CHANNEL,
                "m1",
            )
        else:
            event = ActionInvocation(
                origin,
                self.actor(name),
                render.vote_action_id(poll_id),
                str(choices[0]),
                (),
                CHANNEL,
                "m1",
            )
        return await self.handle(event)

    async def press(self, name: str, action_id: str, value: str = "") -> Response:
        return await self.handle(
            ActionInvocation(self.origin(), self.actor(name), action_id, value)
        )

    async def submit(self, name: str, form_id: str, values: dict[str, Any], state: str) -> Response:
        return await self.handle(
            FormSubmission(self.origin(), self.actor(name), form_id, dict(values), state)
        )

    async def create(self, line: str, by: str = "alice") -> int:
        """A poll from one line; its id."""
        response = await self.command(line, by)
        assert isinstance(response, Reply), response
        assert "is up in #team" in said(response), said(response)
        async with self.db.transaction() as session:
            found = await session.scalar(select(func.max(Poll.id)))
        assert found is not None
        return int(found)

    # -- time -----------------------------------------------------------------------------

    async def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, stopping at every booked occurrence on the way."""
        for _ in range(1000):
            due = [when for _, when in self.scheduler.next_runs() if when <= target]
            if not due:
                break
            self.clock.set(max(min(due), self.clock.now()))
            await self.scheduler.reconcile()
        self.clock.set(target)
        await self.scheduler.reconcile()

    # -- what is stored --------------------------------------------------------------------

    async def poll(self, poll_id: int) -> Poll:
        async with self.db.transaction() as session:
            found = await session.get(Poll, poll_id)
            assert found is not None
            return found

    async def count(self, model: type[Any], *where: Any) -> int:
        async with self.db.transaction() as session:
            query = select(func.count()).select_from(model)
            for condition in where:
                query = query.where(condition)
            return int((await session.execute(query)).scalar_one())

    async def ballots(self, poll_id: int) -> list[tuple[int, str | None, int | None]]:
        """(choice, text, member id) of every ballot, sorted; an open anonymous poll's from
        its own table."""
        async with self.db.transaction() as session:
            poll = await session.get(Poll, poll_id)
            assert poll is not None
            if poll.anonymous and poll.closed_at is None:
                keyed = keyed_table(poll_id)
                query = select(keyed.c.choice, keyed.c.text, null())
            else:
                query = select(PollBallot.choice, PollBallot.text, PollBallot.member_id).where(
                    PollBallot.poll_id == poll_id
                )
            rows = await session.execute(query)
            return sorted(rows.all(), key=lambda r: (r[0], r[1] or "", r[2] or 0))

    async def secret(self, poll_id: int) -> bytes | None:
        """An open anonymous poll's secret (None once it closed, or for a named poll)."""
        async with self.db.transaction() as session:
            return await ballots.read_secret(session, poll_id)

    async def participants(self, poll_id: int) -> dict[str, tuple[bool, bool]]:
        """name -> (voted, final)."""
        names = {v: k for k, v in self.members.items()}
        async with self.db.transaction() as session:
            rows = await session.execute(
                select(
                    PollParticipant.member_id, PollParticipant.voted, PollParticipant.final
                ).where(PollParticipant.poll_id == poll_id)
            )
            return {names.get(m, str(m)): (v, f) for m, v, f in rows.all()}

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def sent(self, method: str, *, to: str | None = None) -> list[str]:
        """Rendered outbox messages of one method (and recipient, for DMs)."""
        return [
            render_payload(row.payload)
            for row in await self.outbox()
            if row.method == method and (to is None or row.target.get("user_id") == to)
        ]

    async def mark_sent(self, at: datetime | None = None) -> None:
        """What the delivery worker would record: every pending row sent (now, or ``at``)."""
        async with self.db.transaction() as session:
            for n, row in enumerate(await session.scalars(select(OutboxMessage))):
                if row.sent_at is None:
                    row.status = "sent"  # type: ignore[assignment]
                    row.sent_at = at or self.clock.now()
                    row.platform_message_id = row.platform_message_id or f"p{row.id}"
                    row.platform_channel_id = row.target.get("channel_id") or f"D{n}"


async def make_poll_world(
    db: Database,
    zones: dict[str, str] = TEAM,
    *,
    start: datetime = START,
    in_channel: Iterable[str] | None = None,
    platform: FakeDirectory | None = None,
    admins: Iterable[str] = (),
    instance: str = "test",
    seed: bool = True,
) -> PollWorld:
    """A world over ``db``; ``in_channel``: who syncup has seen in #team (default: everyone)."""
    clock = FakeClock(start)
    members: dict[str, int] = {}
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, "T1", "Test", start)
        channel = await directory.ensure_channel(session, workspace, CHANNEL, CHANNEL_NAME, start)
        for name, zone in zones.items():
            member = await directory.ensure_member(
                session, workspace, Actor(name, name, zone), start
            )
            member.dm_channel_id = f"D-{name}"
            members[name] = member.id
        if seed:
            seen = zones if in_channel is None else list(in_channel)
            for name in seen:
                session.add(ChannelMember(channel_id=channel.id, member_id=members[name]))
        workspace_id, channel_id = workspace.id, channel.id
    core = Core(db, clock)
    core.directory = platform
    scheduler = Scheduler(db, clock, instance=instance, reconcile_interval=3600)
    core.on_schedules_changed.append(scheduler.reconcile)  # as bot.app wires them
    polls.register(core, scheduler)
    live.install(core).delay = 0
    await scheduler.start()
    return PollWorld(
        db, clock, core, scheduler, workspace_id, channel_id, dict(zones), members, set(admins)
    )


@asynccontextmanager
async def running_world(db: Database, **settings: Any) -> AsyncIterator[PollWorld]:
    """:func:`make_poll_world`, stopped at the end (frank is an admin unless ``admins`` says)."""
    settings.setdefault("admins", ["frank"])
    built = await make_poll_world(db, **settings)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


def said(response: Response) -> str:
    """A private reply as the console would print it."""
    assert isinstance(response, Reply), response
    return render_payload(MESSAGE_ADAPTER.dump_python(response.message, mode="json"))


def limits(max_options: int = 25, platform: str = "discord") -> options.Limits:
    return options.Limits(max_options, platform, "Europe/Berlin", START)


# -- the one-line syntax ----------------------------------------------------------------------


def test_a_one_liner_with_every_option() -> None:
    parsed = options.parse_line(
        '"Ship Friday?" "Yes" "No" "Not sure" --anonymous --closes 2d --threshold 4', limits()
    )
    assert parsed == options.PollInput(
        question="Ship Friday?",
        kind=PollKind.SINGLE,
        options=("Yes", "No", "Not sure"),
        max_choices=1,
        anonymous=True,
        results=ResultsVisibility.CLOSED,  # the default of anonymous polls
        closes_at=START + timedelta(days=2),
        threshold=4,
    )


@pytest.mark.parametrize(
    ("line", "question", "choices"),
    [
        # Slack and macOS autocorrect: curly quotes count as straight ones.
        ("\u201cShip Friday?\u201d \u201cYes\u201d \u201cNo\u201d", "Ship Friday?", ("Yes", "No")),
        (
            "\u2018Who\u2019s in?\u2019 \u2018Me\u2019 \u2018Not me\u2019",
            "Who\u2019s in?",
            ("Me", "Not me"),
        ),
        # An apostrophe is not a quote; without quotes the question ends at the "?".
        ("Who's in? Me You", "Who's in?", ("Me", "You")),
        ("Ship it on Friday? Yes No", "Ship it on Friday?", ("Yes", "No")),
        # Options may be mixed in with flags; # and backslashes are plain text.
        (
            '"Best #channel?" --results live "#team" "C:\\temp"',
            "Best #channel?",
            ("#team", "C:\\temp"),
        ),
    ],
)
def test_one_liner_quotes(line: str, question: str, choices: tuple[str, ...]) -> None:
    parsed = options.parse_line(line, limits())
    assert (parsed.question, parsed.options) == (question, choices)


def test_one_liner_kinds() -> None:
    multiple = options.parse_line('"Lunch?" Pizza Sushi Tacos --multiple 2', limits())
    assert (multiple.kind, multiple.max_choices) == (PollKind.MULTIPLE, 2)
    unlimited = options.parse_line('--multiple "Lunch?" Pizza Sushi Tacos', limits())
    assert (unlimited.kind, unlimited.max_choices, unlimited.question) == (
        PollKind.MULTIPLE,
        3,
        "Lunch?",
    )
    assert options.parse_line('"Pace?" --scale', limits()).kind is PollKind.SCALE
    assert options.parse_line('"Recommend us?" --enps', limits()).kind is PollKind.ENPS
    text_poll = options.parse_line('"Ideas?" --text --anonymous --results creator', limits())
    assert (text_poll.kind, text_poll.results) == (PollKind.TEXT, ResultsVisibility.CREATOR)
    # Without quotes, a poll without options takes every word as its question; with options,
    # a question mark ends it.
    scale = options.parse_line("How sustainable was the pace --scale", limits())
    assert (scale.question, scale.options) == ("How sustainable was the pace", ())
    unquoted = options.parse_line("Ship Friday? Yes No", limits())
    assert (unquoted.question, unquoted.options) == ("Ship Friday?", ("Yes", "No"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2d", START + timedelta(days=2)),
        ("3h", START + timedelta(hours=3)),
        ("30m", START + timedelta(minutes=30)),
        ("1w", START + timedelta(weeks=1)),
        # Local times in the creator's zone (Berlin is UTC+1 in March before the 29th).
        ("2026-03-12 17:00", datetime(2026, 3, 12, 16, 0, tzinfo=UTC)),
        ("2026-03-12", datetime(2026, 3, 12, 22, 59, tzinfo=UTC)),
        # 02:30 on 29 March does not exist in Berlin: shifted forward by the gap.
        ("2026-03-29 02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
    ],
)
def test_deadlines(raw: str, expected: datetime) -> None:
    assert options.parse_deadline(raw, START, "Europe/Berlin") == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("2026-03-01", "is in the past"),
        ("0m", "is in the past"),
        ("next friday", 'I can\'t read the deadline "next friday"'),
        ("2028-01-01", "more than a year away"),
    ],
)
def test_bad_deadlines(raw: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        options.parse_deadline(raw, START, "Europe/Berlin")


# -- the default subcommand -------------------------------------------------------------------


def test_a_line_that_is_not_a_subcommand_is_a_create_line() -> None:
    create, rest = pick_subcommand(POLL, '"Ship Friday?" Yes No')
    assert (create and create.name, rest) == ("create", '"Ship Friday?" Yes No')
    assert pick_subcommand(POLL, "")[0] == POLL.subcommand("create")
    listed, rest = pick_subcommand(POLL, "list")
    assert (listed and listed.name, rest) == ("list", "")
    # A quoted first word is never a subcommand's name.
    quoted, rest = pick_subcommand(POLL, '"list" A B')
    assert (quoted and quoted.name, rest) == ("create", '"list" A B')
    closing, rest = pick_subcommand(POLL, "close 12")
    assert (closing and closing.name, rest) == ("close", "12")


# -- creating through the core -------------------------------------------------------------------


async def test_create_by_one_liner_posts_the_poll_with_buttons(world: PollWorld) -> None:
    response = await world.command('"Ship Friday?" "Yes" "No" --closes 2d')
    assert said(response).startswith(
        "Poll #1 is up in #team; it closes Wed 11 Mar 2026 10:00 (Europe/Berlin)."
    )
    poll = await world.poll(1)
    assert (poll.question, poll.options, poll.kind, poll.anonymous) == (
        "Ship Friday?",
        ["Yes", "No"],
        "single",
        False,
    )
    assert (poll.results, poll.threshold, poll.closes_at) == ("live", 5, START + timedelta(days=2))
    # Lasting 48 h, it reminds 24 h before the deadline.
    assert poll.remind_at == START + timedelta(days=1)
    assert await world.secret(poll.id) is None  # named polls have no secret
    posts = await world.outbox()
    assert [(r.method, r.idempotency_key, r.target) for r in posts] == [
        ("post", "poll:1:post", {"channel_id": CHANNEL})
    ]
    assert poll.message_outbox_id == poll.live_outbox_id == posts[0].id
    shown = render_payload(posts[0].payload)
    assert "Poll #1\nShip Friday?\nSingle choice · asked by alice" in shown
    assert "[1] Yes  [2] No" in shown
    assert "Live results appear once 5 have answered (0 so far)." in shown
    # Everyone seen in the channel may answer.
    assert set(await world.participants(1)) == set(TEAM)
    # The close and the reminder are booked.
    booked = dict(world.scheduler.next_runs())
    assert booked == {
        "poll:1:close:0": START + timedelta(days=2),
        "poll:1:remind:0": START + timedelta(days=1),
    }


@pytest.mark.parametrize(
    ("line", "kind", "controls"),
    [
        ('"Ship?" Yes No', PollKind.SINGLE, ["button"] * 2),
        ('"Where?" A B C D E F', PollKind.SINGLE, ["select:1:6"]),
        ('"Lunch?" Pizza Sushi Tacos --multiple 2', PollKind.MULTIPLE, ["select:2:3"]),
        ('"Pace?" --scale', PollKind.SCALE, ["button"] * 5),
        ('"Recommend us?" --enps', PollKind.ENPS, ["select:1:11"]),
        ('"Ideas?" --text', PollKind.TEXT, ["button"]),
    ],
)
async def test_each_kind_gets_its_controls(
    world: PollWorld, line: str, kind: PollKind, controls: list[str]
) -> None:
    poll_id = await world.create(line)
    poll = await world.poll(poll_id)
    assert poll.kind == kind.value
    found: list[str] = []
    for block in render.vote_blocks(poll):
        for element in getattr(block, "elements", ()):
            if element.kind == "button":
                found.append("button")
            else:
                found.append(f"select:{element.max_selected}:{len(element.options)}")
    assert found == controls
    # Every control has the poll's one action id: the choice is in the value only, so nothing
    # that logs action ids with who acted can tell what they chose.
    elements = [e for b in render.vote_blocks(poll) for e in getattr(b, "elements", ())]
    action = "poll-answer" if kind is PollKind.TEXT else "poll-vote"
    assert {e.action_id for e in elements} == {f"{action}:{poll_id}"}


async def test_create_by_form(world: PollWorld) -> None:
    opened = await world.command("")
    assert isinstance(opened, OpenForm)
    form = opened.form
    assert form.form_id == CREATE_FORM and form.state == str(world.channel_id)
    assert [f.name for f in form.fields] == list(options.FORM_FIELDS)
    kind = next(f for f in form.fields if isinstance(f, SelectField) and f.name == "kind")
    assert [c.value for c in kind.options] == ["single", "multiple", "scale", "enps", "text"]
    response = await world.submit(
        "bob",
        CREATE_FORM,
        {
            "question": "Which talks?",
            "kind": ["multiple"],
            "options": "Rust\nGo\n\nZig\n",
            "max_choices": "2",
            "anonymous": ["yes"],
            "results": "",
            "closes": "2026-03-12 17:00",
            "threshold": "3",
        },
        form.state,
    )
    assert "Poll #1 is up in #team" in said(response)
    poll = await world.poll(1)
    assert (poll.kind, poll.options, poll.max_choices) == ("multiple", ["Rust", "Go", "Zig"], 2)
    assert (poll.anonymous, poll.results, poll.threshold) == (True, "closed", 3)
    assert poll.closes_at == datetime(2026, 3, 12, 16, 0, tzinfo=UTC)
    assert poll.creator_id == world.members["bob"]
    secret = await world.secret(poll.id)
    assert secret is not None and len(secret) == 32


async def test_discord_create_with_a_line_option(world: PollWorld) -> None:
    response = await world.options("create", line='"Ship Friday?" Yes No --anonymous')
    assert "Poll #1 is up in #team" in said(response)
    assert (await world.poll(1)).anonymous
    assert isinstance(await world.options("create"), OpenForm)


async def test_help_shows_the_one_line_syntax(world: PollWorld) -> None:
    shown = said(await world.command("help"))
    assert "/poll create [LINE...]" in shown
    assert "/poll reopen <ID> [CLOSES...]" in shown
    assert "--multiple [N]" in shown and '/poll "Ship Friday?" "Yes" "No"' in shown


async def test_without_anyone_seen_in_the_channel_the_whole_workspace_may_answer(
    database: Database,
) -> None:
    async with running_world(database, seed=False) as built:
        await built.create('"Ship?" Yes No')
        assert set(await built.participants(1)) == set(TEAM)
        post = (await built.sent("post"))[0]
        assert (
            "syncup can't see who is in #team, so everyone it knows in this workspace may "
            "answer (6 people)." in post
        )


async def test_with_a_platform_directory_the_channel_is_the_audience(database: Database) -> None:
    platform = FakeDirectory(TEAM, {CHANNEL: ["alice", "bob", "carol"]})
    async with running_world(database, seed=False, platform=platform) as built:
        await built.create('"Ship?" Yes No')
        assert set(await built.participants(1)) == {"alice", "bob", "carol"}
        assert "everyone it knows" not in (await built.sent("post"))[0]
        # The platform refuses to list members: those seen there (and the creator) answer.
        platform.unavailable = True
        await built.create('"Again?" Yes No', by="dana")
        assert set(await built.participants(2)) == {"alice", "bob", "carol", "dana"}


# -- bad input: a private reply, nothing saved -----------------------------------------------

BAD_LINES = [
    ('"Ship?" Yes', "A poll needs at least 2 options; you gave 1."),
    ('"Ship?"', "A poll needs at least 2 options; you gave none."),
    (
        '"Pick" ' + " ".join(f"o{n}" for n in range(26)),
        "Test can show at most 25 options in one poll; you gave 26.",
    ),
    ('"Ship?" Yes yes', '"Yes" and "yes" are the same option'),
    ('"Ship?" Yes " Yes "', '"Yes" is there twice'),
    ('"Ship?" Yes ""', "Option 2 is empty"),
    ('"Ship?" Yes "' + "x" * 76 + '"', "is 76 characters; keep options to 75"),
    ('"Ship?" Yes No --closes 2026-03-01', "is in the past"),
    ('"Ship?" Yes No --closes soon', 'I can\'t read the deadline "soon"'),
    ('"Ship?" Yes No --threshold 2', "The threshold can't be below 3"),
    ('"Ship?" Yes No --threshold 51', "The threshold can be 50 at most"),
    ('"Ship?" Yes No --anonymous --results live', "Live counts are never shown for anonymous"),
    ('"Lunch?" A B C --multiple 4', "must be 2 to 3 (the number of options"),
    ('"Lunch?" A B C --multiple 0', "must be 2 to 3"),
    ('"Lunch?" A B C --multiple 1', "must be 2 to 3 (the number of options; 1 is a single"),
    ('"Lunch?" A B C --multiple -1', "must be 2 to 3 (the number of options; 1 is a single"),
    ('"Lunch?" A B C --multiple 2.5', "--multiple takes a whole number from 2 to the number"),
    (
        "No question mark here Yes No",
        'put the question in quotes, e.g. /poll "No question mark here" Yes No, or end',
    ),
    ("Lunch Pizza Sushi", "I can't tell where the question ends"),
    ('"Ship?" Yes No --closes 2d --closes 3d', "--closes is given twice"),
    ('"Ship?" Yes No --closes 2d --clo 3d', "--closes is given twice"),
    ('"Ship?" Yes No --threshold 4 --threshold 5', "--threshold is given twice"),
    ('"Ship?" Yes No --results live --results closed', "--results is given twice"),
    ('"Lunch?" A B C --multiple 2 --multiple 3', "--multiple is given twice"),
    ('"Ship?" Yes No --closes -2d', 'The deadline "-2d" is in the past: give a positive'),
    ('"Ship?" Yes No --closes -30m', 'The deadline "-30m" is in the past'),
    ('"Ship?" Yes No --closes 0d', "is in the past"),
    ('"Ship?" Yes No --threshold -1', "The threshold can't be below 3"),
    ('"Pace?" Low High --scale', 'takes no options (its answers are 1 to 5); leave out "Low"'),
    ('"NPS?" A B --enps', "takes no options (its answers are 0 to 10)"),
    ('"Ideas?" A B --text', "takes no options (everyone writes their own answer)"),
    ('"Pace?" --scale --enps', "Pick one kind of poll"),
    ('"Ship?" Yes No --results sometimes', "--results must be one of 'live', 'closed', 'creator'"),
    ('"Ship?" Yes No --threshold five', '--threshold takes a whole number, not "five"'),
    ('"Ship?" Yes No --colour red', "I don't know --colour red."),
    ('"Ship? Yes No', "A quotation mark is not closed"),
    ("--anonymous", "Write the question first"),
    ("lsit", "Did you mean /poll list?"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES)
async def test_bad_one_liners_are_refused_and_save_nothing(
    world: PollWorld, line: str, problem: str
) -> None:
    response = await world.command(line)
    assert problem in said(response), said(response)
    assert await world.count(Poll) == 0
    assert await world.count(PollParticipant) == 0
    assert await world.count(OutboxMessage) == 0
    assert world.scheduler.next_runs() == []


async def test_platform_limit_is_named(world: PollWorld) -> None:
    world.core.max_select_options = 25
    line = '"Pick" ' + " ".join(f"o{n}" for n in range(26))
    event = CommandInvocation(
        Origin("discord", "T1", "d1", "Test", CHANNEL, CHANNEL_NAME),
        world.actor("alice"),
        "poll",
        line,
    )
    response = await world.handle(event)
    assert "Discord can show at most 25 options in one poll; you gave 26." in said(response)


FORM = {
    "question": "Ship?",
    "kind": "single",
    "options": "Yes\nNo",
    "max_choices": "",
    "anonymous": "no",
    "results": "",
    "closes": "",
    "threshold": "",
}


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"options": "Yes"}, {"options": "A poll needs at least 2 options; you gave 1."}),
        ({"question": "  "}, {"question": "Write the question."}),
        ({"options": "Yes\nYES"}, {"options": '"Yes" and "YES" are the same option'}),
        ({"closes": "2020-01-01"}, {"closes": "is in the past"}),
        ({"threshold": "1"}, {"threshold": "can't be below 3"}),
        ({"threshold": "many"}, {"threshold": 'Write the threshold as a number, not "many".'}),
        (
            {"anonymous": "yes", "results": "live", "threshold": "2"},
            {"results": "Live counts are never shown", "threshold": "can't be below 3"},
        ),
        ({"kind": "multiple", "max_choices": "9"}, {"max_choices": "must be 2 (the number"}),
        ({"kind": "multiple", "max_choices": "1"}, {"max_choices": "must be 2 (the number"}),
        ({"kind": "scale"}, {"options": "takes no options"}),
        ({"kind": "poll"}, {"kind": '"poll" is not a kind of poll.'}),
    ],
)
async def test_bad_forms_keep_the_form_open_and_save_nothing(
    world: PollWorld, changes: dict[str, str], errors: dict[str, str]
) -> None:
    response = await world.submit("alice", CREATE_FORM, {**FORM, **changes}, str(world.channel_id))
    assert isinstance(response, FormErrors), response
    assert set(response.errors) == set(errors)
    for name, problem in errors.items():
        assert problem in response.errors[name], response.errors
    assert await world.count(Poll) == 0
    assert await world.count(OutboxMessage) == 0


async def test_a_form_for_another_workspaces_channel_is_refused(world: PollWorld) -> None:
    response = await world.submit("alice", CREATE_FORM, FORM, "999")
    assert "That form has expired" in said(response)
    assert await world.count(Poll) == 0


async def test_a_poll_in_a_dm_is_refused(world: PollWorld) -> None:
    response = await world.command('"Ship?" Yes No', channel="D-alice")
    assert "Run /poll in the channel the poll is for" in said(response)
    assert await world.count(Poll) == 0
    assert await world.count(Channel) == 1


async def test_the_creator_hears_when_too_few_can_answer(database: Database) -> None:
    async with running_world(database, in_channel=["alice", "bob", "carol", "dana"]) as built:
        response = said(await built.command('"Ship?" Yes No'))
        assert response.startswith(
            "Poll #1 is up in #team; it stays open until you close it (/poll close 1). Only 4 "
            "can answer, fewer than the 5 answers its results need: they will stay hidden "
            "unless you /poll close 1 and ask again with --threshold 4."
        )
        assert "Only 4 can answer" not in said(await built.command('"Again?" A B --threshold 4'))
