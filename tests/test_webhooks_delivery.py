"""Outbound webhooks end to end: /raci webhook add, a blocker's timeline, the outbox, the real
delivery worker and sender, and a receiver on 127.0.0.1 that verifies every signature with the
standardwebhooks package. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.delivery.admin import list_messages
from bot.features.blockers.timeline import Kind
from bot.webhooks.formats import PAGERDUTY_SEVERITY
from storage.db import Database
from storage.models import OutboxStatus
from tests.fakes.webhooks import WebhookReceiver, WebhookWorld, said, webhook_world


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[WebhookWorld]:
    async with webhook_world(database, db_url) as made:
        yield made


@pytest.fixture
async def hooks() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


async def add_standard(world: WebhookWorld, hooks: WebhookReceiver, *extra: str) -> str:
    secret = await world.add("ops", f"{hooks.base}/ops", *extra)
    assert secret is not None and secret.startswith("whsec_")
    hooks.secrets["/ops"] = secret
    return secret


async def test_blocker_events_arrive_signed_in_order(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    blocker = await world.blocker("waiting for the GPU quota", severity="high")
    await world.record(blocker, Kind.ACKNOWLEDGED)
    await world.record(blocker, Kind.NOTED, {"note": "asked infra"})  # not an event
    await world.record(blocker, Kind.RESOLVED)
    async with world.worker():
        got = await hooks.wait_for(3)
    assert [r.verified for r in got] == [True, True, True]
    assert [r.json["type"] for r in got] == [
        "blocker.opened",
        "blocker.acknowledged",
        "blocker.resolved",
    ]
    first = got[0].json
    assert set(first) == {"type", "timestamp", "data"}
    data = first["data"]
    assert data["blocker"]["id"] == blocker
    assert data["blocker"]["text"] == "waiting for the GPU quota"
    assert data["blocker"]["severity"] == "high"
    assert data["blocker"]["reporter"] == {"id": "bob", "name": "bob"}
    assert data["workspace"] == {"platform": "test", "id": "T1", "name": "Test"}
    assert got[1].json["data"]["change"]["actor"] == {"id": "admin", "name": "admin"}
    assert len({r.webhook_id for r in got}) == 3  # one id per event
    assert all(r.headers["content-type"] == "application/json" for r in got)


async def test_a_500_is_retried_with_the_same_webhook_id_and_a_fresh_signature(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    hooks.script = [(500, {}), (503, {})]
    await world.blocker()
    async with world.worker(max_attempts=5):
        got = await hooks.wait_for(3)
    assert [r.verified for r in got] == [True, True, True]
    assert len({r.webhook_id for r in got}) == 1
    # Each attempt is signed anew over its own timestamp; the body stays the same.
    assert len({r.body for r in got}) == 1
    (row,) = await world.outbox()
    assert row.status == OutboxStatus.SENT and row.attempts == 3


async def test_a_429_waits_for_retry_after_and_is_no_failed_attempt(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    hooks.script = [(429, {"Retry-After": "1"})]
    await world.blocker()
    async with world.worker(max_attempts=1):
        got = await hooks.wait_for(2)
        await asyncio.sleep(0.2)  # let the outcome be recorded
    assert got[0].webhook_id == got[1].webhook_id
    (row,) = await world.outbox()
    # One attempt allowed, and it still went through: the 429 did not count as one.
    assert row.status == OutboxStatus.SENT and row.rate_limited == 1


async def test_dead_letter_after_max_attempts_shows_in_syncup_outbox(
    world: WebhookWorld, hooks: WebhookReceiver, db_url: str
) -> None:
    await add_standard(world, hooks)
    hooks.default_status = 502
    await world.blocker()
    async with world.worker(max_attempts=3):
        await world.wait_dead(1)
    (dead,) = await list_messages(world.db, "dead")
    assert dead.method == "webhook" and dead.attempts == 3
    assert dead.last_error == "DeliveryError: webhook 'ops': HTTP 502"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["outbox", "list", "--status", "dead"],
        env={"SYNCUP_DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    assert "webhook" in result.output and "HTTP 502" in result.output
    assert len(hooks.received) == 3


async def test_a_4xx_is_dead_at_once_and_redirects_are_not_followed(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    hooks.script = [(410, {}), (302, {"Location": "http://169.254.169.254/"})]
    await world.blocker()
    await world.blocker()
    async with world.worker(max_attempts=5):
        await world.wait_dead(2)
    errors = sorted(m.last_error or "" for m in await list_messages(world.db, "dead"))
    assert errors[0].startswith("PermanentDeliveryError: webhook 'ops': HTTP 302, a redirect")
    assert errors[1] == "PermanentDeliveryError: webhook 'ops': HTTP 410, refused"
    assert len(hooks.received) == 2  # no retries, and nobody went to the Location


async def test_event_filter_and_escalation_target(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks, "--events", "resolved")
    pager = await world.add("pager", f"{hooks.base}/pager", "--events=opened")
    hooks.secrets["/pager"] = pager or ""
    listed = said(await world.command("webhook list"))
    assert "ops (id" in listed and "events: resolved" in listed and "events: opened" in listed
    ids = {row.name: row.id for row in await _endpoints(world)}

    one = await world.blocker("first")
    two = await world.blocker("second")
    # A level of one's ladder names "ops", whose filter lacks "escalated": it still gets it,
    # and then the acknowledgement too (it follows that blocker); "two" is not followed.
    await world.record(one, Kind.ESCALATED, {"level": 3, "target": f"webhook:{ids['ops']}"})
    await world.record(one, Kind.ACKNOWLEDGED)
    await world.record(two, Kind.ACKNOWLEDGED)
    await world.record(two, Kind.RESOLVED)
    async with world.worker():
        got = await hooks.wait_for(5)
        await asyncio.sleep(0.3)  # nothing else arrives
    seen = sorted((r.path, r.json["type"], r.json["data"]["blocker"]["text"]) for r in got)
    assert seen == [
        ("/ops", "blocker.acknowledged", "first"),
        ("/ops", "blocker.escalated", "first"),
        ("/ops", "blocker.resolved", "second"),
        ("/pager", "blocker.opened", "first"),
        ("/pager", "blocker.opened", "second"),
    ]
    assert all(r.verified for r in hooks.received)
    escalated = next(r for r in got if r.json["type"] == "blocker.escalated").json
    assert escalated["data"]["change"]["detail"] == {
        "level": 3,
        "target": f"webhook:{ids['ops']}",
    }


async def test_test_command_and_removed_endpoint(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    reply = said(await world.command("webhook test OPS"))
    assert "A test event is on its way to" in reply and "ops" in reply
    async with world.worker():
        (got,) = await hooks.wait_for(1)
    assert got.verified and got.json["type"] == "webhook.test"
    assert got.json["data"]["requested_by"] == {"id": "admin", "name": "admin"}
    # Queued, then the endpoint is removed: the row is dead-lettered, nothing is sent.
    await world.blocker()
    assert "removed" in said(await world.command("webhook remove ops"))
    async with world.worker():
        await world.wait_dead(1)
    (dead,) = await list_messages(world.db, "dead")
    assert "was removed" in (dead.last_error or "")
    assert len(hooks.received) == 1


async def test_pagerduty_trigger_acknowledge_resolve(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    world.settings.webhooks.pagerduty_events_url = f"{hooks.base}/v2/enqueue"
    hooks.default_status = 202
    routing_key = "R0123456789abcdef0123456789abcde"
    assert await world.add("oncall", routing_key, "--format", "pagerduty") is None
    blocker = await world.blocker("the feature store is down", severity="critical")
    await world.record(blocker, Kind.ESCALATED, {"level": 2, "target": "accountable"})
    await world.record(blocker, Kind.ACKNOWLEDGED)
    await world.record(blocker, Kind.RESOLVED)
    async with world.worker():
        got = await hooks.wait_for(3)
    bodies = [r.json for r in got]
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in bodies} == {f"syncup-blocker-{blocker}"}
    assert {b["routing_key"] for b in bodies} == {routing_key}
    trigger = bodies[0]["payload"]
    assert trigger["severity"] == PAGERDUTY_SEVERITY["critical"] == "critical"
    assert trigger["summary"] == f"Blocker #{blocker}: the feature store is down"
    assert trigger["source"] == "syncup Test"
    assert "payload" not in bodies[1] and "payload" not in bodies[2]
    assert all(r.path == "/v2/enqueue" for r in got)


async def test_pagerduty_test_opens_and_resolves_an_incident(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    world.settings.webhooks.pagerduty_events_url = f"{hooks.base}/v2/enqueue"
    hooks.default_status = 202
    await world.add("oncall", "R0123456789abcdef0123456789abcde", "--format", "pagerduty")
    await world.command("webhook test oncall")
    async with world.worker():
        got = await hooks.wait_for(2)
    trigger, resolve = (r.json for r in got)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["severity"] == "info"


async def _endpoints(world: WebhookWorld) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    from storage.webhooks import WebhookEndpoint

    async with world.db.transaction() as session:
        return list(await session.scalars(select(WebhookEndpoint)))


async def test_a_disabled_endpoint_gets_nothing_until_enabled(
    world: WebhookWorld, hooks: WebhookReceiver
) -> None:
    await add_standard(world, hooks)
    await world.blocker("queued before")
    assert "disabled" in said(await world.command("webhook disable ops"))
    assert "already disabled" in said(await world.command("webhook disable ops"))
    assert "(disabled)" in said(await world.command("webhook list"))
    await world.blocker("while disabled")  # not queued at all
    async with world.worker():
        (dead,) = await world.wait_dead(1)
    assert dead.error == "PermanentDeliveryError: webhook 'ops' is disabled"
    assert "enabled" in said(await world.command("webhook enable ops"))
    await world.blocker("after")
    async with world.worker():
        (got,) = await hooks.wait_for(1)
    assert got.verified and got.json["data"]["blocker"]["text"] == "after"
    assert len(await world.outbox()) == 2
