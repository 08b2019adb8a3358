"""An anonymous poll on Teams end to end: created with an @mention in a channel, voted on with
the card's buttons (``Action.Execute`` invokes), nothing shown until it closes, results posted in
the channel without names; the real Teams SDK and App against the fake connector, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.features.polls import live
from storage.db import Database
from storage.polls import PollBallot, PollParticipant, keyed_table
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    TEAM_CHANNEL,
    TeamsWorld,
    actions_of,
    card_of,
    shown,
    team_teams,
    teams_world,
)
from tests.fakes.teams.server import FakeTeams

START = datetime(2026, 3, 9, 9, tzinfo=UTC)
CAROL = "cccccccc-0000-4000-8000-0000000000c0"
DAVE = "dddddddd-0000-4000-8000-0000000000d0"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTeams]:
    async with team_teams() as teams:
        teams.add_user(CAROL, "carol", "Europe/Berlin")
        teams.add_user(DAVE, "dave", "Europe/Berlin")
        yield teams


@pytest.fixture
async def world(fake: FakeTeams, database: Database) -> AsyncIterator[TeamsWorld]:
    async with teams_world(fake, database.url, START) as w:
        live.install(w.app.core).delay = 0.05
        await w.install([ALICE, BOB, CAROL, DAVE], TEAM_CHANNEL)
        yield w


async def test_an_anonymous_poll_shows_nothing_until_it_closes(
    world: TeamsWorld, database: Database
) -> None:
    fake = world.fake
    await world.say(
        ALICE, 'poll "Honest pace?" --scale --anonymous --threshold 3', channel=TEAM_CHANNEL
    )
    [poll] = fake.posts(TEAM_CHANNEL)
    assert "Anonymous poll #1" in shown(poll)
    buttons = [a["title"] for a in actions_of(card_of(poll.activity))]
    assert buttons[:5] == ["1", "2", "3", "4", "5"]
    for who, value in ((ALICE, "2"), (BOB, "4"), (CAROL, "4"), (DAVE, "5")):
        answer = await world.press(who, poll, value)
        assert answer.status == 200
        assert answer.body["type"] == "application/vnd.microsoft.activity.message"
        assert "not even the poll's creator" in answer.body["value"] or "not even" in shown(
            fake.dms_to(who)[-1]
        )
    # No live counts anywhere: the poll's card is never updated while it is open.
    assert poll.edits == []
    async with database.transaction() as session:
        named = await session.scalar(
            select(func.count()).select_from(PollBallot).where(PollBallot.member_id.is_not(None))
        )
        voted = await session.scalar(
            select(func.count()).select_from(PollParticipant).where(PollParticipant.voted)
        )
        keyed = await session.scalar(select(func.count()).select_from(keyed_table(1)))
    assert named == 0 and voted == 4 and keyed == 4

    await world.say(ALICE, "poll results 1", channel=TEAM_CHANNEL)
    assert "shown when it closes" in shown(fake.dms_to(ALICE)[-1])
    await world.say(ALICE, "poll close 1", channel=TEAM_CHANNEL)
    assert "Closed poll #1" in shown(fake.dms_to(ALICE)[-1])
    for edit in poll.edits:  # the close says so on the poll's card, still without a count
        text = "\n".join(
            str(n.get("text", "")) for n in card_of(edit)["body"] if isinstance(n, dict)
        )
        assert "%" not in text
    [results] = [s for s in fake.posts(TEAM_CHANNEL) if "Poll #1 results" in shown(s)]
    text = shown(results)
    assert "Average 3.8 of 5" in text and "50% (2)" in text
    for name in ("alice", "bob", "carol", "dave", ALICE.replace("-", "").upper()):
        assert name not in text
