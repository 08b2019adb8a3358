"""Pacing shared by replicas, kept across restarts, and fair between workspaces: the real
worker against the fake platform over HTTP, on SQLite and PostgreSQL.

Figures are counts at the fake (requests, 429s, the order messages arrived in) and lower bounds
on the spacing of arrivals; nothing asserts how fast anything went.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.chat import message
from bot.config import DeliverySection
from bot.delivery.admin import learned_rates
from bot.delivery.outbox import Outgoing, enqueue_many
from bot.delivery.ratelimit import RateLimiterRegistry, TokenBucket
from bot.delivery.worker import DeliveryWorker
from bot.port import Method, RateLimit, Target
from storage import migrate
from storage.db import Database
from storage.pacing import DeliveryRate
from tests.cli_env import cli_on_sqlite
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver
from tests.test_delivery import JumpClock, add_workspace, put, settings

SAFETY = 120


async def queue(db: Database, workspace_id: int, prefix: str, count: int) -> list[str]:
    keys = [f"{prefix}-{i:05d}" for i in range(count)]
    outgoing = [
        Outgoing(workspace_id, Method.POST, Target(channel_id="C1"), message(f"hi {key}"), key)
        for key in keys
    ]
    async with db.transaction() as session:
        await enqueue_many(session, outgoing, datetime.now(UTC))
    return keys


async def deliver(workers: list[DeliveryWorker], receiver: FakeReceiver, keys: list[str]) -> None:
    for worker in workers:
        await worker.start()
    try:
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys(keys)
    finally:
        for worker in workers:
            await worker.stop()


@pytest.fixture
async def limited() -> AsyncIterator[FakeReceiver]:
    """A platform allowing 25 posts a second per workspace, 3 at once; 429 beyond."""
    async with FakeReceiver(rate=25.0, burst=3) as fake:
        yield fake


def told(receiver: FakeReceiver, rate: float, ceiling: float | None = None) -> HttpPort:
    limits = dict.fromkeys(Method, RateLimit(rate=rate, burst=3))
    return HttpPort(
        receiver.url,
        limits=limits,
        rate_ceilings=None if ceiling is None else dict.fromkeys(Method, ceiling),
    )


# --- several replicas, one budget ------------------------------------------------------------


async def run_replicas(
    database: Database, receiver: FakeReceiver, replicas: int, prefix: str
) -> tuple[int, list[int]]:
    """``replicas`` workers, each with its own port (its own HTTP client), told the platform's
    rate (slightly under it, as an operator would set it); returns the 429s drawn and how many
    messages each worker sent."""
    ws = await add_workspace(database, f"W-{prefix}")
    keys = await queue(database, ws, prefix, 150)
    before = receiver.rate_limited
    ports = [told(receiver, 22.0) for _ in range(replicas)]
    workers = [
        DeliveryWorker(
            database,
            port,
            settings(batch_size=20, lease_seconds=30.0),
            clock=JumpClock(),
            instance=f"{prefix}-{n}",
        )
        for n, port in enumerate(ports)
    ]
    try:
        await deliver(workers, receiver, keys)
    finally:
        for port in ports:
            await port.aclose()
    assert receiver.duplicates() == 0
    sent = [
        sum(1 for d in port.deliveries if d.idempotency_key.startswith(prefix)) for port in ports
    ]
    return receiver.rate_limited - before, sent


async def test_two_replicas_on_postgresql_draw_no_more_429s_than_one(
    database: Database, limited: FakeReceiver
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("replicas share PostgreSQL; SQLite has one process")
    one, _ = await run_replicas(database, limited, 1, "one")
    two, sent = await run_replicas(database, limited, 2, "two")
    assert all(n > 0 for n in sent), sent  # both replicas sent: the budget was shared
    # Paced per process, two replicas would send at twice the rate: ~75 of the 150 refused.
    assert two <= max(one, 2), (one, two)
    # The spacing at the platform: per workspace, no faster than the told rate allows.
    times = [r.at for r in limited.requests if r.workspace == "W-two" and r.outcome == "created"]
    assert times[-1] - times[0] >= (len(times) - 1 - 3) / 22.0 - 1.0


# --- learning, kept across a restart, under the ceiling ---------------------------------------


async def past_the_last_slot(db: Database, ws: int) -> None:
    """Wait until the shared row's next slot and pause are behind the database's clock."""
    if db.dialect != "postgresql":
        return  # a bucket in memory: the new process's starts full
    async with db.transaction() as session:
        row = await session.get_one(DeliveryRate, (ws, "post"))
        clock = select(func.extract("epoch", func.clock_timestamp()))
        wait = max(row.tat, row.paused_until) - float(await session.scalar(clock))
    await asyncio.sleep(max(0.0, wait))


async def test_the_learned_rate_rises_falls_and_survives_a_restart(
    database: Database, limited: FakeReceiver
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = await queue(database, ws, "learn", 60)
    # Told far less than the platform allows (a platform slow enough for a busy test machine:
    # only a bucket that holds its sends back learns, not one the machine cannot keep busy).
    limited.rate = 3.0
    port = told(limited, 0.75, ceiling=100.0)
    first = DeliveryWorker(database, port, settings(), clock=JumpClock(), instance="first")
    try:
        await deliver([first], limited, keys)
    finally:
        await port.aclose()
    assert limited.duplicates() == 0
    assert limited.rate_limited >= 1  # it went past 3/s and was told so ...
    (stored,) = [r for r in await learned_rates(database) if r.bucket == "post"]
    assert stored.learned and stored.rate_limited >= 1
    # ... rose above what it was told, and came back from where slow start overshot.
    assert 0.75 < stored.rate < 3.0 * 1.5

    # A new process (a restart) starts from what the first learned, not from the told 0.75/s.
    # A restart takes longer than the platform's window, which the first left empty, and than
    # the first's last reserved slot (on PostgreSQL the shared row keeps it): the one send below
    # is not held back, so it completes no round of the search that would move the rate.
    limited.refill()
    await past_the_last_slot(database, ws)
    port = told(limited, 0.75, ceiling=100.0)
    second = DeliveryWorker(database, port, settings(), clock=JumpClock(), instance="second")
    try:
        await put(database, JumpClock(), ws, "after-restart")
        assert await second.run_once() == 1
    finally:
        await port.aclose()
    assert second.limits.bucket(ws, Method.POST).rate == pytest.approx(stored.rate)


async def test_delivery_rates_is_a_ceiling_the_learning_never_passes(
    database: Database, limited: FakeReceiver
) -> None:
    ws = await add_workspace(database, "W-1")
    keys = await queue(database, ws, "capped", 120)
    port = told(limited, 4.0, ceiling=200.0)
    rates = {"post": {"rate": 10.0, "burst": 3}}
    worker = DeliveryWorker(
        database, port, settings(rates=rates), clock=JumpClock(), instance="capped"
    )
    try:
        await deliver([worker], limited, keys)
    finally:
        await port.aclose()
    assert limited.rate_limited == 0  # never near the platform's 25/s
    (stored,) = [r for r in await learned_rates(database) if r.bucket == "post"]
    assert stored.rate == 10.0
    times = [r.at for r in limited.requests]
    # 120 sends at no more than 10 a second (3 at once) take at least 117 / 10 s.
    # (Less a second for sends a busy machine delayed: at 25/s they would take 4.7 s.)
    assert times[-1] - times[0] >= (len(times) - 3) / 10.0 - 1.0


# --- fairness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["run", "run_once"])
async def test_a_small_workspace_is_not_starved_by_a_busy_one(
    entry: str, database: Database
) -> None:
    async with FakeReceiver() as receiver:
        busy = await add_workspace(database, "W-busy")
        small = await add_workspace(database, "W-small")
        await queue(database, busy, "busy", 5000)
        small_keys = await queue(database, small, "small", 5)  # queued after all 5,000
        # Both paced at 20 a second per workspace, as the platform would.
        port = HttpPort(receiver.url, limits=dict.fromkeys(Method, RateLimit(20.0, 1)))
        worker = DeliveryWorker(
            database,
            port,
            DeliverySection.model_validate({"poll_interval_seconds": 0.05}),
            clock=JumpClock(),
            instance="fair",
        )
        try:
            if entry == "run":
                await deliver([worker], receiver, small_keys)
            else:
                async with asyncio.timeout(SAFETY):
                    await worker.run_once()
        finally:
            await port.aclose()
        arrived = receiver.keys()
    assert set(small_keys) <= set(arrived)
    last_small = max(arrived.index(key) for key in small_keys)
    busy_before = sum(1 for key in arrived[:last_small] if key.startswith("busy"))
    # Side by side at the same pace: about as many of the busy one's as the small one's.
    assert busy_before <= 10, busy_before


async def test_outbox_rates_shows_each_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import cli

    url = cli_on_sqlite(tmp_path, monkeypatch, "rates.db")
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        runner = CliRunner()
        empty = await asyncio.to_thread(runner.invoke, cli, ["outbox", "rates"])
        ws = await add_workspace(db, "T-RATES")
        registry = RateLimiterRegistry({Method.DM: RateLimit(4.0, 8)}, adaptive=True)
        bucket = registry.bucket(ws, Method.DM)
        assert isinstance(bucket, TokenBucket) and bucket.pace is not None
        bucket.pace.on_429(0.0)  # a first 429: no rate held yet, cut to 0.7 of 4/s
        assert await registry.save(db) == 1
    finally:
        await db.dispose()
    shown = await asyncio.to_thread(runner.invoke, cli, ["outbox", "rates"])
    assert empty.exit_code == 0 and empty.output == "No learned rates yet: nothing has been sent.\n"
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split()[:4] == ["workspace", "method", "rate/s", "burst"]
    assert lines[1].split()[:7] == ["T-RATES", "dm", "2.80", "8", "cut", "by", "429"]
    assert lines[1].split()[7:9] == ["-", "1"]  # nothing measured yet, one 429
