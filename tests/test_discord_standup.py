"""A standup on Discord, end to end: the real app and the real discord.py client against the fake
Discord on 127.0.0.1, on SQLite and PostgreSQL.

``/standup setup`` through the 13-field form in three modal steps; the scheduled DMs; an answer
through the modal (with ``@everyone`` in it, which pings nobody) and one through the DM
conversation; the report and a late answer editing it; a member with closed DMs (50007) who is
reported unreachable without a crash; a restart after which the old buttons still work; a
repeated interaction answered once; private errors for bad input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from adapters.console.clock import DemoClock
from storage.db import Database
from storage.models import Member, OutboxMessage, Standup, StandupAnswer
from tests.fakes.discord.harness import RunningBot, running, start_bot
from tests.fakes.discord.server import FakeDiscord, FakeGuild, Interaction

# Monday 2026-03-09, 06:00 UTC = 07:00 in Berlin.
START = datetime(2026, 3, 9, 6, tzinfo=UTC)
NINE_IN_BERLIN = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: str
    bob: str
    carol: str
    db_url: str
    database: Database
    clock: DemoClock

    @property
    def team(self) -> str:
        return self.fake.channel_id(self.guild, "team")


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    fake = await FakeDiscord().start()
    alice, bob, carol = (fake.add_user(n) for n in ("alice", "bob", "carol"))
    guild = fake.add_guild("Acme", ["team", "random"], [alice, bob, carol])
    fake.closed_dms.add(carol)
    try:
        yield World(fake, guild, alice, bob, carol, db_url, database, DemoClock(START))
    finally:
        await fake.stop()


async def start(world: World, **options: Any) -> RunningBot:
    return await start_bot(world.fake, world.db_url, world.clock, members_intent=True, **options)


async def answered(world: World, interaction: Interaction) -> dict[str, Any]:
    response = await world.fake.answered(interaction)
    return response


async def press(world: World, message: dict[str, Any], label: str, user: str) -> Interaction:
    for row in message.get("components") or []:
        for item in row["components"]:
            if item.get("label", "").startswith(label):
                return await world.fake.click(message, item["custom_id"], user_id=user)
    raise AssertionError(f"no button {label!r} in {message.get('components')}")


async def setup_daily(world: World, bot: RunningBot) -> None:
    fake, alice = world.fake, world.alice
    opened = await fake.slash(
        "standup", "setup", user_id=alice, guild=world.guild, channel="team", admin=True
    )
    first = await answered(world, opened)
    assert first["type"] == 9, first
    modal = first["data"]
    assert modal["title"] == "Standup (1/3)"
    assert len(modal["components"]) == 5
    step = await fake.submit(
        modal,
        {
            "name": "Daily",
            "channel": "#team",
            "participants": "@alice @bob @carol",
        },
        user_id=alice,
        guild=world.guild,
        channel_id=world.team,
    )
    for expected in ("Standup (2/3)", "Standup (3/3)"):
        reply = await answered(world, step)
        assert reply["type"] == 4 and reply["data"]["flags"] == 64
        shown = fake.reply_message(step)
        opened = await press(world, shown, "Continue", alice)
        modal = (await answered(world, opened))["data"]
        assert modal["title"] == expected
        values = {"timezone": "Europe/Berlin", "time": "09:00"} if "2/3" in expected else {}
        step = await fake.submit(
            modal, values, user_id=alice, guild=world.guild, channel_id=world.team
        )
    done = await answered(world, step)
    assert done["type"] == 4, done
    assert "Created **Daily**" in done["data"]["content"]
    assert done["data"]["flags"] == 64


async def dm_prompt(world: World, user: str) -> dict[str, Any]:
    messages = world.fake.dm_messages(user)
    assert messages, "no DM"
    return messages[0]


async def test_a_standup_day_on_discord(world: World) -> None:
    fake = world.fake
    async with running(fake, world.db_url, world.clock, members_intent=True) as bot:
        await setup_daily(world, bot)
        async with world.database.transaction() as session:
            standup = await session.scalar(select(Standup))
            assert standup is not None and standup.name == "Daily"

        # 09:00 in Berlin: alice and bob get their prompt; carol has closed her DMs.
        await bot.move_to(NINE_IN_BERLIN)
        prompt = await dm_prompt(world, world.alice)
        assert "Time for **Daily**" in prompt["content"]
        assert prompt["allowed_mentions"]["parse"] == []
        opened = [c for c in fake.calls_to("POST", "/users/@me/channels")]
        assert {c.json["recipient_id"] for c in opened} >= {world.alice, world.bob}
        refused = [c for c in fake.calls_to("POST", "/messages") if c.status == 403]
        assert refused and refused[0].response["code"] == 50007
        async with world.database.transaction() as session:
            rows = list(await session.scalars(select(OutboxMessage)))
            carol_rows = [r for r in rows if r.target.get("user_id") == world.carol]
            assert carol_rows and all(r.status == "dead" for r in carol_rows), [
                (r.status, r.last_error) for r in carol_rows
            ]
            assert "50007" in (carol_rows[0].last_error or "")
        assert not bot.task.done()
        await bot.settle()
        # The owner (alice) is told, and the report shows carol as unreachable.
        told = [m["content"] for m in fake.dm_messages(world.alice) if "carol" in m["content"]]
        assert told, [m["content"][:80] for m in fake.dm_messages(world.alice)]

        # alice answers through the modal, with @everyone in her text.
        click = await press(world, prompt, "Answer", world.alice)
        modal = (await answered(world, click))["data"]
        assert modal["components"][0]["component"]["custom_id"] == "q0"
        submitted = await fake.submit(
            modal,
            {"q0": "Shipped @everyone <@1> fix", "q1": "Reviews", "q2": "none"},
            user_id=world.alice,
            guild=None,
        )
        saved = await answered(world, submitted)
        assert saved["type"] == 4 and saved["data"]["flags"] == 64
        await bot.settle()
        team_posts = [
            c
            for c in fake.calls
            if c.method in ("POST", "PATCH")
            and "/messages" in c.path
            and c.status == 200
            and c.json
            and "Shipped" in _text(c.json)
        ]
        assert team_posts, [c.path for c in fake.calls]
        for call in team_posts:
            assert call.json["allowed_mentions"]["parse"] == []
            assert call.json["allowed_mentions"]["users"] == []
            assert "@\u200beveryone" in _text(call.json)
            assert "\\<@1>" in _text(call.json)

        report = [
            _text(c.json)
            for c in fake.calls
            if c.method in ("POST", "PATCH") and c.path.startswith(f"/channels/{world.team}/")
        ]
        assert any("nreachable" in t and "carol" in t for t in report), report

        # bob answers in the DM conversation, one message per question.
        for said in ("Fixed the build", "Release notes", "no"):
            await fake.send_dm(world.bob, said)
            await bot.settle()
        async with world.database.transaction() as session:
            bob_id = await session.scalar(
                select(Member.id).where(Member.platform_user_id == world.bob)
            )
            answers = list(await session.scalars(select(StandupAnswer)))
            assert any(a.text == "Fixed the build" for a in answers)
            assert bob_id is not None
        edits = fake.calls_to("PATCH", f"/channels/{world.team}/messages/")
        edits += [c for c in fake.calls_to("PATCH", "/messages/") if c not in edits]
        assert edits, "a late answer edits the report"
        assert all(e.json["allowed_mentions"]["parse"] == [] for e in edits)
        assert all(e.status == 200 for e in edits)

        # After the window has closed, alice changes her answer: the report is edited in place.
        await bot.move_to(datetime(2026, 3, 9, 13, 0, tzinfo=UTC))
        patched = len(fake.calls_to("PATCH", "/messages/"))
        late = await press(world, prompt, "Answer", world.alice)
        modal = (await answered(world, late))["data"]
        changed = await fake.submit(
            modal, {"q1": "Reviews, then the release"}, user_id=world.alice, guild=None
        )
        assert (await answered(world, changed))["data"]["flags"] == 64
        await bot.settle()
        late_edits = fake.calls_to("PATCH", "/messages/")[patched:]
        assert any("Reviews, then the release" in _text(c.json) for c in late_edits), [
            _text(c.json)[:200] for c in late_edits
        ]
        assert all(c.status == 200 for c in late_edits)

        # The same interaction delivered twice is answered once.
        skip_id = next(c for c in fake.custom_ids(prompt) if "standup-skip" in c)
        twice = await fake.click(prompt, skip_id, user_id=world.alice, interaction_id="77")
        await fake.click(prompt, skip_id, user_id=world.alice, interaction_id="77")
        await answered(world, twice)
        await bot.settle()
        callbacks = fake.calls_to("POST", "/interactions/77/")
        assert len(callbacks) == 1

    # A restart: the buttons of yesterday's DM still work.
    async with running(fake, world.db_url, world.clock, members_intent=True):
        again = await press(world, prompt, "Answer", world.alice)
        reopened = await answered(world, again)
        assert reopened["type"] == 9
        assert reopened["data"]["components"][0]["component"]["value"].startswith("Shipped")


async def test_bad_input_gets_a_private_answer(world: World) -> None:
    fake = world.fake
    async with running(fake, world.db_url, world.clock):
        wrong = await fake.slash(
            "syncup",
            "timezone",
            {"zone": "Europe/Paris2"},
            user_id=world.bob,
            guild=world.guild,
            channel="team",
        )
        reply = await answered(world, wrong)
        assert reply["data"]["flags"] == 64
        assert 'Unknown timezone "Europe/Paris2"; try Europe/Paris' in reply["data"]["content"]

        completion = await fake.autocomplete(
            "syncup", "timezone", "zone", "paris", user_id=world.bob, guild=world.guild
        )
        choices = (await answered(world, completion))["data"]["choices"]
        assert {"name": "Europe/Paris", "value": "Europe/Paris"} in choices

        # The setup form with a mistake: errors privately, and a Fix button for those fields.
        opened = await fake.slash("standup", "setup", user_id=world.alice, guild=world.guild)
        modal = (await answered(world, opened))["data"]
        step = await fake.submit(
            modal,
            {"name": "Daily", "channel": "#nowhere", "participants": "@bob"},
            user_id=world.alice,
            guild=world.guild,
        )
        for _ in range(2):  # steps 2 and 3 keep their pre-filled values
            await answered(world, step)
            shown = fake.reply_message(step)
            modal = (await answered(world, await press(world, shown, "Continue", world.alice)))[
                "data"
            ]
            step = await fake.submit(modal, {}, user_id=world.alice, guild=world.guild)
        errors = await answered(world, step)
        assert errors["data"]["flags"] == 64
        assert "#nowhere" in errors["data"]["content"]
        fix = await press(world, fake.reply_message(step), "Fix", world.alice)
        fixing = (await answered(world, fix))["data"]
        assert [c["component"]["custom_id"] for c in fixing["components"]] == ["channel"]
        done = await fake.submit(
            fixing, {"channel": "#team"}, user_id=world.alice, guild=world.guild
        )
        assert "Created **Daily**" in (await answered(world, done))["data"]["content"]


def _text(payload: dict[str, Any]) -> str:
    parts = [payload.get("content") or ""]
    parts += [e.get("description") or "" for e in payload.get("embeds") or []]
    return "\n".join(parts)


async def test_seven_questions_are_answered_in_two_modal_steps(world: World) -> None:
    fake, alice = world.fake, world.alice
    questions = "\n".join(f"Question {n}?" for n in range(1, 8))
    async with running(fake, world.db_url, world.clock, members_intent=True) as bot:
        opened = await fake.slash("standup", "setup", user_id=alice, guild=world.guild)
        modal = (await answered(world, opened))["data"]
        step = await fake.submit(
            modal,
            {
                "name": "Long",
                "channel": "#team",
                "participants": "#team",  # everyone who can see #team (members intent)
                "questions": questions,
            },
            user_id=alice,
            guild=world.guild,
        )
        for _ in range(2):
            await answered(world, step)
            shown = fake.reply_message(step)
            modal = (await answered(world, await press(world, shown, "Continue", alice)))["data"]
            step = await fake.submit(modal, {}, user_id=alice, guild=world.guild)
        assert "Created **Long**" in (await answered(world, step))["data"]["content"]
        ran = await fake.slash("standup", "run", {"name": "Long"}, user_id=alice, guild=world.guild)
        assert "Sent" in (await answered(world, ran))["data"]["content"]
        await bot.settle()

        prompt = await dm_prompt(world, alice)
        # Discord has no time zone in profiles: the first prompt asks, with a select.
        [zone_select] = [c for c in fake.custom_ids(prompt) if c.endswith("syncup-timezone")]
        picked = await fake.click(prompt, zone_select, user_id=alice, values=["Asia/Tokyo"])
        assert (await answered(world, picked))["data"]["flags"] == 64
        await bot.settle()
        async with world.database.transaction() as session:
            zone = await session.scalar(
                select(Member.timezone).where(Member.platform_user_id == alice)
            )
        assert zone == "Asia/Tokyo"

        first = (await answered(world, await press(world, prompt, "Answer", alice)))["data"]
        assert first["title"].endswith("(1/2)") and len(first["components"]) == 5
        values = {f"q{n}": f"answer {n}" for n in range(7)}
        step = await fake.submit(first, values, user_id=alice, guild=None)
        await answered(world, step)
        second = await press(world, fake.reply_message(step), "Continue (2/2)", alice)
        modal = (await answered(world, second))["data"]
        assert [c["component"]["custom_id"] for c in modal["components"]] == ["q5", "q6"]
        done = await fake.submit(modal, values, user_id=alice, guild=None)
        assert (await answered(world, done))["data"]["flags"] == 64
        await bot.settle()
    async with world.database.transaction() as session:
        saved = {a.question_index: a.text for a in await session.scalars(select(StandupAnswer))}
    assert saved == {n: f"answer {n}" for n in range(7)}


async def test_members_named_in_a_form_are_found_without_the_members_intent(
    world: World,
) -> None:
    fake, alice = world.fake, world.alice
    async with running(fake, world.db_url, world.clock):  # no privileged intent
        opened = await fake.slash("standup", "setup", user_id=alice, guild=world.guild)
        modal = (await answered(world, opened))["data"]
        values = {"name": "Pair", "channel": "#team", "participants": "@alice @bob"}
        step = await fake.submit(modal, values, user_id=alice, guild=world.guild)
        for _ in range(2):
            await answered(world, step)
            shown = fake.reply_message(step)
            modal = (await answered(world, await press(world, shown, "Continue", alice)))["data"]
            step = await fake.submit(modal, {}, user_id=alice, guild=world.guild)
        done = (await answered(world, step))["data"]["content"]
        assert "Created **Pair**" in done and "2 participant(s)" in done
    searched = fake.calls_to("GET", "/members/search")
    assert [c.query["query"] for c in searched] == ["bob"]  # alice was known already
