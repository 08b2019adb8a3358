"""Delivery to Discord: the outbox worker through :class:`DiscordPort` against the fake Discord.

429 with Retry-After paces the bucket and loses nothing; a resend after a lost outcome carries
the same nonce and creates nothing new; Discord's errors map to the port's exceptions; ephemeral
rows fall back to the member's DM; the fake refuses payloads over Discord's limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from adapters.console.clock import DemoClock
from adapters.discord.port import DiscordPort, nonce_for
from adapters.discord.rest import DiscordHTTPError, DiscordRest
from bot.chat import Actions, Button, message, text
from bot.delivery.outbox import enqueue
from bot.port import (
    Delivery,
    Method,
    PermanentDeliveryError,
    RateLimited,
    RecipientUnreachable,
    Target,
)
from storage.db import Database
from storage.models import OutboxMessage, Workspace
from tests.fakes.discord.harness import running
from tests.fakes.discord.server import FakeDiscord, FakeGuild

START = datetime(2026, 3, 9, 6, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    try:
        yield server
    finally:
        await server.stop()


def team_guild(fake: FakeDiscord) -> tuple[FakeGuild, str, str]:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    return guild, fake.channel_id(guild, "team"), alice


async def test_a_429_slows_delivery_and_loses_nothing(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    guild, team, _ = team_guild(fake)
    fake.message_rate = (2, 0.5)  # two messages per half second in a channel
    async with running(fake, db_url, DemoClock(START)) as bot:
        async with database.transaction() as session:
            workspace = await session.scalar(
                select(Workspace).where(Workspace.external_id == guild.id)
            )
            assert workspace is not None
            for n in range(6):
                await enqueue(
                    session,
                    workspace_id=workspace.id,
                    method=Method.POST,
                    target=Target(channel_id=team),
                    message=message(f"note {n}"),
                    key=f"note:{n}",
                    now=bot.clock.now(),
                )
        bot.app.worker.wake()
        await fake.wait_for(
            lambda: len(fake.created_messages(team)) >= 6, patience=30, what="six messages"
        )
        await bot.settle()
    limited = [c for c in fake.calls_to("POST", f"/channels/{team}/messages") if c.status == 429]
    assert limited, "the fake's rate limit was never hit"
    assert limited[0].response["retry_after"] > 0
    contents = [m["content"] for m in fake.created_messages(team)]
    assert sorted(contents) == [f"note {n}" for n in range(6)]  # each exactly once
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert all(r.status == "sent" for r in rows)
    assert sum(r.rate_limited for r in rows) >= 1
    assert all(r.platform_message_id for r in rows)


def delivery(
    method: Method, target: Target, key: str = "k1", *, maybe_sent: bool = False, **blocks: str
) -> Delivery:
    msg = message(text(blocks.get("body", "hello")))
    return Delivery(1, "g", method, target, msg, key, 1, maybe_sent)


@pytest.fixture
async def port(fake: FakeDiscord) -> AsyncIterator[DiscordPort]:
    rest = DiscordRest(fake.api_base, fake.token)
    try:
        yield DiscordPort(rest)
    finally:
        await rest.close()


async def test_a_resend_after_a_lost_outcome_creates_nothing_new(
    fake: FakeDiscord, port: DiscordPort
) -> None:
    _, team, _ = team_guild(fake)
    first = await port.deliver(delivery(Method.POST, Target(channel_id=team), "standup:1:report"))
    again = await port.deliver(
        delivery(Method.POST, Target(channel_id=team), "standup:1:report", maybe_sent=True)
    )
    assert again == first
    assert len(fake.created_messages(team)) == 1
    sent = fake.calls_to("POST", f"/channels/{team}/messages")
    assert {c.json["nonce"] for c in sent} == {nonce_for("standup:1:report")}
    assert all(c.json["enforce_nonce"] is True for c in sent)
    assert len(nonce_for("x" * 500)) <= 25


async def test_dms_open_once_and_closed_dms_are_unreachable(
    fake: FakeDiscord, port: DiscordPort
) -> None:
    _, _, alice = team_guild(fake)
    bob = fake.add_user("bob")
    fake.closed_dms.add(bob)
    receipt = await port.deliver(delivery(Method.DM, Target(user_id=alice), "a"))
    await port.deliver(delivery(Method.DM, Target(user_id=alice), "b"))
    assert receipt.channel_id == fake.dm_channels[alice]
    assert len(fake.calls_to("POST", "/users/@me/channels")) == 1
    with pytest.raises(RecipientUnreachable, match="50007"):
        await port.deliver(delivery(Method.DM, Target(user_id=bob), "c"))


async def test_errors_map_to_the_ports_exceptions(fake: FakeDiscord, port: DiscordPort) -> None:
    _, team, alice = team_guild(fake)
    with pytest.raises(PermanentDeliveryError, match="10003"):
        await port.deliver(delivery(Method.POST, Target(channel_id="42"), "x"))
    with pytest.raises(PermanentDeliveryError, match="10008"):
        await port.deliver(delivery(Method.UPDATE, Target(channel_id=team, message_id="42"), "y"))
    fake.message_rate = (1, 60.0)
    await port.deliver(delivery(Method.POST, Target(channel_id=team), "z1"))
    with pytest.raises(RateLimited) as limited:
        await port.deliver(delivery(Method.POST, Target(channel_id=team), "z2"))
    assert limited.value.retry_after > 0
    fake.message_rate = None
    # Ephemeral rows have no channel to go to on Discord: the member's DM, marked private.
    await port.deliver(delivery(Method.EPHEMERAL, Target(channel_id=team, user_id=alice), "e"))
    assert "Only you can see this" in fake.dm_messages(alice)[0]["content"]


async def test_reports_in_threads_and_updates(fake: FakeDiscord, port: DiscordPort) -> None:
    _, team, _ = team_guild(fake)
    parent = await port.deliver(delivery(Method.POST, Target(channel_id=team), "p"))
    reply = await port.deliver(
        delivery(Method.POST, Target(channel_id=team, thread_of=parent.message_id), "r1")
    )
    await port.deliver(
        delivery(Method.POST, Target(channel_id=team, thread_of=parent.message_id), "r2")
    )
    assert reply.channel_id == parent.message_id  # a thread started on a message has its id
    assert len(fake.calls_to("POST", "/threads")) == 1
    await port.deliver(
        delivery(
            Method.UPDATE,
            Target(channel_id=team, message_id=parent.message_id),
            "u",
            body="x" * 3000,
        )
    )
    edited = fake.messages[parent.message_id or ""]
    assert edited["embeds"] and edited["embeds"][0]["description"] == "x" * 3000


async def test_the_fake_refuses_what_discord_refuses(fake: FakeDiscord) -> None:
    _, team, _ = team_guild(fake)
    rest = DiscordRest(fake.api_base, fake.token)
    too_many_buttons = [
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 2, "label": str(i), "custom_id": f"b{i}"} for i in range(6)
            ],
        }
    ]
    bad = [
        {"content": "x" * 2001},
        {"content": "x", "components": too_many_buttons},
        {
            "content": "x",
            "components": [
                {
                    "type": 1,
                    "components": [{"type": 2, "style": 2, "label": "l", "custom_id": "c" * 101}],
                }
            ],
        },
        {
            "content": "x",
            "components": [
                {
                    "type": 1,
                    "components": [{"type": 2, "style": 2, "label": "l", "custom_id": f"r{i}"}],
                }
                for i in range(6)
            ],
        },
        {
            "content": "x",
            "components": [
                {
                    "type": 1,
                    "components": [
                        {
                            "type": 3,
                            "custom_id": "s",
                            "options": [{"label": str(i), "value": str(i)} for i in range(26)],
                        }
                    ],
                }
            ],
        },
        {"content": "", "embeds": [{"description": "d" * 4097}]},
        {"content": "x", "nonce": "n" * 26},
        {"content": ""},
    ]
    try:
        for payload in bad:
            with pytest.raises(DiscordHTTPError) as refused:
                await rest.request("POST", f"/channels/{team}/messages", json_body=payload)
            assert refused.value.status == 400
            assert refused.value.code == 50035
        stranger = DiscordRest(fake.api_base, "wrong")
        with pytest.raises(DiscordHTTPError) as unauthorized:
            await stranger.request("GET", "/users/@me")
        await stranger.close()
        assert unauthorized.value.status == 401
    finally:
        await rest.close()
    assert not fake.created_messages(team)


def test_buttons_render_as_persistent_components() -> None:
    from adapters.discord.render import decode_custom_id, render_message

    msg = message(
        "Pick one",
        Actions((Button("Answer", "standup-answer:12", style="primary"), Button("Skip", "s:1"))),
    )
    payload = render_message(msg, guild_id="99")[0]
    ids = [c["custom_id"] for c in payload["components"][0]["components"]]
    assert ids == ["g99/standup-answer:12", "g99/s:1"]
    assert decode_custom_id(ids[0]).action_id == "standup-answer:12"
    assert decode_custom_id(ids[0]).guild_id == "99"
