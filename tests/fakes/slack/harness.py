"""syncup's real App and Slack adapter against :class:`FakeSlack`, in Socket Mode or HTTP mode.

:meth:`SlackWorld.send` delivers what Slack would (a slash command, an interaction, an event)
over the mode's real transport (a Socket Mode envelope, or a signed POST to /slack/events) and
returns the ack; :meth:`SlackWorld.settle` waits until the adapter's post-ack work, the core's
background work, the scheduler and the delivery worker are all done; :meth:`SlackWorld.move_to`
moves the demo clock forward through every scheduled occurrence on the way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from adapters.console.clock import DemoClock, move_clock, settle
from adapters.slack.app import SlackAdapter
from bot.app import App
from bot.config import (
    BotSection,
    DatabaseSection,
    DeliverySection,
    RateSetting,
    Settings,
    SlackSection,
)
from tests.fakes.slack import payloads
from tests.fakes.slack.server import FakeSlack, Posted, start_fake_slack

SIGNING_SECRET = "s3cr3t-signing"
FAST = {m: RateSetting(rate=200.0, burst=50) for m in ("post", "dm", "update", "ephemeral")}


@dataclass
class Ack:
    status: int
    body: dict[str, Any]


def settings_for(fake: FakeSlack, db_url: str, mode: str, **slack: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": "xoxb-test",
        "app_token": "xapp-test",
        "signing_secret": SIGNING_SECRET,
        "mode": mode,
        "api_base_url": fake.api_url,
        "http_host": "127.0.0.1",
        "http_port": 0,
    }
    values.update(slack)
    return Settings(
        slack=SlackSection(**values),
        delivery=DeliverySection(
            poll_interval_seconds=0.05, backoff_base_seconds=0.05, rates=dict(FAST)
        ),
        database=DatabaseSection(url=db_url),
        bot=BotSection(platform="slack"),
    )


class SlackWorld:
    def __init__(self, fake: FakeSlack, settings: Settings, start: datetime) -> None:
        self.fake = fake
        self.settings = settings
        self.mode = settings.slack.mode
        self.clock = DemoClock(start)
        self.adapter = SlackAdapter(settings, clock=self.clock)
        self.app = App(settings, self.adapter)
        self._http: aiohttp.ClientSession | None = None
        self.last_cookie = ""

    async def start(self) -> None:
        await self.app.start()
        await self.adapter.start(self.app)
        if self.mode == "http":
            self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.adapter.stop()
        await self.app.stop()
        if self._http is not None:
            await self._http.close()

    # -- inbound ---------------------------------------------------------------------------

    async def send(self, kind: str, payload: dict[str, Any], *, retry: int = 0) -> Ack:
        if self.mode == "socket":
            body = await self.fake.send_envelope(kind, payload, retry_attempt=retry)
            return Ack(200, body)
        raw, ctype = payloads.http_body(kind, payload)
        headers = {"Content-Type": ctype, **payloads.sign(SIGNING_SECRET, raw)}
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        self.fake.timeline.append(("sent", str(payload.get("type") or kind)))
        ack = await self.post_raw(raw, headers)
        self.fake.timeline.append(("ack", str(payload.get("type") or kind)))
        return ack

    async def post_raw(self, raw: bytes, headers: dict[str, str]) -> Ack:
        assert self._http is not None
        url = f"http://127.0.0.1:{self.adapter.http_port}/slack/events"
        async with self._http.post(url, data=raw, headers=headers) as response:
            text = await response.text()
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                body = {"text": text}
            return Ack(response.status, body if isinstance(body, dict) else {"body": body})

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """A browser's GET; ``last_cookie`` keeps what the answer set (a browser would send the
        ``Secure`` OAuth state cookie back over HTTPS; the test passes it on by hand)."""
        assert self._http is not None
        url = f"http://127.0.0.1:{self.adapter.http_port}{path}"
        async with self._http.get(url, allow_redirects=False, headers=headers) as response:
            cookie = response.headers.get("Set-Cookie")
            if cookie:
                self.last_cookie = cookie.split(";", 1)[0]
            return response.status, await response.text()

    async def command(self, user: str, line: str, *, channel: str = "CTEAM") -> Ack:
        slash, _, text = line.partition(" ")
        name = self.fake.channels[channel].name if channel in self.fake.channels else channel
        payload = payloads.slash_command(
            slash,
            text,
            user=user,
            channel=channel,
            channel_name=name,
            response_url=self.fake.response_url(),
            team=self.fake.team_id,
        )
        ack = await self.send("slash_commands", payload)
        await self.settle()
        return ack

    async def press(self, user: str, posted: Posted, label: str) -> Ack:
        button = find_button(posted, label)
        payload = payloads.block_action(
            button["action_id"],
            user=user,
            channel=posted.channel,
            message_ts=posted.ts,
            value=button.get("value", ""),
            response_url=self.fake.response_url(),
            team=self.fake.team_id,
        )
        ack = await self.send("interactive", payload)
        await self.settle()
        return ack

    async def submit(
        self, user: str, values: dict[str, Any], view: dict[str, Any] | None = None
    ) -> Ack:
        view = view or self.fake.views[-1]
        payload = payloads.view_submission(
            view, values, user=user, team=self.fake.team_id, response_url=self.fake.response_url
        )
        ack = await self.send("interactive", payload)
        await self.settle()
        return ack

    def shortcut_payload(
        self, user: str, callback_id: str, message: dict[str, Any], *, channel: str = "CTEAM"
    ) -> dict[str, Any]:
        """What Slack sends when ``user`` runs a message shortcut on ``message`` (see
        FakeSlack.member_message)."""
        name = self.fake.channels[channel].name if channel in self.fake.channels else channel
        return payloads.message_action(
            callback_id,
            message,
            user=user,
            channel=channel,
            channel_name=name,
            response_url=self.fake.response_url(),
            team=self.fake.team_id,
        )

    async def shortcut(
        self, user: str, callback_id: str, message: dict[str, Any], *, channel: str = "CTEAM"
    ) -> Ack:
        payload = self.shortcut_payload(user, callback_id, message, channel=channel)
        ack = await self.send("interactive", payload)
        await self.settle()
        return ack

    async def global_shortcut(self, user: str, callback_id: str) -> Ack:
        payload = payloads.global_shortcut(callback_id, user=user, team=self.fake.team_id)
        ack = await self.send("interactive", payload)
        await self.settle()
        return ack

    def form_errors(self, ack: Ack) -> dict[str, str]:
        """The field errors a form submission got: in the ack (``response_action: errors``), or,
        after a "Checking…" ack, under the fields of the view views.update put in its place
        (each input's hint). Empty when the form was accepted."""
        if ack.body.get("response_action") == "errors":
            return dict(ack.body["errors"])
        if not self.deferred(ack):
            return {}
        errors: dict[str, str] = {}
        for block in self.outcome(ack).get("blocks", []):
            hint = (block.get("hint") or {}).get("text", "")
            if block.get("type") == "input" and hint.startswith("\u26a0 "):
                errors[block["block_id"]] = hint.removeprefix("\u26a0 ")
        return errors

    @staticmethod
    def deferred(ack: Ack) -> bool:
        """Whether the ack was the "Checking…" view (the outcome follows by views.update)."""
        view = ack.body.get("view") or {}
        return ack.body.get("response_action") == "update" and (
            view.get("callback_id") == "syncup-checking"
        )

    def outcome(self, ack: Ack) -> dict[str, Any]:
        """The view that replaced a "Checking…" ack (its one views.update)."""
        assert self.deferred(ack), ack.body
        updates = [c for c in self.fake.calls_of("views.update") if c.status == 200]
        assert updates, "no views.update after the Checking… ack"
        view: dict[str, Any] = updates[-1].args["view"]
        return view

    async def dm(self, user: str, text: str, *, event_id: str | None = None, retry: int = 0) -> Ack:
        event = payloads.dm_event(user, text, channel=self.fake.dm_of(user))
        body = payloads.event_callback(
            event, event_id=event_id or f"Ev{payloads.trigger_id()}", team=self.fake.team_id
        )
        ack = await self.send("events_api", body, retry=retry)
        await self.settle()
        return ack

    async def event(self, event: dict[str, Any], *, event_id: str) -> Ack:
        if event.get("channel_type") == "im":
            self.fake.dm_of(str(event.get("user")))
        body = payloads.event_callback(event, event_id=event_id, team=self.fake.team_id)
        ack = await self.send("events_api", body)
        await self.settle()
        return ack

    # -- time ------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Quiet for a few rounds in a row: bolt runs a listener a moment after its ack."""
        quiet = 0
        while quiet < 3:
            busy = bool([t for t in self.adapter._tasks if not t.done()])
            await self.adapter.idle()
            await settle(self.app, 30)
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.01)

    async def move_to(self, target: datetime) -> None:
        async def wait() -> None:
            await self.settle()

        await move_clock(self.app, self.clock, target, settled=wait)


def find_button(posted: Posted, label: str) -> dict[str, Any]:
    for block in posted.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("type") == "button" and element["text"]["text"] == label:
                return element
    raise AssertionError(f"no button {label!r} in {posted.blocks}")


def text_of(blocks: list[dict[str, Any]] | None, fallback: str = "") -> str:
    """Everything a message shows, as one string (mrkdwn as sent)."""
    out: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if obj.get("type") in ("mrkdwn", "plain_text") and isinstance(obj.get("text"), str):
                out.append(obj["text"])
                return
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(blocks or [])
    return "\n".join(out) or fallback


@asynccontextmanager
async def team_slack() -> AsyncIterator[FakeSlack]:
    """A fake Slack with the team most tests use: alice (Berlin, an admin) and bob (New York)
    in #team. On the way out, it checks nothing sent broke Block Kit's limits."""
    slack = await start_fake_slack()
    slack.add_user("UALICE", "alice", "Europe/Berlin", is_admin=True)
    slack.add_user("UBOB", "bob", "America/New_York")
    slack.add_channel("CTEAM", "team", ["UALICE", "UBOB"])
    try:
        yield slack
    finally:
        await slack.stop()
    assert slack.violations == []


@asynccontextmanager
async def slack_world(
    fake: FakeSlack, db_url: str, mode: str, start: datetime, **slack: Any
) -> AsyncIterator[SlackWorld]:
    world = SlackWorld(fake, settings_for(fake, db_url, mode, **slack), start)
    await world.start()
    try:
        yield world
    finally:
        await world.stop()
