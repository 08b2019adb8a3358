"""Charts, multi-selects and many buttons on Discord, through syncup's Discord port and the real
discord.py-based adapter against the fake Discord: a chart is a PNG attached to its own message
(multipart, with the deterministic nonce), an edit replaces it, a multi-select's choice reaches
the core with ``values``, and twelve buttons are three action rows."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from adapters.console.clock import DemoClock
from adapters.discord import render
from adapters.discord.port import DiscordPort, nonce_for
from adapters.discord.rest import DiscordHTTPError, DiscordRest
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
from bot.delivery.outbox import enqueue
from bot.events import ActionInvocation
from bot.port import Delivery, Method, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Workspace
from tests.fakes.chart_samples import RESULTS
from tests.fakes.discord import limits
from tests.fakes.discord.harness import running
from tests.fakes.discord.server import FakeDiscord, FakeGuild

START = datetime(2026, 3, 9, 6, tzinfo=UTC)
TREND = Chart(
    "eNPS by week",
    ("2 Mar", "9 Mar", "16 Mar"),
    (ChartSeries("eNPS", (-10.0, None, 25.0)),),
    "eNPS went from -10 (2 March) to 25 (16 March); no poll on 9 March.",
    style="line",
)
SCALE = Actions(tuple(Button(str(n), f"poll:enps:{n}", value=str(n)) for n in range(11)))
TOPICS = Select(
    "poll:topics",
    tuple(Choice(f"Topic {n}", f"t{n}") for n in range(6)),
    "Up to three topics",
    max_selected=3,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def port(fake: FakeDiscord) -> AsyncIterator[DiscordPort]:
    rest = DiscordRest(fake.api_base, fake.token)
    try:
        yield DiscordPort(rest)
    finally:
        await rest.close()


def team_guild(fake: FakeDiscord) -> tuple[FakeGuild, str, str]:
    alice = fake.add_user("alice")
    guild = fake.add_guild("Acme", ["team"], [alice])
    return guild, fake.channel_id(guild, "team"), alice


def delivery(msg: Message, method: Method, target: Target, key: str, **kw: Any) -> Delivery:
    return Delivery(1, "g", method, target, msg, key, kw.pop("attempt", 1), **kw)


def png_of(fake: FakeDiscord, attachment: dict[str, Any]) -> bytes:
    data = fake.attachment_data[attachment["id"]]
    Image.open(io.BytesIO(data)).verify()
    return data


# -- through the outbox worker of the running bot --------------------------------------------------


async def test_a_chart_is_a_png_attached_to_its_message_with_the_nonce(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    guild, team, _ = team_guild(fake)
    results = message("The poll closed.", RESULTS, SCALE, Actions((TOPICS,)))
    async with running(fake, db_url, DemoClock(START)) as bot:
        assert (bot.app.core.edit_window, bot.app.core.max_select_options) == (
            timedelta(hours=1),
            25,
        )
        async with database.transaction() as session:
            workspace = await session.scalar(
                select(Workspace).where(Workspace.external_id == guild.id)
            )
            assert workspace is not None
            first = await enqueue(
                session,
                workspace_id=workspace.id,
                method=Method.POST,
                target=Target(channel_id=team),
                message=results,
                key="poll:1:results",
                now=bot.clock.now(),
            )
            await enqueue(
                session,
                workspace_id=workspace.id,
                method=Method.POST,
                target=Target(channel_id=team),
                message=message(TREND),
                key="poll:1:trend",
                now=bot.clock.now(),
                depends_on=first,  # in the thread of the results
            )
        bot.app.worker.wake()
        await fake.wait_for(lambda: len(fake.created_messages()) >= 2, what="two messages")
        await bot.settle()
    [posted] = fake.created_messages(team)
    [attachment] = posted["attachments"]
    assert attachment["filename"] == "chart-0.png" and attachment["description"] == RESULTS.alt
    assert png_of(fake, attachment) == render_png(RESULTS)
    chart_embed = next(e for e in posted["embeds"] if "image" in e)
    assert chart_embed["image"]["url"] == "attachment://chart-0.png"
    assert chart_embed["title"] == RESULTS.title
    # Eleven buttons in rows of five, then the multi-select in a row of its own.
    rows = posted["components"]
    assert [len(row["components"]) for row in rows] == [5, 5, 1, 1]
    menu = rows[3]["components"][0]
    assert (menu["min_values"], menu["max_values"], len(menu["options"])) == (1, 3, 6)
    # One multipart request: payload_json carries the deterministic nonce, enforced.
    [sent] = [
        c for c in fake.calls if c.method == "POST" and c.path == f"/channels/{team}/messages"
    ]
    assert sent.multipart and [f.filename for f in sent.files] == ["chart-0.png"]
    assert sent.json["nonce"] == nonce_for("poll:1:results") and sent.json["enforce_nonce"]
    [reply] = fake.created_messages(posted["id"])  # a thread started on it has its id
    assert png_of(fake, reply["attachments"][0]) == render_png(TREND)
    async with database.transaction() as session:
        rows_sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [r.status for r in rows_sent] == [OutboxStatus.SENT, OutboxStatus.SENT]
    assert rows_sent[0].platform_message_id == posted["id"]


async def test_a_multi_select_choice_reaches_the_core_with_values(
    fake: FakeDiscord, database: Database, db_url: str
) -> None:
    guild, team, alice = team_guild(fake)
    seen: list[ActionInvocation] = []

    async def chose(ctx: Any, event: ActionInvocation) -> Response:
        seen.append(event)
        return None

    async with running(fake, db_url, DemoClock(START)) as bot:
        bot.app.core.add_action("poll", chose)
        async with database.transaction() as session:
            workspace = await session.scalar(
                select(Workspace).where(Workspace.external_id == guild.id)
            )
            assert workspace is not None
            await enqueue(
                session,
                workspace_id=workspace.id,
                method=Method.POST,
                target=Target(channel_id=team),
                message=message("Pick topics.", Actions((TOPICS,))),
                key="poll:2:ask",
                now=bot.clock.now(),
            )
        bot.app.worker.wake()
        [posted] = await fake.wait_for(lambda: fake.created_messages(team), what="the poll")
        [custom_id] = fake.custom_ids(posted)
        interaction = await fake.click(posted, custom_id, user_id=alice, values=["t4", "t1"])
        await bot.settle()
        assert (await fake.answered(interaction))["type"] == 6  # a silent deferred update
    [event] = seen
    assert (event.action_id, event.values) == ("poll:topics", ("t4", "t1"))
    assert (event.message_id, event.origin.workspace_id) == (posted["id"], guild.id)


# -- the port: retries, edits ----------------------------------------------------------------------


async def test_a_resend_of_a_chart_creates_nothing_new(
    fake: FakeDiscord, port: DiscordPort
) -> None:
    _, team, _ = team_guild(fake)
    msg = message("Closed.", RESULTS, TREND)
    first = await port.deliver(delivery(msg, Method.POST, Target(channel_id=team), "poll:3"))
    again = await port.deliver(
        delivery(msg, Method.POST, Target(channel_id=team), "poll:3", attempt=2, maybe_sent=True)
    )
    assert again == first
    [posted] = fake.created_messages(team)
    assert [a["filename"] for a in posted["attachments"]] == ["chart-0.png", "chart-1.png"]
    sends = fake.calls_to("POST", f"/channels/{team}/messages")
    assert len(sends) == 2 and all(c.multipart and len(c.files) == 2 for c in sends)
    assert {c.json["nonce"] for c in sends} == {nonce_for("poll:3")}
    assert [c.files[0].data for c in sends] == [render_png(RESULTS)] * 2  # drawn the same


async def test_an_edit_replaces_the_chart_and_one_without_drops_it(
    fake: FakeDiscord, port: DiscordPort
) -> None:
    _, team, _ = team_guild(fake)
    posted = await port.deliver(
        delivery(message("Closed.", RESULTS), Method.POST, Target(channel_id=team), "poll:4")
    )
    where = Target(channel_id=team, message_id=posted.message_id)
    before = fake.messages[posted.message_id or ""]["attachments"][0]["id"]
    await port.deliver(delivery(message("Late answers.", TREND), Method.UPDATE, where, "u1"))
    edited = fake.messages[posted.message_id or ""]
    [now] = edited["attachments"]
    assert now["id"] != before and png_of(fake, now) == render_png(TREND)
    assert edited["embeds"][0]["image"]["url"] == "attachment://chart-0.png"
    [patch] = fake.calls_to("PATCH", f"/messages/{posted.message_id}")
    assert patch.multipart and patch.json["attachments"][0]["id"] == 0
    await port.deliver(delivery(message("Archived."), Method.UPDATE, where, "u2"))
    assert fake.messages[posted.message_id or ""]["attachments"] == []
    plain = fake.calls_to("PATCH", f"/messages/{posted.message_id}")[-1]
    assert not plain.multipart and plain.json["attachments"] == []


async def test_a_chart_in_a_private_reply_is_words(fake: FakeDiscord, port: DiscordPort) -> None:
    [payload] = render.render_message(message("Only you.", RESULTS))
    assert "attachments" not in payload and not payload["embeds"]
    assert RESULTS.alt in payload["content"] and "How sustainable" in payload["content"]
    # Ephemeral outbox rows go to the DM, chart attached.
    _, team, alice = team_guild(fake)
    target = Target(channel_id=team, user_id=alice)
    await port.deliver(delivery(message(RESULTS), Method.EPHEMERAL, target, "poll:5"))
    [dm] = fake.dm_messages(alice)
    assert png_of(fake, dm["attachments"][0]) == render_png(RESULTS)


# -- components ------------------------------------------------------------------------------------


def test_twelve_buttons_are_three_rows_and_selects_stay_within_limits() -> None:
    twelve = Actions(tuple(Button(str(n), f"b:{n}") for n in range(12)))
    [payload] = render.render_message(message("Rate it.", twelve))
    assert [len(r["components"]) for r in payload["components"]] == [5, 5, 2]
    assert not limits.check_message(payload).errors
    wide = Select("s", tuple(Choice(str(n), str(n)) for n in range(3)), max_selected=10)
    [payload] = render.render_message(message("x", Actions((wide,))))
    assert payload["components"][0]["components"][0]["max_values"] == 3  # its options
    with pytest.raises(render.RenderError, match="rows"):  # never a silent drop
        render.render_message(message("x", twelve, twelve))


async def test_the_fake_refuses_bad_files_and_selects(fake: FakeDiscord) -> None:
    _, team, _ = team_guild(fake)
    rest = DiscordRest(fake.api_base, fake.token)
    png = render_png(RESULTS)
    chart = {"content": "x", "attachments": [{"id": 0, "filename": "chart-0.png"}]}

    def select(options: int, **kw: int) -> dict[str, Any]:
        item = {
            "type": 3,
            "custom_id": "s",
            "options": [{"label": str(n), "value": str(n)} for n in range(options)],
            **kw,
        }
        return {"content": "x", "components": [{"type": 1, "components": [item]}]}

    refused: list[tuple[dict[str, Any], list[tuple[str, bytes, str]] | None]] = [
        (chart, [("chart-0.png", b"GIF89a...", "image/png")]),  # not a PNG
        (chart, [("chart-0.png", png[:20], "image/png")]),  # cut short
        ({"content": "x"}, [("chart-0.png", png, "image/png")]),  # files[0] not listed
        (
            {**chart, "attachments": [{"id": 0, "description": "d" * 1025}]},
            [("chart-0.png", png, "image/png")],
        ),
        (
            {"content": "x", "embeds": [{"image": {"url": "attachment://other.png"}}]},
            None,
        ),
        ({**chart, "attachments": [{"id": 1, "filename": "x.png"}]}, [("x.png", png, "image/png")]),
        (select(3, max_values=4), None),
        (select(26, max_values=1), None),
        (select(25, max_values=26), None),
        (select(5, min_values=3, max_values=2), None),
    ]
    try:
        for payload, files in refused:
            with pytest.raises(DiscordHTTPError) as error:
                await rest.request(
                    "POST", f"/channels/{team}/messages", json_body=payload, files=files
                )
            assert (error.value.status, error.value.code) == (400, 50035), payload
        too_big = png + b"\0" * limits.FILE_BYTES
        with pytest.raises(DiscordHTTPError) as error:
            await rest.request(
                "POST",
                f"/channels/{team}/messages",
                json_body=chart,
                files=[("chart-0.png", too_big, "image/png")],
            )
        assert (error.value.status, error.value.code) == (413, 40005)
        assert not fake.created_messages(team)
        ok = await rest.request(
            "POST",
            f"/channels/{team}/messages",
            json_body={**chart, "nonce": "n1", "enforce_nonce": True},
            files=[("chart-0.png", png, "image/png")],
        )
        again = await rest.request(
            "POST",
            f"/channels/{team}/messages",
            json_body={**chart, "nonce": "n1", "enforce_nonce": True},
            files=[("chart-0.png", png, "image/png")],
        )
        assert ok["id"] == again["id"] and len(fake.created_messages(team)) == 1
        # An edit may keep an attachment by its id and add none.
        kept = ok["attachments"][0]
        edited = await rest.request(
            "PATCH",
            f"/channels/{team}/messages/{ok['id']}",
            json_body={"content": "y", "attachments": [{"id": kept["id"]}]},
        )
        assert edited["attachments"] == [kept]
        select_ok = await rest.request(
            "POST", f"/channels/{team}/messages", json_body=select(25, min_values=1, max_values=25)
        )
        assert json.dumps(select_ok["components"])
    finally:
        await rest.close()


def test_the_port_declares_its_edit_window_and_select_size() -> None:
    assert DiscordPort.edit_window == timedelta(hours=1)
    assert DiscordPort.max_select_options == 25


async def test_a_channel_without_attach_files_gets_the_chart_in_words(
    fake: FakeDiscord, port: DiscordPort
) -> None:
    _, team, _ = team_guild(fake)
    fake.no_attach_files.add(team)
    results = message("The poll closed.", RESULTS)
    receipt = await port.deliver(
        delivery(results, Method.POST, Target(channel_id=team), "poll:9:results")
    )
    [posted] = fake.created_messages(team)
    assert receipt.message_id == posted["id"]
    assert not posted.get("attachments")
    shown = json.dumps(posted)
    assert RESULTS.alt in shown  # the chart in words, not lost
    refused = [c for c in fake.calls_to("POST", f"/channels/{team}/messages") if c.status == 403]
    assert len(refused) == 1

    update = message("The poll reopened.", RESULTS)
    target = Target(channel_id=team, message_id=posted["id"])
    await port.deliver(delivery(update, Method.UPDATE, target, "poll:9:results:2"))
    assert "The poll reopened." in json.dumps(fake.messages[posted["id"]])
