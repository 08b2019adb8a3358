"""Charts and multi-selects on Slack, through the real slack_sdk / slack-bolt code against the fake
Slack: a chart's message shows its words and its PNG follows as a file in the same channel or
thread (once, whatever the retries), a multi-select is a ``multi_static_select`` within Block
Kit's limits, and choosing in it reaches the core with ``values``."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from adapters.slack import render
from adapters.slack.manifest import BOT_SCOPES, manifest
from adapters.slack.port import SlackPort, StaticTokens, chart_filename
from bot import directory
from bot.charts import render_png
from bot.chat import (
    Actions,
    Button,
    Chart,
    ChartSeries,
    Choice,
    Message,
    Response,
    Select,
    message,
)
from bot.clock import SystemClock
from bot.commands.spec import CommandSpec, SubcommandSpec
from bot.config import DEFAULT_SLACK_COMMANDS, DeliverySection, SlackSection
from bot.core import Context
from bot.delivery.outbox import enqueue
from bot.delivery.worker import DeliveryWorker
from bot.port import Delivery, DeliveryError, Method, PermanentDeliveryError, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.fakes.chart_samples import RESULTS
from tests.fakes.slack import blockkit, payloads
from tests.fakes.slack.harness import slack_world, team_slack, text_of
from tests.fakes.slack.server import FakeSlack, Posted

START = datetime(2026, 3, 9, 7, tzinfo=UTC)
TREND = Chart(
    "Pace by week",
    ("2 Mar", "9 Mar", "16 Mar"),
    (ChartSeries("Average", (3.1, None, 3.8)),),
    "The average went from 3.1 (2 March) to 3.8 (16 March); no poll on 9 March.",
    style="line",
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:  # fails the test if anything broke Slack's limits
        yield slack


@pytest.fixture
def port(fake: FakeSlack) -> SlackPort:
    return SlackPort(StaticTokens("xoxb-test"), api_base_url=fake.api_url)


def delivery(
    msg: Message, method: Method = Method.POST, *, key: str = "poll:1", **kw: Any
) -> Delivery:
    target = kw.pop("target", Target(channel_id="CTEAM"))
    return Delivery(1, "T1", method, target, msg, key, kw.pop("attempt", 1), **kw)


def messages_in(fake: FakeSlack, channel: str) -> list[Posted]:
    """The bot's messages in a channel, file shares left out."""
    return [p for p in fake.posts(channel) if not p.files]


def context_text(posted: Posted) -> str:
    return text_of([b for b in posted.blocks or [] if b["type"] == "context"])


def assert_png(data: bytes | None, chart: Chart) -> None:
    assert data is not None
    Image.open(io.BytesIO(data)).verify()
    assert data == render_png(chart)


# -- charts through the outbox worker ----------------------------------------------------------


async def pending(database: Database) -> int:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        return len(list(rows))


async def test_a_chart_follows_its_message_as_a_png_in_the_same_channel_or_thread(
    fake: FakeSlack, port: SlackPort, database: Database
) -> None:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        workspace = await directory.ensure_workspace(session, "slack", "T1", "Acme", now)
        results = await enqueue(
            session,
            workspace_id=workspace.id,
            method=Method.POST,
            target=Target(channel_id="CTEAM"),
            message=message("The poll closed.", RESULTS),
            key="poll:1:results",
            now=now,
        )
        await enqueue(
            session,
            workspace_id=workspace.id,
            method=Method.POST,
            target=Target(channel_id="CTEAM"),
            message=message(TREND),
            key="poll:1:trend",
            now=now,
            depends_on=results,  # a reply in the results' thread
        )
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
    parent, reply = messages_in(fake, "CTEAM")
    assert reply.thread_ts == parent.ts
    # The words are in the message itself: nothing is lost if the picture cannot follow.
    assert "pace" in context_text(parent) and RESULTS.alt in context_text(parent)
    assert TREND.alt.split(";")[0] in context_text(reply)
    first, second = fake.shared_files("CTEAM")
    assert (first.thread_ts, second.thread_ts) == (None, parent.ts)
    assert first.filename == chart_filename("poll:1:results", 0)
    assert (first.title, first.alt_txt) == (RESULTS.title, RESULTS.alt)
    assert first.share_ts is not None and first.share_ts > parent.ts
    assert_png(first.data, RESULTS)
    assert_png(second.data, TREND)
    async with database.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [r.status for r in rows] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert [r.platform_message_id for r in rows] == [parent.ts, reply.ts]  # not the file shares


async def test_a_retry_after_a_lost_outcome_uploads_the_chart_once(
    fake: FakeSlack, port: SlackPort
) -> None:
    fake.scopes.add("channels:history")  # the retry can look for what went out
    fake.fail("chat.postMessage", "internal_error", status=500, after=True)  # posted, then lost
    msg = message("The poll closed.", RESULTS, TREND)
    with pytest.raises(DeliveryError):
        await port.deliver(delivery(msg))
    assert len(messages_in(fake, "CTEAM")) == 1 and fake.shared_files() == []
    # The retry finds the message by its outbox key and completes what the first try left.
    again = await port.deliver(delivery(msg, attempt=2, maybe_sent=True))
    assert again.message_id == messages_in(fake, "CTEAM")[0].ts
    assert [f.filename for f in fake.shared_files("CTEAM")] == [
        chart_filename("poll:1", 0),
        chart_filename("poll:1", 1),
    ]
    # A crash after the upload: the next retry finds both the message and the files.
    uploads = len(fake.calls_of("files.getUploadURLExternal"))
    third = await port.deliver(delivery(msg, attempt=3, maybe_sent=True))
    assert third == again
    assert len(fake.calls_of("files.getUploadURLExternal")) == uploads == 2
    assert len(messages_in(fake, "CTEAM")) == 1 and len(fake.shared_files()) == 2
    # One chart missing (its upload failed): a later retry uploads only that one.
    fake.fail("files.getUploadURLExternal", "internal_error", status=500)
    msg = message("Next week's poll closed.", RESULTS, TREND)
    with pytest.raises(DeliveryError):
        fake.fail("chat.postMessage", "internal_error", status=500, after=True)
        await port.deliver(delivery(msg, key="poll:2"))
    await port.deliver(delivery(msg, key="poll:2", attempt=2, maybe_sent=True))
    assert [f.filename for f in fake.shared_files()][2:] == [chart_filename("poll:2", 1)]
    await port.deliver(delivery(msg, key="poll:2", attempt=3, maybe_sent=True))
    assert [f.filename for f in fake.shared_files()][2:] == [
        chart_filename("poll:2", 1),
        chart_filename("poll:2", 0),
    ]
    assert len(messages_in(fake, "CTEAM")) == 2


async def test_a_failed_upload_leaves_the_message_sent_with_its_words(
    fake: FakeSlack, port: SlackPort
) -> None:
    fake.fail("files.completeUploadExternal", "internal_error", status=500)
    receipt = await port.deliver(delivery(message("Closed.", RESULTS)))
    [posted] = messages_in(fake, "CTEAM")
    assert receipt.message_id == posted.ts  # sent: a retry of the row would double the message
    assert fake.shared_files() == [] and RESULTS.alt in context_text(posted)
    # A refusal (no files:write, say) is the same; a 429 is waited out and retried.
    fake.fail("files.getUploadURLExternal", "missing_scope")
    await port.deliver(delivery(message("Closed.", RESULTS), key="poll:2"))
    assert fake.shared_files() == []
    fake.fail("files.getUploadURLExternal", "ratelimited", status=429, retry_after=0)
    await port.deliver(delivery(message("Closed.", RESULTS), key="poll:3"))
    [shared] = fake.shared_files()
    assert shared.filename == chart_filename("poll:3", 0)
    assert len(messages_in(fake, "CTEAM")) == 3


async def test_updates_ephemerals_and_dms(fake: FakeSlack, port: SlackPort) -> None:
    posted = await port.deliver(delivery(message("Open: 3 answers so far.")))
    update = Target(channel_id="CTEAM", message_id=posted.message_id)
    await port.deliver(delivery(message("Closed.", RESULTS), Method.UPDATE, target=update))
    [shown] = messages_in(fake, "CTEAM")
    assert shown.edits == 1 and RESULTS.alt in context_text(shown)
    ephemeral = Target(channel_id="CTEAM", user_id="UALICE")
    await port.deliver(delivery(message(RESULTS), Method.EPHEMERAL, target=ephemeral))
    assert RESULTS.alt in text_of(fake.ephemerals[-1]["blocks"])
    assert fake.calls_of("files.getUploadURLExternal") == []  # words only, as documented
    dm = await port.deliver(delivery(message(RESULTS), Method.DM, target=Target(user_id="UBOB")))
    [in_dm] = fake.shared_files(dm.channel_id)
    assert in_dm.channel == "DUBOB" and in_dm.thread_ts is None
    assert fake.posts("DUBOB")[0].text == RESULTS.title  # the notification names the chart


# -- multi-selects ------------------------------------------------------------------------------


def test_a_multi_select_is_a_section_accessory_within_block_kits_limits() -> None:
    options = tuple(Choice(f"Topic {n}", f"t{n}") for n in range(100))
    msg = message(
        "Pick topics.",
        Actions(
            (
                Button("Skip", "poll:skip"),
                Select("poll:topics", options, "Up to three topics", max_selected=3),
                Button("Done", "poll:done"),
                Select("poll:one", options[:3], "One", max_selected=1),
                Select("poll:all", options[:2], "", max_selected=5),
            )
        ),
    )
    [part] = render.messages(msg)
    kinds = [(b["type"], b.get("accessory", {}).get("type")) for b in part.blocks]
    assert kinds == [
        ("section", None),
        ("actions", None),
        ("section", "multi_static_select"),
        ("actions", None),
        ("section", "multi_static_select"),
    ]
    topics = part.blocks[2]["accessory"]
    assert topics["max_selected_items"] == 3 and len(topics["options"]) == 100
    assert part.blocks[2]["text"]["text"] == "Up to three topics"
    assert [e["type"] for e in part.blocks[3]["elements"]] == ["button", "static_select"]
    assert part.blocks[4]["accessory"]["max_selected_items"] == 2  # never more than options
    assert part.blocks[4]["text"]["text"] == "Choose up to 2"
    assert blockkit.check_message({"text": part.text, "blocks": part.blocks}) == []
    with pytest.raises(render.RenderError, match="100"):
        render.messages(message(Actions((Select("x", (*options, Choice("1", "1"))),))))


async def test_a_select_slack_cannot_take_is_dead_lettered_at_once(port: SlackPort) -> None:
    options = tuple(Choice(str(n), str(n)) for n in range(101))  # the core never offers this
    with pytest.raises(PermanentDeliveryError, match="100"):
        await port.deliver(delivery(message(Actions((Select("x", options, max_selected=2),)))))


def test_the_fake_refuses_multi_selects_where_slack_does() -> None:
    multi = {
        "type": "multi_static_select",
        "action_id": "m",
        "options": [{"text": {"type": "plain_text", "text": "A"}, "value": "a"}],
    }
    in_actions = {"blocks": [{"type": "actions", "elements": [multi]}], "text": "x"}
    assert any("not an actions block" in p for p in blockkit.check_message(in_actions))
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    zero = {"blocks": [{**section, "accessory": {**multi, "max_selected_items": 0}}]}
    assert any("max_selected_items" in p for p in blockkit.check_message(zero))
    single = {**multi, "type": "static_select", "max_selected_items": 2}
    assert any(
        "only multi-selects" in p
        for p in blockkit.check_message({"blocks": [{**section, "accessory": single}]})
    )
    many = {**multi, "options": multi["options"] * 101}
    assert any(
        "options" in p for p in blockkit.check_message({"blocks": [{**section, "accessory": many}]})
    )


PROBE = CommandSpec("probe", "Test-only command.", (SubcommandSpec("ask", "Post a poll."),))


async def test_choosing_in_a_multi_select_reaches_the_core_with_values(
    fake: FakeSlack, database: Database
) -> None:
    commands = {**DEFAULT_SLACK_COMMANDS, "probe": "/probe"}
    seen: list[Any] = []
    topics = Select(
        "probe:topics",
        (Choice("Roadmap", "roadmap"), Choice("Hiring", "hiring"), Choice("On-call", "oncall")),
        "Topics for Friday",
        max_selected=2,
    )

    async def ask(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("CTEAM", message("Pick topics.", RESULTS, Actions((topics,))))
        return None

    async def chose(ctx: Context, event: Any) -> Response:
        seen.append(event)
        return None

    async with slack_world(fake, database.url, "socket", START, commands=commands) as world:
        assert world.app.core.max_select_options == 100  # read from the Slack port
        world.app.core.add_command(PROBE, {"ask": ask})
        world.app.core.add_action("probe", chose)
        await world.command("UALICE", "/probe ask")
        [posted] = messages_in(fake, "CTEAM")
        [shared] = fake.shared_files("CTEAM")  # the chart, through the real App's worker
        assert_png(shared.data, RESULTS)
        menu = next(b["accessory"] for b in posted.blocks or [] if "accessory" in b)
        assert (menu["type"], menu["max_selected_items"]) == ("multi_static_select", 2)
        chosen = [menu["options"][0], menu["options"][2]]
        payload = payloads.block_action(
            menu["action_id"],
            user="UBOB",
            channel="CTEAM",
            message_ts=posted.ts,
            response_url=fake.response_url(),
        )
        payload["actions"] = [
            {
                "type": "multi_static_select",
                "action_id": menu["action_id"],
                "block_id": "b2",
                "selected_options": chosen,
                "action_ts": f"{time.time():.6f}",
            }
        ]
        ack = await world.send("interactive", payload)
        assert ack.status == 200
        await world.settle()
    [event] = seen
    assert (event.action_id, event.values) == ("probe:topics", ("roadmap", "oncall"))
    assert (event.actor.user_id, event.message_id) == ("UBOB", posted.ts)


# -- the fake Slack's files API, and the scopes ---------------------------------------------------


async def test_the_fake_files_api_refuses_bad_input_with_slacks_errors(fake: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as unknown:
        await client.files_completeUploadExternal(files=[{"id": "FNOPE"}], channel_id="CTEAM")
    assert unknown.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as too_long:
        await client.files_getUploadURLExternal(filename="a.png", length=10, alt_txt="x" * 1001)
    assert too_long.value.response["error"] == "alt_txt_too_large"
    with pytest.raises(SlackApiError) as empty:
        await client.files_getUploadURLExternal(filename="a.png", length=0)
    assert empty.value.response["error"] == "missing_argument"
    png = render_png(RESULTS)
    with pytest.raises(SlackApiError) as nowhere:
        await client.files_upload_v2(file=png, filename="c.png", channel="CNOPE")
    assert nowhere.value.response["error"] == "invalid_channel"
    with pytest.raises(SlackRequestError):  # the upload URL refuses what is not a PNG
        await client.files_upload_v2(file=b"GIF89a not a png", filename="c.png", channel="CTEAM")
    assert fake.violations and "not a PNG" in fake.violations[-1]
    fake.violations.clear()  # expected here; team_slack checks none is left
    ok = await client.files_upload_v2(file=png, filename="c.png", channel="CTEAM", title="T")
    assert ok["file"]["name"] == "c.png" and fake.shared_files("CTEAM")[0].data == png
    with pytest.raises(SlackApiError) as twice:  # the upload ticket is used up
        await client.files_completeUploadExternal(files=[{"id": ok["file"]["id"]}])
    assert twice.value.response["error"] == "file_not_found"


def test_the_manifest_asks_for_files_write() -> None:
    assert "files:write" in BOT_SCOPES
    assert "files:write" in manifest(SlackSection())["oauth_config"]["scopes"]["bot"]
    assert SlackPort.max_select_options == 100 and SlackPort.edit_window is None
