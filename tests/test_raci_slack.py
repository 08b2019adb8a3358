"""/raci on Slack end to end: the real slack-bolt app against the fake Slack on 127.0.0.1, on
SQLite and PostgreSQL. The setup form (a modal) creates an area whose Responsible is a Slack
user group (usergroups.list, usergroups.users.list), bad fields come back next to the fields,
a one-liner takes Slack's escaped mentions (<!subteam^..>, <@U..>, <#C..>), /raci show answers
with the table, and a matrix too wide for a message arrives in the DM as a PNG."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from PIL import Image

from adapters.slack.manifest import BOT_SCOPES
from storage.db import Database
from tests.fakes.slack.harness import SlackWorld, slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        slack.add_user("UCAROL", "carol", "Europe/Berlin")
        slack.add_channel("CDATA", "data", ["UALICE", "UBOB", "UCAROL"])
        slack.add_usergroup("SENG", "data-eng", ["UBOB", "UCAROL"], name="Data engineering")
        yield slack


@pytest.fixture
async def world(fake: FakeSlack, database: Database) -> AsyncIterator[SlackWorld]:
    async with slack_world(fake, database.url, "http", START) as built:
        yield built


def replies(fake: FakeSlack) -> list[str]:
    return [text_of(r.get("blocks"), r.get("text", "")) for r in fake.responses]


def form(**values: str) -> dict[str, str]:
    return {
        "name": "Data pipeline",
        "responsible": "@data-eng",
        "accountable": "@alice",
        "consulted": "",
        "informed": "#team",
        "channel": "#data",
        "timezone": "Europe/Berlin",
        "days": "mon-fri",
        "hours": "09:00-17:00",
        "holidays": "DE BE",
        "dates": "",
        "keywords": "etl, airflow",
    } | values


async def test_setup_by_the_form_and_show_on_slack(world: SlackWorld) -> None:
    fake = world.fake
    await world.command("UALICE", "/raci setup", channel="CDATA")
    view = fake.views[-1]
    assert view["callback_id"] == "raci"
    channel = next(b for b in view["blocks"] if b.get("block_id") == "channel")
    assert channel["element"]["initial_value"] == "#data"  # where the command was typed
    # Two Accountables and an unknown holiday region: told next to the fields, nothing saved.
    ack = await world.submit("UALICE", form(accountable="@alice @bob", holidays="DE XX"))
    errors = world.form_errors(ack)
    assert set(errors) == {"accountable", "holidays"}
    assert errors["accountable"].startswith("Only one person can be Accountable")
    assert errors["holidays"].startswith('Unknown subdivision "XX" of DE')
    ack = await world.submit("UALICE", form(), view)
    assert world.form_errors(ack) == {}, ack.body
    created = [e for e in fake.ephemerals if "Created the area" in text_of(e.get("blocks"))]
    assert created and created[-1]["user"] == "UALICE"
    shown = text_of(created[-1]["blocks"])
    assert "*@data-eng* (group: bob, carol)" in shown
    assert "<@UALICE>" in shown  # the Accountable as a mention (in a private message)
    assert [c.args.get("usergroup") for c in fake.calls_of("usergroups.users.list")][-1] == "SENG"

    # A one-liner with Slack's escaped mentions: a user group, a member and a channel.
    await world.command(
        "UALICE",
        "/raci setup Serving -r <!subteam^SENG|@data-eng> <@UCAROL> -a <@UBOB> -i <#CTEAM|team>",
    )
    assert replies(fake)[-1].startswith("Created the area Serving.")
    await world.command("UBOB", "/raci show")  # everyone may read
    table = replies(fake)[-1]
    assert "Area           alice  bob  carol  @data-eng  #team" in table
    assert "Data pipeline  A      .    .      R          I" in table
    assert "Serving        .      A    R      R          I" in table
    await world.command("UBOB", "/raci delete serving")
    assert replies(fake)[-1] == "Only team leads and admins can do that."


async def test_a_wide_matrix_arrives_as_a_png_in_the_dm(world: SlackWorld) -> None:
    fake = world.fake
    for n in range(10):
        fake.add_user(f"UP{n}", f"person-with-a-long-name-{n}")
        await world.command("UALICE", f"/raci setup Area{n} -r <@UP{n}> -a <@UALICE>")
    await world.command("UBOB", "/raci show")
    assert "too wide for a message" in replies(fake)[-1]
    await world.settle()
    [picture] = fake.shared_files("DUBOB")
    image = Image.open(io.BytesIO(picture.data or b""))
    assert image.format == "PNG" and image.size[0] == 800
    assert "Area0: alice A, person-with-a-long-name-0 R;" in (picture.alt_txt or "")


async def test_a_group_without_the_scope_is_explained(world: SlackWorld) -> None:
    world.fake.lacking_scopes.add("usergroups:read")
    await world.command("UALICE", "/raci setup Serving -r @data-eng -a <@UBOB>")
    assert replies(world.fake)[-1].startswith("syncup lacks the Slack scope usergroups:read")


def test_the_manifest_asks_for_usergroups_read() -> None:
    assert "usergroups:read" in BOT_SCOPES
