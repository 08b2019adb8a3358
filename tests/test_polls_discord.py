"""Polls on Discord end to end: the real discord.py client and delivery worker against the fake
Discord on 127.0.0.1, on SQLite and PostgreSQL. ``/poll create line:...`` posts the poll with
components, clicks vote (answered privately), live results edit the message while it is younger
than an hour and are posted anew after that (Discord refuses edits of older messages), and the
close posts the results and edits only what may still be edited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.console.clock import DemoClock
from storage.db import Database
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import FakeDiscord, FakeGuild

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    try:
        yield discord
    finally:
        await discord.stop()


def labelled(message: dict[str, Any], label: str) -> str:
    for row in message.get("components") or []:
        for item in row["components"]:
            if item.get("label") == label:
                return str(item["custom_id"])
    raise AssertionError(f"no button {label!r} in {message.get('components')}")


async def vote(
    fake: FakeDiscord, bot: RunningBot, message: dict[str, Any], label: str, user: str
) -> str:
    click = await fake.click(message, labelled(message, label), user_id=user)
    reply = await fake.settled_reply(click)
    await bot.settle()
    assert reply["data"]["flags"] == 64  # only the voter sees it
    return str(reply["data"]["content"])


def content(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f.get("name", "") + " " + f.get("value", "") for f in embed.get("fields") or []]
    return "\n".join(parts)


async def test_a_poll_on_discord(fake: FakeDiscord, database: Database, db_url: str) -> None:
    alice, bob, carol = (fake.add_user(n) for n in ("alice", "bob", "carol"))
    guild: FakeGuild = fake.add_guild("Acme", ["team"], [alice, bob, carol])
    team = fake.channel_id(guild, "team")
    clock = DemoClock(START)
    async with running(fake, db_url, clock, members_intent=True) as bot:
        created = await fake.slash(
            "poll",
            "create",
            {"line": '"Ship Friday?" Yes No --threshold 3'},
            user_id=alice,
            guild=guild,
            channel="team",
        )
        reply = await fake.settled_reply(created)
        assert "Poll #1 is up in #team" in reply["data"]["content"]
        await bot.settle()
        posted = fake.created_messages(team)
        assert len(posted) == 1
        poll = posted[0]
        assert "Ship Friday?" in content(poll)
        assert poll["allowed_mentions"]["parse"] == []
        assert (await vote(fake, bot, poll, "Yes", alice)).startswith("Your vote is in: Yes.")
        await vote(fake, bot, poll, "No", bob)
        await vote(fake, bot, poll, "Yes", carol)
        edits = fake.calls_to("PATCH", f"/channels/{team}/messages/{poll['id']}")
        assert edits and all(e.status == 200 for e in edits)
        assert "67% (2)" in content(fake.messages[poll["id"]])

        # An hour and more later Discord would refuse the edit: the poll is posted again.
        await bot.move_to(START + timedelta(hours=2))
        before = len(edits)
        assert (await vote(fake, bot, poll, "Yes", bob)).startswith("Your vote is changed to Yes.")
        assert len(fake.calls_to("PATCH", f"/messages/{poll['id']}")) == before
        again = [m for m in fake.created_messages(team) if m["id"] != poll["id"]]
        assert len(again) == 1 and "100% (3)" in content(again[0])
        labelled(again[0], "No")  # votable there too

        closing = await fake.slash(
            "poll", "close", {"id": "1"}, user_id=alice, guild=guild, channel="team"
        )
        assert (await fake.settled_reply(closing))["data"]["content"] == (
            "Closed poll #1; the results are posted in its channel."
        )
        await bot.settle()
        results = [m for m in fake.created_messages(team) if "Poll #1 results" in content(m)]
        assert len(results) == 1 and "100% (3)" in content(results[0])
        # The young repost is marked closed; the two-hour-old original is left alone.
        assert "(closed)" in content(fake.messages[again[0]["id"]])
        assert not fake.messages[again[0]["id"]].get("components")
        assert len(fake.calls_to("PATCH", f"/messages/{poll['id']}")) == before


async def test_bad_input_and_the_form_on_discord(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice, bob = (fake.add_user(n) for n in ("alice", "bob"))
    guild = fake.add_guild("Acme", ["team"], [alice, bob])
    async with running(fake, db_url, DemoClock(START), members_intent=True) as bot:
        wrong = await fake.slash(
            "poll",
            "create",
            {"line": '"Ship?" Yes --anonymous'},
            user_id=bob,
            guild=guild,
            channel="team",
        )
        reply = await fake.settled_reply(wrong)
        assert reply["data"]["flags"] == 64
        assert reply["data"]["content"] == "A poll needs at least 2 options; you gave 1."
        form = await fake.slash("poll", "create", user_id=bob, guild=guild, channel="team")
        opened = await fake.answered(form)
        assert opened["type"] == 9  # a modal, in steps: Discord's hold five fields
        assert opened["data"]["title"] == "New poll (1/2)"
        await bot.settle()
        assert fake.created_messages(fake.channel_id(guild, "team")) == []
