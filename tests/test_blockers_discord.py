"""Blockers on Discord end to end: the real discord.py client and delivery worker against the
fake Discord on 127.0.0.1, on SQLite and PostgreSQL. ``/blocker add line:...`` posts the card
in the area's channel (no pings), a member not allowed to resolve it is refused privately, the
Responsible clicks Resolve and the card is edited in place; bad input is answered privately
and posts nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.console.clock import DemoClock
from storage.db import Database
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import FakeDiscord, FakeGuild
from tests.test_polls_discord import content, labelled

START = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    try:
        yield discord
    finally:
        await discord.stop()


async def said(fake: FakeDiscord, bot: RunningBot, interaction: Any) -> str:
    reply = await fake.settled_reply(interaction)
    await bot.settle()
    assert reply["data"]["flags"] == 64  # only whoever acted sees it
    return str(reply["data"]["content"])


async def test_a_blocker_on_discord(fake: FakeDiscord, database: Database, db_url: str) -> None:
    alice, bob, carol, dan = (fake.add_user(n) for n in ("alice", "bob", "carol", "dan"))
    guild: FakeGuild = fake.add_guild("Acme", ["team", "data"], [alice, bob, carol, dan])
    data = fake.channel_id(guild, "data")
    async with running(fake, db_url, DemoClock(START)) as bot:
        setup = await fake.slash(
            "raci",
            "setup",
            {
                "line": f'"Data pipeline" --responsible <@{bob}> --accountable <@{alice}> '
                f"--channel <#{data}> --keywords etl, airflow"
            },
            user_id=alice,
            guild=guild,
            channel="team",
            admin=True,
        )
        assert (await said(fake, bot, setup)).startswith("Created the area Data pipeline")
        added = await fake.slash(
            "blocker",
            "add",
            {"line": "The nightly ETL job fails @everyone --severity high"},
            user_id=carol,
            guild=guild,
            channel="team",
        )
        assert (await said(fake, bot, added)).startswith(
            "Blocker #1 is open in area Data pipeline (suggested from its text"
        )
        (card,) = fake.created_messages(data)
        # user text pings nobody: escaped, and no mentions allowed
        assert "The nightly ETL job fails @\u200beveryone" in content(card)
        assert card["allowed_mentions"]["parse"] == []
        assert labelled(card, "Resolve").endswith("/blocker:resolve:1")  # the guild first
        resolve = labelled(card, "Resolve")
        refused = await fake.click(card, resolve, user_id=dan)
        assert (await said(fake, bot, refused)).startswith(
            "You can't resolve blocker #1: only the member or area it waits on"
        )
        resolved = await fake.click(card, resolve, user_id=bob)
        assert await said(fake, bot, resolved) == "Resolved blocker #1."
        edits = fake.calls_to("PATCH", f"/channels/{data}/messages/{card['id']}")
        assert edits and all(e.status == 200 for e in edits)
        shown = fake.messages[card["id"]]
        assert "Resolved by @bob" in content(shown)
        assert [c["label"] for c in shown["components"][0]["components"]] == ["Reopen"]
        again = await fake.click(card, resolve, user_id=alice)  # pressed on a stale copy
        assert (await said(fake, bot, again)).startswith("Blocker #1 was already resolved by @bob")


async def test_bad_input_on_discord_posts_nothing(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    async with running(fake, db_url, DemoClock(START)) as bot:
        for line, error in (
            ("Stuck --severity urgent", 'Unknown severity "urgent"'),
            ("Stuck --area nowhere", 'Unknown area "nowhere"; there are no areas yet'),
            ("   ", None),
        ):
            interaction = await fake.slash(
                "blocker", "add", {"line": line}, user_id=alice, guild=guild, channel="team"
            )
            if error is None:  # an empty line: the form
                opened = await fake.answered(interaction)
                assert opened["type"] == 9 and opened["data"]["title"] == "Report a blocker"
                await bot.settle()
                continue
            assert (await said(fake, bot, interaction)).startswith(error)
        gone = await fake.slash(
            "blocker", "resolve", {"id": "3"}, user_id=alice, guild=guild, channel="team"
        )
        assert await said(fake, bot, gone) == (
            "There is no blocker #3 here; `/blocker list` shows them."
        )
        assert fake.created_messages(fake.channel_id(guild, "team")) == []
