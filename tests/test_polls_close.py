"""Closing polls: by the deadline exactly once (two schedulers on one database, a close that
lands while syncup is down), by hand (creator or admin), reopening, what the close announces
(results, the threshold, creator-only results, the poll's own message), and reminders to those
who have not answered, anonymous polls included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, timedelta

import pytest
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select

from bot.core import Core
from bot.features.polls import ballots, schedules, service
from bot.features.standups.schedules import OnceSchedule
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.models import OccurrenceClaim, OutboxMessage, Team
from storage.polls import Poll, PollParticipant, Pulse, PulseRound
from tests.test_polls_create import (
    CHANNEL,
    START,
    TEAM,
    PollWorld,
    make_poll_world,
    running_world,
    said,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


def keys(rows: list[OutboxMessage], prefix: str) -> list[str]:
    return [r.idempotency_key for r in rows if r.idempotency_key.startswith(prefix)]


async def claims(db: Database) -> list[str]:
    async with db.transaction() as session:
        return sorted(await session.scalars(select(OccurrenceClaim.key)))


# -- by the deadline ----------------------------------------------------------------------------


async def test_the_deadline_closes_and_posts_the_results(world: PollWorld) -> None:
    poll_id = await world.create('"Ship Friday?" Yes No "Not sure" --closes 2h --results closed')
    for name, choice in (("alice", 0), ("bob", 0), ("carol", 1), ("dana", 0), ("erin", 2)):
        await world.vote(name, poll_id, choice)
    await world.mark_sent()
    await world.advance_to(START + timedelta(hours=3))
    poll = await world.poll(poll_id)
    assert poll.closed_at == START + timedelta(hours=2)  # at the deadline, not later
    rows = await world.outbox()
    assert keys(rows, "poll:1:close") == [
        "poll:1:close:0:results",
        f"poll:1:close:0:update:{rows[0].id}",
    ]
    results = next(r for r in rows if r.idempotency_key == "poll:1:close:0:results")
    assert (results.method, results.target) == ("post", {"channel_id": CHANNEL})
    shown = (await world.sent("post"))[-1]
    assert shown.startswith(
        "Poll #1 results\nShip Friday?\nYes\n██████░░░░ 60% (3)\nalice, bob, dana"
    )
    assert "No\n██░░░░░░░░ 20% (1)\ncarol" in shown
    assert "5 of 6 answered · single choice · closed Mon 9 Mar 2026 12:00 (Europe/Berlin)." in shown
    chart = results.payload["blocks"][-1]
    assert chart["kind"] == "chart" and chart["unit"] == "%" and chart["style"] == "bar"
    assert chart["labels"] == ["Yes", "No", "Not sure"]
    assert chart["series"][0]["values"] == [60.0, 20.0, 20.0]
    assert chart["alt"].startswith("Bar chart of the answers to Ship Friday?: Yes 60% (3), No 20%")
    # The poll's own message now says closed, without its buttons.
    update = (await world.sent("update"))[-1]
    assert "Poll #1 (closed)" in update and "Votes are no longer taken." in update
    assert "[1]" not in update
    # The close and the reminder ran once each; nothing is booked any more.
    assert await claims(world.db) == ["poll:1:close:0", "poll:1:remind:0"]
    assert world.scheduler.next_runs() == []
    # Closed polls are kept.
    assert len(await world.ballots(poll_id)) == 5


async def test_anonymous_results_stay_hidden_under_the_threshold(world: PollWorld) -> None:
    poll_id = await world.create('"Honest pace?" --scale --anonymous --closes 1h')
    for name, value in (("alice", 2), ("bob", 5), ("carol", 1)):
        await world.vote(name, poll_id, value)
    await world.advance_to(START + timedelta(hours=1))
    shown = (await world.sent("post"))[-1]
    assert shown == (
        "Poll #1 results\n"
        "Honest pace?\n"
        "Results hidden: 3 answers, fewer than the 5 this poll needs.\n"
        "Anonymous: nobody can see who answered what · closed Mon 9 Mar 2026 11:00 "
        "(Europe/Berlin)."
    )
    results = next(r for r in await world.outbox() if r.idempotency_key.endswith(":results"))
    assert not any(b["kind"] == "chart" for b in results.payload["blocks"])
    # Nobody can see more later, not the creator, not an admin.
    for name in ("alice", "frank"):
        assert "Results hidden: 3 answers" in said(
            await world.command(f"results {poll_id}", by=name)
        )


async def test_anonymous_results_at_close(world: PollWorld) -> None:
    poll_id = await world.create('"Recommend us?" --enps --anonymous --closes 1h')
    for name, value in (("alice", 10), ("bob", 9), ("carol", 7), ("dana", 3), ("erin", 10)):
        await world.vote(name, poll_id, value, menu=True)
    await world.advance_to(START + timedelta(hours=1))
    shown = (await world.sent("post"))[-1]
    assert "eNPS +40 (5 answers)" in shown
    assert "Promoters (9-10)\n██████░░░░ 60% (3)" in shown
    assert "Detractors (0-6)\n██░░░░░░░░ 20% (1)" in shown
    for name in ("alice", "bob", "carol", "dana", "erin"):
        assert name not in shown.split("\n", 3)[-1]  # no names anywhere in the results


async def test_two_schedulers_on_one_database_close_once(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --closes 1h --results closed')
    other_db = Database(world.db.url)
    other_core = Core(other_db, world.clock)
    other = Scheduler(other_db, world.clock, instance="b", reconcile_interval=3600)
    schedules.register(other_core, other)
    try:
        world.clock.set(START + timedelta(hours=1, minutes=1))
        await asyncio.gather(world.scheduler.reconcile(), other.reconcile())
        # Firing the same occurrence again, on either, does nothing either.
        poll = await world.poll(poll_id)
        again = OnceSchedule(
            f"poll:{poll_id}:close:0",
            schedules.CLOSE_HANDLER,
            DateTrigger(run_date=START + timedelta(hours=1), timezone=UTC),
            payload={"poll_id": poll_id, "generation": 0},
        )
        assert await other.run_occurrence(again, START + timedelta(hours=1)) is False
        assert await world.scheduler.run_occurrence(again, START + timedelta(hours=1)) is False
    finally:
        await other.stop()
        await other_db.dispose()
    assert poll.closed_at == START + timedelta(hours=1)
    assert keys(await world.outbox(), "poll:1:close:0:results") == ["poll:1:close:0:results"]
    assert "poll:1:close:0" in await claims(world.db)


async def test_a_close_that_lands_during_a_restart(database: Database) -> None:
    first = await make_poll_world(database, admins=["frank"], instance="before")
    poll_id = await first.create('"Ship?" Yes No --closes 1h --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await first.vote(name, poll_id, 1)
    await first.scheduler.stop()  # syncup goes down before the deadline...
    restarted_at = START + timedelta(hours=5)  # ...and comes back after it
    for instance in ("after", "after-again"):
        db = Database(database.url)
        try:
            again = await make_poll_world(db, start=restarted_at, seed=False, instance=instance)
            await again.scheduler.stop()
        finally:
            await db.dispose()
    poll = await first.poll(poll_id)
    # Closed as of its deadline (votes stopped then), not as of the restart.
    assert poll.closed_at == START + timedelta(hours=1) and await first.secret(poll_id) is None
    rows = await first.outbox()
    assert keys(rows, "poll:1:close:0:results") == ["poll:1:close:0:results"]
    assert "No\n██████████ 100% (3)" in (await first.sent("post"))[-1]
    assert await claims(database) == ["poll:1:close:0"]  # the reminder's time had passed


async def test_a_close_missed_for_longer_than_its_grace_still_runs(database: Database) -> None:
    first = await make_poll_world(database)
    poll_id = await first.create('"Ship?" Yes No --closes 1h')
    await first.scheduler.stop()
    later = START + schedules.CLOSE_GRACE + timedelta(days=3)
    async with running_world(database, start=later, seed=False):
        pass
    assert (await first.poll(poll_id)).closed_at == START + timedelta(hours=1)
    assert keys(await first.outbox(), "poll:1:close:0:results") == ["poll:1:close:0:results"]


# -- by hand ------------------------------------------------------------------------------------


async def test_close_and_reopen_by_the_creator_or_an_admin_only(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --closes 2d --results closed')
    refused = said(await world.command(f"close {poll_id}", by="bob"))
    assert refused == "Only the creator of poll #1 and admins can do that."
    assert (await world.poll(poll_id)).closed_at is None
    assert said(await world.command(f"close {poll_id}", by="frank")) == (
        "Closed poll #1; the results are posted in its channel."
    )
    closed = await world.poll(poll_id)
    assert closed.closed_at == START
    assert world.scheduler.next_runs() == []  # the deadline's close is gone
    assert "is already closed" in said(await world.command(f"close {poll_id}"))
    assert said(await world.command(f"reopen {poll_id} 1d", by="carol")) == (
        "Only the creator of poll #1 and admins can do that."
    )
    world.clock.advance(timedelta(minutes=5))
    reopened = said(await world.command(f"reopen {poll_id} 1d"))
    assert reopened == (
        "Reopened poll #1 and posted it again; it closes Tue 10 Mar 2026 10:05 (Europe/Berlin)."
    )
    poll = await world.poll(poll_id)
    assert (poll.closed_at, poll.close_generation) == (None, 1)
    assert poll.closes_at == START + timedelta(days=1, minutes=5)
    assert dict(world.scheduler.next_runs())["poll:1:close:1"] == poll.closes_at
    rows = await world.outbox()
    assert keys(rows, "poll:1:reopen") == ["poll:1:reopen:1"]
    assert poll.message_outbox_id == rows[-1].id
    assert "still open" in said(await world.command(f"reopen {poll_id}", by="frank"))
    # A stale occurrence of the first deadline never closes the reopened poll.
    stale = OnceSchedule(
        "poll:1:close:0",
        schedules.CLOSE_HANDLER,
        DateTrigger(run_date=START + timedelta(days=2), timezone=UTC),
        payload={"poll_id": poll_id, "generation": 0},
    )
    assert await world.scheduler.run_occurrence(stale, START + timedelta(days=2)) is True
    assert (await world.poll(poll_id)).closed_at is None
    # The new deadline closes it, and announces under the new generation.
    await world.advance_to(START + timedelta(days=1, hours=1))
    assert keys(await world.outbox(), "poll:1:close:1:results") == ["poll:1:close:1:results"]


async def test_reopened_anonymous_poll_keeps_earlier_answers_final(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, poll_id, 0)
    secret = await world.secret(poll_id)
    await world.command(f"close {poll_id}")
    reply = said(await world.command(f"reopen {poll_id}"))
    assert "no deadline now" in reply and "Answers given before the close stand" in reply
    reopened = await world.secret(poll_id)
    assert reopened is not None and secret is not None and reopened != secret
    refused = said(await world.vote("bob", poll_id, 1))
    assert refused.startswith("You answered this poll before it was closed and reopened.")
    assert said(await world.vote("dana", poll_id, 1)).startswith("Your vote is in: No.")
    participants = await world.participants(poll_id)
    assert participants["bob"] == (True, True) and participants["dana"] == (True, False)
    await world.command(f"close {poll_id}")
    # One answer since the first result: shown, it would be dana's (tests/
    # test_polls_anonymity_reopen.py). Held until the threshold answered since.
    assert "Results held: 1 answered since" in (await world.sent("post"))[-1]
    await world.command(f"reopen {poll_id}")
    for name in ("erin", "frank"):
        await world.vote(name, poll_id, 1)
    await world.command(f"close {poll_id}")
    assert "Yes\n█████░░░░░ 50% (3)" in (await world.sent("post"))[-1]


async def test_creator_only_results(world: PollWorld) -> None:
    poll_id = await world.create('"Raise?" Yes No --anonymous --results creator --threshold 3')
    for name in ("bob", "carol", "dana"):
        await world.vote(name, poll_id, 0)
    assert said(await world.command(f"results {poll_id}")).startswith(
        "The results of anonymous poll #1 are shown when it closes"
    )
    assert said(await world.command(f"close {poll_id}", by="frank")) == (
        "Closed poll #1; its creator gets the results."
    )
    rows = await world.outbox()
    assert keys(rows, "poll:1:close:0:") == [
        "poll:1:close:0:dm",
        "poll:1:close:0:notice",
        f"poll:1:close:0:update:{rows[0].id}",
    ]
    to_alice = await world.sent("dm", to="alice")
    assert to_alice[-1].startswith("Poll #1 results\nRaise?\nYes\n██████████ 100% (3)")
    notice = (await world.sent("post"))[-1]
    assert notice == "Poll #1 closed: Raise?\n3 of 6 answered; the results went to its creator."
    assert said(await world.command(f"results {poll_id}", by="frank")) == (
        "Only the creator of poll #1 sees its results."
    )
    assert said(await world.command(f"results {poll_id}")).startswith("Poll #1 results\n")


async def test_the_poll_message_is_edited_only_while_the_platform_allows(
    world: PollWorld,
) -> None:
    world.core.edit_window = timedelta(hours=1)
    young = await world.create('"Ship?" Yes No --results closed')
    old = await world.create('"Ship later?" Yes No --results closed')
    await world.mark_sent()
    world.clock.advance(timedelta(minutes=30))
    await world.command(f"close {young}")
    world.clock.advance(timedelta(hours=1))
    await world.command(f"close {old}")
    rows = await world.outbox()
    assert keys(rows, f"poll:{young}:close:0:update") != []
    assert keys(rows, f"poll:{old}:close:0:update") == []
    assert keys(rows, f"poll:{old}:close:0:results") == [f"poll:{old}:close:0:results"]


async def test_close_poll_alone_seals_and_announces_nothing(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    for name in ("alice", "bob"):
        await world.vote(name, poll_id, 1)
    before = len(await world.outbox())
    async with world.db.transaction() as session:
        poll = await service.load_poll(session, poll_id, lock="update")
        assert poll is not None
        await ballots.close_poll(session, poll, world.clock.now())
    poll = await world.poll(poll_id)
    assert poll.closed_at == START and await world.secret(poll_id) is None
    assert len(await world.outbox()) == before
    participants = await world.participants(poll_id)
    assert participants["alice"] == (True, True) and participants["carol"] == (False, False)


# -- reminders -------------------------------------------------------------------------------------


@pytest.mark.parametrize("anonymous", [False, True])
async def test_the_reminder_goes_to_those_who_have_not_answered(
    world: PollWorld, anonymous: bool
) -> None:
    flag = " --anonymous" if anonymous else ""
    poll_id = await world.create(f'"Ship?" Yes No --closes 3d{flag}')
    assert (await world.poll(poll_id)).remind_at == START + timedelta(days=2)
    for name in ("alice", "bob", "carol"):
        await world.vote(name, poll_id, 0)
    await world.advance_to(START + timedelta(days=2, hours=1))
    dms = [r for r in await world.outbox() if r.method == "dm"]
    assert sorted(r.target["user_id"] for r in dms) == ["dana", "erin", "frank"]
    assert {r.idempotency_key.rsplit(":", 1)[0] for r in dms} == {f"poll:{poll_id}:remind:0:dm"}
    to_dana = (await world.sent("dm", to="dana"))[0]
    assert to_dana.startswith(
        "A reminder: you have not answered poll #1 in #team yet. It closes Thu 12 Mar 2026 "
        "14:30 (Asia/Kolkata).\nShip?"
    )
    assert "[1] Yes  [2] No" in to_dana
    # dana answers from the reminder itself.
    assert said(await world.vote("dana", poll_id, 1)).startswith("Your vote is in: No.")
    # The close reminds nobody again.
    await world.advance_to(START + timedelta(days=4))
    assert len([r for r in await world.outbox() if r.method == "dm"]) == 3


async def test_a_short_poll_is_reminded_half_way(world: PollWorld) -> None:
    poll_id = await world.create('"Lunch now?" Yes No --closes 2h')
    assert (await world.poll(poll_id)).remind_at == START + timedelta(hours=1)
    no_deadline = await world.create('"Whenever?" Yes No')
    assert (await world.poll(no_deadline)).remind_at is None


async def test_remind_now_once_an_hour_creator_or_admin(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    await world.vote("alice", poll_id, 0)
    assert said(await world.command(f"remind {poll_id}", by="bob")) == (
        "Only the creator of poll #1 and admins can do that."
    )
    assert said(await world.command(f"remind {poll_id}")) == (
        "Reminded 5 members who have not answered poll #1 yet."
    )
    again = said(await world.command(f"remind {poll_id}", by="frank"))
    assert again.startswith("Reminders for poll #1 went out Mon 9 Mar 2026 10:00 (Europe/Berlin)")
    world.clock.advance(timedelta(minutes=61))
    for name in ("bob", "carol", "dana", "erin"):
        await world.vote(name, poll_id, 1)
    assert said(await world.command(f"remind {poll_id}", by="frank")) == (
        "Reminded 1 member who have not answered poll #1 yet."
    )
    dms = [r for r in await world.outbox() if r.method == "dm"]
    assert sorted(r.target["user_id"] for r in dms) == [
        "bob",
        "carol",
        "dana",
        "erin",
        "frank",
        "frank",
    ]
    await world.vote("frank", poll_id, 1)
    world.clock.advance(timedelta(minutes=61))
    assert said(await world.command(f"remind {poll_id}")) == (
        "Everyone has answered poll #1; there is nobody to remind."
    )
    await world.command(f"close {poll_id}")
    assert said(await world.command(f"remind {poll_id}")).startswith("Poll #1 closed")


async def test_participants_are_never_deleted_by_closing(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    await world.vote("bob", poll_id, 0)
    await world.command(f"close {poll_id}")
    assert await world.count(Poll) == 1
    assert await world.count(PollParticipant) == 6


async def test_results_only_for_the_polls_audience(database: Database) -> None:
    zones = {**TEAM, "zed": "UTC"}
    async with running_world(database, zones=zones, in_channel=list(TEAM)) as built:
        poll_id = await built.create('"Ship?" Yes No --threshold 3')
        for name in ("alice", "bob", "carol"):
            await built.vote(name, poll_id, 0)
        assert said(await built.command(f"results {poll_id}", by="zed")) == (
            "Poll #1 is for the members of #team."
        )
        assert said(await built.command(f"results {poll_id}", by="bob")).startswith(
            "Poll #1 results"
        )


async def test_pulse_questions_are_left_to_the_pulse(world: PollWorld) -> None:
    """A poll of a pulse round has no close or reminder schedule here, and `/poll` neither
    closes it nor shows its results (the pulse pools them)."""
    async with world.db.transaction() as session:
        team = Team(
            workspace_id=world.workspace_id,
            name="core",
            channel_id=world.channel_id,
            timezone="UTC",
            created_at=START,
        )
        session.add(team)
        await session.flush()
        pulse = Pulse(
            workspace_id=world.workspace_id,
            team_id=team.id,
            anchor_date=date(2026, 3, 9),
            bank=[],
            created_at=START,
            updated_at=START,
        )
        session.add(pulse)
        await session.flush()
        round_ = PulseRound(
            pulse_id=pulse.id,
            period_date=date(2026, 3, 9),
            sent_at=START,
            closes_at=START + timedelta(hours=1),
        )
        session.add(round_)
        await session.flush()
        poll = Poll(
            workspace_id=world.workspace_id,
            round_id=round_.id,
            channel_id=world.channel_id,
            question="Pace?",
            kind="scale",
            options=[],
            anonymous=True,
            results="closed",
            threshold=3,
            opens_at=START,
            closes_at=START + timedelta(hours=1),
            remind_at=START + timedelta(minutes=30),
        )
        await ballots.create_poll(session, poll, world.members.values(), now=START)
        poll_id = poll.id
    await world.scheduler.reconcile()
    assert world.scheduler.next_runs() == []
    assert "a question of a pulse check" in said(
        await world.command(f"close {poll_id}", by="frank")
    )
    assert "a question of a pulse check" in said(await world.command(f"results {poll_id}"))
    assert said(await world.vote("bob", poll_id, 4)).startswith("Your vote is in: 4.")
    await world.advance_to(START + timedelta(hours=2))
    assert (await world.poll(poll_id)).closed_at is None  # the pulse closes it, not this
    assert "No open polls here." in said(await world.command("list"))


async def test_closing_one_anonymous_poll_leaves_answers_to_another_changeable(
    world: PollWorld,
) -> None:
    """The close makes its own voters' answers final, nobody else's: bob, who answered both
    polls, may still change his answer to the one that stays open."""
    closing = await world.create('"Ship?" Yes No --anonymous --threshold 3')
    staying = await world.create('"Lunch?" Pizza Soup --anonymous --threshold 3')
    for name in ("alice", "bob", "carol"):
        await world.vote(name, closing, 0)
    await world.vote("bob", staying, 0)
    await world.command(f"close {closing}")
    assert (await world.participants(staying))["bob"] == (True, False)
    assert said(await world.vote("bob", staying, 1)).startswith("Your vote is changed to Soup.")
