"""The standup day end to end on Teams: the real Teams SDK and the real App (core, scheduler,
outbox, delivery worker) against the fake Teams connector, on SQLite and PostgreSQL.

Set up with an @mention in the channel (the form opens in the lead's 1:1 chat), prompts as
proactive DMs (a 1:1 chat created through the connector with the tenant id), an answer through
the card's form and one typed in the chat, the report in the channel with the answers in its
thread, and the report card updated in place as answers arrive."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from adapters.teams import render
from storage.models import Standup
from tests.fakes.teams import harness
from tests.fakes.teams.harness import (
    ALICE,
    BOB,
    TEAM_CHANNEL,
    TeamsWorld,
    card_of,
    inputs_of,
    shown,
    text_of,
)

fake = harness.fake
world = harness.world


async def setup_standup(world: TeamsWorld) -> None:
    fake = world.fake
    await world.install([ALICE, BOB], TEAM_CHANNEL)
    await world.say(BOB, "help")  # bob has talked to syncup: his zone is known
    answer = await world.say(ALICE, "standup setup", channel=TEAM_CHANNEL)
    assert answer.status == 200
    form_message = fake.dms_to(ALICE)[-1]
    form = card_of(form_message.activity)
    names = {i["id"] for i in inputs_of(form)}
    assert {"name", "channel", "participants"} <= names, names

    # A bad channel: the card is refreshed with the error under the input, the values kept.
    values = {"name": "Daily", "channel": "#nowhere", "participants": "@alice @bob"}
    if "reminder" in names:
        values["reminder"] = "off"
    answer = await world.submit(ALICE, form_message, form, values)
    assert answer.status == 200 and answer.body["type"] == render.CARD
    refreshed = answer.body["value"]
    assert "nowhere" in text_of(refreshed), text_of(refreshed)
    kept = {i["id"]: i.get("value") for i in inputs_of(refreshed)}
    assert kept["participants"] == "@alice @bob"

    values["channel"] = "#team"
    answer = await world.submit(ALICE, form_message, refreshed, values)
    assert answer.status == 200 and answer.body["type"] == render.CARD, answer.body
    assert "Created" in text_of(answer.body["value"]), text_of(answer.body["value"])


async def test_a_standup_day_on_teams(world: TeamsWorld) -> None:
    fake = world.fake
    await setup_standup(world)
    assert fake.posts(TEAM_CHANNEL) == [], "setting up says nothing in the channel"

    # 09:00 in Berlin: alice's prompt arrives in her 1:1 chat.
    await world.move_to(datetime(2026, 3, 9, 8, 1, tzinfo=UTC))
    prompts = [s for s in fake.dms_to(ALICE) if "What did you do" in shown(s)]
    assert len(prompts) == 1, [shown(s)[:60] for s in fake.dms_to(ALICE)]
    assert [s for s in fake.dms_to(BOB) if "What did you do" in shown(s)] == []

    # alice answers through the card's form (it opens in place of the prompt, for her).
    answer = await world.press(ALICE, prompts[0], "Answer")
    assert answer.body["type"] == render.CARD, answer.body
    form = answer.body["value"]
    names = [i["id"] for i in inputs_of(form)]
    answers = dict(zip(names, ["Shipped the login page", "Review the API", "no"], strict=False))
    answer = await world.submit(ALICE, prompts[0], form, answers)
    assert answer.status == 200, answer.body
    report = fake.posts(TEAM_CHANNEL)
    assert report, "the report's parent message"
    parent = report[0]
    assert ";messageid=" not in parent.conversation_id
    in_thread = f"{TEAM_CHANNEL};messageid={parent.activity_id}"
    thread = [s for s in report if s.conversation_id == in_thread]
    assert any("Shipped the login page" in shown(s) for s in thread)

    # 09:00 in New York: bob answers by typing in his chat, one question at a time.
    await world.move_to(datetime(2026, 3, 9, 13, 1, tzinfo=UTC))
    assert [s for s in fake.dms_to(BOB) if "What did you do" in shown(s)]
    await world.say(BOB, "Fixed **the** alerts <at>alice</at> & stuff")
    await world.say(BOB, "Deploy")
    await world.say(BOB, "none")
    report = fake.posts(TEAM_CHANNEL)
    bob_reply = [s for s in report if "Fixed" in shown(s)]
    assert bob_reply and bob_reply[0].conversation_id.endswith(parent.activity_id)
    # bob's text shows as typed: no bold, and no mention of alice (no entity, tag defused).
    reply_card = card_of(bob_reply[0].current)
    assert "\\*\\*the\\*\\*" in shown(bob_reply[0])
    assert "<at>alice</at>" not in shown(bob_reply[0])
    assert "entities" not in reply_card.get("msteams", {})
    assert "entities" not in bob_reply[0].current
    # The parent card was updated in place as answers arrived (PUT on the channel activity).
    assert parent.edits, "the report was updated"
    assert "2 of 2" in shown(parent), shown(parent)


async def test_a_form_submitted_twice_and_a_card_from_an_old_version(world: TeamsWorld) -> None:
    fake = world.fake
    await setup_standup(world)
    form_message = fake.dms_to(ALICE)[0]
    form = card_of(form_message.activity)
    values = {"name": "Daily", "channel": "#team", "participants": "@alice @bob"}
    if "reminder" in {i["id"] for i in inputs_of(form)}:
        values["reminder"] = "off"
    # Pressed again (a second click is a second invoke): the name is taken, said under it.
    again = await world.submit(ALICE, form_message, form, values)
    assert again.body["type"] == render.CARD
    assert "Daily" in text_of(again.body["value"]) and "⚠" in text_of(again.body["value"])
    async with world.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Standup)) == 1
    # Teams retries the very same invoke (same id): handled once, nothing new.
    invoke = world.invoke(ALICE, form_message, {"syncup": "action", "action_id": "nope:1"})
    first = await world.post(invoke)
    second = await world.post(invoke)
    assert first.status == second.status == 200
    assert "no longer does anything" in first.body["value"]
    assert "no longer" not in second.body["value"], "the retry is not handled again"
    # A card from an older syncup (data it no longer reads) says so, and nothing happens.
    for data in ({"something": "else"}, {"syncup": "form", "form": {"not": "a form"}}):
        answer = await world.post(world.invoke(ALICE, form_message, data))
        assert answer.status == 200
        assert answer.body["type"] == "application/vnd.microsoft.activity.message"
        assert "older version" in answer.body["value"]
    async with world.app.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Standup)) == 1


async def test_everyone_in_the_channel_from_the_team_roster(world: TeamsWorld) -> None:
    """ "#team" as participants: the roster comes from the connector (carol never wrote to
    syncup and was in no install event), and her prompt opens a chat with her."""
    fake = world.fake
    carol = "cccccccc-0000-4000-8000-0000000000c0"
    fake.add_user(carol, "carol", "Europe/Berlin")
    await world.install([ALICE, BOB], TEAM_CHANNEL)
    await world.say(ALICE, "standup setup", channel=TEAM_CHANNEL)
    form_message = fake.dms_to(ALICE)[-1]
    form = card_of(form_message.activity)
    values = {"name": "Daily", "channel": "#team", "participants": "#team"}
    if "reminder" in {i["id"] for i in inputs_of(form)}:
        values["reminder"] = "off"
    answer = await world.submit(ALICE, form_message, form, values)
    assert "Created" in text_of(answer.body["value"]), text_of(answer.body["value"])
    assert [c for c in fake.calls if c.path.endswith(f"/{TEAM_CHANNEL}/members")]
    assert fake.dms_to(carol) == []
    await world.move_to(datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
    prompts = [s for s in fake.dms_to(carol) if "What did you do" in shown(s)]
    assert len(prompts) == 1
