"""Voting: a vote, a changed vote, a double click, clicks at once, every kind's controls, votes
refused (closed, past the deadline, outside the audience, not a choice), and live results of
named polls, debounced, posted anew where the platform refuses edits of old messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.chat import FormErrors, OpenForm, Reply
from bot.events import ActionInvocation, CommandInvocation
from bot.features.polls import ballots, live, render
from storage.db import Database
from storage.models import OutboxMessage, ProcessedEvent
from storage.polls import Poll, PollBallot
from tests.test_polls_create import (
    CHANNEL,
    START,
    TEAM,
    FakeDirectory,
    PollWorld,
    running_world,
    said,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


async def test_a_vote_and_a_changed_vote(world: PollWorld) -> None:
    poll_id = await world.create('"Ship Friday?" Yes No "Not sure"')
    first = said(await world.vote("bob", poll_id, 0))
    assert first == ("Your vote is in: Yes. You can change it until the poll closes."), first
    assert await world.ballots(poll_id) == [(0, None, world.members["bob"])]
    changed = said(await world.vote("bob", poll_id, 2))
    assert changed.startswith("Your vote is changed to Not sure.")
    assert await world.ballots(poll_id) == [(2, None, world.members["bob"])]
    participants = await world.participants(poll_id)
    assert participants["bob"] == (True, False)
    assert participants["carol"] == (False, False)


async def test_a_double_click_counts_once(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    assert isinstance(await world.vote("bob", poll_id, 0, event_id="click-1"), Reply)
    # The platform delivers the same click again (a retry, a double submit): ignored.
    assert await world.vote("bob", poll_id, 1, event_id="click-1") is None
    assert [c for c, _, _ in await world.ballots(poll_id)] == [0]
    assert await world.count(ProcessedEvent) == 2  # the command and the click
    tally = await _tally(world, poll_id)
    assert (tally.voters, tally.counts) == (1, {0: 1})


async def _tally(world: PollWorld, poll_id: int) -> ballots.Tally:
    async with world.db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        return await ballots.tally(session, poll)


async def test_two_clicks_at_once_leave_one_ballot(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No')
    anonymous_id = await world.create('"Ship anonymously?" Yes No --anonymous')
    for target in (poll_id, anonymous_id):
        replies = await asyncio.gather(
            world.vote("bob", target, 0), world.vote("bob", target, 1), world.vote("bob", target, 0)
        )
        assert all(isinstance(r, Reply) for r in replies)
        ballots = await world.ballots(target)
        assert len(ballots) == 1, ballots
        assert (await world.participants(target))["bob"] == (True, False)
    # Different members at once do not get in each other's way.
    voters = ["alice", "carol", "dana", "erin", "frank"]
    await asyncio.gather(*(world.vote(name, poll_id, n % 2) for n, name in enumerate(voters)))
    assert len(await world.ballots(poll_id)) == 6


async def test_multiple_choice_votes(world: PollWorld) -> None:
    poll_id = await world.create('"Lunch?" Pizza Sushi Tacos Salad --multiple 2')
    reply = said(await world.vote("bob", poll_id, 2, 0, menu=True))
    assert reply.startswith("Your vote is in: Pizza, Tacos.")
    assert [c for c, _, _ in await world.ballots(poll_id)] == [0, 2]
    too_many = said(await world.vote("bob", poll_id, 0, 1, 2, menu=True))
    assert too_many == "Pick at most 2 options."
    assert [c for c, _, _ in await world.ballots(poll_id)] == [0, 2]
    assert said(await world.vote("bob", poll_id, 7, menu=True)).startswith(
        "That option is not in this poll"
    )
    assert said(await world.vote("bob", poll_id, menu=True)) == "Pick an option."
    # A new selection replaces the whole earlier one.
    await world.vote("bob", poll_id, 3, menu=True)
    assert [c for c, _, _ in await world.ballots(poll_id)] == [3]


async def test_scale_and_enps_votes(world: PollWorld) -> None:
    scale = await world.create('"How sustainable was the pace?" --scale')
    assert said(await world.vote("bob", scale, 4)).startswith("Your vote is in: 4.")
    assert said(await world.vote("bob", scale, 6)).startswith("That option is not in this poll")
    enps = await world.create('"Would you recommend working here?" --enps')
    assert said(await world.vote("bob", enps, 10, menu=True)).startswith("Your vote is in: 10.")
    assert said(await world.vote("bob", enps, 0, menu=True)).startswith(
        "Your vote is changed to 0."
    )
    assert [c for c, _, _ in await world.ballots(enps)] == [0]


async def test_open_answers_through_the_answer_form(world: PollWorld) -> None:
    poll_id = await world.create('"What should we stop doing?" --text --anonymous')
    opened = await world.press("bob", f"{render.ANSWER_ACTION}:{poll_id}")
    assert isinstance(opened, OpenForm)
    form = opened.form
    assert (form.form_id, form.state) == (render.ANSWER_FORM, str(poll_id))
    empty = await world.submit("bob", form.form_id, {"answer": "   "}, form.state)
    assert isinstance(empty, FormErrors) and "answer" in empty.errors
    too_long = await world.submit("bob", form.form_id, {"answer": "x" * 2001}, form.state)
    assert isinstance(too_long, FormErrors) and "2000" in too_long.errors["answer"]
    done = said(await world.submit("bob", form.form_id, {"answer": " Long meetings "}, form.state))
    assert done.startswith("Your answer is in. You can change it until the poll closes.")
    assert "nobody, not even the poll's creator or an admin, can see who chose what" in done
    assert await world.ballots(poll_id) == [(0, "Long meetings", None)]
    again = said(await world.submit("bob", form.form_id, {"answer": "Status"}, form.state))
    assert again.startswith("Your answer is changed.")
    assert await world.ballots(poll_id) == [(0, "Status", None)]


async def test_votes_on_a_closed_poll_are_refused(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --closes 1h')
    await world.vote("bob", poll_id, 0)
    # Past the deadline, before the close has run: refused all the same.
    world.clock.set(START + timedelta(hours=1))
    refused = said(await world.vote("carol", poll_id, 1))
    assert refused == (
        "Poll #1 closed Mon 9 Mar 2026 06:00 (America/New_York); votes are no longer taken."
    )
    assert said(await world.vote("bob", poll_id, 1)).startswith("Poll #1 closed")
    assert isinstance(await world.press("bob", f"{render.ANSWER_ACTION}:{poll_id}"), Reply)
    await world.scheduler.reconcile()  # the close runs
    assert (await world.poll(poll_id)).closed_at == START + timedelta(hours=1)
    assert said(await world.vote("dana", poll_id, 1)).startswith("Poll #1 closed")
    assert await world.ballots(poll_id) == [(0, None, world.members["bob"])]


async def test_unknown_polls_and_stale_buttons(world: PollWorld) -> None:
    assert said(await world.vote("bob", 99, 0)) == "That poll no longer exists."
    assert said(await world.press("bob", "poll-vote:x", "1")) == "That poll button has expired."
    poll_id = await world.create('"Ship?" Yes No')
    assert said(await world.press("bob", f"poll-vote:{poll_id}", "yes")) == (
        "That poll button has expired."
    )
    assert await world.count(PollBallot) == 0


async def test_votes_from_outside_the_audience(database: Database) -> None:
    zones = {**TEAM, "zed": "UTC"}
    platform = FakeDirectory(zones, {CHANNEL: list(TEAM)})
    async with running_world(
        database, zones=zones, in_channel=list(TEAM), platform=platform
    ) as built:
        poll_id = await built.create('"Ship?" Yes No --anonymous')
        assert "zed" not in await built.participants(poll_id)
        refused = said(await built.vote("zed", poll_id, 0))
        assert refused == "This poll is for the members of #team; you can't answer it."
        assert await built.count(PollBallot) == 0
        # zed joins the channel: the platform says so, the vote counts.
        platform.in_channel[CHANNEL].append("zed")
        assert said(await built.vote("zed", poll_id, 0)).startswith("Your vote is in: Yes.")
        assert (await built.participants(poll_id))["zed"] == (True, False)


async def test_votes_from_outside_the_audience_without_a_platform_directory(
    database: Database,
) -> None:
    zones = {**TEAM, "zed": "UTC"}
    async with running_world(database, zones=zones, in_channel=list(TEAM)) as built:
        poll_id = await built.create('"Ship?" Yes No')
        refused = said(await built.vote("zed", poll_id, 1))
        assert refused == "This poll is for the members of #team; you can't answer it."
        assert await built.count(PollBallot) == 0


# -- live results ---------------------------------------------------------------------------------


def live_rows(rows: list[OutboxMessage], poll_id: int) -> list[OutboxMessage]:
    return [r for r in rows if r.idempotency_key.startswith(f"poll:{poll_id}:live:")]


async def test_live_results_follow_the_votes(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --threshold 3')
    await world.vote("bob", poll_id, 0)
    await world.vote("carol", poll_id, 1)
    rows = live_rows(await world.outbox(), poll_id)
    assert [(r.method, r.idempotency_key) for r in rows] == [
        ("update", f"poll:{poll_id}:live:1"),
        ("update", f"poll:{poll_id}:live:2"),
    ]
    poll = await world.poll(poll_id)
    assert all(r.depends_on_id == poll.message_outbox_id for r in rows)
    assert (
        "Live results appear once 3 have answered (2 so far)." in (await world.sent("update"))[-1]
    )
    await world.vote("dana", poll_id, 0)
    shown = (await world.sent("update"))[-1]
    assert "Yes\n███████░░░ 67% (2)\nbob, dana" in shown
    assert "No\n███░░░░░░░ 33% (1)\ncarol" in shown
    assert "3 of 6 answered." in shown
    assert "[1] Yes  [2] No" in shown  # still votable


async def test_anonymous_and_closed_visibility_polls_never_update_live(world: PollWorld) -> None:
    for line in ('"A?" Yes No --anonymous', '"B?" Yes No --results closed'):
        poll_id = await world.create(line)
        before = len(await world.outbox())
        for name in ("bob", "carol", "dana", "erin", "frank"):
            await world.vote(name, poll_id, 0)
        assert len(await world.outbox()) == before  # a vote queues nothing at all


async def test_live_updates_are_debounced(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --threshold 3')
    refresher = live.live_of(world.core)
    assert refresher is not None
    refresher.delay = 0.3
    voters = ["alice", "bob", "carol", "dana", "erin", "frank"]
    events = [
        ActionInvocation(
            world.origin(),
            world.actor(name),
            render.vote_action_id(poll_id),
            str(n % 2),
            (),
            CHANNEL,
            "m1",
        )
        for n, name in enumerate(voters)
    ]
    await asyncio.gather(*(world.core.handle(e) for e in events))
    await world.core.idle()
    rows = live_rows(await world.outbox(), poll_id)
    assert 1 <= len(rows) < len(voters), [r.idempotency_key for r in rows]
    assert "6 of 6 answered." in (await world.sent("update"))[-1]


async def test_live_message_too_old_to_edit_is_posted_again(world: PollWorld) -> None:
    world.core.edit_window = timedelta(hours=1)
    poll_id = await world.create('"Ship?" Yes No --threshold 3')
    first = (await world.poll(poll_id)).live_outbox_id
    await world.vote("bob", poll_id, 0)  # young enough: an edit
    world.clock.advance(timedelta(hours=2))
    await world.vote("carol", poll_id, 1)  # too old: posted again
    await world.vote("dana", poll_id, 1)  # the new post is young: edited
    rows = live_rows(await world.outbox(), poll_id)
    assert [(r.method, r.depends_on_id) for r in rows] == [
        ("update", first),
        ("post", None),
        ("update", rows[1].id),
    ]
    poll = await world.poll(poll_id)
    assert (poll.live_outbox_id, poll.live_posted_at) == (rows[1].id, START + timedelta(hours=2))
    assert poll.message_outbox_id == first
    assert "[1] Yes  [2] No" in (await world.sent("post"))[-1]


async def test_results_command_follows_visibility_and_threshold(world: PollWorld) -> None:
    named = await world.create('"Ship?" Yes No --threshold 3')
    assert said(await world.command(f"results {named}", by="bob")) == (
        "Results of poll #1 appear once 3 have answered (0 so far)."
    )
    for name in ("bob", "carol", "dana"):
        await world.vote(name, named, 0)
    shown = said(await world.command(f"results #{named}", by="erin"))
    assert shown.startswith("Poll #1 results so far\nShip?\nYes\n██████████ 100% (3)")
    anonymous = await world.create('"Really ship?" Yes No --anonymous --threshold 3')
    for name in ("bob", "carol", "dana", "erin"):
        await world.vote(name, anonymous, 1)
    assert said(await world.command(f"results {anonymous}", by="alice")) == (
        "The results of anonymous poll #2 are shown when it closes, and only if at least 3 "
        "answered (4 of 6 so far)."
    )
    assert said(await world.command("results 77")) == "There is no poll #77 here."
    assert "is not a poll number" in said(await world.command("results abc"))


async def test_list_shows_the_open_polls_of_the_channel(world: PollWorld) -> None:
    assert "No open polls here." in said(await world.command("list"))
    await world.create('"Ship?" Yes No --closes 2d')
    await world.create('"Pace?" --scale --anonymous')
    await world.vote("bob", 2, 3)
    await world.command("close 2")
    await world.create('"Ideas?" --text --anonymous')
    shown = said(await world.command("list", by="carol"))
    assert shown == (
        "Open polls here:\n"
        "#1 Ship? (single choice; 0 of 6 answered; closes Wed 11 Mar 2026 05:00 "
        "(America/New_York))\n"
        "#3 Ideas? (open answer, anonymous; 0 of 6 answered; no deadline)"
    )


async def test_a_command_line_from_slack_runs_the_default_subcommand(world: PollWorld) -> None:
    event = CommandInvocation(world.origin(), world.actor("bob"), "poll", "Lunch? Pizza Sushi")
    assert "Poll #1 is up in #team" in said(await world.handle(event))
    assert (await world.poll(1)).options == ["Pizza", "Sushi"]


async def test_live_results_survive_the_cleanup_of_the_poll_message_row(world: PollWorld) -> None:
    """Housekeeping deletes sent outbox rows after a while (the poll's reference becomes
    NULL): the next live refresh posts the poll again rather than editing nothing."""
    poll_id = await world.create('"Ship?" Yes No --threshold 3')
    live_id = (await world.poll(poll_id)).live_outbox_id
    async with world.db.transaction() as session:
        await session.delete(await session.get(OutboxMessage, live_id))
    assert (await world.poll(poll_id)).live_outbox_id is None
    await world.vote("bob", poll_id, 0)
    rows = live_rows(await world.outbox(), poll_id)
    assert [(r.method, r.idempotency_key) for r in rows] == [("post", f"poll:{poll_id}:live:1")]
    assert (await world.poll(poll_id)).live_outbox_id == rows[0].id
