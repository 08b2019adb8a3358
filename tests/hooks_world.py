"""The harness of the inbound webhook tests: the core with ``/milestone hook`` on a FakeClock over
one database (SQLite and PostgreSQL), the core's HTTP server on a free port of 127.0.0.1 with the
hooks endpoint mounted, and helpers that sign deliveries the way each sender documents it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from bot.chat import MESSAGE_ADAPTER, Reply, Response
from bot.config import HttpSection, SecuritySection, Settings
from bot.core import Core
from bot.events import Actor, CommandInvocation, Origin
from bot.features import hooks
from bot.features.hooks.receiver import HookReceiver
from bot.port import Method
from bot.web.asgi import WebApp
from bot.web.server import WebServer
from bot.webhooks.formats import sign
from bot.webhooks.keys import Keys
from storage.db import Database
from storage.hooks import HookDelivery
from storage.models import Channel, OutboxMessage, Workspace
from tests.fakes.clock import FakeClock
from tests.test_standup_runtime import render as render_payload

KEY = "kJ0Xz8oQm1yVbq3M0nW5bJp7nZ5n8bQw0qYc3y1xH2E="
START = datetime(2026, 12, 7, 9, tzinfo=UTC)
URL_IN_REPLY = re.compile(r"http://[^\s`]+/hooks/(\w+)/([\w-]+)")
SECRET_IN_REPLY = re.compile(r"secret, shown only this once: `?([^\s`]+)")


def said(response: Response) -> str:
    assert isinstance(response, Reply), response
    return render_payload(MESSAGE_ADAPTER.dump_python(response.message, mode="json"))


def github_headers(secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def gitlab_headers(secret: str, event: str, delivery: str) -> dict[str, str]:
    return {"X-Gitlab-Token": secret, "X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery}


def mlflow_headers(secret: str, body: bytes, delivery: str, timestamp: int) -> dict[str, str]:
    """As mlflow.webhooks.delivery signs: HMAC-SHA256 of "id.timestamp.body" keyed with the
    secret's UTF-8 bytes, base64, after "v1,"."""
    signed = f"{delivery}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return {
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Delivery-Id": delivery,
        "Content-Type": "application/json",
    }


def standard_headers(secret: str, body: bytes, delivery: str, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": delivery,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, delivery, timestamp, body),
    }


def release(tag: str = "v1.4.0", name: str = "Checkout", action: str = "published") -> bytes:
    return json.dumps(
        {
            "action": action,
            "release": {"tag_name": tag, "name": name, "html_url": f"https://gh/r/{tag}"},
            "repository": {"full_name": "acme/shop"},
            "sender": {"login": "octocat"},
        }
    ).encode()


@dataclass
class HooksWorld:
    db: Database
    core: Core
    clock: FakeClock
    receiver: HookReceiver
    server: WebServer
    http: httpx.AsyncClient
    workspace_id: int
    _events: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    async def command(self, line: str, by: str = "admin") -> Response:
        actor = Actor(by, by, is_platform_admin=by == "admin")
        origin = Origin("test", "T1", f"e{next(self._events)}", "Test", "C1", "team")  # type: ignore[call-overload]
        return await self.core.handle(CommandInvocation(origin, actor, "milestone", line))

    async def add(self, source: str, name: str) -> tuple[str, str]:
        """``/milestone hook add``; the path it printed and the secret."""
        text = said(await self.command(f"hook add {source} {name}"))
        url, secret = URL_IN_REPLY.search(text), SECRET_IN_REPLY.search(text)
        assert url is not None and secret is not None, text
        return url.group(0).removeprefix(url.group(0).split("/hooks/")[0]), secret.group(1)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(self.base + path, content=body, headers=headers)

    async def posts(self) -> list[OutboxMessage]:
        async with self.db.transaction() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.method == Method.POST.value)
                .order_by(OutboxMessage.id)
            )
            return list(rows)

    async def deliveries(self) -> list[HookDelivery]:
        async with self.db.transaction() as session:
            return list(await session.scalars(select(HookDelivery).order_by(HookDelivery.id)))


def post_text(row: OutboxMessage) -> str:
    return render_payload(row.payload)


@asynccontextmanager
async def hooks_world(
    db: Database, *, per_minute: int = 120, settings: Settings | None = None
) -> AsyncIterator[HooksWorld]:
    """``settings``: where the secrets' key comes from (default: ``[security] secret_key``)."""
    if settings is None:
        settings = Settings.model_construct(
            security=SecuritySection.model_validate({"secret_key": KEY})
        )
    clock = FakeClock(START)
    core = Core(db, clock)
    async with db.transaction() as session:
        workspace = Workspace(platform="test", external_id="T1", name="Test", created_at=START)
        session.add(workspace)
        await session.flush()
        session.add(
            Channel(
                workspace_id=workspace.id, external_id="C-launch", name="launches", created_at=START
            )
        )
    server: WebServer | None = None
    receiver = hooks.register(
        core,
        db,
        Keys(settings),
        per_minute=per_minute,
        base_url=lambda: f"http://127.0.0.1:{server.port if server else 0}",
    )

    async def ready() -> tuple[bool, str]:
        return True, "ready"

    app = WebApp(ready)
    app.mount(receiver.mount())
    server = WebServer(app, HttpSection(), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            yield HooksWorld(db, core, clock, receiver, server, http, workspace.id)
    finally:
        await server.stop()
