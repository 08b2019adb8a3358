"""Blockers on Slack end to end: the real slack-bolt app and delivery worker against the fake
Slack on 127.0.0.1, on SQLite and PostgreSQL. ``/blocker add`` posts the card in the area's
channel; someone not allowed to resolve it is refused privately; the Responsible presses
Resolve and the card is edited in place (chat.update); bad input is answered privately and posts
nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from storage.db import Database
from tests.fakes.slack.harness import SlackWorld, find_button, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        slack.add_user("UCAROL", "carol", "Europe/Berlin")
        slack.channels["CTEAM"].members.add("UCAROL")
        slack.add_channel("CDATA", "data", ["UALICE", "UBOB", "UCAROL"])
        yield slack


@pytest.fixture
async def world(fake: FakeSlack, database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, "http", START) as built:
        yield built


def replies(fake: FakeSlack) -> list[str]:
    return [text_of(r.get("blocks"), r.get("text", "")) for r in fake.responses]


async def test_a_blocker_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await world.command(
        "UALICE",
        '/raci setup "Data pipeline" --responsible <@UBOB|bob> --accountable <@UALICE|alice> '
        "--channel <#CDATA|data> --keywords etl, airflow",
    )
    assert replies(fake)[-1].startswith("Created the area Data pipeline"), replies(fake)[-1]
    posted_before = len(fake.posts("CDATA"))
    await world.command("UCAROL", "/blocker add The nightly ETL job fails --severity high")
    assert replies(fake)[-1] == (
        "Blocker #1 is open in area Data pipeline (suggested from its text: confirm it on the "
        "card). Its card is in <#CDATA>."
    )
    (card,) = fake.posts("CDATA")[posted_before:]
    shown = text_of(card.blocks)
    assert "Blocker #1 · high" in shown and "The nightly ETL job fails" in shown
    assert find_button(card, "Resolve")["action_id"] == "blocker:resolve:1"
    # carol reported it; a stranger to it may not resolve it
    fake.add_user("UDAN", "dan", "Europe/London")
    fake.channels["CDATA"].members.add("UDAN")
    edits = card.edits
    await world.press("UDAN", card, "Resolve")
    assert replies(fake)[-1].startswith("You can't resolve blocker #1: only the member or area")
    assert card.edits == edits  # nothing changed
    # bob, the area's Responsible, resolves it: the card is edited in place
    await world.press("UBOB", card, "Resolve")
    assert replies(fake)[-1] == "Resolved blocker #1."
    assert card.edits > edits
    shown = text_of(card.blocks)
    assert "Resolved by @bob" in shown
    find_button(card, "Reopen")
    # and the card's Reopen button works (alice is an admin and the area's Accountable)
    await world.press("UALICE", card, "Reopen")
    assert replies(fake)[-1] == "Reopened blocker #1; its escalation starts again."


async def test_bad_input_on_slack_posts_nothing(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UALICE", "/blocker add Stuck --severity urgent")
    assert replies(fake)[-1] == (
        'Unknown severity "urgent"; use one of low, normal, high, critical.'
    )
    await world.command("UALICE", "/blocker add Stuck --waiting-on <@UNOBODY|ghost>")
    assert "is not a member of this workspace" in replies(fake)[-1]
    await world.command("UALICE", "/blocker resolve 7")
    assert replies(fake)[-1] == "There is no blocker #7 here; `/blocker list` shows them."
    assert fake.calls_of("chat.postMessage") == []
    # without a line, the form
    await world.command("UALICE", "/blocker add")
    assert fake.views and fake.views[-1]["title"]["text"] == "Report a blocker"


async def test_report_as_blocker_on_a_slack_message(world: SlackWorld) -> None:
    """The message shortcut opens the add form filled with the message; submitting it opens a
    blocker that links back to the message, and its card is posted in the area's channel."""
    fake = world.fake
    await world.command(
        "UALICE",
        '/raci setup "Data pipeline" --responsible <@UBOB|bob> --accountable <@UALICE|alice> '
        "--channel <#CDATA|data> --keywords etl, airflow",
    )
    message = fake.member_message("CTEAM", "UCAROL", "The nightly ETL job fails &amp; retries")
    await world.shortcut("UBOB", "report_blocker", message)
    form = fake.views[-1]
    assert form["title"]["text"] == "Report a blocker"
    (text_input,) = [b for b in form["blocks"] if b.get("block_id") == "text"]
    assert text_input["element"]["initial_value"] == "The nightly ETL job fails & retries"
    posted_before = len(fake.posts("CDATA"))
    ack = await world.submit("UBOB", {"text": "The nightly ETL job fails & retries"})
    assert world.form_errors(ack) == {}
    (card,) = fake.posts("CDATA")[posted_before:]
    shown = text_of(card.blocks)
    assert "Blocker #1" in shown and "The nightly ETL job fails &amp; retries" in shown
    assert "/archives/CTEAM/p" in shown  # "From this message", linked
