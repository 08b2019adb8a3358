"""Poll votes clicked at the same moment are group-committed (``bot/batching.py``,
``bot/features/polls/vote_batch.py``): one transaction for a burst, each click answered to its
own voter, duplicates and changed votes counted exactly once, a failing click answered with its
error without sinking the others, a vote racing a close either counted or refused, and the
ballots of a batch written in an order that does not follow the voters'."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from bot.chat import Response
from bot.events import ActionInvocation, Actor
from bot.features.polls import ballots, render
from storage.db import Database
from storage.models import Member, ProcessedEvent
from storage.polls import Poll, keyed_table
from tests.test_polls_create import CHANNEL, PollWorld, running_world, said

# 40 voters, all in #team (alice creates the polls, frank is an admin).
PEOPLE = {
    **{name: "Europe/Berlin" for name in ("alice", "frank")},
    **{f"v{n:02d}": "Europe/Berlin" for n in range(40)},
}
VOTERS = [f"v{n:02d}" for n in range(40)]


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database, zones=PEOPLE) as built:
        yield built


def click(
    world: PollWorld, name: str, poll_id: int, *choices: int, event_id: str = ""
) -> ActionInvocation:
    return ActionInvocation(
        world.origin(event_id=event_id or None),
        world.actor(name),
        render.vote_action_id(poll_id),
        str(choices[0]) if choices else "",
        tuple(str(c) for c in choices) if len(choices) > 1 else (),
        CHANNEL,
        "m1",
    )


async def burst(world: PollWorld, events: list[ActionInvocation]) -> list[Response]:
    """Submit every click before any is handled, as a burst of platform requests would."""
    responses = await asyncio.gather(*(world.core.handle(e) for e in events))
    await world.core.idle()
    return list(responses)


def batches(world: PollWorld) -> int:
    batcher = world.core.action_batcher(render.VOTE_ACTION)
    assert batcher is not None
    return batcher.batches


async def tally(world: PollWorld, poll_id: int) -> ballots.Tally:
    async with world.db.transaction() as session:
        poll = await session.get_one(Poll, poll_id)
        return await ballots.tally(session, poll)


@pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous", "named"])
async def test_a_burst_counts_every_voter_once(world: PollWorld, anonymous: bool) -> None:
    flag = " --anonymous" if anonymous else ""
    poll_id = await world.create(f'"Ship?" Yes No Later{flag}')
    firsts = {name: n % 3 for n, name in enumerate(VOTERS)}
    events = [
        click(world, name, poll_id, c, event_id=f"first-{name}") for name, c in firsts.items()
    ]
    # Ten double clicks (the platform delivers the same event twice) ...
    events += [
        click(world, name, poll_id, firsts[name], event_id=f"first-{name}") for name in VOTERS[:10]
    ]
    # ... and five changed votes, clicked in the same burst after the first ones.
    changed = {name: (firsts[name] + 1) % 3 for name in VOTERS[10:15]}
    events += [
        click(world, name, poll_id, c, event_id=f"change-{name}") for name, c in changed.items()
    ]
    before = batches(world)
    responses = await burst(world, events)
    assert batches(world) == before + 1  # one transaction for the whole burst
    receipts: dict[str, Response] = {}
    for event, response in zip(events, responses, strict=True):
        receipts.setdefault(event.origin.event_id, response)  # the first of a repeated id
    # Each click is answered to its own voter, with what that click recorded.
    for name, choice in firsts.items():
        got = said(receipts[f"first-{name}"])
        assert got.startswith(f"Your vote is in: {('Yes', 'No', 'Later')[choice]}."), (name, got)
    for name, choice in changed.items():
        got = said(receipts[f"change-{name}"])
        assert got.startswith(f"Your vote is changed to {('Yes', 'No', 'Later')[choice]}.")
    assert responses[len(VOTERS) : len(VOTERS) + 10] == [None] * 10  # the repeats: ignored
    final = {**firsts, **changed}
    counted = await tally(world, poll_id)
    assert counted.counts == dict(Counter(final.values()))
    assert counted.voters == len(VOTERS)
    assert len(await world.ballots(poll_id)) == len(VOTERS)
    assert await world.count(ProcessedEvent) == 1 + len(VOTERS) + len(changed)
    if not anonymous:
        named = {member: choice for choice, _, member in await world.ballots(poll_id)}
        assert named == {world.members[name]: c for name, c in final.items()}
    # A second burst changes everyone's vote: still one ballot each, counted once.
    again = [click(world, name, poll_id, 2, event_id=f"again-{name}") for name in VOTERS]
    replies = await burst(world, again)
    assert all(said(r).startswith("Your vote is changed to Later.") for r in replies)
    assert (await tally(world, poll_id)).counts == {2: len(VOTERS)}
    # Sealed at close: the counts are the same, the keys and the secret gone.
    assert said(await world.command(f"close {poll_id}")).startswith(f"Closed poll #{poll_id}")
    after = await tally(world, poll_id)
    assert (after.counts, after.voters) == ({2: len(VOTERS)}, len(VOTERS))
    if anonymous:
        assert await world.secret(poll_id) is None


async def test_failing_clicks_get_their_error_and_do_not_sink_the_others(
    world: PollWorld,
) -> None:
    open_id = await world.create('"Ship?" Yes No --anonymous')
    closed_id = await world.create('"Lunch?" Pizza Sushi')
    assert said(await world.command(f"close {closed_id}")).startswith("Closed poll")
    multiple = await world.create('"Tools?" Git Jira Slack --multiple 2')
    events = [
        click(world, "v00", open_id, 0, event_id="ok-0"),
        click(world, "v01", closed_id, 1, event_id="closed"),
        click(world, "v02", open_id, 5, event_id="no-such-option"),
        click(world, "v03", open_id, 1, event_id="ok-1"),
        click(world, "v04", multiple, 0, 1, 2, event_id="too-many"),
        click(world, "v05", open_id, 0, event_id="nul-\0"),  # refused before any batch
        click(world, "v06", multiple, 0, 2, event_id="ok-2"),
        click(world, "v07", 999, 0, event_id="no-such-poll"),
        click(world, "v08", open_id, 1, event_id="ok-3"),
    ]
    events[5] = ActionInvocation(
        events[5].origin,
        events[5].actor,
        events[5].action_id,
        "0\0",
        (),
        CHANNEL,
        "m1",
    )
    replies = dict(
        zip([e.origin.event_id for e in events], map(said, await burst(world, events)), strict=True)
    )
    assert replies["closed"].startswith(f"Poll #{closed_id} closed ")
    assert replies["no-such-option"].startswith("That option is not in this poll")
    assert replies["too-many"] == "Pick at most 2 options."
    assert "NUL character" in replies["nul-\0"]
    assert replies["no-such-poll"] == "That poll no longer exists."
    assert replies["ok-0"].startswith("Your vote is in: Yes.")
    assert replies["ok-1"].startswith("Your vote is in: No.")
    assert replies["ok-2"].startswith("Your vote is in: Git, Slack.")
    assert replies["ok-3"].startswith("Your vote is in: No.")
    assert (await tally(world, open_id)).counts == {0: 1, 1: 2}
    assert (await tally(world, multiple)).counts == {0: 1, 2: 1}
    assert (await tally(world, closed_id)).counts == {}
    voted = await world.participants(open_id)
    assert [n for n in VOTERS if voted[n][0]] == ["v00", "v03", "v08"]


async def test_members_the_batch_cannot_take_alone_go_the_one_event_way(
    world: PollWorld,
) -> None:
    """A member syncup has not seen yet and one whose name changed are created or updated by
    the one-event path; their votes count all the same, in the same burst as the others."""
    poll_id = await world.create('"Ship?" Yes No')
    renamed = click(world, "v00", poll_id, 0, event_id="renamed")
    renamed = ActionInvocation(
        renamed.origin,
        Actor("v00", "Vee Zero", "Europe/Berlin"),
        renamed.action_id,
        renamed.value,
        (),
        CHANNEL,
        "m1",
    )
    stranger = click(world, "newcomer", poll_id, 1, event_id="new")  # not in the audience
    plain = click(world, "v01", poll_id, 1, event_id="plain")
    got = [said(r) for r in await burst(world, [renamed, stranger, plain])]
    assert got[0].startswith("Your vote is in: Yes.")
    # Someone syncup has not seen in #team is refused, by the one-event path.
    assert got[1] == "This poll is for the members of #team; you can't answer it."
    assert got[2].startswith("Your vote is in: No.")
    async with world.db.transaction() as session:
        name = await session.scalar(
            select(Member.display_name).where(Member.id == world.members["v00"])
        )
    assert name == "Vee Zero"
    assert (await tally(world, poll_id)).counts == {0: 1, 1: 1}


async def test_votes_racing_a_close_count_or_are_refused(world: PollWorld) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous --threshold 3')
    clicks = [
        click(world, name, poll_id, n % 2, event_id=f"race-{name}") for n, name in enumerate(VOTERS)
    ]
    close = world.command(f"close {poll_id}")
    half = len(clicks) // 2
    results = await asyncio.gather(
        *(world.core.handle(e) for e in clicks[:half]),
        close,
        *(world.core.handle(e) for e in clicks[half:]),
    )
    await world.core.idle()
    replies = [said(r) for r in results[:half] + results[half + 1 :]]
    counted = [r for r in replies if r.startswith("Your vote is in")]
    refused = [r for r in replies if r.startswith(f"Poll #{poll_id} closed")]
    assert len(counted) + len(refused) == len(VOTERS), replies  # none lost silently
    after = await tally(world, poll_id)
    assert after.voters == len(counted)
    assert sum(after.counts.values()) == len(counted)
    assert (await world.poll(poll_id)).closed_at is not None


async def test_a_vote_after_a_reopen_of_a_sealed_poll_is_refused_in_the_batch(
    world: PollWorld,
) -> None:
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    await burst(world, [click(world, name, poll_id, 0) for name in VOTERS[:3]])
    await world.command(f"close {poll_id}")
    await world.command(f"reopen {poll_id}")
    replies = await burst(world, [click(world, "v00", poll_id, 1), click(world, "v10", poll_id, 1)])
    assert said(replies[0]) == ballots.FINAL_MESSAGE
    assert said(replies[1]).startswith("Your vote is in: No.")
    # While it is open again, only the answers since the reopen are in its own table.
    reopened = await tally(world, poll_id)
    assert (reopened.counts, reopened.voters) == ({1: 1}, 4)


async def test_a_batch_writes_its_ballots_in_key_order(world: PollWorld) -> None:
    """The order of the rows in the poll's table follows neither who voted nor when: a batch
    inserts its ballots sorted by their keys (on PostgreSQL the heap keeps insertion order; on
    SQLite the table is stored by key anyway)."""
    poll_id = await world.create('"Ship?" Yes No --anonymous')
    await burst(world, [click(world, name, poll_id, n % 2) for n, name in enumerate(VOTERS)])
    secret = await world.secret(poll_id)
    assert secret is not None
    keys = {
        hmac.new(secret, str(world.members[n]).encode(), hashlib.sha256).hexdigest(): n
        for n in VOTERS
    }
    table = keyed_table(poll_id)
    async with world.db.transaction() as session:
        if world.db.dialect == "postgresql":
            stored = list(
                await session.scalars(text(f"SELECT voter_key FROM {table.name} ORDER BY ctid"))
            )
        else:
            stored = list(await session.scalars(select(table.c.voter_key)))
        count = await session.scalar(select(func.count()).select_from(table))
    assert count == len(VOTERS)
    assert stored == sorted(keys)
    assert [keys[k] for k in stored] != VOTERS  # not the order they clicked in
