"""Polls on Slack end to end: the real slack-bolt app and delivery worker against the fake Slack
on 127.0.0.1, on SQLite and PostgreSQL. A one-liner posts the poll with buttons, presses vote
(answered privately), live results edit the poll's message (chat.update), the close posts the
results and edits the poll closed; anonymous polls never edit anything; bad input is answered
privately. The fake refuses anything outside Block Kit's limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from storage.db import Database
from tests.fakes.slack.harness import SlackWorld, find_button, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack, Posted

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        slack.add_user("UCAROL", "carol", "Europe/Berlin")
        slack.channels["CTEAM"].members.add("UCAROL")
        yield slack


@pytest.fixture
async def world(fake: FakeSlack, database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, "http", START) as built:
        yield built


def replies(fake: FakeSlack) -> list[str]:
    """What members were told privately (through the response_url), in order."""
    return [text_of(r.get("blocks"), r.get("text", "")) for r in fake.responses]


async def test_a_named_poll_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await world.command(
        "UALICE", "/poll \u201cShip Friday?\u201d \u201cYes\u201d \u201cNo\u201d --threshold 3"
    )
    assert "Poll #1 is up in #team" in replies(fake)[-1]
    poll = fake.posts("CTEAM")[0]
    assert "Ship Friday?" in text_of(poll.blocks)
    # One action id for the poll (Slack's copy made unique in its block), the choice in the value.
    yes, no = find_button(poll, "Yes"), find_button(poll, "No")
    assert (yes["action_id"], no["action_id"]) == ("poll-vote:1", "poll-vote:1~1")
    assert (yes["value"], no["value"]) == ("0", "1")
    await world.press("UALICE", poll, "Yes")
    assert replies(fake)[-1].startswith("Your vote is in: Yes.")
    await world.press("UBOB", poll, "No")
    await world.press("UCAROL", poll, "Yes")
    # Live results: the poll's own message is edited, with its buttons kept.
    assert poll.edits >= 1
    shown = text_of(poll.blocks)
    assert "67% (2)" in shown and "33% (1)" in shown
    find_button(poll, "No")
    # bob changes his mind.
    await world.press("UBOB", poll, "Yes")
    assert replies(fake)[-1].startswith("Your vote is changed to Yes.")
    await world.command("UALICE", "/poll close 1")
    assert replies(fake)[-1] == "Closed poll #1; the results are posted in its channel."
    results = [m for m in fake.posts("CTEAM") if "Poll #1 results" in text_of(m.blocks)]
    assert len(results) == 1
    assert "100% (3)" in text_of(results[0].blocks)
    # The poll's message now says closed and has no buttons.
    assert "(closed)" in text_of(poll.blocks)
    assert not [b for b in poll.blocks or [] if b.get("type") == "actions"]
    # A button pressed on a stale copy of the poll (a client that missed the edit) is
    # answered privately, and counts nothing.
    first = fake.calls_of("chat.postMessage")[0].args
    stale = Posted("CTEAM", poll.ts, "", first.get("blocks"), None, fake.team_id)
    await world.press("UCAROL", stale, "No")
    assert replies(fake)[-1].startswith("Poll #1 closed")


async def test_an_anonymous_poll_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UALICE", '/poll "Honest pace?" Low OK High --anonymous --threshold 3')
    poll = fake.posts("CTEAM")[0]
    for user, label in (("UALICE", "Low"), ("UBOB", "High"), ("UCAROL", "High")):
        await world.press(user, poll, label)
        assert "nobody, not even the poll's creator or an admin" in replies(fake)[-1]
    assert poll.edits == 0
    assert fake.calls_of("chat.update") == []
    await world.command("UALICE", "/poll results 1")
    assert replies(fake)[-1].startswith("The results of anonymous poll #1 are shown when it closes")
    await world.command("UALICE", "/poll close 1")
    results = [m for m in fake.posts("CTEAM") if "Poll #1 results" in text_of(m.blocks)]
    shown = text_of(results[0].blocks)
    assert "67% (2)" in shown and "UBOB" not in shown and "bob" not in shown


async def test_multiple_choice_and_bad_input_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UBOB", '/poll "Lunch?" Pizza Sushi Tacos --multiple 2')
    assert "Poll #1 is up" in replies(fake)[-1]
    await world.command("UBOB", '/poll "Lunch?" Pizza pizza')
    assert (
        replies(fake)[-1]
        == '"Pizza" and "pizza" are the same option; each option must be different.'
    )
    await world.command("UBOB", "/poll")
    assert fake.views[-1]["callback_id"] == "poll-create"
    assert len(fake.posts("CTEAM")) == 1
