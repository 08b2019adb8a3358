"""Discord DM channels (issue 18, point 2): opened once per member, kept on the member across a
restart, and opened behind a bucket of their own, so a 429 on opening (its own route bucket at
Discord) neither pauses nor costs the DM messages anything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from adapters.discord.port import DM_OPEN_MAX_WAIT, DiscordPort
from adapters.discord.rest import DiscordRest
from bot.chat import message
from bot.config import RateSetting
from bot.port import Delivery, Method, RateLimited, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.dm_outbox import deliver_until_done, queue_dms, stored_dm_channels
from tests.fakes.discord.server import FakeDiscord

OPEN = "/users/@me/channels"
FAST = {"dm": RateSetting(rate=20.0, burst=20)}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def rest(fake: FakeDiscord) -> AsyncIterator[DiscordRest]:
    client = DiscordRest(fake.api_base, fake.token)
    try:
        yield client
    finally:
        await client.close()


def dm(user: str, n: int) -> Delivery:
    return Delivery(n, "g", Method.DM, Target(user_id=user), message(f"dm {n}"), f"k{n}", 1)


def opened_for(fake: FakeDiscord) -> list[str]:
    """The members whose DM channel was opened (answered 200), in order."""
    return [c.json["recipient_id"] for c in fake.calls_to("POST", OPEN) if c.status == 200]


async def test_opening_is_paced_apart_and_its_429s_cost_the_messages_nothing(
    fake: FakeDiscord, rest: DiscordRest
) -> None:
    users = [fake.add_user(f"member{n}") for n in range(8)]
    fake.dm_open_rate = (2, 1.0)  # slower than the port's opening bucket: it pushes back
    fake.rate_limit("POST", OPEN, 0.5)  # and the first opening meets a 429 whatever the timing
    port = DiscordPort(rest)
    for n, user in enumerate(users):
        receipt = await port.deliver(dm(user, n))
        assert receipt.channel_id == fake.dm_channels[user]
    limited = [c for c in fake.calls_to("POST", OPEN) if c.status == 429]
    assert limited, "the fake's opening limit was never hit"
    assert limited[0].response["retry_after"] > 0
    assert opened_for(fake) == users  # each opened once, retried past its 429
    posts = fake.calls_to("POST", "/messages")
    assert [c.status for c in posts] == [200] * len(users)
    for n, user in enumerate(users):
        assert [m["content"] for m in fake.dm_messages(user)] == [f"dm {n}"]
    # Remembered: a second DM to each opens nothing.
    calls_before = len(fake.calls_to("POST", OPEN))
    for n, user in enumerate(users):
        await port.deliver(dm(user, 100 + n))
    assert len(fake.calls_to("POST", OPEN)) == calls_before


async def test_a_long_retry_after_on_opening_gives_the_row_back(
    fake: FakeDiscord, rest: DiscordRest
) -> None:
    user = fake.add_user("member")
    fake.rate_limit("POST", OPEN, DM_OPEN_MAX_WAIT + 25)
    with pytest.raises(RateLimited) as info:
        await DiscordPort(rest).deliver(dm(user, 1))
    assert info.value.retry_after > DM_OPEN_MAX_WAIT
    assert fake.dm_messages(user) == []


async def test_dm_channels_are_kept_on_the_member_across_a_restart(
    fake: FakeDiscord, rest: DiscordRest, database: Database
) -> None:
    users = [fake.add_user(f"member{n}") for n in range(12)]
    guild = fake.add_guild("Acme", ["team"], users)
    fake.rate_limit("POST", OPEN, 0.5)  # the first opening meets a 429
    await queue_dms(database, "discord", guild.id, users)
    await deliver_until_done(database, DiscordPort(rest), rates=FAST)
    assert [c for c in fake.calls_to("POST", OPEN) if c.status == 429], "never limited"
    assert sorted(opened_for(fake)) == sorted(users)
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert sum(r.rate_limited for r in rows) == 0  # the DM bucket was never paused
    stored = await stored_dm_channels(database)
    assert stored == {user: fake.dm_channels[user] for user in users}

    # A restart: a new port remembers nothing, the members' stored channels are used.
    opens_before = len(fake.calls_to("POST", OPEN))
    await queue_dms(database, "discord", guild.id, users, key="again", channels=stored)
    await deliver_until_done(database, DiscordPort(rest), rates=FAST)
    assert len(fake.calls_to("POST", OPEN)) == opens_before
    for n, user in enumerate(users):
        assert [m["content"] for m in fake.dm_messages(user)] == [f"prompt {n}", f"again {n}"]
