"""/metrics after real activity, on SQLite and PostgreSQL: the whole app (core, scheduler,
delivery worker, webhook sender, inbound hooks, HTTP server) on a FakeClock, sending to the fake
platform on 127.0.0.1. A standup runs (its prompts go out: one meets a 429 and is sent later,
one is refused and dead-lettered), members answer, a GitHub hook gets a ping and a forged
delivery, an outbound webhook meets a 429 and then arrives; the scrape counts each of them."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot import directory
from bot.app import App
from bot.chat import Response
from bot.config import (
    DatabaseSection,
    DeliverySection,
    SchedulerSection,
    SecuritySection,
    Settings,
    WebhooksSection,
    WebSection,
)
from bot.events import Actor, CommandInvocation, FormSubmission, Origin
from bot.features.standups.runtime import FORM_ID
from bot.features.standups.schedules import PROMPT_HANDLER
from bot.metrics import Metrics
from storage.db import Database
from storage.models import Member, OutboxMessage, OutboxStatus, StandupParticipant, StandupPrompt
from tests.fakes.clock import FakeClock
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault
from tests.fakes.webhooks import WebhookReceiver
from tests.hooks_world import SECRET_IN_REPLY, github_headers, said
from tests.test_db_outages import IdleAdapter
from tests.test_standup_runtime import standup_row

KEY = "kJ0Xz8oQm1yVbq3M0nW5bJp7nZ5n8bQw0qYc3y1xH2E="
SAFETY = 30.0
DAY = date(2026, 3, 9)  # a Monday
NINE = datetime.combine(DAY, time(9), ZoneInfo("Europe/Berlin")).astimezone(UTC)
LATE = timedelta(seconds=90)  # the scheduler is this late for the prompts
TEAM = ("alice", "bob", "carol")
TOKEN = "metrics-token-0123456789"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class FakeAdapter(IdleAdapter):
    """The fake platform's adapter: its port sends to the FakeReceiver; events come from the
    test through ``app.core.handle``."""

    def __init__(self, clock: FakeClock, port: HttpPort) -> None:
        super().__init__(clock)
        self.port = port  # type: ignore[assignment]


@dataclass
class Running:
    app: App
    clock: FakeClock
    receiver: FakeReceiver
    http: httpx.AsyncClient
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.app.web.port}"

    async def handle(self, event: object) -> Response:
        response = await self.app.core.handle(event)  # type: ignore[arg-type]
        await self.app.core.idle()
        return response

    def origin(self, event_id: str | None = None) -> Origin:
        return Origin("test", "T1", event_id or f"e{next(self._ids)}", "Test", "C-team")

    async def command(self, name: str, text: str, by: str = "alice") -> str:
        actor = Actor(by, by, "Europe/Berlin", is_platform_admin=by == "alice")
        return said(await self.handle(CommandInvocation(self.origin(), actor, name, text)))

    async def until(self, done: Callable[[], bool]) -> None:
        """Let the worker run, the clock moving a second at a time (a 429's pause, backoff),
        until ``done``."""
        async with asyncio.timeout(SAFETY):
            while not done():
                self.clock.advance(timedelta(seconds=1))
                self.app.worker.wake()
                await asyncio.sleep(0.02)

    async def scrape(self, token: str | None = TOKEN) -> Samples:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        got = await self.http.get(self.base + "/metrics", headers=headers)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("text/plain; version=")
        return parse(got.text)


async def seed(url: str, start: datetime) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            workspace = await directory.ensure_workspace(session, "test", "T1", "Test", start)
            channel = await directory.ensure_channel(session, workspace, "C-team", "team", start)
            row = standup_row(workspace.id, channel.id, start)
            session.add(row)
            await session.flush()
            for name in TEAM:
                actor = Actor(name, name, "Europe/Berlin", is_platform_admin=name == "alice")
                member = await directory.ensure_member(session, workspace, actor, start)
                member.dm_channel_id = f"D-{name}"
                session.add(StandupParticipant(standup_id=row.id, member_id=member.id))
    finally:
        await db.dispose()


@pytest.fixture
async def running(database: Database, receiver: FakeReceiver) -> AsyncIterator[Running]:
    start = NINE - timedelta(minutes=5)
    await seed(database.url, start)
    clock = FakeClock(start)
    settings = Settings.model_construct(
        database=DatabaseSection(url=database.url),
        scheduler=SchedulerSection(reconcile_interval_seconds=3600),
        delivery=DeliverySection(
            poll_interval_seconds=0.02,
            max_attempts=3,
            backoff_base_seconds=0.5,
            backoff_max_seconds=1.0,
            adaptive_rates=False,
        ),
        security=SecuritySection.model_validate({"secret_key": KEY}),
        web=WebSection.model_validate({"port": 0, "metrics_token": TOKEN}),
        webhooks=WebhooksSection(allow_private_targets=True),
    )
    port = HttpPort(receiver.url)
    app = App(settings, FakeAdapter(clock, port))
    await app.start()
    await app.web.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            yield Running(app, clock, receiver, http)
    finally:
        await app.stop()
        await port.aclose()


async def test_a_scrape_counts_what_happened(running: Running) -> None:
    app, receiver = running.app, running.receiver
    before = await running.scrape()
    assert value(before, "syncup_sends_total", method="dm", result="sent") == 0

    # The standup's prompts, 90 s late: the first DM meets a 429, the next is refused (dead).
    receiver.inject(Fault("status", status=429, retry_after=0.5, method="dm"))
    receiver.inject(Fault("status", status=400, method="dm"))
    running.clock.set(NINE + LATE)
    await app.scheduler.reconcile()
    await running.until(lambda: len(receiver.created) >= 2)

    # Answers: a form (the batched path), the same submission again, a bad command, a good one.
    async with app.db.read() as session:
        bobs = await session.scalar(
            select(StandupPrompt.id)
            .join(Member, Member.id == StandupPrompt.member_id)
            .where(Member.platform_user_id == "bob")
        )
    answered = FormSubmission(
        running.origin("answer-1"),
        Actor("bob", "bob", "Europe/Berlin"),
        FORM_ID,
        {"q0": "shipped", "q1": "more", "q2": "none"},
        str(bobs),
    )
    await running.handle(answered)
    await running.handle(answered)  # the platform's retry: a duplicate
    assert "Unknown command" in await running.command("nosuch", "x")
    assert "help" in (await running.command("syncup", "help")).lower()

    # An inbound GitHub hook: a ping, then a forged delivery.
    added = await running.command("milestone", "hook add github ci")
    url = re.search(r"/hooks/github/[\w-]+", added)
    secret = SECRET_IN_REPLY.search(added)
    assert url is not None and secret is not None, added
    body = b'{"zen": "Keep it simple.", "hook_id": 1, "repository": {"full_name": "acme/shop"}}'
    ping = await running.http.post(
        running.base + url.group(0),
        content=body,
        headers=github_headers(secret.group(1), body, "ping", "d-1"),
    )
    assert ping.json() == {"ok": True, "outcome": "ping"}
    forged = await running.http.post(
        running.base + url.group(0),
        content=body,
        headers=github_headers("not-the-secret", body, "ping", "d-2"),
    )
    assert forged.status_code == 401

    # An outbound webhook: a 429 first, then it arrives.
    async with WebhookReceiver() as hooks:
        hooks.script.append((429, {"retry-after": "0"}))
        await running.command("raci", f"webhook add ops {hooks.base}/ops --events opened")
        await running.command("raci", "webhook test ops")
        await running.until(lambda: len(hooks.received) >= 2)

    # Whatever else is still due (the report) goes out before the counts are read.
    await running.until(lambda: not app.worker.held())
    for _ in range(3):
        running.clock.advance(timedelta(seconds=2))
        app.worker.wake()
        await asyncio.sleep(0.05)

    # An outbox row waiting (not due for an hour), queued two minutes ago.
    async with app.db.transaction() as session:
        now = running.clock.now()
        dead = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
            )
        ).one()
        session.add(
            OutboxMessage(
                idempotency_key="metrics-test-waiting",
                workspace_id=dead.workspace_id,
                method="post",
                target={"channel_id": "C-team"},
                payload=dead.payload,
                status=OutboxStatus.PENDING,
                next_attempt_at=now + timedelta(hours=1),
                created_at=now - timedelta(minutes=2),
            )
        )

    s = await running.scrape()
    # Events by kind and outcome, and their handling time.
    assert value(s, "syncup_events_total", kind="form", outcome="ok") == 1
    assert value(s, "syncup_events_total", kind="form", outcome="duplicate") == 1
    assert value(s, "syncup_events_total", kind="command", outcome="user_error") == 1
    commands_ok = value(s, "syncup_events_total", kind="command", outcome="ok")
    assert commands_ok == 4  # help, hook add, webhook add, webhook test
    handled = sum(v for (name, labels), v in s.items() if name == "syncup_events_total")
    timed = sum(v for (name, _), v in s.items() if name == "syncup_event_handling_seconds_count")
    assert timed == handled == 7

    # Sends: the prompts (one 429 then sent, one dead), the webhook (429, then sent).
    assert value(s, "syncup_sends_total", method="dm", result="rate_limited") == 1
    assert value(s, "syncup_sends_total", method="dm", result="dead") == 1
    assert value(s, "syncup_sends_total", method="dm", result="sent") == 2
    assert value(s, "syncup_sends_total", method="webhook", result="rate_limited") == 1
    assert value(s, "syncup_sends_total", method="webhook", result="sent") == 1
    assert value(s, "syncup_webhook_deliveries_total", result="rate_limited") == 1
    assert value(s, "syncup_webhook_deliveries_total", result="sent") == 1
    assert sum(v for (n, _), v in s.items() if n == "syncup_webhook_deliveries_total") == 2

    # Inbound hooks.
    assert value(s, "syncup_hook_deliveries_total", source="github", result="ping") == 1
    assert value(s, "syncup_hook_deliveries_total", source="github", result="bad_signature") == 1

    # The scheduler: the prompt occurrence ran 90 s after it was due.
    ran = value(s, "syncup_occurrences_total", handler=PROMPT_HANDLER, outcome="ran")
    assert ran >= 1
    lag_sum = value(s, "syncup_scheduler_lag_seconds_sum", handler=PROMPT_HANDLER)
    assert lag_sum == pytest.approx(ran * LATE.total_seconds())
    assert value(s, "syncup_scheduler_lag_seconds_bucket", handler=PROMPT_HANDLER, le="60.0") == 0
    assert value(s, "syncup_scheduler_lag_seconds_bucket", handler=PROMPT_HANDLER, le="120.0") == (
        ran
    )

    # The outbox, read from the database at the scrape.
    assert value(s, "syncup_outbox_pending", method="post") == 1
    assert value(s, "syncup_outbox_oldest_pending_age_seconds", method="post") == 120
    assert value(s, "syncup_outbox_dead", method="dm") == 1
    assert ("syncup_outbox_pending", frozenset({("method", "dm")})) not in s

    # Every transaction is timed for its wait on a connection.
    assert value(s, "syncup_db_pool_wait_seconds_count") > 0


async def test_pool_waits_are_counted_when_every_connection_is_busy(running: Running) -> None:
    db = running.app.db
    capacity = db._capacity
    assert capacity is not None
    before = await running.scrape()
    release = asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with db.transaction():
            holding += 1
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(capacity)]
    async with asyncio.timeout(SAFETY):
        while holding < capacity:  # noqa: ASYNC110 - the holders are plain tasks
            await asyncio.sleep(0.01)
    late = asyncio.create_task(hold())  # no connection free: it queues
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(*holders, late)
    after = await running.scrape()
    waited = value(after, "syncup_db_pool_waits_total") - value(
        before, "syncup_db_pool_waits_total"
    )
    assert waited >= 1
    slow = value(after, "syncup_db_pool_wait_seconds_bucket", le="0.025") - value(
        before, "syncup_db_pool_wait_seconds_bucket", le="0.025"
    )
    count = value(after, "syncup_db_pool_wait_seconds_count") - value(
        before, "syncup_db_pool_wait_seconds_count"
    )
    assert count - slow >= 1  # the late one waited at least 50 ms


async def test_the_token_guards_metrics(running: Running) -> None:
    url = running.base + "/metrics"
    missing = await running.http.get(url)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "syncup_" not in missing.text
    wrong = await running.http.get(url, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    basic = await running.http.get(url, headers={"authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert (
        await running.http.post(url, headers={"authorization": f"Bearer {TOKEN}"})
    ).status_code == 405
    assert (await running.http.get(url + "/x")).status_code == 404
    assert await running.scrape()  # with the token


def test_each_app_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.event("command", "ok")
    assert b'syncup_events_total{kind="command",outcome="ok"} 1.0' in one.exposition()
    assert b"syncup_events_total{" not in two.exposition()


def test_the_documented_alert_rules_name_metrics_that_exist() -> None:
    """docs/operations.md's example rules (a YAML block) only use metrics a scrape has; no
    YAML parser is a dependency, so the block is read for its metric names."""
    text = DOCS.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    rules = [b for b in blocks if "alert:" in b]
    assert len(rules) == 1, "one block of example alert rules"
    metrics = Metrics()
    metrics.event("command", "ok")
    metrics.event_seconds.labels("command").observe(0.1)
    metrics.sent("dm", "sent")
    metrics.occurrence("x", "ran", 1.0)
    metrics.pool_wait(0.1)
    metrics.hook("github", "ping")
    metrics.webhook("sent")
    metrics.outbox_pending.labels("dm").set(1)
    metrics.outbox_oldest.labels("dm").set(1)
    metrics.outbox_dead.labels("dm").set(1)
    exported = {
        s.name
        for f in text_string_to_metric_families(metrics.exposition().decode())
        for s in f.samples
    }
    used = set(re.findall(r"\bsyncup_[a-z_]+", rules[0]))
    assert used, rules[0]
    assert used <= exported, used - exported
    # Every metric is listed in the page's table.
    for family in metrics.registry.collect():
        shown = family.name + ("_total" if family.type == "counter" else "")
        assert f"| `{shown}` |" in text, f"{shown} is not in docs/operations.md's table"
