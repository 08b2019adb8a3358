"""/raci on Discord end to end: the real discord.py client against the fake Discord on
127.0.0.1, on SQLite and PostgreSQL. ``/raci setup`` opens the 12-field form as three modal
steps and creates an area whose Responsible is a Discord role (the guild's roles and the members
holding it, with the members intent); a role mention in a one-liner is a group too; the
Accountable must be one person; ``/raci show`` answers privately with the table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.console.clock import DemoClock
from storage.db import Database
from tests.fakes.discord.harness import running
from tests.fakes.discord.server import FakeDiscord, Interaction

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    try:
        yield discord
    finally:
        await discord.stop()


async def press(fake: FakeDiscord, message: dict[str, Any], label: str, user: str) -> Interaction:
    for row in message.get("components") or []:
        for item in row["components"]:
            if item.get("label", "").startswith(label):
                return await fake.click(message, item["custom_id"], user_id=user)
    raise AssertionError(f"no button {label!r} in {message.get('components')}")


async def test_setup_through_the_modal_steps_and_show(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice, bob, carol = (fake.add_user(n) for n in ("alice", "bob", "carol"))
    guild = fake.add_guild("Acme", ["team", "data"], [alice, bob, carol])
    guild.admins.add(alice)
    fake.add_role(guild, "data-eng", [bob, carol])
    ml = fake.add_role(guild, "ml", [carol])
    data = fake.channel_id(guild, "data")
    async with running(fake, db_url, DemoClock(START), members_intent=True) as bot:
        opened = await fake.slash(
            "raci", "setup", user_id=alice, guild=guild, channel="data", admin=True
        )
        first = await fake.answered(opened)
        assert first["type"] == 9, first  # a modal
        assert first["data"]["title"] == "New RACI area (1/3)"
        values: list[dict[str, str]] = [
            {
                "name": "Data pipeline",
                "responsible": "@data-eng",
                "accountable": "@alice @bob",  # two: refused at the end, next to the field
                "informed": "#team",
            },
            {"timezone": "Europe/Berlin", "hours": "09:00-17:00", "holidays": "DE BE"},
            {"keywords": "etl, airflow"},
        ]
        modal = first["data"]
        step = await fake.submit(modal, values[0], user_id=alice, guild=guild, channel_id=data)
        for n in (1, 2):
            await fake.answered(step)
            opened = await press(fake, fake.reply_message(step), "Continue", alice)
            modal = (await fake.answered(opened))["data"]
            assert modal["title"] == f"New RACI area ({n + 1}/3)"
            step = await fake.submit(modal, values[n], user_id=alice, guild=guild, channel_id=data)
        refused = await fake.answered(step)
        assert refused["data"]["flags"] == 64
        assert "Only one person can be Accountable" in refused["data"]["content"]
        # Fix only that field: the form reopens with what was typed.
        opened = await press(fake, fake.reply_message(step), "Fix", alice)
        modal = (await fake.answered(opened))["data"]
        step = await fake.submit(
            modal, {"accountable": "@alice"}, user_id=alice, guild=guild, channel_id=data
        )
        done = await fake.answered(step)
        await bot.settle()
        assert done["data"]["flags"] == 64
        content = done["data"]["content"]
        assert "Created the area Data pipeline." in content
        assert "**@data-eng** (group: bob, carol)" in content
        assert f"<@{alice}>" in content and f"<#{data}>" in content

        # A one-liner with a role mention; then the matrix, for anyone.
        line = f"-r <@&{ml}> <@{bob}> -a <@{carol}>"
        made = await fake.slash(
            "raci", "setup", {"line": f"Serving {line}"}, user_id=alice, guild=guild,
            channel="team", admin=True,
        )  # fmt: skip
        assert "Created the area Serving." in (await fake.settled_reply(made))["data"]["content"]
        shown = await fake.slash("raci", "show", user_id=bob, guild=guild, channel="team")
        table = (await fake.settled_reply(shown))["data"]["content"]
        assert "`Area           alice  bob  carol  @data-eng  @ml  #team`" in table
        assert "`Data pipeline  A      .    .      R          .    I`" in table
        assert "`Serving        .      R    A      .          R    .`" in table
        # One more column and it is too wide for a phone: a picture, in the DM.
        edit = await fake.slash(
            "raci", "edit", {"area": "serving", "line": "--consulted #data"}, user_id=alice,
            guild=guild, channel="team",
        )  # fmt: skip
        assert "Saved the area Serving." in (await fake.settled_reply(edit))["data"]["content"]
        shown = await fake.slash("raci", "show", user_id=bob, guild=guild, channel="team")
        told = (await fake.settled_reply(shown))["data"]["content"]
        assert told.startswith("The RACI matrix (2 areas by 7 people): too wide for a message")
        await bot.settle()
        [dm] = fake.dm_messages(bob)
        [attachment] = dm["attachments"]
        assert attachment["filename"].endswith(".png")
        assert "Serving: bob R, carol A, @ml R, #data C" in attachment["description"]
        who = await fake.slash(
            "raci", "who", {"area": "serving"}, user_id=bob, guild=guild, channel="team"
        )
        assert "**@ml** (group: carol)" in (await fake.settled_reply(who))["data"]["content"]
        denied = await fake.slash(
            "raci", "delete", {"area": "serving"}, user_id=bob, guild=guild, channel="team"
        )
        reply = (await fake.settled_reply(denied))["data"]["content"]
        assert reply == "Only team leads and admins can do that."


async def test_roles_need_the_members_intent(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice, bob = (fake.add_user(n) for n in ("alice", "bob"))
    guild = fake.add_guild("Acme", ["team"], [alice, bob])
    fake.add_role(guild, "data-eng", [bob])
    async with running(fake, db_url, DemoClock(START), members_intent=False):
        made = await fake.slash(
            "raci", "setup", {"line": f"Serving -r @data-eng -a <@{alice}>"}, user_id=alice,
            guild=guild, channel="team", admin=True,
        )  # fmt: skip
        content = (await fake.settled_reply(made))["data"]["content"]
        assert "Created the area Serving." in content
        # The role is saved; who holds it needs the intent, so it is shown without names.
        assert "**@data-eng** (group)" in content
