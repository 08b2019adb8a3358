"""Inbound Slack traffic: acks, signatures, retries, double clicks, private errors, in both
Socket Mode and HTTP mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.config import DEFAULT_SLACK_COMMANDS
from storage.db import Database
from storage.models import Member, ProcessedEvent
from tests.fakes.slack import payloads
from tests.fakes.slack.harness import SIGNING_SECRET, SlackWorld, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack

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


@pytest.fixture
async def http_world(fake: FakeSlack, sqlite_database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, sqlite_database.url, "http", START) as w:
        yield w


async def handled_events(world: SlackWorld) -> int:
    async with world.app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)


# -- private answers to bad input --------------------------------------------------------------


async def test_a_malformed_command_gets_its_usage_privately(world: SlackWorld) -> None:
    ack = await world.command("UALICE", "/standup edit")
    assert ack.status == 200
    answer = world.fake.responses[-1]
    assert answer["response_type"] == "ephemeral"
    assert "/standup edit" in text_of(answer["blocks"])
    assert world.fake.posts("CTEAM") == []

    await world.command("UALICE", "/standup frobnicate")
    shown = text_of(world.fake.responses[-1]["blocks"])
    assert "/standup" in shown and "Traceback" not in shown


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_a_configured_command_without_a_feature_says_so_in_the_ack(
    fake: FakeSlack, database: Database, mode: str
) -> None:
    """An operator's [slack] commands may name a command no feature handles (a feature of a
    newer syncup, a typo): Slack still delivers it, and the ack says what syncup does handle."""
    commands = {**DEFAULT_SLACK_COMMANDS, "celebrate": "/celebrate"}
    async with slack_world(fake, database.url, mode, START, commands=commands) as world:
        ack = await world.command("UALICE", "/celebrate the release")
    assert ack.status == 200
    assert ack.body["response_type"] == "ephemeral"
    assert "syncup does not handle /celebrate yet" in ack.body["text"]
    assert "/standup" in ack.body["text"]


async def test_a_bad_form_keeps_the_modal_open_with_errors(world: SlackWorld) -> None:
    await world.command("UALICE", "/standup setup")
    ack = await world.submit(
        "UALICE",
        {
            "name": "Daily",
            "channel": "#team",
            "participants": "@alice",
            "timezone": "Europe/Paris2",
        },
    )
    errors = world.form_errors(ack)
    assert "Europe/Paris" in errors["timezone"]
    assert world.fake.ephemerals == []  # nothing was saved, nothing announced


async def test_help_answers_privately(world: SlackWorld) -> None:
    await world.command("UBOB", "/standup help")
    answer = world.fake.responses[-1]
    assert answer["response_type"] == "ephemeral"
    assert "/standup setup" in text_of(answer["blocks"])


# -- deduplication ------------------------------------------------------------------------------


async def test_a_retried_event_is_handled_once(world: SlackWorld) -> None:
    await world.dm("UBOB", "hello", event_id="Ev-same")
    await world.dm("UBOB", "hello", event_id="Ev-same", retry=1)
    await world.dm("UBOB", "hello", event_id="Ev-same", retry=2)
    replies = world.fake.dms_to("UBOB")
    assert len(replies) == 1
    assert "/syncup help" in text_of(replies[0].blocks)


async def test_a_double_click_counts_once(world: SlackWorld) -> None:
    await world.command("UALICE", "/standup setup")
    await world.submit(
        "UALICE",
        {"name": "Daily", "channel": "#team", "participants": "@alice", "reminder": "off"},
    )
    await world.command("UALICE", "/standup run Daily")
    prompt = world.fake.dms_to("UALICE")[-1]
    views = len(world.fake.views)
    await world.press("UALICE", prompt, "Answer")
    await world.press("UALICE", prompt, "Answer")
    assert len(world.fake.views) == views + 1


async def test_dm_edits_and_bot_messages_are_ignored(world: SlackWorld) -> None:
    edited = {**payloads.dm_event("UBOB", "changed"), "subtype": "message_changed"}
    await world.event(edited, event_id="Ev-edit")
    from_bot = {**payloads.dm_event("UBOB", "beep"), "bot_id": "B1"}
    await world.event(from_bot, event_id="Ev-bot")
    assert world.fake.dms_to("UBOB") == []
    assert await handled_events(world) == 0


async def test_members_get_their_slack_profile_zone(world: SlackWorld) -> None:
    await world.dm("UBOB", "hi")
    async with world.app.db.transaction() as session:
        bob = await session.scalar(select(Member).where(Member.platform_user_id == "UBOB"))
    assert bob is not None
    assert bob.timezone == "America/New_York"
    assert bob.display_name == "bob"
    assert bob.dm_channel_id == "DUBOB"


# -- HTTP mode only -----------------------------------------------------------------------------


async def test_http_mode_refuses_a_bad_signature(http_world: SlackWorld) -> None:
    payload = payloads.slash_command(
        "/standup",
        "help",
        user="UALICE",
        channel="CTEAM",
        channel_name="team",
        response_url=http_world.fake.response_url(),
    )
    raw, ctype = payloads.http_body("slash_commands", payload)
    headers = {"Content-Type": ctype, **payloads.sign("not-the-secret", raw)}
    ack = await http_world.post_raw(raw, headers)
    assert ack.status == 401
    await http_world.settle()
    assert http_world.fake.responses == []
    assert await handled_events(http_world) == 0


async def test_http_mode_refuses_an_old_timestamp(http_world: SlackWorld) -> None:
    payload = payloads.slash_command(
        "/standup",
        "help",
        user="UALICE",
        channel="CTEAM",
        channel_name="team",
        response_url=http_world.fake.response_url(),
    )
    raw, ctype = payloads.http_body("slash_commands", payload)
    stale = int(time.time()) - 5 * 60 - 30
    headers = {"Content-Type": ctype, **payloads.sign(SIGNING_SECRET, raw, stale)}
    ack = await http_world.post_raw(raw, headers)
    assert ack.status == 401
    await http_world.settle()
    assert http_world.fake.responses == []


async def test_http_mode_answers_health_checks_and_url_verification(
    http_world: SlackWorld,
) -> None:
    assert (await http_world.get("/healthz"))[0] == 200
    status, body = await http_world.get("/readyz")
    assert status == 200 and "ready" in body
    challenge = {"type": "url_verification", "challenge": "abc123", "token": "t"}
    ack = await http_world.send("events_api", challenge)
    assert ack.status == 200
    assert ack.body.get("challenge") == "abc123"
    assert (await http_world.get("/nothing"))[0] == 404


async def test_socket_mode_reconnects_when_slack_drops_the_connection(
    fake: FakeSlack, sqlite_database: Database
) -> None:
    async with slack_world(fake, sqlite_database.url, "socket", START) as world:
        await world.command("UBOB", "/standup help")
        await fake.drop_sockets()
        ack = await world.command("UBOB", "/standup help")  # waits for the new connection
        assert ack.status == 200
        assert len(fake.responses) == 2
        assert len(fake.calls_of("apps.connections.open")) >= 2
