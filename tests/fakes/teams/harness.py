"""syncup's real App and Teams adapter (the real Teams SDK) against :class:`FakeTeams`.

:meth:`TeamsWorld.post` sends an activity to ``/api/messages`` as Teams would (JSON, with a
connector JWT the fake signed) and returns the answer; the helpers build the activities Teams
sends for a typed message, an @mention in a channel, a card's ``Action.Execute`` and an install.
The bot trusts the fake's key through the SDK's own configuration: ``[teams]
openid_metadata_url`` and ``token_issuer`` (the SDK's ``CloudEnvironment``); its outbound token
comes from the fake's token endpoint through the SDK's ``token`` provider option.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from adapters.console.clock import DemoClock, move_clock, settle
from adapters.teams.adapter import TeamsAdapter
from bot.app import App
from bot.config import (
    BotSection,
    DatabaseSection,
    DeliverySection,
    RateSetting,
    Settings,
    TeamsSection,
    WebSection,
)
from storage.db import Database
from tests.fakes.teams.server import APP_ID, TENANT, FakeTeams, Sent

FAST = {m: RateSetting(rate=200.0, burst=50) for m in ("post", "dm", "update", "ephemeral")}
BOT_ID = f"28:{APP_ID}"
TEAM_ID = "19:team-general@thread.tacv2"
TEAM_NAME = "Platform"


@dataclass
class Answer:
    status: int
    body: Any


def settings_for(fake: FakeTeams, db_url: str, **teams: Any) -> Settings:
    values: dict[str, Any] = {
        "app_id": APP_ID,
        "service_url": fake.service_url,
        "openid_metadata_url": fake.openid_url,
        "token_issuer": fake.issuer,
        "login_endpoint": fake.url,
    }
    values.update(teams)
    return Settings(
        teams=TeamsSection(**values),
        web=WebSection(host="127.0.0.1", port=0),
        delivery=DeliverySection(
            poll_interval_seconds=0.05, backoff_base_seconds=0.05, rates=dict(FAST)
        ),
        database=DatabaseSection(url=db_url),
        bot=BotSection(platform="teams"),
    )


class TeamsWorld:
    def __init__(self, fake: FakeTeams, settings: Settings, start: datetime) -> None:
        self.fake = fake
        self.clock = DemoClock(start)

        async def token(scope: Any, tenant_id: str | None = None) -> str:
            return await fake.fetch_bot_token()

        self.adapter = TeamsAdapter(settings, clock=self.clock, token=token)
        self.app = App(settings, self.adapter)
        self._http: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def start(self) -> None:
        await self.app.start()
        await self.adapter.start(self.app)
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.adapter.stop()
        await self.app.stop()
        if self._http is not None:
            await self._http.close()

    # -- the wire ------------------------------------------------------------------------------

    async def post(
        self, activity: dict[str, Any], *, token: str | None = None, raw: bytes | None = None
    ) -> Answer:
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        bearer = self.fake.token() if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = f"http://127.0.0.1:{self.adapter.http_port}/api/messages"
        data = raw if raw is not None else json.dumps(activity).encode()
        async with self._http.post(url, data=data, headers=headers) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            answer = Answer(response.status, body)
        await self.settle()
        return answer

    # -- activities ----------------------------------------------------------------------------

    def _base(self, aad_id: str, kind: str) -> dict[str, Any]:
        user = self.fake.users[aad_id]
        return {
            "type": kind,
            "id": f"act-{next(self._ids)}",
            "timestamp": self.clock.now().isoformat(),
            "serviceUrl": self.fake.service_url,
            "channelId": "msteams",
            "from": {"id": user.teams_id, "name": user.name, "aadObjectId": user.aad_id},
            "recipient": {"id": BOT_ID, "name": "syncup"},
            "localTimezone": user.timezone,
        }

    def personal(self, aad_id: str) -> dict[str, Any]:
        chat = self.fake.chat_of(aad_id) or f"a:1{aad_id}-chat"
        self.fake.chats[chat] = aad_id
        return {"conversationType": "personal", "tenantId": TENANT, "id": chat}

    def channel(self, channel: str, thread: str) -> tuple[dict[str, Any], dict[str, Any]]:
        conversation = {
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": TENANT,
            "id": f"{channel};messageid={thread}",
        }
        data = {
            "teamsChannelId": channel,
            "teamsTeamId": TEAM_ID,
            "channel": {"id": channel, "name": self.fake.channels.get(channel, "")},
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "tenant": {"id": TENANT},
        }
        return conversation, data

    def message_activity(
        self, aad_id: str, text: str, channel: str | None = None
    ) -> dict[str, Any]:
        activity = self._base(aad_id, "message")
        if channel is None:
            activity["conversation"] = self.personal(aad_id)
            activity["channelData"] = {"tenant": {"id": TENANT}}
            activity["text"] = text
        else:
            activity["conversation"], activity["channelData"] = self.channel(
                channel, activity["id"]
            )
            activity["text"] = f"<at>syncup</at> {text}"
            activity["entities"] = [
                {
                    "type": "mention",
                    "text": "<at>syncup</at>",
                    "mentioned": {"id": BOT_ID, "name": "syncup"},
                }
            ]
        return activity

    async def say(
        self, aad_id: str, text: str, channel: str | None = None, *, mention: tuple[str, ...] = ()
    ) -> Answer:
        """``aad_id`` types ``text`` to the bot: in their 1:1 chat, or with an @mention of the
        bot in ``channel``. Each member in ``mention`` is written ``<at>name</at>`` in ``text``
        and gets a mention entity naming their Teams id, as Teams sends it."""
        activity = self.message_activity(aad_id, text, channel)
        for who in mention:
            user = self.fake.users[who]
            shown = f"<at>{user.name}</at>"
            assert shown in text, f"{shown} is not in the text"
            entity = {
                "type": "mention",
                "text": shown,
                "mentioned": {"id": user.teams_id, "name": user.name},
            }
            activity.setdefault("entities", []).append(entity)
        return await self.post(activity)

    async def install(self, aad_ids: list[str], channel: str) -> Answer:
        """The app added to the team (the bot and the members in ``membersAdded``)."""
        installer = aad_ids[0]
        activity = self._base(installer, "conversationUpdate")
        activity["conversation"], activity["channelData"] = self.channel(channel, "install")
        activity["conversation"]["id"] = channel
        activity["channelData"]["eventType"] = "teamMemberAdded"
        activity["membersAdded"] = [{"id": BOT_ID}] + [
            {"id": self.fake.users[a].teams_id, "aadObjectId": a, "name": self.fake.users[a].name}
            for a in aad_ids
        ]
        return await self.post(activity)

    def invoke(self, aad_id: str, sent: Sent, data: dict[str, Any]) -> dict[str, Any]:
        activity = self._base(aad_id, "invoke")
        activity["name"] = "adaptiveCard/action"
        activity["replyToId"] = sent.activity_id
        cid = sent.conversation_id
        if cid in self.fake.chats:
            activity["conversation"] = self.personal(aad_id)
            activity["channelData"] = {"tenant": {"id": TENANT}}
        else:
            activity["conversation"], activity["channelData"] = self.channel(
                cid.split(";")[0], sent.reply_to or sent.activity_id
            )
        activity["value"] = {
            "action": {"type": "Action.Execute", "verb": "syncup", "data": data},
            "trigger": "manual",
        }
        return activity

    async def press(self, aad_id: str, sent: Sent, label: str) -> Answer:
        action = find_action(card_of(sent.current), label)
        return await self.post(self.invoke(aad_id, sent, dict(action["data"])))

    async def submit(
        self, aad_id: str, sent: Sent, form: dict[str, Any], values: dict[str, str]
    ) -> Answer:
        """Fill the inputs of ``form`` (a card) and press its submit button."""
        inputs = {i["id"]: i.get("value", "") for i in inputs_of(form)}
        unknown = set(values) - set(inputs)
        assert not unknown, f"no inputs {unknown} in the form"
        inputs.update(values)
        submit = [a for a in actions_of(form) if a["data"].get("syncup") == "form"]
        assert submit, "the form has no submit button"
        return await self.post(self.invoke(aad_id, sent, {**submit[0]["data"], **inputs}))

    # -- time ----------------------------------------------------------------------------------

    async def settle(self) -> None:
        for _ in range(3):
            await self.adapter.refs.settled()
            await settle(self.app, 30)
            await asyncio.sleep(0.01)

    async def move_to(self, target: datetime) -> None:
        async def wait() -> None:
            await self.settle()

        await move_clock(self.app, self.clock, target, settled=wait)


# -- reading cards ----------------------------------------------------------------------------


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    attachments = activity.get("attachments") or []
    assert attachments, f"no card in {activity}"
    content: dict[str, Any] = attachments[0]["content"]
    return content


def _walk(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_walk(value))
    return out


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _walk(card.get("body", [])) if n.get("type") == "Action.Execute"]


def inputs_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _walk(card.get("body", [])) if str(n.get("type", "")).startswith("Input.")]


def find_action(card: dict[str, Any], label: str) -> dict[str, Any]:
    for action in actions_of(card):
        if action.get("title") == label:
            return action
    raise AssertionError(f"no button {label!r} in {[a.get('title') for a in actions_of(card)]}")


def text_of(card: dict[str, Any]) -> str:
    return "\n".join(
        str(n.get("text") or n.get("value") or "")
        for n in _walk(card.get("body", []))
        if n.get("type") in ("TextBlock",) or ("title" in n and "value" in n)
    )


def shown(sent: Sent) -> str:
    return text_of(card_of(sent.current))


@asynccontextmanager
async def teams_world(
    fake: FakeTeams, db_url: str, start: datetime, **teams: Any
) -> AsyncIterator[TeamsWorld]:
    world = TeamsWorld(fake, settings_for(fake, db_url, **teams), start)
    await world.start()
    try:
        yield world
    finally:
        await world.stop()


@asynccontextmanager
async def team_teams() -> AsyncIterator[FakeTeams]:
    """A fake Teams with alice (Berlin) and bob (New York) in the channel "team"."""
    fake = FakeTeams()
    fake.start()
    fake.add_user("aaaaaaaa-0000-4000-8000-00000000a11c", "alice", "Europe/Berlin")
    fake.add_user("bbbbbbbb-0000-4000-8000-0000000000b0", "bob", "America/New_York")
    fake.add_channel("19:team@thread.tacv2", "team")
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.violations == []


ALICE = "aaaaaaaa-0000-4000-8000-00000000a11c"
BOB = "bbbbbbbb-0000-4000-8000-0000000000b0"
CAROL = "cccccccc-0000-4000-8000-0000000000c0"
TEAM_CHANNEL = "19:team@thread.tacv2"

# Monday 9 March 2026, 07:00 UTC: 08:00 in Berlin (alice), 03:00 in New York (bob).
START = datetime(2026, 3, 9, 7, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTeams]:
    """Tests take it with ``fake = harness.fake`` (and ``world``, ``installed`` likewise)."""
    async with team_teams() as teams:
        yield teams


@pytest.fixture
async def world(fake: FakeTeams, database: Database) -> AsyncIterator[TeamsWorld]:
    async with teams_world(fake, database.url, START) as built:
        yield built


@pytest.fixture
async def trio() -> AsyncIterator[FakeTeams]:
    """The fake Teams with carol (Berlin) as well; tests take it as ``fake = harness.trio``."""
    async with team_teams() as teams:
        teams.add_user(CAROL, "carol", "Europe/Berlin")
        yield teams


@pytest.fixture
async def trio_installed(trio: FakeTeams, database: Database) -> AsyncIterator[TeamsWorld]:
    """A world on :func:`trio`, the app added to the team with alice, bob and carol."""
    async with teams_world(trio, database.url, START) as built:
        await built.install([ALICE, BOB, CAROL], TEAM_CHANNEL)
        yield built


@pytest.fixture
async def installed(world: TeamsWorld) -> TeamsWorld:
    """The world with the app added to the team, alice and bob named in the install event."""
    await world.install([ALICE, BOB], TEAM_CHANNEL)
    return world
