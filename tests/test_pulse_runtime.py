"""Pulse rounds at run time (issue items 2-4; invariants 1, 6, 7): a round goes out at the team's
local time exactly once (two schedulers, a restart), through both DST transitions, with the
questions of the bank in rotation; one DM per member with every question; reminders only to
members who have not answered (from participation, the polls stay anonymous); the close seals
the polls and posts the results; paused pulses and uninstalled workspaces schedule nothing;
downtime sends a missed round only while it is still open.

The harness is :class:`tests.test_standup_runtime.World` (the core and the scheduler on a
FakeClock, SQLite and PostgreSQL, the outbox read directly) with the polls and pulse features
registered; votes go through the polls feature's real vote action.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import directory
from bot.chat import MESSAGE_ADAPTER, Actions, Bold, Button, Chart, Message, Plain, Section, Select
from bot.core import Core
from bot.delivery.outbox import decode_message
from bot.events import ActionInvocation, Actor, CommandInvocation, FormSubmission, Origin
from bot.features import polls as polls_feature
from bot.features import pulse as pulse_feature
from bot.features.polls import ballots
from bot.features.pulse.bank import DEFAULT_BANK, default_bank
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import (
    OccurrenceClaim,
    RoleAssignment,
    RoleName,
    Team,
    TeamMember,
    Workspace,
)
from storage.polls import Poll, PollBallot, PollParticipant, Pulse, PulseRound, keyed_table
from tests.fakes.clock import FakeClock
from tests.test_standup_runtime import World, render

PLATFORM = "test"
CHANNEL = "C-platform"
ZONE = "Europe/Berlin"
TEAM = {name: ZONE for name in ("alice", "bob", "carol", "dana", "erin", "frank")}
LEAD = "lead"
# Monday 2 March 2026, 08:00 UTC (09:00 in Berlin, on winter time until 29 March).
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
WED = date(2026, 3, 4)
_events = itertools.count(1)


def at(day: date, clock: str, zone: str = ZONE) -> datetime:
    """A local wall-clock time as a UTC instant (the first of a repeated time; a skipped one
    shifted forward by the gap)."""
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone)).astimezone(UTC)


# -- the harness --------------------------------------------------------------------------------


def build_core(db: Database, clock: FakeClock, instance: str) -> tuple[Core, Scheduler]:
    core = Core(db, clock)
    scheduler = Scheduler(db, clock, instance=instance, reconcile_interval=3600)
    polls_feature.register(core, scheduler)
    pulse_feature.register(core, scheduler)
    core.on_schedules_changed.append(scheduler.reconcile)  # as bot.app wires them
    return core, scheduler


async def make_pulse_world(
    db: Database, zones: dict[str, str] | None = None, start: datetime = START
) -> World:
    zones = dict(zones or TEAM)
    zones.setdefault(LEAD, ZONE)
    clock = FakeClock(start)
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, "T1", "Test", start)
        members: dict[str, int] = {}
        for name, zone in zones.items():
            member = await directory.ensure_member(
                session, workspace, Actor(name, name, zone), start
            )
            member.dm_channel_id = f"D-{name}"
            members[name] = member.id
        session.add(
            RoleAssignment(
                workspace_id=workspace.id,
                member_id=members[LEAD],
                role=RoleName.TEAM_LEAD,
                granted_at=start,
            )
        )
        channel = await directory.ensure_channel(session, workspace, CHANNEL, "platform", start)
        workspace_id, channel_id = workspace.id, channel.id
    core, scheduler = build_core(db, clock, "test")
    await scheduler.start()
    return World(db, clock, core, scheduler, workspace_id, channel_id, zones, members)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_pulse_world(database)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


async def add_pulse(
    world: World,
    names: list[str] | None = None,
    *,
    zone: str = ZONE,
    team: str = "Platform",
    **overrides: Any,
) -> int:
    """A team with a pulse, straight into the database: Wednesdays 10:00 team time, open 4
    days, 3 questions a round from the default bank, threshold 5, digest Monday 09:00."""
    now = world.clock.now()
    async with world.db.transaction() as session:
        row = Team(
            workspace_id=world.workspace_id,
            name=team,
            channel_id=world.channel_id,
            timezone=zone,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        for name in names if names is not None else list(TEAM):
            session.add(TeamMember(team_id=row.id, member_id=world.members[name]))
        values: dict[str, Any] = {
            "workspace_id": world.workspace_id,
            "team_id": row.id,
            "owner_id": world.members[LEAD],
            "day_of_week": 3,
            "time_of_day": "10:00",
            "every_weeks": 1,
            "anchor_date": date(2026, 3, 2),
            "open_days": 4,
            "questions_per_round": 3,
            "bank": default_bank(),
            "next_question": 0,
            "threshold": 5,
            "digest_day": 1,
            "digest_time": "09:00",
            "paused": False,
            "created_at": now,
            "updated_at": now,
        }
        values.update(overrides)
        pulse = Pulse(**values)
        session.add(pulse)
        await session.flush()
        pulse_id = pulse.id
    await world.scheduler.reconcile()
    return pulse_id


def origin(channel: str | None = None) -> Origin:
    return Origin(PLATFORM, "T1", f"p{next(_events)}", "Test", channel)


def actor(world: World, name: str) -> Actor:
    return Actor(name, name, world.zones[name])


async def command(world: World, line: str, who: str = LEAD) -> Any:
    event = CommandInvocation(origin(CHANNEL), actor(world, who), "pulse", text=line)
    return await world.handle(event)


async def submit(
    world: World, form_id: str, values: dict[str, Any], state: str = "", who: str = LEAD
) -> Any:
    event = FormSubmission(origin(CHANNEL), actor(world, who), form_id, dict(values), state)
    return await world.handle(event)


async def vote(world: World, name: str, poll_id: int, choice: int) -> Any:
    """A vote through the polls feature's own action, as a button press or a menu pick."""
    event = ActionInvocation(
        origin(f"D-{name}"),
        actor(world, name),
        f"poll-vote:{poll_id}",
        value=str(choice),
        values=(str(choice),),
    )
    return await world.handle(event)


async def rounds(world: World, pulse_id: int) -> list[PulseRound]:
    async with world.db.transaction() as session:
        return list(
            await session.scalars(
                select(PulseRound)
                .where(PulseRound.pulse_id == pulse_id)
                .order_by(PulseRound.period_date)
            )
        )


async def polls_of(world: World, round_id: int) -> list[Poll]:
    async with world.db.transaction() as session:
        return list(
            await session.scalars(select(Poll).where(Poll.round_id == round_id).order_by(Poll.id))
        )


async def dm_messages(world: World, name: str) -> list[Message]:
    return [
        decode_message(row.payload)
        for row in await world.outbox()
        if row.method == "dm" and row.target.get("user_id") == name
    ]


async def channel_posts(world: World) -> list[Message]:
    return [
        decode_message(row.payload)
        for row in await world.outbox()
        if row.method == "post" and row.target.get("channel_id") == CHANNEL
    ]


def vote_polls(msg: Message) -> list[int]:
    """The poll ids a message's vote controls vote in, in order."""
    ids: list[int] = []
    for block in msg.blocks:
        if isinstance(block, Actions):
            for element in block.elements:
                if isinstance(element, Button | Select) and element.action_id.startswith(
                    "poll-vote:"
                ):
                    poll_id = int(element.action_id.split(":")[1])
                    if poll_id not in ids:
                        ids.append(poll_id)
    return ids


def rendered(msg: Message) -> str:
    return render(MESSAGE_ADAPTER.dump_python(msg, mode="json"))


async def claim_keys(world: World, prefix: str) -> list[str]:
    async with world.db.transaction() as session:
        keys = await session.scalars(select(OccurrenceClaim.key))
        return sorted(k for k in keys if k.startswith(prefix))


async def restart(world: World, when: datetime) -> None:
    """Stop the scheduler, let the clock jump to ``when`` (downtime), start a new process."""
    await world.scheduler.stop()
    world.clock.set(when)
    world.core, world.scheduler = build_core(world.db, world.clock, "restarted")
    await world.scheduler.start()


# -- a round goes out ---------------------------------------------------------------------------


async def test_a_round_goes_out_at_team_time_with_one_dm_per_member(world: World) -> None:
    pulse_id = await add_pulse(world)
    await world.advance_to(at(WED, "09:59"))
    assert await rounds(world, pulse_id) == []
    await world.advance_to(at(WED, "10:00"))
    [round_] = await rounds(world, pulse_id)
    assert round_.period_date == WED
    assert round_.sent_at == at(WED, "10:00")
    assert round_.closes_at == at(date(2026, 3, 8), "10:00")
    polls = await polls_of(world, round_.id)
    assert [p.question_key for p in polls] == [q["key"] for q in DEFAULT_BANK[:3]]
    for poll in polls:
        async with world.db.transaction() as session:
            assert poll.anonymous and await ballots.read_secret(session, poll.id) is not None
        assert poll.results == "closed" and poll.threshold == 5
        assert poll.closes_at == round_.closes_at and poll.team_id is not None
        assert poll.channel_id == world.channel_id
    for name in TEAM:
        [dm] = await dm_messages(world, name)
        assert vote_polls(dm) == [p.id for p in polls]
        shown = rendered(dm)
        assert "1/3" in shown and DEFAULT_BANK[0]["text"] in shown
        assert "Anonymous: nobody, not even an admin, can see who chose what" in shown
        assert "at least 5 people" in shown
    assert await dm_messages(world, LEAD) == []  # not a member of the team
    async with world.db.transaction() as session:
        participants = await session.scalars(
            select(PollParticipant.member_id).where(PollParticipant.poll_id == polls[0].id)
        )
        assert sorted(participants) == sorted(world.members[n] for n in TEAM)
    assert await claim_keys(world, f"pulse:{pulse_id}:round@") == [
        f"pulse:{pulse_id}:round@2026-03-04"
    ]


async def test_two_schedulers_and_a_restart_send_one_round(world: World) -> None:
    pulse_id = await add_pulse(world)
    other_core, other = build_core(world.db, world.clock, "replica-2")
    await other.start()
    try:
        world.clock.set(at(WED, "10:00"))
        await world.scheduler.reconcile()
        await other.reconcile()
        await world.scheduler.reconcile()
    finally:
        await other.stop()
    await restart(world, at(WED, "10:05"))
    [round_] = await rounds(world, pulse_id)
    assert len(await polls_of(world, round_.id)) == 3
    for name in TEAM:
        assert len(await dm_messages(world, name)) == 1
    del other_core


@pytest.mark.parametrize(
    ("zone", "change", "clock"),
    [
        # Spring forward: 02:00 -> 03:00, so 02:30 does not exist that night.
        ("Europe/Berlin", date(2026, 3, 29), "02:30"),
        ("Europe/Berlin", date(2026, 3, 29), "10:00"),
        # Fall back: 03:00 -> 02:00, so 02:30 happens twice.
        ("Europe/Berlin", date(2026, 10, 25), "02:30"),
        ("Europe/Berlin", date(2026, 10, 25), "10:00"),
        ("America/New_York", date(2026, 3, 8), "02:30"),
        ("America/New_York", date(2026, 11, 1), "01:30"),
    ],
)
async def test_dst_neither_skips_nor_doubles_a_round(
    database: Database, zone: str, change: date, clock: str
) -> None:
    start = at(change - timedelta(days=8), "12:00", zone)
    world = await make_pulse_world(database, {n: zone for n in TEAM}, start)
    try:
        pulse_id = await add_pulse(world, zone=zone, day_of_week=7, time_of_day=clock)
        await world.advance_to(at(change + timedelta(days=8), "12:00", zone))
        found = await rounds(world, pulse_id)
        assert [r.period_date for r in found] == [
            change - timedelta(days=7),
            change,
            change + timedelta(days=7),
        ]
        # Each went out at its local time: the DST night's at its first (or shifted) instant.
        assert [r.sent_at for r in found] == [
            at(d, clock, zone) for d in (change - timedelta(days=7), change, change + timedelta(7))
        ]
        for name in TEAM:
            sent = [m for m in await dm_messages(world, name) if m.summary.startswith("Pulse")]
            assert len(sent) == 3
    finally:
        await world.core.idle()
        await world.scheduler.stop()


async def test_a_round_open_over_a_dst_change_closes_at_the_same_local_time(
    world: World,
) -> None:
    pulse_id = await add_pulse(world)
    await world.advance_to(at(date(2026, 3, 25), "10:00"))  # Berlin moves its clocks on the 29th
    round_ = (await rounds(world, pulse_id))[-1]
    assert round_.sent_at == datetime(2026, 3, 25, 9, tzinfo=UTC)
    assert round_.closes_at == datetime(2026, 3, 29, 8, tzinfo=UTC)  # Sunday 10:00 summer time
    assert round_.closes_at - round_.sent_at == timedelta(hours=95)


async def test_rotation_asks_every_question_once_before_any_repeats(world: World) -> None:
    small_bank = [{"key": f"k{i}", "text": f"Question {i}?", "kind": "scale"} for i in range(5)]
    pulse_id = await add_pulse(world, bank=small_bank, questions_per_round=2)
    await world.advance_to(at(date(2026, 4, 1), "12:00"))  # five Wednesdays
    asked = []
    for round_ in await rounds(world, pulse_id):
        asked.append([p.question_key for p in await polls_of(world, round_.id)])
    assert asked == [["k0", "k1"], ["k2", "k3"], ["k4", "k0"], ["k1", "k2"], ["k3", "k4"]]
    flat = [key for keys in asked for key in keys]
    assert sorted(flat[:5]) == [f"k{i}" for i in range(5)]  # all five before the first repeat
    async with world.db.transaction() as session:
        pulse = await session.get(Pulse, pulse_id)
        assert pulse is not None and pulse.next_question == 0


async def test_the_default_bank_goes_round_in_seven_weeks(world: World) -> None:
    pulse_id = await add_pulse(world)
    await world.advance_to(at(date(2026, 4, 22), "12:00"))  # eight Wednesdays
    found = await rounds(world, pulse_id)
    assert len(found) == 8
    keys = [p.question_key for r in found for p in await polls_of(world, r.id)]
    bank_keys = [q["key"] for q in DEFAULT_BANK]
    assert len(bank_keys) == 21 and len(set(bank_keys)) == 21
    assert keys[:21] == bank_keys
    assert keys[21:] == bank_keys[:3]


# -- reminders, close, results ---------------------------------------------------------------------


async def test_reminders_go_only_to_members_with_unanswered_questions(world: World) -> None:
    pulse_id = await add_pulse(world)
    await world.advance_to(at(WED, "10:00"))
    [round_] = await rounds(world, pulse_id)
    polls = await polls_of(world, round_.id)
    for poll in polls:
        for name in ("alice", "dana"):
            await vote(world, name, poll.id, 4)
    await vote(world, "bob", polls[1].id, 2)
    before = {name: len(await dm_messages(world, name)) for name in TEAM}
    await world.advance_to(at(date(2026, 3, 7), "09:59"))
    assert {name: len(await dm_messages(world, name)) for name in TEAM} == before
    await world.advance_to(at(date(2026, 3, 7), "10:00"))  # a day before the close
    for name in ("alice", "dana"):
        assert len(await dm_messages(world, name)) == 1
    bob = (await dm_messages(world, "bob"))[-1]
    assert vote_polls(bob) == [polls[0].id, polls[2].id]
    assert "2 questions of 3 still wait for your answer" in rendered(bob)
    for name in ("carol", "erin", "frank"):
        reminder = (await dm_messages(world, name))[-1]
        assert vote_polls(reminder) == [p.id for p in polls]
    # The ballots still say nothing about who: in each poll's own table, no member id, keys
    # that are HMACs; none in poll_ballots before the close.
    async with world.db.transaction() as session:
        assert list(await session.scalars(select(PollBallot))) == []
        for poll in polls:
            keyed = keyed_table(poll.id)
            keys = list(await session.scalars(select(keyed.c.voter_key)))
            assert keys and all(re.fullmatch("[0-9a-f]{64}", k) for k in keys)
            assert set(keyed.c.keys()) == {"voter_key", "choice", "text"}
    # Once: another scheduler, and the reminder's key.
    _, other = build_core(world.db, world.clock, "replica-2")
    await other.start()
    await other.stop()
    assert len(await dm_messages(world, "bob")) == 2
    assert await claim_keys(world, f"pulse:{pulse_id}:round:{round_.id}:remind") == [
        f"pulse:{pulse_id}:round:{round_.id}:remind"
    ]


async def test_the_close_seals_the_polls_and_posts_the_results(world: World) -> None:
    pulse_id = await add_pulse(world)
    await world.advance_to(at(WED, "10:00"))
    [round_] = await rounds(world, pulse_id)
    polls = await polls_of(world, round_.id)
    for choice, name in zip(
        (5, 4, 4, 3, 2), ("alice", "bob", "carol", "dana", "erin"), strict=True
    ):
        await vote(world, name, polls[0].id, choice)
    await vote(world, "alice", polls[1].id, 3)
    assert await channel_posts(world) == []
    await world.advance_to(at(date(2026, 3, 8), "10:00"))
    async with world.db.transaction() as session:
        for poll in await session.scalars(select(Poll).where(Poll.round_id == round_.id)):
            assert poll.closed_at == at(date(2026, 3, 8), "10:00")
            assert await ballots.read_secret(session, poll.id) is None
        closed = await session.get(PulseRound, round_.id)
        assert closed is not None and closed.closed_at is not None
    [post] = await channel_posts(world)
    shown = rendered(post)
    assert "Pulse results: Platform" in shown
    assert "3.6 of 5" in shown and "5 of 6 answered" in shown
    assert "Answers: 1: 0 (0%), 2: 1 (20%), 3: 1 (20%), 4: 2 (40%), 5: 1 (20%)" in shown
    assert "Not enough answers to show yet (1 of the 5 needed) · 1 of 6 answered" in shown
    charts = [b for b in post.blocks if isinstance(b, Chart)]
    assert len(charts) == 1 and charts[0].series[0].values[0] == 3.6
    assert charts[0].series[0].values[1:] == (None, None)
    assert "not enough answers yet" in charts[0].alt
    # A vote after the close counts for nothing.
    reply = await vote(world, "frank", polls[0].id, 1)
    assert "closed" in rendered(reply.message)
    async with world.db.transaction() as session:
        count = len(
            list(await session.scalars(select(PollBallot).where(PollBallot.poll_id == polls[0].id)))
        )
        assert count == 5


async def test_pause_and_an_uninstalled_workspace_schedule_nothing(world: World) -> None:
    pulse_id = await add_pulse(world)
    response = await command(world, "pause Platform")
    assert "Paused" in rendered(response.message)
    await world.advance_to(at(date(2026, 3, 9), "12:00"))
    assert await rounds(world, pulse_id) == []
    assert await channel_posts(world) == []
    await command(world, "resume Platform")
    async with world.db.transaction() as session:
        workspace = await session.get(Workspace, world.workspace_id)
        assert workspace is not None
        workspace.uninstalled_at = world.clock.now()
    await world.scheduler.reconcile()
    await world.advance_to(at(date(2026, 3, 16), "12:00"))
    assert await rounds(world, pulse_id) == []
    assert world.scheduler.next_runs() == []


async def test_after_downtime_a_round_goes_out_only_while_still_open(world: World) -> None:
    pulse_id = await add_pulse(world)
    # Down from Tuesday to Friday 09:00: the round of Wednesday still has two days to go.
    await restart(world, at(date(2026, 3, 6), "09:00"))
    [round_] = await rounds(world, pulse_id)
    assert round_.period_date == WED
    assert round_.sent_at == at(date(2026, 3, 6), "09:00")
    assert round_.closes_at == at(date(2026, 3, 8), "10:00")  # when it would have closed
    # Down over the whole of the next round's open period: it is not sent late.
    await world.advance_to(at(date(2026, 3, 10), "12:00"))
    await restart(world, at(date(2026, 3, 15), "08:00"))
    assert [r.period_date for r in await rounds(world, pulse_id)] == [WED]


async def test_run_now_sends_a_round_and_a_scheduled_one_waits_for_it(world: World) -> None:
    pulse_id = await add_pulse(world)
    world.clock.set(at(date(2026, 3, 3), "15:00"))
    response = await command(world, "run platform")
    assert "Sent a round of the Platform pulse to 6 member(s)" in rendered(response.message)
    [round_] = await rounds(world, pulse_id)
    assert round_.period_date == date(2026, 3, 3)
    again = await command(world, "run Platform")
    assert "still open until" in rendered(again.message)
    await world.advance_to(at(WED, "12:00"))  # Wednesday's round: the Tuesday one is open
    assert len(await rounds(world, pulse_id)) == 1
    nobody = await command(world, "run Platform", who="alice")
    assert "Only the one who set up" in rendered(nobody.message)


async def test_question_text_never_pings_anyone(world: World) -> None:
    """Invariant 5: a bank question is the team's text, carried as plain text everywhere."""
    loud = [{"key": "loud", "text": "<!channel> @everyone how is it?", "kind": "scale"}]
    pulse_id = await add_pulse(world, bank=loud, questions_per_round=1)
    await world.advance_to(at(WED, "10:00"))
    [round_] = await rounds(world, pulse_id)
    [poll] = await polls_of(world, round_.id)
    for name in ("alice", "bob", "carol", "dana", "erin"):
        await vote(world, name, poll.id, 3)
    await world.advance_to(at(date(2026, 3, 8), "10:00"))
    for msg in [*(await dm_messages(world, "alice")), *(await channel_posts(world))]:
        carrying = [
            part
            for block in msg.blocks
            if isinstance(block, Section)
            for part in block.text.parts
            if "<!channel>" in getattr(part, "text", "")
        ]
        assert carrying and all(isinstance(p, Plain | Bold) for p in carrying)
        for block in msg.blocks:
            if isinstance(block, Section):
                assert all(isinstance(p, Plain | Bold) for p in block.text.parts)
