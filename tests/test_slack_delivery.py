"""Outbound Slack: the port against the fake Slack, alone and under the real delivery worker.

A 429 storm slows delivery and loses nothing; Slack's errors map onto the core's kinds; a first
DM goes to the user id and the ``D...`` channel of its answer is kept (tests/test_slack_dms.py
has the rest); oversize messages are split, never cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from adapters.slack.port import SlackPort, StaticTokens
from bot import directory
from bot.chat import Header, UserMention, message, text
from bot.clock import SystemClock
from bot.config import DeliverySection, RateSetting
from bot.delivery.outbox import enqueue
from bot.delivery.worker import DeliveryWorker
from bot.events import Actor
from bot.port import (
    Delivery,
    DeliveryError,
    Method,
    PermanentDeliveryError,
    RateLimited,
    RecipientUnreachable,
    Target,
)
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.fakes.slack import blockkit
from tests.fakes.slack.harness import text_of
from tests.fakes.slack.server import FakeSlack, start_fake_slack

USERS = [f"U{n:03d}" for n in range(30)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await start_fake_slack()
    for user in USERS:
        slack.add_user(user, f"member{user}")
    slack.add_user("UGONE", "gone", deleted=True)
    slack.add_user("UROBOT", "robot", is_bot=True)
    slack.add_channel("CTEAM", "team", USERS[:3])
    slack.add_channel("COUT", "outside", [], bot_is_member=False)
    slack.add_channel("COLD", "old", [], is_archived=True)
    try:
        yield slack
    finally:
        await slack.stop()
    assert slack.violations == []


@pytest.fixture
def port(fake: FakeSlack) -> SlackPort:
    return SlackPort(StaticTokens("xoxb-test"), api_base_url=fake.api_url)


def delivery(method: Method, target: Target, body: str = "hi", n: int = 1) -> Delivery:
    return Delivery(n, "T1", method, target, message(body), f"k{n}", 1)


async def test_a_dm_goes_to_the_user_id_once_and_reports_its_d_id(
    fake: FakeSlack, port: SlackPort
) -> None:
    first = await port.deliver(delivery(Method.DM, Target(user_id="U001")))
    second = await port.deliver(delivery(Method.DM, Target(user_id="U001"), n=2))
    assert first.channel_id == "DU001" and first.message_id
    assert second.channel_id == "DU001"
    assert fake.calls_of("conversations.open") == []
    posted_to = [c.args["channel"] for c in fake.calls_of("chat.postMessage")]
    assert posted_to == ["U001", "DU001"]  # the D... id from the first answer, kept
    updated = await port.deliver(
        delivery(Method.UPDATE, Target(channel_id="DU001", message_id=first.message_id), "new")
    )
    assert updated.message_id == first.message_id
    assert fake.dms_to("U001")[0].text == "new"


async def test_posts_thread_and_ephemeral(fake: FakeSlack, port: SlackPort) -> None:
    parent = await port.deliver(delivery(Method.POST, Target(channel_id="CTEAM"), "report"))
    reply = await port.deliver(
        delivery(Method.POST, Target(channel_id="CTEAM", thread_of=parent.message_id), "one", 2)
    )
    assert fake.posts("CTEAM")[1].thread_ts == parent.message_id
    assert reply.message_id != parent.message_id
    await port.deliver(delivery(Method.EPHEMERAL, Target(channel_id="CTEAM", user_id="U001")))
    assert fake.ephemerals[-1]["user"] == "U001"


@pytest.mark.parametrize(
    ("method", "target", "kind", "code"),
    [
        (Method.POST, Target(channel_id="CNOPE"), PermanentDeliveryError, "channel_not_found"),
        (Method.POST, Target(channel_id="COUT"), PermanentDeliveryError, "not_in_channel"),
        (Method.POST, Target(channel_id="COLD"), PermanentDeliveryError, "is_archived"),
        (Method.DM, Target(user_id="UNOBODY"), RecipientUnreachable, "user_not_found"),
        (Method.DM, Target(user_id="UROBOT"), RecipientUnreachable, "cannot_dm_bot"),
        (Method.DM, Target(user_id="UGONE"), RecipientUnreachable, "user_disabled"),
        (
            Method.UPDATE,
            Target(channel_id="CTEAM", message_id="1.2"),
            PermanentDeliveryError,
            "message_not_found",
        ),
    ],
)
async def test_slack_errors_map_onto_the_core_kinds(
    port: SlackPort, method: Method, target: Target, kind: type[Exception], code: str
) -> None:
    with pytest.raises(kind) as info:
        await port.deliver(delivery(method, target))
    assert code in str(info.value)


async def test_a_429_is_rate_limited_with_its_retry_after(fake: FakeSlack, port: SlackPort) -> None:
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=7)
    with pytest.raises(RateLimited) as info:
        await port.deliver(delivery(Method.POST, Target(channel_id="CTEAM")))
    assert info.value.retry_after == 7
    fake.fail("chat.postMessage", "internal_error", status=500)
    with pytest.raises(DeliveryError) as error:
        await port.deliver(delivery(Method.POST, Target(channel_id="CTEAM")))
    assert not error.value.permanent


async def test_oversize_messages_are_split_not_cut(fake: FakeSlack, port: SlackPort) -> None:
    long = "word " * 2000  # 10,000 characters: four sections
    blocks = [Header(f"line {n}") for n in range(80)]
    await port.deliver(delivery(Method.POST, Target(channel_id="CTEAM"), long))
    msg = message(*blocks, summary="many")
    await port.deliver(Delivery(2, "T1", Method.POST, Target(channel_id="CTEAM"), msg, "k2", 1))
    posts = fake.posts("CTEAM")
    assert "".join(text_of(p.blocks).replace("\n", "") for p in posts[:1]).count("word") == 2000
    assert len(posts) == 3  # 80 blocks: 50 + 30
    shown = "\n".join(text_of(p.blocks) for p in posts[1:])
    assert all(f"line {n}" in shown for n in range(80))


async def test_only_a_meant_mention_pings(fake: FakeSlack, port: SlackPort) -> None:
    msg = message(text("Hi ", UserMention("U001"), ", <!channel> <!here> @everyone <@U002>"))
    await port.deliver(Delivery(1, "T1", Method.POST, Target(channel_id="CTEAM"), msg, "k", 1))
    posted = fake.posts("CTEAM")[0]
    assert blockkit.pings({"text": posted.text, "blocks": posted.blocks}) == ["U001"]


async def test_the_directory_looks_people_and_channels_up(port: SlackPort) -> None:
    bob = await port.member_info("T1", name="memberU002")
    assert bob is not None and bob.user_id == "U002"
    assert await port.member_info("T1", user_id="UNOBODY") is None
    team = await port.channel_info("T1", name="#team")
    assert team is not None and team.can_post
    outside = await port.channel_info("T1", channel_id="COUT")
    assert outside is not None and not outside.can_post and "/invite" in outside.reason
    assert await port.channel_info("T1", channel_id="CNOPE") is None
    members = await port.channel_members("T1", "CTEAM")
    assert [m.user_id for m in members] == USERS[:3]  # the bot itself left out


# -- under the real delivery worker -----------------------------------------------------------


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        return len(list(rows))


async def test_a_429_storm_slows_delivery_and_loses_nothing(
    fake: FakeSlack, port: SlackPort, database: Database
) -> None:
    # 5 a second, no burst: a worker told to send 100 a second meets the fake's own limit
    # however slow the machine (two sends within 200 ms), after the injected storm.
    fake.method_rates["chat.postMessage"] = (5.0, 1)
    fake.fail("chat.postMessage", "ratelimited", status=429, times=4, retry_after=0.2)
    now = datetime.now(UTC)
    async with database.transaction() as session:
        workspace = await directory.ensure_workspace(session, "slack", "T1", "Acme", now)
        for n, user in enumerate(USERS):
            member = await directory.ensure_member(session, workspace, Actor(user, user), now)
            await enqueue(
                session,
                workspace_id=workspace.id,
                method=Method.DM,
                target=Target(user_id=member.platform_user_id),
                message=message(f"prompt {n}"),
                key=f"storm:{n}",
                now=now,
            )
    rates = {"dm": RateSetting(rate=100.0, burst=30)}  # faster than Slack allows: it pushes back
    settings = DeliverySection(poll_interval_seconds=0.05, rates=rates)
    worker = DeliveryWorker(database, port, settings, clock=SystemClock(), instance="t")
    await worker.start()
    try:
        for _ in range(2400):
            if not await pending(database):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert fake.rate_limited > 4  # the storm, then the fake's own limit
    for n, user in enumerate(USERS):
        got = [m.text for m in fake.dms_to(user)]
        assert got == [f"prompt {n}"], user
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert sum(r.rate_limited for r in rows) >= 4  # each 429 was pacing, not a failure
    assert all(r.attempts <= 2 for r in rows)
    assert all(r.platform_channel_id == f"D{r.target['user_id']}" for r in rows)


async def test_a_post_whose_outcome_was_lost_is_not_posted_twice(
    fake: FakeSlack, port: SlackPort, database: Database
) -> None:
    fake.scopes.add("channels:history")
    fake.fail("chat.postMessage", "internal_error", status=500, after=True)  # posted, then lost
    now = datetime.now(UTC)
    async with database.transaction() as session:
        workspace = await directory.ensure_workspace(session, "slack", "T1", "Acme", now)
        await enqueue(
            session,
            workspace_id=workspace.id,
            method=Method.POST,
            target=Target(channel_id="CTEAM"),
            message=message("the report"),
            key="report:1",
            now=now,
        )
        await enqueue(
            session,
            workspace_id=workspace.id,
            method=Method.DM,
            target=Target(user_id="U001"),
            message=message("your prompt"),
            key="prompt:1",
            now=now,
        )
    fake.fail("chat.postMessage", "internal_error", status=500, after=True)  # the DM, too
    settings = DeliverySection(poll_interval_seconds=0.05, backoff_base_seconds=0.05)
    worker = DeliveryWorker(database, port, settings, clock=SystemClock(), instance="t")
    await worker.start()
    try:
        for _ in range(400):
            if not await pending(database):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert [m.text for m in fake.posts("CTEAM")] == ["the report"]
    assert [m.text for m in fake.dms_to("U001")] == ["your prompt"]
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert rows[0].platform_message_id == fake.posts("CTEAM")[0].ts
    assert all(r.attempts == 2 for r in rows)


async def test_without_history_access_a_lost_outcome_is_posted_again(
    fake: FakeSlack, port: SlackPort
) -> None:
    first = Delivery(1, "T1", Method.POST, Target(channel_id="CTEAM"), message("x"), "k", 2, True)
    receipt = await port.deliver(first)  # nothing to find: posts
    again = await port.deliver(first)  # no channels:history scope: cannot check, posts again
    assert receipt.message_id != again.message_id
    assert len(fake.posts("CTEAM")) == 2
