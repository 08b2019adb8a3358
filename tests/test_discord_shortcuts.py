"""Shortcuts on Discord, end to end: the real discord.py client against the fake Discord, on SQLite
and PostgreSQL. Message and user context-menu commands (types 3 and 2) registered with the slash
commands; a message command that answers with a modal (type 9) pre-filled with the message and
its jump link; a user command that answers privately naming the member; a repeated interaction
handled once; a message too long for a text input cut with a note; a NUL refused privately; a
slow core deferred within the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from adapters.console.clock import DemoClock
from adapters.discord.cli import _shown
from adapters.discord.commands import commands_payload, shortcut_payload
from adapters.discord.rest import DiscordHTTPError, DiscordRest
from bot.commands.spec import CommandSpec
from bot.core import Shortcut
from storage.db import Database
from storage.models import Member, ProcessedEvent
from tests.fakes import shortcuts
from tests.fakes.discord import menus
from tests.fakes.discord.harness import RunningBot, running
from tests.fakes.discord.server import FakeDiscord, FakeGuild

START = datetime(2026, 3, 9, 8, tzinfo=UTC)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: str
    bob: str
    db_url: str
    database: Database


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[World]:
    fake = await FakeDiscord().start()
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    guild = fake.add_guild("Acme", ["team"], [alice, bob])
    try:
        yield World(fake, guild, alice, bob, db_url, database)
    finally:
        await fake.stop()


@pytest.fixture
async def bot(world: World) -> AsyncIterator[tuple[RunningBot, shortcuts.Recorded]]:
    async with running(world.fake, world.db_url, DemoClock(START)) as running_bot:
        yield running_bot, shortcuts.register(running_bot.app.core)


def field(modal: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in modal["components"] if c["component"]["custom_id"] == name)


async def test_a_message_command_opens_a_modal_filled_from_the_message(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    running_bot, recorded = bot
    fake = world.fake
    said = "the labeling export is stuck, waiting on <@&42> since Monday"
    message = menus.member_message(fake, world.guild, "team", world.bob, said)
    asked = await menus.context_menu(
        fake, "Save as note", user_id=world.alice, guild=world.guild, message=message
    )
    answer = await fake.answered(asked)
    assert answer["type"] == 9, answer  # a modal, as the initial response
    await running_bot.settle()
    [event] = recorded.of("save_note")
    assert event.message_text == said
    channel = fake.channel_id(world.guild, "team")
    link = f"https://discord.com/channels/{world.guild.id}/{channel}/{message['id']}"
    assert event.message_link == link
    assert event.message_author_id == world.bob and event.actor.user_id == world.alice
    modal = answer["data"]
    assert field(modal, "text")["component"]["value"] == said
    assert field(modal, "link")["component"]["value"] == link
    assert "description" not in field(modal, "text")

    done = await fake.submit(modal, {}, user_id=world.alice, guild=world.guild, channel_id=channel)
    reply = await fake.answered(done)
    assert reply["data"]["flags"] == 64 and "Saved a note" in reply["data"]["content"]
    assert recorded.submissions[-1].values["text"] == said


async def test_a_user_command_answers_privately_naming_the_member(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    running_bot, recorded = bot
    asked = await menus.context_menu(
        world.fake, "Say thanks", user_id=world.alice, guild=world.guild, target_user=world.bob
    )
    answer = await world.fake.answered(asked)
    assert answer["type"] == 4 and answer["data"]["flags"] == 64
    assert f"<@{world.bob}>" in answer["data"]["content"]
    # The member is named deliberately (and only them: nobody else can be pinged).
    assert answer["data"]["allowed_mentions"] == {
        "parse": [],
        "users": [world.bob],
        "replied_user": False,
    }
    await running_bot.settle()
    [event] = recorded.of("say_thanks")
    assert event.target_user_id == world.bob
    async with world.database.transaction() as session:  # the member was learnt, by name
        names = set(await session.scalars(select(Member.display_name)))
    assert "bob" in names


async def test_a_user_command_that_opens_a_form_answers_with_a_modal(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    asked = await menus.context_menu(
        world.fake,
        "Thank with a note",
        user_id=world.alice,
        guild=world.guild,
        target_user=world.bob,
    )
    answer = await world.fake.answered(asked)
    assert answer["type"] == 9 and answer["data"]["title"] == "Thank with a note"


async def test_a_repeated_interaction_is_handled_once(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    running_bot, recorded = bot
    fake = world.fake
    message = menus.member_message(fake, world.guild, "team", world.bob, "deploy blocked")
    for _ in range(2):
        await menus.context_menu(
            fake,
            "Save as note",
            user_id=world.alice,
            guild=world.guild,
            message=message,
            interaction_id="9001",
        )
    await running_bot.settle()
    assert len(recorded.of("save_note")) == 1
    assert len(fake.interactions["9001"].responses) == 1
    async with world.database.transaction() as session:
        seen = list(await session.scalars(select(ProcessedEvent.event_id)))
    assert seen.count("9001") == 1


async def test_a_message_longer_than_a_text_input_is_cut_with_a_note(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    running_bot, recorded = bot
    fake = world.fake
    # Discord's own messages stop at 2,000 (4,000 with Nitro); a bot's embeds say more.
    long = "step " * 1000
    message = menus.member_message(fake, world.guild, "team", world.bob, "")
    message["embeds"] = [{"title": "Incident log", "description": long.strip()}]
    asked = await menus.context_menu(
        fake, "Save as note", user_id=world.alice, guild=world.guild, message=message
    )
    answer = await fake.answered(asked)
    assert answer["type"] == 9, answer  # the fake refuses a value over max_length (4,000)
    await running_bot.settle()
    [event] = recorded.of("save_note")
    assert len(event.message_text) > 4000
    label = field(answer["data"], "text")
    shown = label["component"]["value"]
    assert len(shown) <= 4000 and shown.endswith("\u2026")
    assert event.message_text.startswith(shown.removesuffix("\u2026"))
    assert label["description"].startswith(f"Shortened to the first {len(shown) - 1:,} of ")
    assert len(label["description"]) <= 100


async def test_a_message_with_a_nul_is_refused_privately(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    running_bot, recorded = bot
    message = menus.member_message(world.fake, world.guild, "team", world.bob, "bad\x00byte")
    asked = await menus.context_menu(
        world.fake, "Save as note", user_id=world.alice, guild=world.guild, message=message
    )
    answer = await world.fake.answered(asked)
    assert answer["type"] == 4 and answer["data"]["flags"] == 64
    assert "NUL" in answer["data"]["content"]
    await running_bot.settle()
    assert recorded.invocations == []


async def test_a_menu_entry_no_feature_handles_is_answered_privately(
    world: World, bot: tuple[RunningBot, shortcuts.Recorded]
) -> None:
    message = menus.member_message(world.fake, world.guild, "team", world.bob, "hello")
    asked = await menus.context_menu(
        world.fake, "Old shortcut", user_id=world.alice, guild=world.guild, message=message
    )
    answer = await world.fake.answered(asked)
    assert answer["type"] == 4 and answer["data"]["flags"] == 64
    assert "no longer does anything" in answer["data"]["content"]


async def test_a_slow_shortcut_is_deferred_and_its_form_offered_by_a_button(
    world: World, database: Database
) -> None:
    fake = world.fake
    async with running(fake, world.db_url, DemoClock(START), ack_seconds=0.05) as running_bot:
        recorded = shortcuts.register(running_bot.app.core)
        release = asyncio.Event()

        async def slow(ctx: Any, event: Any) -> Any:
            await release.wait()
            recorded.invocations.append(event)
            return None

        running_bot.app.core.add_shortcut(Shortcut("slow", "Slow one", on="message"), slow)
        message = menus.member_message(fake, world.guild, "team", world.bob, "hello")
        asked = await menus.context_menu(
            fake, "Slow one", user_id=world.alice, guild=world.guild, message=message
        )
        first = await fake.answered(asked)
        assert first["type"] == 5 and first["data"]["flags"] == 64  # deferred, privately
        release.set()
        final = await fake.settled_reply(asked)
        assert final["data"]["content"] == "Done."


async def test_context_menu_commands_register_with_the_slash_commands(world: World) -> None:
    spec = CommandSpec("standup", "Standups", ())
    payload = commands_payload([spec], [shortcuts.SAY_THANKS, shortcuts.SAVE_NOTE])
    assert [(c["type"], c["name"]) for c in payload] == [
        (1, "standup"),
        (3, "Save as note"),
        (2, "Say thanks"),
    ]
    assert all("description" not in c and "options" not in c for c in payload[1:])
    rest = DiscordRest(world.fake.api_base, world.fake.token)
    try:
        path = f"/applications/{world.fake.application_id}/guilds/{world.guild.id}/commands"
        registered = await rest.request("PUT", path, json_body=payload)
        assert [c["type"] for c in registered] == [1, 3, 2]
        # The fake holds Discord's rules: a context-menu command with a description is refused.
        with pytest.raises(DiscordHTTPError):
            await rest.request("PUT", path, json_body=[{**payload[1], "description": "x"}])
    finally:
        await rest.close()
    assert _shown(registered[1]) == '"Save as note" (on messages)'
    assert _shown(registered[2]) == '"Say thanks" (on members)'


def test_a_label_longer_than_discord_takes_is_refused_with_its_length() -> None:
    long = Shortcut("long", "Report this message as a blocker now", on="message")
    with pytest.raises(ValueError, match=r"1 to 32 characters.*has 36"):
        shortcut_payload(long)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SYNCUP_DISCORD_TOKEN", "a-token")
    monkeypatch.setenv("SYNCUP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/syncup.db")
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)


def test_sync_commands_prints_the_shortcuts_with_the_slash_commands(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    shortcuts.in_features(monkeypatch)
    printed = CliRunner().invoke(cli, ["discord", "sync-commands", "--print"])
    assert printed.exit_code == 0, printed.output
    assert '"name": "Save as note"' in printed.output and '"type": 3' in printed.output
    assert '"name": "Say thanks"' in printed.output and '"type": 2' in printed.output


def test_a_shortcut_discord_cannot_name_stops_the_sync_with_a_clear_line(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    long = Shortcut("long", "Report this message as a blocker now", on="message")
    shortcuts.in_features(monkeypatch, long)
    printed = CliRunner().invoke(cli, ["discord", "sync-commands", "--print"])
    assert printed.exit_code == 1
    assert "syncup: shortcut long: Discord names a context-menu command in 1 to 32" in (
        printed.output
    )
    assert "Traceback" not in printed.output
