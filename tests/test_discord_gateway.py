"""The Discord connection: where discord.py connects (a test that fails loudly if that moves),
intents, sharding (DMs on shard 0), the 3-second acknowledgement when the core is slow, DMs from
strangers, failures to log in, the members intent for "#channel" participants, and the
application commands generated from the core's specs."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from sqlalchemy import select

from adapters.console.clock import DemoClock
from adapters.discord.adapter import DiscordAdapter
from adapters.discord.commands import commands_payload, timezone_choices
from adapters.discord.port import DiscordPort
from adapters.discord.rest import DiscordRest
from bot.app import App
from bot.chat import Actions, Choice, Select, message, reply
from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec
from bot.config import ConfigError, DiscordSection
from bot.events import ActionInvocation
from bot.port import Delivery, DirectoryUnavailable, Method, Target
from storage.db import Database
from storage.models import Channel, Workspace
from tests.fakes.discord import limits
from tests.fakes.discord.harness import running, settings_for
from tests.fakes.discord.server import FakeDiscord

START = datetime(2026, 3, 9, 6, tzinfo=UTC)
MEMBERS = 1 << 1
MESSAGE_CONTENT = 1 << 15
DIRECT_MESSAGES = 1 << 12


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    try:
        yield server
    finally:
        await server.stop()


def test_discord_py_connection_points_are_where_syncup_sets_them() -> None:
    """syncup points discord.py at ``[discord] api_base_url`` through ``Route.BASE`` and at the
    gateway through ``DiscordWebSocket.DEFAULT_GATEWAY``; if an upgrade moves either, this
    fails instead of the bot quietly talking to discord.com."""
    version = tuple(int(p) for p in discord.__version__.split(".")[:2])
    assert (2, 4) <= version < (2, 8), discord.__version__
    assert isinstance(discord.http.Route.BASE, str)
    assert discord.http.Route("GET", "/users/@me").url == discord.http.Route.BASE + "/users/@me"
    assert isinstance(DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    assert "gateway" in inspect.signature(DiscordWebSocket.from_client).parameters
    assert "gateway = gateway or cls.DEFAULT_GATEWAY" in inspect.getsource(
        DiscordWebSocket.from_client
    )
    launch = inspect.getsource(discord.AutoShardedClient.launch_shards)
    assert "DiscordWebSocket.DEFAULT_GATEWAY" in launch
    assert "get_bot_gateway" in inspect.getsource(discord.http.HTTPClient.get_bot_gateway)
    assert "def setup_hook" in inspect.getsource(discord.Client)


async def test_connects_with_no_privileged_intent_by_default(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    fake.add_guild("Acme", ["team"], [alice])
    async with running(fake, db_url, DemoClock(START)):
        pass
    intents = fake.identifies[0]["intents"]
    assert not intents & MEMBERS and not intents & MESSAGE_CONTENT
    assert intents & DIRECT_MESSAGES
    gateway_calls = fake.calls_to("GET", "/gateway/bot")
    assert gateway_calls, "the gateway URL is asked from the configured API"


async def test_shards_split_the_gateway_and_dms_arrive_on_shard_0(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guilds = [
        fake.add_guild(f"G{i}", ["team"], [alice], guild_id=str(((5000 + i) << 22) + 3))
        for i in range(4)
    ]
    async with running(
        fake, db_url, DemoClock(START), shard_count=2, shard_ids=[0, 1], members_intent=True
    ) as bot:
        shards = sorted(tuple(i["shard"]) for i in fake.identifies)
        assert shards == [(0, 2), (1, 2)]
        assert bot.adapter.guilds_synced == {g.id for g in guilds}
        on_shard_1 = next(g for g in guilds if fake.shard_of(g.id) == 1)
        asked = await fake.slash("syncup", "me", user_id=alice, guild=on_shard_1)
        assert (await fake.answered(asked))["type"] == 4
        await fake.send_dm(alice, "hello")  # MESSAGE_CREATE on shard 0
        await bot.settle()
        replies = fake.dm_messages(alice)
        assert any("commands" in m["content"] for m in replies if m["author"]["bot"]), replies


async def test_a_slow_core_is_deferred_within_the_deadline(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    async with running(fake, db_url, DemoClock(START), ack_seconds=0.05) as bot:
        handle = bot.app.core.handle

        async def slow(event: Any) -> Any:
            await asyncio.sleep(0.3)
            return await handle(event)

        bot.app.core.handle = slow  # type: ignore[method-assign]
        asked = await fake.slash("syncup", "me", user_id=alice, guild=guild)
        assert (await fake.answered(asked)) == {"type": 5, "data": {"flags": 64}}
        shown = await fake.settled_reply(asked)
        assert "What syncup knows about you" in shown["data"]["content"]

        # A form that comes after a defer cannot be a modal: a button opens it.
        setup = await fake.slash("standup", "setup", user_id=alice, guild=guild)
        await fake.settled_reply(setup)
        message = fake.reply_message(setup)
        [button] = fake.custom_ids(message)
        opened = await fake.click(message, button, user_id=alice)
        modal = await fake.answered(opened)
        assert modal["type"] == 9 and modal["data"]["title"] == "Standup (1/3)"


async def test_a_dm_from_someone_syncup_does_not_know(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    stranger = fake.add_user("stranger")
    fake.add_guild("Acme", ["team"], [alice])
    async with running(fake, db_url, DemoClock(START)) as bot:
        await fake.send_dm(stranger, "hi @everyone")
        await bot.settle()
    [reply] = [m for m in fake.dm_messages(stranger) if m["author"]["bot"]]
    assert "use a syncup command in your server first" in reply["content"]
    assert reply["allowed_mentions"]["parse"] == []


async def test_login_failures_are_clear(
    fake: FakeDiscord, database: Database, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(fake, db_url)
    settings.discord.token = type(settings.discord.token)("not-the-token")  # type: ignore[misc]
    adapter = DiscordAdapter(settings.discord, clock=DemoClock(START))
    assert await asyncio.wait_for(App(settings, adapter).run(), 20) == 1
    assert "Discord refused the bot token" in capsys.readouterr().err

    settings = settings_for(fake, db_url, api_base_url="http://127.0.0.1:9/api/v10")
    adapter = DiscordAdapter(settings.discord, clock=DemoClock(START))
    assert await asyncio.wait_for(App(settings, adapter).run(), 20) == 1
    assert "cannot reach Discord at http://127.0.0.1:9/api/v10" in capsys.readouterr().err


def test_configuration_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="SYNCUP_DISCORD_TOKEN"):
        DiscordAdapter(DiscordSection())
    with pytest.raises(ConfigError, match="shard_ids needs shard_count"):
        DiscordAdapter(DiscordSection(token="t", shard_ids=[1]))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="below shard_count"):
        DiscordAdapter(DiscordSection(token="t", shard_count=2, shard_ids=[2]))  # type: ignore[arg-type]


async def test_everyone_in_a_channel_needs_the_members_intent(fake: FakeDiscord) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    rest = DiscordRest(fake.api_base, fake.token)
    try:
        with pytest.raises(DirectoryUnavailable, match="Server Members intent"):
            await DiscordPort(rest).channel_members(guild.id, fake.channel_id(guild, "team"))
        found = await DiscordPort(rest).member_info(guild.id, name="@alice")
        assert found is not None and found.user_id == alice and found.timezone is None
        channel = await DiscordPort(rest).channel_info(guild.id, name="#team")
        assert channel is not None and channel.channel_id == fake.channel_id(guild, "team")
    finally:
        await rest.close()


def test_commands_are_generated_from_the_specs_within_discords_limits(db_url: str) -> None:
    settings = settings_for(FakeDiscord(), db_url)
    app = App(settings, DiscordAdapter(settings.discord))
    payload = commands_payload(app.core.specs.values())
    asyncio.run(app.db.dispose())
    by_name = {c["name"]: c for c in payload}
    assert {"standup", "syncup"} <= set(by_name)
    for command in payload:
        assert not limits.check_command(command).errors, command["name"]
    timezone = next(s for s in by_name["syncup"]["options"] if s["name"] == "timezone")
    assert timezone["options"][0] == {
        "type": 3,
        "name": "zone",
        "description": "an IANA name such as Europe/Paris",
        "required": True,
        "autocomplete": True,
    }
    history = next(s for s in by_name["standup"]["options"] if s["name"] == "history")
    assert [o["type"] for o in history["options"]] == [6, 4]  # a user, an integer
    role = next(s for s in by_name["syncup"]["options"] if s["name"] == "role")
    assert [c["value"] for c in role["options"][1]["choices"]] == ["admin", "team_lead", "member"]


def test_optional_options_come_after_required_ones() -> None:
    spec = CommandSpec(
        "x",
        "X",
        (
            SubcommandSpec(
                "y",
                "Y",
                (
                    OptionSpec("maybe", OptionType.STRING, "m", required=False),
                    OptionSpec("must", OptionType.CHANNEL, "c"),
                ),
            ),
        ),
    )
    [command] = commands_payload([spec])
    assert [o["name"] for o in command["options"][0]["options"]] == ["must", "maybe"]
    assert not limits.check_command(command).errors


def test_timezone_autocomplete() -> None:
    assert 1 <= len(timezone_choices("")) <= 25
    assert timezone_choices("Paris")[0]["value"] == "Europe/Paris"
    assert {"name": "America/New_York", "value": "America/New_York"} in timezone_choices("new")


async def test_a_resumed_session_replaying_an_interaction_answers_it_once(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    async with running(fake, db_url, DemoClock(START)) as bot:
        asked = await fake.slash("syncup", "me", user_id=alice, guild=guild, interaction_id="555")
        await fake.answered(asked)
        await fake.reconnect()  # op 7: discord.py reconnects and RESUMEs the session
        assert fake.resumes and fake.resumes[-1]["token"] == fake.token
        await fake.slash("syncup", "me", user_id=alice, guild=guild, interaction_id="555")
        await bot.settle()
    assert len(fake.calls_to("POST", "/interactions/555/")) == 1
    assert fake.heartbeats >= 1


async def test_select_menus_reach_the_core_with_their_values(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    team = fake.channel_id(guild, "team")
    seen: list[ActionInvocation] = []

    async def picked(ctx: Any, event: ActionInvocation) -> Any:
        seen.append(event)
        return reply(f"Zone {event.value} for {ctx.workspace.external_id}")

    async with running(fake, db_url, DemoClock(START)) as bot:
        bot.app.core.add_action("tz-pick", picked)
        zones = tuple(Choice(z, z) for z in ("Europe/Paris", "Asia/Tokyo"))
        prompt = message("Your zone?", Actions((Select("tz-pick:7", zones, "Pick a zone"),)))
        port = bot.adapter.discord_port
        for method, target in (
            (Method.POST, Target(channel_id=team)),
            (Method.DM, Target(user_id=alice)),
        ):
            await port.deliver(Delivery(1, guild.id, method, target, prompt, f"k{method}", 1))
        in_channel = fake.created_messages(team)[0]
        in_dm = fake.dm_messages(alice)[0]
        assert fake.custom_ids(in_dm) == [f"g{guild.id}/tz-pick:7"]
        for shown, zone in ((in_channel, "Asia/Tokyo"), (in_dm, "Europe/Paris")):
            [custom_id] = fake.custom_ids(shown)
            chose = await fake.click(shown, custom_id, user_id=alice, values=[zone])
            answer = await fake.answered(chose)
            assert answer["data"]["content"] == f"Zone {zone} for {guild.id}"
    assert [(e.action_id, e.values) for e in seen] == [
        ("tz-pick:7", ("Asia/Tokyo",)),
        ("tz-pick:7", ("Europe/Paris",)),
    ]


async def test_removing_the_bot_marks_the_guild_for_deletion_until_it_is_back(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])

    async def uninstalled_at() -> datetime | None:
        async with database.transaction() as session:
            found = await session.scalar(
                select(Workspace.uninstalled_at).where(Workspace.external_id == guild.id)
            )
            return found

    async with running(fake, db_url, DemoClock(START)) as bot:
        assert await uninstalled_at() is None
        await fake.remove_guild(guild)
        await fake.wait_for(lambda: guild.id not in bot.adapter.guilds_synced, what="removal")
        await bot.settle()
        assert await uninstalled_at() is not None
        await fake.add_back(guild)
        await fake.wait_for(lambda: guild.id in bot.adapter.guilds_synced, what="re-adding")
        assert await uninstalled_at() is None


async def test_channels_are_learned_with_whether_syncup_may_post(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team", "quiet"], [alice])
    guild.denied[fake.channel_id(guild, "quiet")] = 0x800  # no Send Messages for @everyone
    async with running(fake, db_url, DemoClock(START)) as bot:
        port = bot.adapter.discord_port
        team = await port.channel_info(guild.id, name="#team")
        assert team is not None and team.can_post
        quiet = await port.channel_info(guild.id, name="quiet")
        assert quiet is not None and not quiet.can_post
        assert "lacks Send Messages in #quiet" in quiet.reason
        created = await fake.add_channel(guild, "launches")

        async def known() -> bool:
            async with database.transaction() as session:
                found = await session.scalar(
                    select(Channel.name).where(Channel.external_id == created)
                )
                return found == "launches"

        for _ in range(500):
            if await known():
                break
            await asyncio.sleep(0.01)
        assert await known()


async def test_two_processes_split_the_shards_and_only_shard_0_gets_dms(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    alice = fake.add_user("alice")
    # Snowflakes whose (id >> 22) % 2 puts G0, G2 on shard 0 and G1, G3 on shard 1.
    guilds = [
        fake.add_guild(f"G{i}", ["team"], [alice], guild_id=str(((4000 + i) << 22) + 7))
        for i in range(4)
    ]
    fake.shard_count = 2
    on = {s: [g for g in guilds if fake.shard_of(g.id) == s] for s in (0, 1)}
    assert [len(on[0]), len(on[1])] == [2, 2]
    clock = DemoClock(START)
    common = {"shard_count": 2, "members_intent": True}
    async with (
        running(fake, db_url, clock, shard_ids=[0], guilds=len(on[0]), **common) as first,
        running(fake, db_url, clock, shard_ids=[1], guilds=len(on[1]), **common) as second,
    ):
        assert first.adapter.guilds_synced == {g.id for g in on[0]}
        assert second.adapter.guilds_synced == {g.id for g in on[1]}
        asked = await fake.slash("syncup", "me", user_id=alice, guild=on[1][0])
        assert (await fake.answered(asked))["type"] == 4
        await fake.send_dm(alice, "hello")
        await fake.wait_for(lambda: first.adapter.handled >= 1, what="shard 0 to get the DM")
        assert second.adapter.handled == 1  # the interaction only
        assert first.adapter.handled == 1  # the DM only
