"""Shortcuts on Slack, end to end against the fake Slack (Socket Mode and HTTP mode, SQLite and
PostgreSQL): a message shortcut that opens a form pre-filled from the message, a user shortcut
(a global shortcut that asks who) that answers privately, a repeated delivery handled once,
a message too long for a form field cut with a note, a NUL refused privately, the manifest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from adapters.slack.manifest import manifest
from adapters.slack.shortcuts import PICK_PREFIX, readable
from bot.cli import cli
from bot.config import SlackSection
from storage.models import ProcessedEvent
from tests import test_slack_inbound as inbound
from tests.fakes import shortcuts
from tests.fakes.slack.harness import SlackWorld, text_of

# The inbound tests' fixtures: a fake Slack with alice and bob in #team, and the app in Socket
# Mode and in HTTP mode on each database.
fake = inbound.fake
world = inbound.world


@pytest.fixture
def recorded(world: SlackWorld) -> shortcuts.Recorded:
    return shortcuts.register(world.app.core)


def field_of(view: dict, name: str) -> dict:
    return next(b for b in view["blocks"] if b.get("block_id") == name)


async def test_a_message_shortcut_opens_a_form_filled_from_the_message(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    fake = world.fake
    said = "Export stuck &amp; waiting on <#CDATA|data-eng>, see <https://ci.example/42|build 42>"
    message = fake.member_message("CTEAM", "UBOB", said)
    fake.latency["users.info"] = 0.3  # a slow look-up of who ran it: the ack does not wait
    ack = await world.shortcut("UALICE", "save_note", message)
    assert ack.status == 200
    assert fake.answered_before_ack("message_action", {"users.info", "views.open"}) == []

    [event] = recorded.of("save_note")
    assert event.actor.user_id == "UALICE"
    assert event.message_author_id == "UBOB"
    assert event.message_text == (
        "Export stuck & waiting on #data-eng, see build 42 (https://ci.example/42)"
    )
    ts = message["ts"].replace(".", "")
    assert event.message_link == f"https://acme.slack.com/archives/CTEAM/p{ts}"
    assert event.origin.channel_id == "CTEAM"

    [opened] = fake.calls_of("views.open")
    assert opened.status == 200 and opened.args["trigger_id"]
    view = fake.views[-1]
    assert field_of(view, "text")["element"]["initial_value"] == event.message_text
    assert field_of(view, "link")["element"]["initial_value"] == event.message_link
    assert "hint" not in field_of(view, "text")

    await world.submit("UALICE", {})
    [submitted] = recorded.submissions
    assert submitted.values["text"] == event.message_text
    assert submitted.state == "UBOB"


async def test_a_thread_reply_links_to_its_thread(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    parent = world.fake.member_message("CTEAM", "UBOB", "the parent")
    reply = world.fake.member_message("CTEAM", "UBOB", "a reply", thread_ts=parent["ts"])
    await world.shortcut("UALICE", "save_note", reply)
    [event] = recorded.of("save_note")
    assert event.message_link.endswith(f"?thread_ts={parent['ts']}&cid=CTEAM")


async def test_without_the_team_domain_the_link_comes_from_chat_getpermalink(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    fake = world.fake
    message = fake.member_message("CTEAM", "UBOB", "no domain here")
    payload = world.shortcut_payload("UALICE", "save_note", message)
    payload["team"] = {"id": "T1", "domain": ""}  # an Enterprise Grid payload may say none
    await world.send("interactive", payload)
    await world.settle()
    [asked] = fake.calls_of("chat.getPermalink")
    assert asked.status == 200 and asked.args["message_ts"] == message["ts"]
    [event] = recorded.of("save_note")
    assert event.message_link == asked.response["permalink"]


async def test_a_repeated_delivery_is_handled_once(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    fake = world.fake
    message = fake.member_message("CTEAM", "UBOB", "deploy blocked")
    payload = world.shortcut_payload("UALICE", "save_note", message)
    await world.send("interactive", payload)
    await world.settle()
    again = await world.send("interactive", payload, retry=1)
    await world.settle()
    assert again.status == 200
    assert len(recorded.of("save_note")) == 1
    assert len(fake.calls_of("views.open")) == 1
    assert fake.responses == []  # and no error for the second one either
    async with world.app.db.transaction() as session:
        key = f"shortcut:{payload['trigger_id']}"
        count = await session.scalar(
            select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.event_id == key)
        )
    assert count == 1


async def test_a_message_longer_than_a_field_is_cut_with_a_note(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    long = ("word " * 1200).strip()  # 5,999 characters: Slack's inputs hold 3,000
    message = world.fake.member_message("CTEAM", "UBOB", long)
    await world.shortcut("UALICE", "save_note", message)
    [event] = recorded.of("save_note")
    assert event.message_text == long  # the feature gets it whole
    [opened] = world.fake.calls_of("views.open")
    assert opened.status == 200  # Slack took the form (team_slack checks no limit was broken)
    block = field_of(world.fake.views[-1], "text")
    shown = block["element"]["initial_value"]
    assert len(shown) <= 3000 and shown.endswith("\u2026")
    assert long.startswith(shown.removesuffix("\u2026"))
    assert shown.removesuffix("\u2026").endswith("word")  # cut at a word end
    kept = len(shown) - 1
    assert f"Shortened to the first {kept:,} of 5,999 characters" in block["hint"]["text"]


async def test_a_message_with_a_nul_is_refused_privately(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    message = world.fake.member_message("CTEAM", "UBOB", "bad\x00byte")
    await world.shortcut("UALICE", "save_note", message)
    assert recorded.invocations == []
    assert world.fake.calls_of("views.open") == []
    [answer] = world.fake.responses
    assert answer["response_type"] == "ephemeral"
    assert "NUL" in text_of(answer["blocks"], answer.get("text", ""))


async def test_a_shortcut_no_feature_handles_is_answered_privately(world: SlackWorld) -> None:
    message = world.fake.member_message("CTEAM", "UBOB", "hello")
    await world.shortcut("UALICE", "gone_feature", message)
    [answer] = world.fake.responses
    assert "no longer does anything" in text_of(answer["blocks"], answer.get("text", ""))


async def test_a_global_shortcut_no_feature_handles_says_so_in_a_modal(world: SlackWorld) -> None:
    await world.global_shortcut("UALICE", "gone_feature")
    shown = world.fake.views[-1]
    assert "no longer does anything" in text_of(shown["blocks"])
    assert "submit" not in shown


async def test_a_user_shortcut_asks_who_then_answers_privately_naming_them(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    fake = world.fake
    await world.global_shortcut("UALICE", "say_thanks")
    assert recorded.invocations == []  # nothing runs before the person is chosen
    picker = fake.views[-1]
    assert picker["callback_id"] == PICK_PREFIX + "say_thanks"
    assert field_of(picker, "who")["element"]["type"] == "users_select"
    where = field_of(picker, "where")["element"]
    assert where["default_to_current_conversation"] and where["response_url_enabled"]

    ack = await world.submit("UALICE", {"who": "UBOB", "where": "CTEAM"})
    assert ack.body.get("response_action") is None  # the modal closes
    [event] = recorded.of("say_thanks")
    assert event.target_user_id == "UBOB" and event.actor.user_id == "UALICE"
    assert event.origin.channel_id == "CTEAM"
    [answer] = fake.responses  # through the response_url of the chosen conversation
    assert answer["response_type"] == "ephemeral"
    assert "<@UBOB>" in text_of(answer["blocks"], answer.get("text", ""))
    assert fake.posts("CTEAM") == []


async def test_a_user_shortcut_that_opens_a_form_replaces_the_picker(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    await world.global_shortcut("UALICE", "thank_with_note")
    ack = await world.submit("UALICE", {"who": "UBOB", "where": "CTEAM"})
    assert ack.body["response_action"] == "update"
    assert ack.body["view"]["callback_id"] == shortcuts.THANKS_FORM
    view = {**ack.body["view"], "id": "V-next"}
    ack = await world.submit("UALICE", {"why": "the review"}, view)
    assert recorded.submissions[-1].values["why"] == "the review"


def test_the_manifest_declares_message_and_user_shortcuts() -> None:
    declared = manifest(
        SlackSection(),
        shortcuts=[shortcuts.SAVE_NOTE, shortcuts.SAY_THANKS],
        http_url="https://syncup.example.com",
    )
    entries = {s["callback_id"]: s for s in declared["features"]["shortcuts"]}
    assert entries["save_note"]["type"] == "message"
    assert entries["save_note"]["name"] == "Save as note"
    assert entries["say_thanks"]["type"] == "global"
    assert all(0 < len(s["description"]) <= 150 for s in entries.values())
    assert "commands" in declared["oauth_config"]["scopes"]["bot"]
    assert declared["settings"]["interactivity"]["is_enabled"]
    # Without shortcuts from any feature, the manifest has no shortcuts section.
    assert "shortcuts" not in manifest(SlackSection(), shortcuts=[])["features"]


def test_slack_markup_becomes_readable_text() -> None:
    assert readable("a &lt;b&gt; &amp;amp; <@U1> <!here> <https://x.y>") == (
        "a <b> &amp; <@U1> <!here> https://x.y"
    )
    assert readable("<#C1|team> <mailto:a@b.c|mail>") == "#team mail (mailto:a@b.c)"


def test_syncup_slack_manifest_prints_the_features_shortcuts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)
    shortcuts.in_features(monkeypatch)
    printed = CliRunner().invoke(cli, ["slack", "manifest"])
    assert printed.exit_code == 0, printed.output
    declared = json.loads(printed.output)["features"]["shortcuts"]
    assert {(s["callback_id"], s["type"]) for s in declared} == {
        ("report_blocker", "message"),  # the blockers feature's
        ("save_note", "message"),
        ("say_thanks", "global"),
        ("thank_with_note", "global"),
        ("give_kudos", "global"),  # the kudos feature's own
    }


async def test_a_slow_shortcut_holds_the_trigger_with_a_modal_then_fills_it(
    world: SlackWorld, recorded: shortcuts.Recorded
) -> None:
    """The trigger id lives 3 s: a core slower than the ack deadline gets a waiting modal
    opened in time, and the form replaces it by views.update."""
    fake = world.fake
    world.adapter.ack_seconds = 0.05
    release = asyncio.Event()
    handlers = world.app.core._shortcut_handlers
    fast = handlers["save_note"]

    async def slow(ctx: Any, event: Any) -> Any:
        await release.wait()
        return await fast(ctx, event)

    handlers["save_note"] = slow
    message = fake.member_message("CTEAM", "UBOB", "the export is stuck")
    payload = world.shortcut_payload("UALICE", "save_note", message)
    opened = asyncio.Event()
    fake.on_call.append(lambda call: opened.set() if call.method == "views.open" else None)
    await world.send("interactive", payload)
    await asyncio.wait_for(opened.wait(), 10)
    waiting = fake.views[-1]
    assert "One moment" in text_of(waiting["blocks"]) and "submit" not in waiting
    release.set()
    await world.settle()
    [update] = fake.calls_of("views.update")
    assert update.status == 200 and update.args["view_id"] == waiting["id"]
    form = fake.views[-1]
    assert form["callback_id"] == shortcuts.NOTE_FORM
    assert field_of(form, "text")["element"]["initial_value"] == "the export is stuck"
    assert len(recorded.of("save_note")) == 1
