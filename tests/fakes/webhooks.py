"""A webhook receiver on 127.0.0.1 and the world the webhook tests run in.

:class:`WebhookReceiver` is an aiohttp server (port 0) that verifies every Standard Webhooks
request with the ``standardwebhooks`` package (the documented algorithm: HMAC-SHA256 over
``id.timestamp.body`` with the secret's base64-decoded bytes) and records it, and answers what the
test scripted (a 500, a 429 with Retry-After...) before answering 200 or 202.

:class:`WebhookWorld` is the core (the RACI feature's ``/raci``, then the webhook feature's
subcommand), a workspace with an admin and a member, a
blocker factory that records timeline entries, and a delivery worker whose port routes webhook
rows to the real sender.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot import webhooks
from bot.chat import MESSAGE_ADAPTER, Reply, Response
from bot.clock import SystemClock
from bot.config import (
    DatabaseSection,
    DeliverySection,
    SecuritySection,
    Settings,
    WebhooksSection,
)
from bot.core import Core
from bot.delivery.worker import DeadLetter, DeliveryWorker
from bot.events import Actor, CommandInvocation, Origin
from bot.features import raci
from bot.features.blockers import timeline
from bot.port import Delivery, Method, RateLimit, Receipt
from bot.webhooks.keys import Keys
from bot.webhooks.port import RoutingPort
from bot.webhooks.sender import WebhookSender
from bot.webhooks.targets import Resolver, system_resolver
from storage.db import Database
from storage.models import Blocker, BlockerSeverity, Member, OutboxMessage, Workspace
from tests.test_standup_runtime import render as render_payload

KEY = "f1fjpwSNTL2Vo7nK_d6zYcNCDIk1Fv4EH8tpY1i7PvI="
SAFETY = 30.0  # seconds before a hung test fails instead of hanging


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None: no secret to check with (PagerDuty)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class WebhookReceiver:
    """Records requests; ``script`` holds (status, headers) answers given before the default."""

    def __init__(self, default_status: int = 200) -> None:
        self.default_status = default_status
        self.secrets: dict[str, str] = {}  # path -> whsec_ secret
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[Received] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        secret = self.secrets.get(request.path)
        verified: bool | None = None
        if secret is not None:
            try:
                Webhook(secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        async with self._changed:
            self.received.append(Received(request.path, headers, body, verified))
            self._changed.notify_all()
        status, extra = self.script.pop(0) if self.script else (self.default_status, {})
        return web.json_response({"status": "ok"}, status=status, headers=extra)

    async def wait_for(self, count: int) -> list[Received]:
        async with asyncio.timeout(SAFETY), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


class NoPlatform:
    """The platform side of the routing port: these tests send only webhooks."""

    platform = "test"

    def rate_limits(self) -> dict[Method, RateLimit]:
        return {}

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:
        raise AssertionError(f"unexpected {delivery.method} to the platform")


def settings_for(url: str, *, allow_private: bool = True, key: str | None = KEY) -> Settings:
    return Settings.model_construct(
        database=DatabaseSection(url=url),
        security=SecuritySection.model_validate({"secret_key": key}),
        webhooks=WebhooksSection(allow_private_targets=allow_private),
    )


def delivery_settings(**overrides: Any) -> DeliverySection:
    values: dict[str, Any] = {
        "max_attempts": 3,
        "poll_interval_seconds": 0.05,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.1,
    }
    values.update(overrides)
    return DeliverySection.model_validate(values)


def said(response: Response) -> str:
    """The private reply as the console would print it."""
    assert isinstance(response, Reply), response
    return render_payload(MESSAGE_ADAPTER.dump_python(response.message, mode="json"))


SECRET_IN_REPLY = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@dataclass
class WebhookWorld:
    db: Database
    settings: Settings
    core: Core
    keys: Keys
    workspace_id: int
    members: dict[str, int]
    resolver: Resolver
    _events: Iterable[int] = field(default_factory=lambda: itertools.count(1))
    dead: list[DeadLetter] = field(default_factory=list)
    _dead_changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def command(self, line: str, by: str = "admin") -> Response:
        actor = Actor(by, by, is_platform_admin=by == "admin")
        origin = Origin("test", "T1", f"e{next(self._events)}", "Test", "C1", "team")  # type: ignore[call-overload]
        return await self.core.handle(CommandInvocation(origin, actor, "raci", line))

    async def options(self, by: str = "admin", **values: Any) -> Response:
        actor = Actor(by, by, is_platform_admin=by == "admin")
        origin = Origin("test", "T1", f"e{next(self._events)}", "Test", "C1", "team")  # type: ignore[call-overload]
        event = CommandInvocation(origin, actor, "raci", subcommand="webhook", options=values)
        return await self.core.handle(event)

    async def add(self, name: str, target: str, *extra: str) -> str | None:
        """``/raci webhook add``; returns the secret it printed (None for PagerDuty)."""
        response = await self.command(" ".join(["webhook", "add", name, target, *extra]))
        text = said(response)
        assert "added" in text, text
        found = SECRET_IN_REPLY.search(text)
        return found.group(0) if found else None

    async def blocker(self, text: str = "waiting for the GPU quota", severity: str = "high") -> int:
        async with self.db.transaction() as session:
            now = datetime.now(UTC)
            blocker = Blocker(
                workspace_id=self.workspace_id,
                member_id=self.members["bob"],
                text=text,
                severity=BlockerSeverity(severity),
                created_at=now,
                source="command",
            )
            session.add(blocker)
            await session.flush()
            await timeline.record(
                session, blocker, timeline.Kind.OPENED, now, actor_id=blocker.member_id
            )
            return blocker.id

    async def record(
        self, blocker_id: int, kind: str, detail: dict[str, Any] | None = None, by: str = "admin"
    ) -> None:
        async with self.db.transaction() as session:
            blocker = await session.get(Blocker, blocker_id)
            assert blocker is not None
            await timeline.record(
                session, blocker, kind, datetime.now(UTC), actor_id=self.members[by], detail=detail
            )

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.method == Method.WEBHOOK.value)
                .order_by(OutboxMessage.id)
            )
            return list(rows)

    async def wait_dead(self, count: int) -> list[DeadLetter]:
        """Wait until ``count`` rows ended dead (the worker's dead-letter callbacks)."""
        async with asyncio.timeout(SAFETY), self._dead_changed:
            await self._dead_changed.wait_for(lambda: len(self.dead) >= count)
        return list(self.dead)

    async def _dead_letter(self, dead: DeadLetter) -> None:
        async with self._dead_changed:
            self.dead.append(dead)
            self._dead_changed.notify_all()

    @asynccontextmanager
    async def worker(self, **overrides: Any) -> AsyncIterator[DeliveryWorker]:
        sender = WebhookSender(self.db, self.settings.webhooks, self.keys, resolver=self.resolver)
        worker = DeliveryWorker(
            self.db,
            RoutingPort(NoPlatform(), sender),
            delivery_settings(**overrides),
            clock=SystemClock(),
            instance="w1",
        )
        worker.on_dead_letter.append(self._dead_letter)
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop()
            await sender.aclose()


@asynccontextmanager
async def webhook_world(
    db: Database,
    url: str,
    *,
    allow_private: bool = True,
    key: str | None = KEY,
    resolver: Resolver = system_resolver,
    register: Callable[[Core], None] | None = None,
) -> AsyncIterator[WebhookWorld]:
    settings = settings_for(url, allow_private=allow_private, key=key)
    core = Core(db, SystemClock())
    raci.register(core)
    keys = Keys(settings)
    webhooks.register(core, settings, keys=keys, resolver=resolver)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        workspace = Workspace(platform="test", external_id="T1", name="Test", created_at=now)
        session.add(workspace)
        await session.flush()
        members = {}
        for name in ("admin", "bob", "carol"):
            member = Member(
                workspace_id=workspace.id,
                platform_user_id=name,
                display_name=name,
                created_at=now,
                updated_at=now,
            )
            session.add(member)
            await session.flush()
            members[name] = member.id
    yield WebhookWorld(db, settings, core, keys, workspace.id, members, resolver)
