"""The standup day end to end on Slack, in Socket Mode and in HTTP mode: the real slack-bolt and
slack_sdk code against the fake Slack on 127.0.0.1, the real App (core, scheduler, outbox,
delivery worker) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from storage.db import Database
from tests.fakes.slack import blockkit
from tests.fakes.slack.harness import SlackWorld, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack

# Monday 9 March 2026, 07:00 UTC: 08:00 in Berlin, 03:00 in New York.
START = datetime(2026, 3, 9, 7, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        yield slack


@pytest.fixture(params=["socket", "http"])
async def world(
    request: pytest.FixtureRequest, fake: FakeSlack, database: Database
) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, request.param, START) as w:
        yield w


async def setup_standup(world: SlackWorld) -> None:
    ack = await world.command("UALICE", "/standup setup")
    assert ack.status == 200
    view = world.fake.views[-1]
    assert view["callback_id"] == "standup-setup"
    ack = await world.submit(
        "UALICE",
        {"name": "Daily", "channel": "#team", "participants": "@alice @bob", "reminder": "off"},
    )
    assert ack.status == 200
    assert world.form_errors(ack) == {}, ack.body
    created = [e for e in world.fake.ephemerals if "Created" in text_of(e.get("blocks"))]
    assert created, world.fake.ephemerals
    assert created[-1]["user"] == "UALICE"


async def test_a_standup_day_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await setup_standup(world)

    # 09:00 in Berlin: alice's prompt arrives in her DM.
    await world.move_to(datetime(2026, 3, 9, 8, 1, tzinfo=UTC))
    prompts = fake.dms_to("UALICE")
    assert len(prompts) == 1
    assert "What did you do since last time?" in text_of(prompts[0].blocks)
    assert fake.dms_to("UBOB") == []

    # alice answers through the modal.
    await world.press("UALICE", prompts[0], "Answer")
    assert fake.views[-1]["callback_id"] == "standup-answer"
    form = fake.views[-1]
    names = [b["block_id"] for b in form["blocks"] if b["type"] == "input"]
    answers = dict(zip(names, ["Shipped the login page", "Review the API", "no"], strict=False))
    ack = await world.submit("UALICE", answers)
    assert ack.body.get("response_action") is None, ack.body
    report = fake.posts("CTEAM")
    assert report, "the report's parent message"
    parent = report[0]
    assert parent.thread_ts is None
    replies = [m for m in report if m.thread_ts == parent.ts]
    assert any("Shipped the login page" in text_of(m.blocks) for m in replies)

    # 09:00 in New York: bob answers in the DM conversation, one question at a time.
    await world.move_to(datetime(2026, 3, 9, 13, 1, tzinfo=UTC))
    assert len(fake.dms_to("UBOB")) == 1
    await world.dm("UBOB", "Fixed <!channel> alerts & <@UALICE> stuff")
    await world.dm("UBOB", "Deploy")
    await world.dm("UBOB", "none")
    report = fake.posts("CTEAM")
    bob_reply = [m for m in report if "Fixed" in text_of(m.blocks)]
    assert bob_reply and bob_reply[0].thread_ts == parent.ts, [
        (m.ts, m.thread_ts, text_of(m.blocks)[:80]) for m in report
    ]
    shown = text_of(bob_reply[0].blocks)
    assert "&lt;!channel&gt;" in shown and "&amp;" in shown
    for posted in report:
        assert not [
            p
            for p in blockkit.pings({"text": posted.text, "blocks": posted.blocks})
            if p in ("channel", "here", "everyone", "UALICE")
        ], posted
    # The parent was edited in place as answers arrived (chat.update, on the D/C id + ts).
    updates = fake.calls_of("chat.update")
    assert updates and all(c.args["channel"] == "CTEAM" for c in updates)
    assert parent.edits >= 1
    assert "2 of 2" in text_of(parent.blocks)

    # A late change: alice edits her answer; her reply in the thread is edited, not reposted.
    before = len(fake.posts("CTEAM"))
    await world.press("UALICE", prompts[0], "Answer")
    answers[names[0]] = "Shipped the login page and the signup page"
    await world.submit("UALICE", answers)
    assert len(fake.posts("CTEAM")) == before
    assert any("signup page" in text_of(m.blocks) for m in fake.posts("CTEAM"))

    # /standup history answers privately through the response_url.
    await world.command("UALICE", "/standup history")
    history = fake.responses[-1]
    assert history["response_type"] == "ephemeral"
    assert "signup page" in text_of(history["blocks"])
