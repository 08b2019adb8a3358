"""Slack DMs without a conversations.open per member (issue 18, point 2).

A first DM goes to the member's user id; Slack posts it in the bot's DM with the member and
answers with the ``D...`` id, which the port keeps and the worker stores on the member, so updates
of the DM and later DMs (after a restart too) use it. conversations.open (Tier 3, about 50 a
minute) is called only to look for a post whose answer was lost, and in a workspace that refuses
user ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from adapters.slack.port import SlackPort, StaticTokens
from bot.chat import Header, message
from bot.config import RateSetting
from bot.delivery.outbox import enqueue
from bot.port import Delivery, Method, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.dm_outbox import deliver_until_done, queue_dms, stored_dm_channels
from tests.fakes.slack.server import TIER_3, FakeSlack, start_fake_slack

MEMBERS = [f"U{n:03d}" for n in range(60)]
# Fast enough that the test is short; the fake does not limit chat.postMessage here.
FAST = {"dm": RateSetting(rate=60.0, burst=60), "update": RateSetting(rate=60.0, burst=60)}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await start_fake_slack()
    for user in MEMBERS:
        slack.add_user(user, f"member{user}")
    slack.method_rates["conversations.open"] = TIER_3
    slack.channel_rate = (1.0, 1)  # one message a second per channel (a user id counts as its DM)
    try:
        yield slack
    finally:
        await slack.stop()
    assert slack.violations == []


@pytest.fixture
def port(fake: FakeSlack) -> SlackPort:
    return SlackPort(StaticTokens("xoxb-test"), api_base_url=fake.api_url)


async def test_first_dms_to_60_members_open_no_conversation_and_updates_use_the_d_id(
    fake: FakeSlack, port: SlackPort, database: Database
) -> None:
    workspace, prompts = await queue_dms(database, "slack", "T1", MEMBERS)
    async with database.transaction() as session:
        for n, (user, prompt) in enumerate(zip(MEMBERS, prompts, strict=True)):
            await enqueue(
                session,
                workspace_id=workspace,
                method=Method.UPDATE,
                target=Target(user_id=user),
                message=message(f"prompt {n}: answered"),
                key=f"prompt:{n}:answered",
                now=datetime.now(UTC),
                depends_on=prompt,
            )
    assert set((await stored_dm_channels(database)).values()) == {None}  # never DMed before
    await deliver_until_done(database, port, rates=FAST)

    assert fake.calls_of("conversations.open") == []
    assert fake.rate_limited == 0
    for n, user in enumerate(MEMBERS):
        dms = fake.dms_to(user)
        assert [(m.text, m.edits) for m in dms] == [(f"prompt {n}: answered", 1)], user
    updated_in = {c.args["channel"] for c in fake.calls_of("chat.update")}
    assert updated_in == {f"D{user}" for user in MEMBERS}
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage)))
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert all(r.platform_channel_id == f"D{r.target['user_id']}" for r in rows)
    stored = await stored_dm_channels(database)
    assert stored == {user: f"D{user}" for user in MEMBERS}

    # After a restart (a new port knows nothing), the next DMs go to the stored D... ids.
    fresh = SlackPort(StaticTokens("xoxb-test"), api_base_url=fake.api_url)
    posts_before = len(fake.calls_of("chat.postMessage"))
    await queue_dms(database, "slack", "T1", MEMBERS[:5], key="again", channels=stored)
    await deliver_until_done(database, fresh, rates=FAST)
    # (The fresh port paces from scratch: a send it retries after a 429 is not a second post.)
    again = [
        c.args["channel"]
        for c in fake.calls_of("chat.postMessage")[posts_before:]
        if c.status == 200 and c.response.get("ok")
    ]
    assert sorted(again) == [f"D{user}" for user in MEMBERS[:5]]
    assert fake.calls_of("conversations.open") == []


async def test_a_dm_whose_answer_was_lost_is_found_in_the_opened_conversation(
    fake: FakeSlack, port: SlackPort, database: Database
) -> None:
    await queue_dms(database, "slack", "T1", MEMBERS[:3])
    # The first DM to reach Slack is posted, then its answer (with the D... id) is lost. DMs to
    # different members may be in flight at once: which one arrives first is not fixed.
    fake.fail("chat.postMessage", "internal_error", status=500, after=True)
    await deliver_until_done(database, port, rates=FAST, backoff_base_seconds=0.05)

    for n, user in enumerate(MEMBERS[:3]):
        assert [m.text for m in fake.dms_to(user)] == [f"prompt {n}"], user
    lost = fake.calls_of("chat.postMessage")[0].args["channel"]
    assert lost in MEMBERS[:3]
    # Only the retry of the lost one opened its conversation, to look for the earlier post.
    opened = [c.args["users"] for c in fake.calls_of("conversations.open")]
    assert opened == [lost]
    assert len(fake.calls_of("conversations.history")) == 1
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 3
    assert [r.attempts for r in rows] == [2 if user == lost else 1 for user in MEMBERS[:3]]
    row = rows[MEMBERS.index(lost)]
    assert row.platform_message_id == fake.dms_to(lost)[0].ts
    assert row.platform_channel_id == f"D{lost}"
    assert (await stored_dm_channels(database))[lost] == f"D{lost}"


def dm(user: str, n: int, body: str = "hi", *, maybe_sent: bool = False) -> Delivery:
    return Delivery(n, "T1", Method.DM, Target(user_id=user), message(body), f"k{n}", 1, maybe_sent)


async def test_a_lost_answer_with_nothing_posted_is_posted_in_the_d_channel(
    fake: FakeSlack, port: SlackPort
) -> None:
    receipt = await port.deliver(dm("U005", 1, maybe_sent=True))  # the request never arrived
    assert receipt.channel_id == "DU005"
    assert [m.text for m in fake.dms_to("U005")] == ["hi"]
    assert [c.args["channel"] for c in fake.calls_of("chat.postMessage")] == ["DU005"]


async def test_a_dm_in_several_parts_goes_on_in_the_d_channel(
    fake: FakeSlack, port: SlackPort
) -> None:
    fake.channel_rate = None  # two messages in one channel at once
    msg = message(*[Header(f"line {n}") for n in range(80)], summary="many")  # 50 + 30 blocks
    receipt = await port.deliver(Delivery(1, "T1", Method.DM, Target(user_id="U001"), msg, "k1", 1))
    assert receipt.channel_id == "DU001"
    assert [c.args["channel"] for c in fake.calls_of("chat.postMessage")] == ["U001", "DU001"]
    parts = fake.dms_to("U001")
    assert receipt.message_id == parts[0].ts and len(parts) == 2
    assert [p.metadata["event_payload"]["part"] for p in parts] == [0, 1]


async def test_a_workspace_that_refuses_user_ids_opens_conversations_instead(
    fake: FakeSlack, port: SlackPort
) -> None:
    fake.fail("chat.postMessage", "channel_not_found")  # the reading of the docs that fails
    first = await port.deliver(dm("U001", 1))
    second = await port.deliver(dm("U002", 2))
    assert (first.channel_id, second.channel_id) == ("DU001", "DU002")
    assert [c.args["users"] for c in fake.calls_of("conversations.open")] == ["U001", "U002"]
    assert [c.args["channel"] for c in fake.calls_of("chat.postMessage")] == [
        "U001",
        "DU001",
        "DU002",
    ]
    assert [m.text for m in fake.dms_to("U001") + fake.dms_to("U002")] == ["hi", "hi"]
