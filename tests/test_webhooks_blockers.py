"""Webhooks with the real blocker and escalation features (both databases): /blocker commands
and an escalation ladder whose first level names a webhook produce the events a standard
receiver and PagerDuty see, signed, in order, one incident per blocker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.clock import SystemClock
from bot.core import Core
from bot.delivery.worker import DeliveryWorker
from bot.features import blockers, raci
from bot.features.blockers import escalation
from bot.scheduling.scheduler import Scheduler
from bot.webhooks import register
from bot.webhooks.keys import Keys
from bot.webhooks.port import RoutingPort
from bot.webhooks.sender import WebhookSender
from storage.db import Database
from storage.raci import RaciArea
from storage.webhooks import WebhookEndpoint
from tests.blocker_world import ADMIN, command, make_world, said
from tests.fakes.webhooks import (
    NoPlatform,
    WebhookReceiver,
    delivery_settings,
    settings_for,
)

ROUTING_KEY = "R0123456789abcdef0123456789abcde"


@pytest.fixture
async def hooks() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


async def test_a_blocker_escalated_to_a_webhook_then_acknowledged_and_resolved(
    database: Database, db_url: str, hooks: WebhookReceiver
) -> None:
    world = await make_world(database)
    settings = settings_for(db_url)
    settings.webhooks.pagerduty_events_url = f"{hooks.base}/v2/enqueue"
    hooks.default_status = 202
    core = Core(database, world.clock)
    raci.register(core)
    blockers.register(core)
    scheduler = Scheduler(database, world.clock, instance="s1", reconcile_interval=3600)
    escalation.register(core, scheduler)
    keys = Keys(settings)
    register(core, settings, keys=keys)

    async def run(line: str) -> str:
        return said(await core.handle(command(line, ADMIN)))

    added = await run(f"/raci webhook add ops {hooks.base}/ops --events opened")
    secret = added.split("shown only this once: ")[1].split(" ")[0]
    hooks.secrets["/ops"] = secret
    assert "added" in await run(f"/raci webhook add oncall {ROUTING_KEY} --format pagerduty")
    async with database.transaction() as session:
        ops = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.key == "ops"))
        assert ops is not None
        area = await session.get(RaciArea, world.areas["data pipeline"])
        assert area is not None
        area.policy = {
            "levels": [
                {"target": f"webhook:{ops.id}", "after": "4h"},
                {"target": "accountable", "after": "1d"},
            ],
            "repeat": 0,
            "reack": "1d",
        }

    answer = await run(
        "/blocker add The nightly ETL job fails --area data pipeline --severity high"
    )
    number = int(answer.split("#")[1].split(" ")[0])
    # 4 business hours after Monday 11:00 in Berlin: level 1 (the "ops" webhook) at 14:00 UTC.
    world.clock.set(datetime(2026, 3, 9, 14, 0, 20, tzinfo=UTC))
    await scheduler.reconcile()
    await scheduler.reconcile()
    assert "acknowledged" in (await run(f"/blocker ack {number}")).lower()
    assert "resolved" in (await run(f"/blocker resolve {number}")).lower()

    sender = WebhookSender(database, settings.webhooks, keys)
    worker = DeliveryWorker(
        database,
        RoutingPort(NoPlatform(), sender),
        delivery_settings(),
        clock=SystemClock(),
        instance="w1",
    )
    await worker.start()
    try:
        got = await hooks.wait_for(7)
    finally:
        await worker.stop()
        await sender.aclose()
    standard = [r for r in got if r.path == "/ops"]
    assert all(r.verified for r in standard)
    # "ops" subscribed to opened only; the ladder named it, so it hears the rest of this blocker.
    assert [r.json["type"] for r in standard] == [
        "blocker.opened",
        "blocker.escalated",
        "blocker.acknowledged",
        "blocker.resolved",
    ]
    escalated = standard[1].json["data"]
    assert escalated["blocker"]["area"] == {
        "id": world.areas["data pipeline"],
        "name": "data pipeline",
    }
    assert escalated["change"]["detail"]["target"] == f"webhook:{ops.id}"
    assert escalated["change"]["detail"]["level"] == 1
    assert "targets" not in escalated["change"]["detail"]
    assert standard[3].json["data"]["blocker"]["status"] == "resolved"
    paged = [r.json for r in got if r.path == "/v2/enqueue"]
    assert [p["event_action"] for p in paged] == ["trigger", "acknowledge", "resolve"]
    assert {p["dedup_key"] for p in paged} == {f"syncup-blocker-{number}"}
    assert paged[0]["payload"]["severity"] == "error"  # high
    assert paged[0]["payload"]["component"] == "data pipeline"
    assert paged[0]["payload"]["summary"] == (
        f"Blocker #{number} (data pipeline): The nightly ETL job fails"
    )
