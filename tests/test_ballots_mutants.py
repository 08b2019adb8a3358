"""Ballots (invariant 6), the gaps mutation testing of ``bot/features/polls/ballots.py`` found
(issue 17; docs/testing.md): ``cast``, ``voter_key``, ``tally`` and ``tidy`` called as the
polls feature calls them, on a database with two polls side by side, so that a ballot, a count
or a dropped table of the wrong poll shows.

* A member's ballot is found again (and replaced) under the same key whether the vote came alone
  or in a batch; a changed vote of one poll leaves the member's ballot in another alone.
* An anonymous ballot's key is the HMAC of the member id under the poll's own secret: not the
  member id, not a plain hash of it, different per poll and per member; no member id is stored
  next to an anonymous answer, and a named one carries its member.
* Counts, participation and open answers are the poll's own; closed anonymous polls are counted
  from their sealed ballots.
* Start-up drops the own tables of closed (and vanished) anonymous polls and of nothing else.

SQLite and PostgreSQL, storage only (no platform): each test runs in about a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, inspect, select

from bot.errors import UserError
from bot.features.polls import ballots, service
from storage.db import Database
from storage.models import Member, Workspace
from storage.polls import (
    Poll,
    PollBallot,
    PollKind,
    PollParticipant,
    keyed_table,
    secret_table,
)

NOW = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
NAMES = ("ann", "bea", "cal", "dot")


async def members(db: Database) -> dict[str, int]:
    async with db.transaction() as session:
        workspace = Workspace(platform="console", external_id="w1", created_at=NOW)
        session.add(workspace)
        await session.flush()
        rows = [
            Member(
                workspace_id=workspace.id,
                platform_user_id=f"U-{name}",
                display_name=name,
                created_at=NOW,
                updated_at=NOW,
            )
            for name in NAMES
        ]
        session.add_all(rows)
        await session.flush()
        return {m.display_name: m.id for m in rows}


async def new_poll(
    db: Database,
    people: dict[str, int],
    *,
    anonymous: bool,
    kind: PollKind = PollKind.SINGLE,
    audience: Sequence[str] = NAMES,
) -> int:
    async with db.transaction() as session:
        workspace_id = (await session.get(Member, people[NAMES[0]])).workspace_id  # type: ignore[union-attr]
        poll = Poll(
            workspace_id=workspace_id,
            question="Ship it?",
            kind=kind.value,
            options=[] if kind is PollKind.TEXT else ["Yes", "No", "Later"],
            max_choices=2 if kind is PollKind.MULTIPLE else 1,
            anonymous=anonymous,
            results="closed",
            opens_at=NOW,
        )
        await ballots.create_poll(session, poll, [people[n] for n in audience], now=NOW)
        return poll.id


async def vote(
    db: Database, poll_id: int, member_id: int, *choices: int, text: str | None = None
) -> ballots.Cast | None:
    async with db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        return await ballots.cast(session, poll, member_id, list(choices), text=text)


async def vote_in_batch(db: Database, poll_id: int, votes: dict[int, Sequence[int]]) -> None:
    """As ``vote_batch`` does: lock the voters, then cast them all at once."""
    async with db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        state = await ballots.lock_voters(session, poll, votes)
        voted_before = [m for m, (voted, _) in state.items() if voted]
        await ballots.cast_many(session, poll, votes, voted_before)


async def tally(db: Database, poll_id: int, *, with_texts: bool = True) -> ballots.Tally:
    async with db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        return await ballots.tally(session, poll, with_texts=with_texts)


async def close(db: Database, poll_id: int) -> None:
    async with db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        await ballots.close_poll(session, poll, NOW + timedelta(hours=1))


async def reopen(db: Database, poll_id: int) -> None:
    """Open a closed poll again: a new secret and new tables for its ballots, as a reopen makes."""
    async with db.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        poll.closed_at = None
        await ballots.open_keyed(session, poll)


async def keyed_rows(db: Database, poll_id: int) -> list[tuple[str, int, str | None]]:
    table = keyed_table(poll_id)
    async with db.transaction() as session:
        rows = await session.execute(
            select(table.c.voter_key, table.c.choice, table.c.text).order_by(
                table.c.voter_key, table.c.choice
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def named_rows(db: Database, poll_id: int) -> list[tuple[str, int, str | None, int | None]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(PollBallot.voter_key, PollBallot.choice, PollBallot.text, PollBallot.member_id)
            .where(PollBallot.poll_id == poll_id)
            .order_by(PollBallot.voter_key, PollBallot.choice)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def participation(db: Database, poll_id: int) -> dict[int, tuple[bool, bool]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(PollParticipant.member_id, PollParticipant.voted, PollParticipant.final).where(
                PollParticipant.poll_id == poll_id
            )
        )
        return {m: (v, f) for m, v, f in rows.all()}


async def secret_of(db: Database, poll_id: int) -> bytes:
    async with db.transaction() as session:
        secret = await ballots.read_secret(session, poll_id)
    assert secret is not None
    return secret


async def own_tables(db: Database) -> set[str]:
    async with db.transaction() as session:
        names = await session.run_sync(lambda s: inspect(s.connection()).get_table_names())
    return {n for n in names if ballots.OWN_TABLE.fullmatch(n)}


# -- cast and voter_key: a member's ballot, found again -------------------------------------------


async def test_changing_a_named_vote_leaves_the_members_ballot_in_another_poll(
    database: Database,
) -> None:
    people = await members(database)
    first = await new_poll(database, people, anonymous=False)
    second = await new_poll(database, people, anonymous=False)
    ann = people["ann"]
    assert await vote(database, first, ann, 0) == ballots.Cast(replaced=False)
    assert await vote(database, second, ann, 1) == ballots.Cast(replaced=False)
    assert await vote(database, first, ann, 2) == ballots.Cast(replaced=True)
    assert await named_rows(database, first) == [(f"m{ann}", 2, None, ann)]
    assert await named_rows(database, second) == [(f"m{ann}", 1, None, ann)]
    assert (await tally(database, second)).counts == {1: 1}


async def test_a_batch_replaces_the_ballot_a_single_vote_left_and_the_other_way_round(
    database: Database,
) -> None:
    """A member's clicks go one at a time or in a batch as the load decides: either way their
    earlier ballot is found and replaced, never kept beside the new one."""
    people = await members(database)
    ann, bea = people["ann"], people["bea"]
    for anonymous in (False, True):
        poll_id = await new_poll(database, people, anonymous=anonymous)
        await vote(database, poll_id, ann, 0)
        await vote_in_batch(database, poll_id, {ann: [1], bea: [1]})
        counted = await tally(database, poll_id)
        assert (counted.counts, counted.voters) == ({1: 2}, 2), anonymous
        assert await vote(database, poll_id, bea, 2) == ballots.Cast(replaced=True)
        counted = await tally(database, poll_id)
        assert (counted.counts, counted.voters) == ({1: 1, 2: 1}, 2), anonymous


async def test_an_anonymous_ballots_key_is_the_hmac_of_the_member_under_the_polls_secret(
    database: Database,
) -> None:
    """Nobody holding the ballots alone can tell whose they are: the key is neither the member
    id nor a plain hash of it, and the same member's keys in two polls differ."""
    people = await members(database)
    first = await new_poll(database, people, anonymous=True)
    second = await new_poll(database, people, anonymous=True)
    ann, bea = people["ann"], people["bea"]
    await vote(database, first, ann, 0)
    await vote(database, first, bea, 0)
    await vote(database, second, ann, 0)
    expected = {
        hmac.new(await secret_of(database, first), str(m).encode(), hashlib.sha256).hexdigest()
        for m in (ann, bea)
    }
    keys = {k for k, _, _ in await keyed_rows(database, first)}
    assert keys == expected
    assert len(keys) == 2
    for member in (ann, bea):
        plain = {str(member), f"m{member}", hashlib.sha256(str(member).encode()).hexdigest()}
        assert not keys & plain
    (other,) = {k for k, _, _ in await keyed_rows(database, second)}
    assert other not in keys
    named_id = await new_poll(database, people, anonymous=False)
    async with database.transaction() as session:
        poll = await session.get(Poll, first)
        assert poll is not None
        assert await ballots.voter_key(session, poll, ann) in keys
        named = await session.get(Poll, named_id)
        assert named is not None
        assert await ballots.voter_key(session, named, ann) == f"m{ann}"


async def test_no_member_id_lies_next_to_an_anonymous_answer_and_a_named_one_has_its_member(
    database: Database,
) -> None:
    people = await members(database)
    ann = people["ann"]
    anonymous = await new_poll(database, people, anonymous=True, kind=PollKind.TEXT)
    named = await new_poll(database, people, anonymous=False, kind=PollKind.TEXT)
    await vote(database, anonymous, ann, 0, text="Fewer meetings")
    await vote(database, named, ann, 0, text="More pairing")
    async with database.transaction() as session:
        columns = await session.run_sync(
            lambda s: [
                c["name"] for c in inspect(s.connection()).get_columns(f"poll_{anonymous}_keyed")
            ]
        )
        assert sorted(columns) == ["choice", "text", "voter_key"]
        assert (
            await session.scalar(select(PollBallot.poll_id).where(PollBallot.poll_id == anonymous))
            is None
        )
    ((key, choice, text),) = await keyed_rows(database, anonymous)
    assert (choice, text) == (0, "Fewer meetings") and len(key) == 64
    assert await named_rows(database, named) == [(f"m{ann}", 0, "More pairing", ann)]
    await close(database, anonymous)
    ((sealed_key, *sealed),) = await named_rows(database, anonymous)
    assert sealed == [0, "Fewer meetings", None]
    assert sealed_key != key and len(sealed_key) == 64


async def test_a_vote_is_recorded_as_participation_of_that_member_in_that_poll_only(
    database: Database,
) -> None:
    people = await members(database)
    ann, bea = people["ann"], people["bea"]
    for anonymous in (False, True):
        first = await new_poll(database, people, anonymous=anonymous)
        second = await new_poll(database, people, anonymous=anonymous)
        await vote(database, first, ann, 1)
        assert await participation(database, first) == {
            people[n]: (n == "ann", False) for n in NAMES
        }
        assert set((await participation(database, second)).values()) == {(False, False)}
        # Not voted before: no earlier ballot of anyone is touched by the first vote.
        await vote(database, first, bea, 1)
        assert (await tally(database, first)).counts == {1: 2}


async def test_a_multiple_choice_vote_stores_each_choice_once_and_is_replaced_whole(
    database: Database,
) -> None:
    people = await members(database)
    ann = people["ann"]
    for anonymous in (False, True):
        poll_id = await new_poll(database, people, anonymous=anonymous, kind=PollKind.MULTIPLE)
        await vote(database, poll_id, ann, 2, 0, 2)
        assert (await tally(database, poll_id)).counts == {0: 1, 2: 1}
        assert await vote(database, poll_id, ann, 1) == ballots.Cast(replaced=True)
        assert (await tally(database, poll_id)).counts == {1: 1}


async def test_a_member_outside_the_audience_gets_no_ballot(database: Database) -> None:
    people = await members(database)
    for anonymous in (False, True):
        poll_id = await new_poll(database, people, anonymous=anonymous, audience=["ann"])
        assert await vote(database, poll_id, people["bea"], 0) is None
        counted = await tally(database, poll_id)
        assert (counted.counts, counted.voters, counted.eligible) == ({}, 0, 1)


async def test_after_a_close_and_reopen_an_earlier_anonymous_voter_is_refused_with_the_reason(
    database: Database,
) -> None:
    people = await members(database)
    ann, bea = people["ann"], people["bea"]
    poll_id = await new_poll(database, people, anonymous=True)
    await vote(database, poll_id, ann, 0)
    await close(database, poll_id)
    await reopen(database, poll_id)
    with pytest.raises(UserError) as refused:
        await vote(database, poll_id, ann, 1)
    assert str(refused.value) == ballots.FINAL_MESSAGE
    assert await vote(database, poll_id, bea, 1) == ballots.Cast(replaced=False)
    await close(database, poll_id)  # the earlier answer stands, beside the new one
    counted = await tally(database, poll_id)
    assert (counted.counts, counted.voters) == ({0: 1, 1: 1}, 2)


async def test_a_vote_on_an_anonymous_poll_whose_secret_is_gone_is_refused_and_stores_nothing(
    database: Database,
) -> None:
    """No secret, no key: nothing may be stored under a key made without one."""
    people = await members(database)
    poll_id = await new_poll(database, people, anonymous=True)
    async with database.transaction() as session:
        await session.execute(delete(secret_table(poll_id)))
    with pytest.raises(UserError) as refused:
        await vote(database, poll_id, people["ann"], 0)
    assert str(refused.value) == (
        "This poll has closed; anonymous answers can no longer be changed."
    )
    assert await keyed_rows(database, poll_id) == []
    assert (await participation(database, poll_id))[people["ann"]] == (False, False)


# -- tally -----------------------------------------------------------------------------------------


async def test_a_tally_counts_only_its_own_polls_ballots_open_or_closed(
    database: Database,
) -> None:
    people = await members(database)
    for anonymous in (False, True):
        first = await new_poll(database, people, anonymous=anonymous)
        second = await new_poll(database, people, anonymous=anonymous, audience=["ann", "bea"])
        await vote(database, first, people["ann"], 0)
        await vote(database, first, people["bea"], 0)
        await vote(database, first, people["cal"], 2)
        await vote(database, second, people["ann"], 1)
        for state in ("open", "closed"):
            if state == "closed":
                await close(database, first)
                await close(database, second)
            one, two = await tally(database, first), await tally(database, second)
            assert (one.counts, one.voters, one.eligible) == ({0: 2, 2: 1}, 3, 4), state
            assert (two.counts, two.voters, two.eligible) == ({1: 1}, 1, 2), state


async def test_open_answers_are_the_polls_own_sorted_and_only_when_asked_for(
    database: Database,
) -> None:
    people = await members(database)
    for anonymous in (False, True):
        first = await new_poll(database, people, anonymous=anonymous, kind=PollKind.TEXT)
        second = await new_poll(database, people, anonymous=anonymous, kind=PollKind.TEXT)
        choice = await new_poll(database, people, anonymous=anonymous)
        await vote(database, first, people["ann"], 0, text="Written agendas")
        await vote(database, first, people["bea"], 0, text="Fewer meetings")
        await vote(database, second, people["cal"], 0, text="More pairing")
        await vote(database, choice, people["ann"], 1)
        for state in ("open", "closed"):
            if state == "closed":
                for poll_id in (first, second, choice):
                    await close(database, poll_id)
            counted = await tally(database, first)
            assert counted.texts == ["Fewer meetings", "Written agendas"], (anonymous, state)
            assert (counted.counts, counted.voters) == ({0: 2}, 2)
            assert (await tally(database, first, with_texts=False)).texts == []
            assert (await tally(database, second)).texts == ["More pairing"]
            assert (await tally(database, choice)).texts == []


async def test_counting_an_open_anonymous_poll_does_not_wait_for_a_vote_in_flight_postgresql_only(
    database: Database,
) -> None:
    """PostgreSQL: a vote holds a shared lock on its poll's row until it commits
    (``service.vote``); a count (``/poll list``, the results) takes a shared lock too, so that a
    close cannot drop the ballots it reads, and runs beside the vote instead of waiting for it.
    SQLite has one writer and no row locks: nothing to see there."""
    if database.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (row locks)")
    people = await members(database)
    poll_id = await new_poll(database, people, anonymous=True)
    await vote(database, poll_id, people["ann"], 0)
    async with database.transaction() as voting:
        assert await service.load_poll(voting, poll_id, lock="share") is not None
        # A safety net, not a measure: an exclusive lock would wait here for the vote's commit.
        async with asyncio.timeout(30):
            counted = await tally(database, poll_id)
    assert (counted.counts, counted.voters) == ({0: 1}, 1)


# -- tidy: what start-up drops ---------------------------------------------------------------------


async def test_start_up_keeps_the_tables_of_open_anonymous_polls_and_drops_closed_ones(
    database: Database,
) -> None:
    """An open anonymous poll's ballots and secret survive a restart (its voters can still
    change their answers); tables left behind by a closed poll are dropped."""
    people = await members(database)
    still_open = await new_poll(database, people, anonymous=True)
    left_behind = await new_poll(database, people, anonymous=True)
    named = await new_poll(database, people, anonymous=False)
    await vote(database, still_open, people["ann"], 1)
    await vote(database, left_behind, people["ann"], 1)
    await vote(database, named, people["ann"], 1)
    secret = await secret_of(database, still_open)
    async with database.transaction() as session:  # closed without its seal (an older version)
        poll = await session.get(Poll, left_behind)
        assert poll is not None
        poll.closed_at = NOW
    assert await ballots.tidy(database) == [left_behind]
    assert await own_tables(database) == {
        f"poll_{still_open}_keyed",
        f"poll_{still_open}_secret",
    }
    assert await secret_of(database, still_open) == secret
    assert await vote(database, still_open, people["ann"], 2) == ballots.Cast(replaced=True)
    assert (await tally(database, still_open)).counts == {2: 1}
    assert (await tally(database, named)).counts == {1: 1}
    assert await ballots.tidy(database) == []


# -- check_choices: what a vote may be -------------------------------------------------------------


def poll_of(kind: PollKind, *, options: int = 0, max_choices: int = 1) -> Poll:
    """A poll as ``create_poll`` gets it: options only for single and multiple choice, a number
    of choices above 1 only for multiple choice (``options.py`` refuses anything else)."""
    return Poll(kind=kind.value, options=[f"o{n}" for n in range(options)], max_choices=max_choices)


def refusal(poll: Poll, choices: Sequence[int], text: str | None = None) -> str | None:
    """What the voter is told, or None for a vote that is taken."""
    try:
        ballots.check_choices(poll, choices, text)
    except UserError as error:
        return error.message
    return None


STALE = "That option is not in this poll any more; run the poll's buttons again."


def test_a_vote_the_polls_kind_does_not_allow_is_refused_with_what_to_do_instead() -> None:
    single = poll_of(PollKind.SINGLE, options=3)
    multiple = poll_of(PollKind.MULTIPLE, options=4, max_choices=2)
    scale, enps = poll_of(PollKind.SCALE), poll_of(PollKind.ENPS)
    text = poll_of(PollKind.TEXT)
    verdicts = {
        # An open answer: some text, whatever the choices say; blank is refused.
        ("text", "written", ()): refusal(text, [], "Fewer meetings"),
        ("text", "written, with the button's 0", (0,)): refusal(text, [0], "Fewer meetings"),
        ("text", "none", (0,)): refusal(text, [0], None),
        ("text", "empty", (0,)): refusal(text, [0], ""),
        ("text", "blank", (0,)): refusal(text, [0], "  \n "),
        # Single choice: exactly one of its options (the same one twice is one).
        ("single", "nothing", ()): refusal(single, []),
        ("single", "first", (0,)): refusal(single, [0]),
        ("single", "last", (2,)): refusal(single, [2]),
        ("single", "twice the same", (1, 1)): refusal(single, [1, 1]),
        ("single", "two", (0, 1)): refusal(single, [0, 1]),
        ("single", "past the end", (3,)): refusal(single, [3]),
        ("single", "negative", (-1,)): refusal(single, [-1]),
        # Multiple choice: up to max_choices of its options.
        ("multiple", "nothing", ()): refusal(multiple, []),
        ("multiple", "one", (3,)): refusal(multiple, [3]),
        ("multiple", "the most", (0, 3)): refusal(multiple, [0, 3]),
        ("multiple", "the most, repeated", (0, 3, 0)): refusal(multiple, [0, 3, 0]),
        ("multiple", "one too many", (0, 1, 2)): refusal(multiple, [0, 1, 2]),
        ("multiple", "past the end", (0, 4)): refusal(multiple, [0, 4]),
        # Scale 1 to 5, eNPS 0 to 10, one answer each.
        ("scale", "1", (1,)): refusal(scale, [1]),
        ("scale", "5", (5,)): refusal(scale, [5]),
        ("scale", "0", (0,)): refusal(scale, [0]),
        ("scale", "6", (6,)): refusal(scale, [6]),
        ("scale", "two", (2, 3)): refusal(scale, [2, 3]),
        ("enps", "0", (0,)): refusal(enps, [0]),
        ("enps", "10", (10,)): refusal(enps, [10]),
        ("enps", "11", (11,)): refusal(enps, [11]),
        ("enps", "-1", (-1,)): refusal(enps, [-1]),
        ("enps", "nothing", ()): refusal(enps, []),
    }
    write = "Write an answer before sending it."
    pick = "Pick an option."
    assert verdicts == {
        ("text", "written", ()): None,
        ("text", "written, with the button's 0", (0,)): None,
        ("text", "none", (0,)): write,
        ("text", "empty", (0,)): write,
        ("text", "blank", (0,)): write,
        ("single", "nothing", ()): pick,
        ("single", "first", (0,)): None,
        ("single", "last", (2,)): None,
        ("single", "twice the same", (1, 1)): None,
        ("single", "two", (0, 1)): "Pick at most 1 option.",
        ("single", "past the end", (3,)): STALE,
        ("single", "negative", (-1,)): STALE,
        ("multiple", "nothing", ()): pick,
        ("multiple", "one", (3,)): None,
        ("multiple", "the most", (0, 3)): None,
        ("multiple", "the most, repeated", (0, 3, 0)): None,
        ("multiple", "one too many", (0, 1, 2)): "Pick at most 2 options.",
        ("multiple", "past the end", (0, 4)): STALE,
        ("scale", "1", (1,)): None,
        ("scale", "5", (5,)): None,
        ("scale", "0", (0,)): STALE,
        ("scale", "6", (6,)): STALE,
        ("scale", "two", (2, 3)): "Pick at most 1 option.",
        ("enps", "0", (0,)): None,
        ("enps", "10", (10,)): None,
        ("enps", "11", (11,)): STALE,
        ("enps", "-1", (-1,)): STALE,
        ("enps", "nothing", ()): pick,
    }


# -- lock_voters and cast_many: a batch of votes ---------------------------------------------------


async def test_a_batch_sees_each_voters_standing_in_its_own_poll_only(database: Database) -> None:
    """What a batch learns before it casts (voted before? final after a reopen?) is about the
    members it asked for, in the poll it is for: a vote elsewhere or a member it did not ask
    about must not make it replace a ballot that is not there or skip recording the vote."""
    people = await members(database)
    ann, bea, cal, dot = (people[n] for n in NAMES)
    other = await new_poll(database, people, anonymous=False)
    poll_id = await new_poll(database, people, anonymous=True, audience=["ann", "bea", "cal"])
    for member in (ann, bea, cal, dot):
        await vote(database, other, member, 0)
    await vote(database, poll_id, bea, 1)
    await close(database, poll_id)
    await reopen(database, poll_id)
    await vote(database, poll_id, cal, 2)
    async with database.transaction() as session:
        poll = await session.get(Poll, poll_id)
        assert poll is not None
        state = await ballots.lock_voters(session, poll, {ann, bea, cal, dot})
        assert state == {ann: (False, False), bea: (True, True), cal: (True, False)}
        assert await ballots.lock_voters(session, poll, [cal]) == {cal: (True, False)}
        assert await ballots.lock_voters(session, poll, []) == {}


async def test_a_batch_records_votes_and_replaces_ballots_in_its_own_poll_only(
    database: Database,
) -> None:
    """A member with ballots in other polls votes in a batch: their ballot in this poll is the one
    replaced, their participation in this poll the one recorded; the others stay as they were."""
    people = await members(database)
    ann, bea, cal = people["ann"], people["bea"], people["cal"]
    for anonymous in (False, True):
        other = await new_poll(database, people, anonymous=anonymous)
        poll_id = await new_poll(database, people, anonymous=anonymous, kind=PollKind.MULTIPLE)
        await vote(database, other, ann, 0)
        await vote(database, other, bea, 0)
        await vote(database, poll_id, ann, 0)
        before_other = await participation(database, other)
        await vote_in_batch(database, poll_id, {ann: [2, 1, 2], bea: [2], cal: [1]})
        counted = await tally(database, poll_id)
        assert (counted.counts, counted.voters) == ({1: 2, 2: 2}, 3), anonymous
        assert await participation(database, poll_id) == {
            people[n]: (n != "dot", False) for n in NAMES
        }
        assert await participation(database, other) == before_other
        assert (await tally(database, other)).counts == {0: 2}, anonymous
        if not anonymous:
            assert await named_rows(database, poll_id) == sorted(
                [
                    (f"m{ann}", 1, None, ann),
                    (f"m{ann}", 2, None, ann),
                    (f"m{bea}", 2, None, bea),
                    (f"m{cal}", 1, None, cal),
                ]
            )
            assert await named_rows(database, other) == [
                (f"m{ann}", 0, None, ann),
                (f"m{bea}", 0, None, bea),
            ]
        else:
            secret = await secret_of(database, poll_id)
            key = {
                m: hmac.new(secret, str(m).encode(), hashlib.sha256).hexdigest()
                for m in (ann, bea, cal)
            }
            assert await keyed_rows(database, poll_id) == sorted(
                [(key[ann], 1, None), (key[ann], 2, None), (key[bea], 2, None), (key[cal], 1, None)]
            )


async def test_a_batch_left_with_no_vote_touches_nothing(database: Database) -> None:
    """Every click of a poll refused (``vote_batch`` casts what is left, here nothing): no read
    of the poll's secret, nothing written, no error for the batch, even with the secret gone."""
    people = await members(database)
    poll_id = await new_poll(database, people, anonymous=True)
    async with database.transaction() as session:
        await session.execute(delete(secret_table(poll_id)))
    await vote_in_batch(database, poll_id, {})
    assert await keyed_rows(database, poll_id) == []
    assert set((await participation(database, poll_id)).values()) == {(False, False)}
