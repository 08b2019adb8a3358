"""Slack's 3-second deadline for a modal submission, whatever the platform's latency, and a member
directory that is kept warm instead of scanned: the real slack-bolt against the fake Slack, slowed
down (each Web API answer takes 100 ms) and rate limited like Slack (users.list at Tier 2).

The fake records, in order, when each Web API answer left and when the app's ack arrived; a test
checks that no directory look-up was answered while the app still held the submission (the ack
came first), never a wall-clock time."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storage.db import Database
from storage.models import Standup
from tests.fakes.slack.harness import SlackWorld, settings_for, text_of
from tests.fakes.slack.server import FakeSlack, start_fake_slack

START = datetime(2026, 3, 9, 7, tzinfo=UTC)
LOOKUPS = {
    "users.info",
    "users.list",
    "conversations.info",
    "conversations.list",
    "conversations.members",
}
SLOW = 0.1  # seconds per Web API answer
# Tier 2 (20 calls a minute) and syncup's pacing for it, both 60 times faster for the test.
SCALE = 60.0


@asynccontextmanager
async def world_on(
    fake: FakeSlack, database: Database, mode: str, *, page_interval: float = 0.05
) -> AsyncIterator[SlackWorld]:
    world = SlackWorld(fake, settings_for(fake, database.url, mode), START)
    world.adapter.slack_port.directory.page_interval = page_interval
    await world.start()
    try:
        yield world
    finally:
        await world.stop()
    assert fake.violations == []


async def standups(database: Database) -> list[str]:
    async with database.transaction() as session:
        return list(await session.scalars(select(Standup.name).order_by(Standup.id)))


async def open_setup(world: SlackWorld) -> dict[str, object]:
    await world.command("UALICE", "/standup setup")
    view = world.fake.views[-1]
    assert view["callback_id"] == "standup-setup"
    return view


@pytest.fixture
async def slow_slack() -> AsyncIterator[FakeSlack]:
    """alice and 30 engineers in #eng; every directory method answers after 100 ms."""
    fake = await start_fake_slack()
    fake.add_user("UALICE", "alice", "Europe/Berlin", is_admin=True)
    fake.add_user(fake.bot_user_id, "syncup", is_bot=True)
    engineers = [f"UENG{n:02d}" for n in range(30)]
    for n, user in enumerate(engineers):
        fake.add_user(user, f"eng{n:02d}", "Asia/Tokyo")
    fake.add_channel("CTEAM", "team", ["UALICE"])
    fake.add_channel("CENG", "eng", engineers)
    fake.latency = {method: SLOW for method in LOOKUPS}
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_a_30_person_channel_setup_is_acknowledged_before_any_lookup_answers(
    slow_slack: FakeSlack, database: Database, mode: str
) -> None:
    fake = slow_slack
    async with world_on(fake, database, mode) as world:
        await world.adapter.slack_port.directory.roster(fake.team_id)
        await open_setup(world)
        before_info = len(fake.calls_of("users.info"))
        ack = await world.submit(
            "UALICE",
            {"name": "Eng daily", "channel": "#team", "participants": "#eng", "reminder": "off"},
        )
        assert ack.status == 200
        # The ack left before the first directory call (conversations.info, 100 ms) was
        # answered: a "Checking…" view, replaced by the result when the core was done.
        assert fake.answered_before_ack("view_submission", LOOKUPS) == []
        assert world.deferred(ack), ack.body
        outcome = world.outcome(ack)
        assert "Created" in text_of(outcome["blocks"]) and "30 participant(s)" in text_of(
            outcome["blocks"]
        )
        assert world.form_errors(ack) == {}
        assert await standups(database) == ["Eng daily"]
        # The directory was warm: 30 people in #eng without one users.info call.
        assert len(fake.calls_of("users.info")) == before_info
        created = [e for e in fake.ephemerals if "Created" in text_of(e.get("blocks"))]
        assert len(created) == 1


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_field_errors_found_after_the_ack_come_back_in_the_view_with_what_was_typed(
    slow_slack: FakeSlack, database: Database, mode: str
) -> None:
    fake = slow_slack
    async with world_on(fake, database, mode) as world:
        await open_setup(world)
        ack = await world.submit(
            "UALICE",
            {"name": "Eng daily", "channel": "#nowhere", "participants": "@eng01 @ghost"},
        )
        assert fake.answered_before_ack("view_submission", LOOKUPS) == []
        errors = world.form_errors(ack)
        assert set(errors) == {"channel", "participants"}, errors
        assert "#nowhere" in errors["channel"] and "@ghost" in errors["participants"]
        # Nothing saved, nothing announced, and the form is back with what was typed.
        assert await standups(database) == []
        assert not [e for e in fake.ephemerals if "Created" in text_of(e.get("blocks"))]
        again = fake.views[-1]
        assert again["callback_id"] == "standup-setup"
        typed = {
            b["block_id"]: b["element"].get("initial_value")
            for b in again["blocks"]
            if b["type"] == "input"
        }
        assert typed["name"] == "Eng daily" and typed["participants"] == "@eng01 @ghost"
        # Fixed and sent again from the view the errors came in: created, once.
        ack = await world.submit(
            "UALICE", {"channel": "#team", "participants": "@eng01 @eng02"}, again
        )
        assert world.form_errors(ack) == {}
        assert await standups(database) == ["Eng daily"]


async def test_an_unseen_name_in_a_big_workspace_costs_no_scan(database: Database) -> None:
    """1,236 members, users.list at Tier 2: the members are read once, paced (7 pages, no
    429), while the form is acknowledged at once; an unknown name is then answered from
    memory, on every submission."""
    fake = await start_fake_slack()
    fake.add_user("UALICE", "alice", "Europe/Berlin", is_admin=True)
    for n in range(1235):
        fake.add_user(f"UM{n:05d}", f"member{n:04d}")
    fake.add_channel("CTEAM", "team", ["UALICE"])
    fake.method_rates["users.list"] = (20 / 60 * SCALE, 1)
    fake.latency = {method: SLOW for method in LOOKUPS - {"users.list"}}
    try:
        async with world_on(fake, database, "socket", page_interval=3.1 / SCALE) as world:
            await open_setup(world)
            values = {"name": "Daily", "channel": "#team", "participants": "@alice @zed"}
            ack = await world.submit("UALICE", values)
            assert fake.answered_before_ack("view_submission", LOOKUPS - {"users.list"}) == []
            assert world.deferred(ack), ack.body
            errors = world.form_errors(ack)
            assert set(errors) == {"participants"}
            assert "No member named @zed" in errors["participants"]
            pages = math.ceil(1236 / 200)
            assert len(fake.calls_of("users.list")) == pages
            assert fake.rate_limited == 0
            # Submitted again with the same unknown name, then fixed: no more users.list.
            ack = await world.submit("UALICE", values, fake.views[-1])
            assert "@zed" in world.form_errors(ack)["participants"]
            fixed = {"participants": "@alice @member0042"}
            ack = await world.submit("UALICE", fixed, fake.views[-1])
            assert world.form_errors(ack) == {}
            assert len(fake.calls_of("users.list")) == pages
            assert await standups(database) == ["Daily"]
    finally:
        await fake.stop()


async def test_member_events_keep_the_directory_warm(
    slow_slack: FakeSlack, database: Database
) -> None:
    fake = slow_slack
    async with world_on(fake, database, "socket") as world:
        directory = world.adapter.slack_port.directory
        await directory.roster(fake.team_id)
        listed = len(fake.calls_of("users.list"))
        carol = fake.add_user("UCAROL", "carol", "America/Chicago")
        await world.event({"type": "team_join", "user": fake._user_json(carol)}, event_id="Ev1")
        fake.users["UENG01"].name = "robert"
        renamed = fake._user_json(fake.users["UENG01"])
        await world.event({"type": "user_change", "user": renamed}, event_id="Ev2")
        await open_setup(world)
        ack = await world.submit(
            "UALICE", {"name": "Daily", "channel": "#team", "participants": "@carol @robert"}
        )
        assert world.form_errors(ack) == {}
        assert len(fake.calls_of("users.list")) == listed
        assert not [c for c in fake.calls_of("users.info") if c.args.get("user") == "UCAROL"]
        assert await standups(database) == ["Daily"]
        outcome = text_of(world.outcome(ack)["blocks"])
        assert "2 participant(s)" in outcome


async def test_a_member_list_slack_refuses_is_a_field_error_and_not_read_on_every_event(
    slow_slack: FakeSlack, database: Database
) -> None:
    fake = slow_slack
    fake.fail("users.list", "missing_scope", times=100)
    async with world_on(fake, database, "socket") as world:
        await open_setup(world)
        values = {"name": "Daily", "channel": "#team", "participants": "@eng01"}
        ack = await world.submit("UALICE", values)
        errors = world.form_errors(ack)
        assert "scope" in errors["participants"] and "reinstall" in errors["participants"]
        await world.submit("UALICE", values, fake.views[-1])
        await world.command("UALICE", "/standup list")
        # One read at start; the failure is not retried on every event (it is, minutes later).
        assert len(fake.calls_of("users.list")) == 1
        assert await standups(database) == []
