"""Escalation at company scale: 100,000 open blockers over 1,000 areas in 20 time zones.

Builds, in a scratch PostgreSQL database, one workspace with AREAS RACI areas (working hours
09:00-17:00 Monday to Friday in 20 IANA zones, public holidays of a country each), a Responsible
and an Accountable member per area (in the area's zone), and BLOCKERS open blockers spread over
the areas whose next escalation steps are due at random times over the next 30 days, except
DUE of them (one per area, severity critical: its first step DMs the Accountable at once at any
hour) that fall due in the same minute. Then measures what issue 12 asks for:

(a) **the due query**: the sweep's source (the earliest ``next_escalation_at``) and its batch
    query (the due blockers, oldest first, ``FOR UPDATE SKIP LOCKED``), each run QUERIES times:
    p50 and p99 (goal p99 < 20 ms), and ``EXPLAIN`` showing the index on
    ``next_escalation_at``, not a scan;
(b) **the burst**: two replicas (each a Core, a Scheduler and a DeliveryWorker, as
    ``bot.app.App`` wires them) on the same database, sending to the fake platform on
    127.0.0.1, which allows RATE DMs/s with a burst of BURST per workspace and answers 429
    beyond that; by default Slack's DM pacing from ``adapters.slack.port.RATE_LIMITS``. Every
    step sent once (outbox rows, escalation entries, the receiver's counts), and the time from
    the due minute to the last DM against the bound DUE / RATE (goal <= 1.05 x the bound);
(c) **the sweep's memory**: another DUE blockers fall due and one scheduler sweeps them
    (without delivery) under tracemalloc: the peak, and the sweep's wall time.

Run from the repository root (PostgreSQL only: a scratch database is created next to the named
one and dropped afterwards)::

    .venv/bin/python benchmarks/escalation.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapters.slack.port import RATE_LIMITS as SLACK_RATES  # noqa: E402
from benchmarks.standup_fanout import (  # noqa: E402
    ZONES,
    _ms,
    _percentile,
    _pg_admin,
    scratch_database,
)
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.features import blockers, raci  # noqa: E402
from bot.features.blockers import escalation  # noqa: E402
from bot.features.blockers.business_time import BusinessCalendar  # noqa: E402
from bot.features.blockers.timeline import Kind  # noqa: E402
from bot.port import Method, RateLimit  # noqa: E402
from bot.scheduling.scheduler import Scheduler  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import (  # noqa: E402
    Blocker,
    BlockerEvent,
    BlockerSeverity,
    BlockerStatus,
    Member,
    OutboxMessage,
    Workspace,
)
from storage.raci import RaciArea, RaciAssignment  # noqa: E402
from tests.fakes.http_port import HttpPort  # noqa: E402
from tests.fakes.receiver import FakeReceiver  # noqa: E402

PLATFORM = "fake"
CHUNK = 5000
# A country per zone, for the public holidays of its areas (None: no holidays there).
COUNTRIES = {
    "America/New_York": "US",
    "America/Chicago": "US",
    "America/Denver": "US",
    "America/Los_Angeles": "US",
    "America/Sao_Paulo": "BR",
    "Europe/London": "GB",
    "Europe/Berlin": "DE",
    "Europe/Helsinki": "FI",
    "Asia/Kolkata": "IN",
    "Asia/Tokyo": "JP",
    "Australia/Sydney": "AU",
    "Pacific/Auckland": "NZ",
}


@dataclass
class Bench:
    workspace_id: int
    areas: list[int]
    accountable: dict[int, int]  # area id -> member id


# --- setup -------------------------------------------------------------------------------------


async def prepare(db: Database, areas: int, blockers_n: int, due: int, now: datetime) -> Bench:
    await migrate.upgrade(db.engine)
    rng = random.Random(12)
    async with db.transaction() as session:
        workspace = Workspace(
            platform=PLATFORM,
            external_id=f"BENCH-{uuid.uuid4().hex[:8]}",
            name="escalation",
            created_at=now,
        )
        session.add(workspace)
        await session.flush()
        ws = workspace.id
        people = [
            {
                "workspace_id": ws,
                "platform_user_id": f"U{i:05d}",
                "display_name": f"member {i:05d}",
                "timezone": ZONES[(i // 2) % len(ZONES)],
                "timezone_set_by_member": True,
                "dm_channel_id": f"D{i:05d}",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(2 * areas)
        ]
        member_ids = list(
            (await session.execute(insert(Member).returning(Member.id), people)).scalars()
        )
        area_rows = [
            {
                "workspace_id": ws,
                "name": f"area {i:04d}",
                "key": f"area {i:04d}",
                "channel_id": f"C{i:04d}",
                "timezone": ZONES[i % len(ZONES)],
                "work_days": [1, 2, 3, 4, 5],
                "day_start_minute": 540,
                "day_end_minute": 1020,
                "holiday_country": COUNTRIES.get(ZONES[i % len(ZONES)]),
                "custom_holidays": [],
                "keywords": [],
                "created_at": now,
                "updated_at": now,
            }
            for i in range(areas)
        ]
        area_ids = list(
            (await session.execute(insert(RaciArea).returning(RaciArea.id), area_rows)).scalars()
        )
        cells = []
        accountable = {}
        for i, area_id in enumerate(area_ids):
            r, a = member_ids[2 * i], member_ids[2 * i + 1]
            accountable[area_id] = a
            cells.append({"area_id": area_id, "role": "R", "who": f"member:{r}", "member_id": r})
            cells.append({"area_id": area_id, "role": "A", "who": f"member:{a}", "member_id": a})
        await session.execute(insert(RaciAssignment), cells)
    rows = []
    for i in range(blockers_n):
        area_index = i % areas
        is_due = i < due
        opened = now - timedelta(minutes=rng.randrange(1, 60 * 24 * 14))
        rows.append(
            {
                "workspace_id": ws,
                "member_id": member_ids[(2 * area_index + 2) % len(member_ids)],
                "text": f"blocked on thing {i}",
                "status": BlockerStatus.OPEN,
                "created_at": opened,
                "updated_at": opened,
                "source": "command",
                "area_id": area_ids[area_index],
                "severity": BlockerSeverity.CRITICAL if is_due else BlockerSeverity.NORMAL,
                "card_version": 0,
                "escalation_level": 0,
                "escalation_round": 0,
                "escalation_generation": 0,
                "escalation_anchor_generation": 0,
                "escalation_anchor_at": opened,
                # Parked far away until the part that needs them sets their due minute.
                "next_escalation_at": now + timedelta(days=400)
                if is_due
                else now + timedelta(minutes=rng.randrange(60, 60 * 24 * 30)),
            }
        )
    for start in range(0, len(rows), CHUNK):
        async with db.transaction() as session:
            await session.execute(insert(Blocker), rows[start : start + CHUNK])
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    return Bench(ws, area_ids, accountable)


async def make_due(db: Database, ids: list[int], at: datetime) -> None:
    """Blockers ``ids`` start their (critical) ladder at ``at``: due in that minute."""
    async with db.transaction() as session:
        await session.execute(
            update(Blocker)
            .where(Blocker.id.in_(ids))
            .values(next_escalation_at=at, escalation_anchor_at=at)
        )


async def due_ids(db: Database, bench: Bench, part: int, due: int) -> list[int]:
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                select(Blocker.id)
                .where(Blocker.severity == BlockerSeverity.CRITICAL)
                .order_by(Blocker.id)
            )
        )
    return ids[part * due : (part + 1) * due]


# --- (a) the due query --------------------------------------------------------------------------


async def time_queries(db: Database, at: datetime, queries: int) -> dict[str, list[float]]:
    source = escalation.EscalationSchedules()
    timings: dict[str, list[float]] = {"source": [], "batch": []}
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    for _ in range(queries):
        async with db.transaction() as session:
            started = time.perf_counter()
            await source.schedules(session, at)
            timings["source"].append(time.perf_counter() - started)
        async with db.transaction() as session:
            started = time.perf_counter()
            list(await session.scalars(escalation.due_query(at)))
            timings["batch"].append(time.perf_counter() - started)
    return timings


def _sql(db: Database, query: object) -> str:
    return str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


async def explain(db: Database, at: datetime) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text(f"EXPLAIN {_sql(db, escalation.due_query(at))}"))
        return [row[0] for row in rows]


async def server_times(db: Database, at: datetime, queries: int) -> dict[str, list[float]]:
    """The same two queries timed by the server itself (``EXPLAIN ANALYZE``): what the
    database spends, without the client's share of a busy machine's CPU."""
    earliest = (
        select(Blocker.id, Blocker.next_escalation_at)
        .where(Blocker.next_escalation_at.is_not(None))
        .order_by(Blocker.next_escalation_at)
        .limit(1)
    )
    sql = {"source": _sql(db, earliest), "batch": _sql(db, escalation.due_query(at))}
    times: dict[str, list[float]] = {"source": [], "batch": []}
    async with db.engine.connect() as conn:
        for _ in range(queries):
            for name, statement in sql.items():
                result = await conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"))
                plan = result.scalar_one()
                plan = json.loads(plan) if isinstance(plan, str) else plan
                times[name].append(float(plan[0]["Execution Time"]) / 1000)
            await conn.rollback()
    return times


# --- replicas -----------------------------------------------------------------------------------


@dataclass
class Replica:
    core: Core
    scheduler: Scheduler
    worker: DeliveryWorker | None


def replica(db: Database, name: str, port: HttpPort | None) -> Replica:
    """A syncup process as ``bot.app.App`` wires it (the parts escalation needs)."""
    clock = SystemClock()
    core = Core(db, clock)
    raci.register(core)
    blockers.register(core)
    scheduler = Scheduler(db, clock, instance=name, reconcile_interval=60)
    escalation.register(core, scheduler)
    worker = None
    if port is not None:
        worker = DeliveryWorker(db, port, DeliverySection(), clock=clock, instance=name)
        core.on_outbox.append(worker.wake)
        scheduler.on_outbox.append(worker.wake)
    return Replica(core, scheduler, worker)


def step_keys(bench: Bench, db_rows: list[tuple[int, int]]) -> list[str]:
    """The DM key of each due blocker's first critical step (level 2: the Accountable)."""
    return [f"blocker:{bid}:esc:0:0:2:dm:{bench.accountable[area]}" for bid, area in db_rows]


async def areas_of(db: Database, ids: list[int]) -> list[tuple[int, int]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(Blocker.id, Blocker.area_id).where(Blocker.id.in_(ids)).order_by(Blocker.id)
        )
        return [(bid, area) for bid, area in rows]


@dataclass
class BurstFigures:
    elapsed: float
    outbox_rows: int
    distinct_keys: int
    entries: int
    received: int
    duplicates: int
    rate_limited: int
    by_replica: dict[str, int]


async def burst(
    db: Database, bench: Bench, ids: list[int], rate: float, burst_n: int, give_up_after: float
) -> BurstFigures:
    keys = step_keys(bench, await areas_of(db, ids))
    async with FakeReceiver(rate=rate, burst=burst_n) as receiver:
        limit = RateLimit(rate=rate, burst=burst_n)
        ports = [HttpPort(receiver.url, limits=dict.fromkeys(Method, limit)) for _ in range(2)]
        replicas = [replica(db, f"replica-{n}", port) for n, port in enumerate(ports)]
        due_at = datetime.now(UTC) + timedelta(seconds=3)
        await make_due(db, ids, due_at)
        for r in replicas:
            await r.scheduler.start()
            assert r.worker is not None
            await r.worker.start()
        try:
            async with asyncio.timeout(give_up_after):
                await receiver.wait_for_keys(keys)
            elapsed = (datetime.now(UTC) - due_at).total_seconds()
        finally:
            for r in replicas:
                await r.scheduler.stop()
                if r.worker is not None:
                    await r.worker.stop()
            for port in ports:
                await port.aclose()
        counts = receiver.counts()
        async with db.transaction() as session:
            rows = list(
                await session.execute(
                    select(OutboxMessage.idempotency_key, OutboxMessage.leased_by).where(
                        OutboxMessage.idempotency_key.in_(keys)
                    )
                )
            )
            entries = await session.scalar(
                select(func.count())
                .select_from(BlockerEvent)
                .where(BlockerEvent.kind == Kind.ESCALATED, BlockerEvent.blocker_id.in_(ids))
            )
            claims = dict(
                (
                    await session.execute(
                        text(
                            "SELECT claimed_by, count(*) FROM occurrence_claims "
                            "WHERE key LIKE 'blocker:%:esc:%' GROUP BY claimed_by"
                        )
                    )
                ).all()
            )
        return BurstFigures(
            elapsed,
            len(rows),
            len({k for k, _ in rows}),
            int(entries or 0),
            sum(1 for k in keys if counts[k] > 0),
            sum(counts[k] - 1 for k in keys if counts[k] > 1),
            receiver.rate_limited,
            {str(k): int(v) for k, v in claims.items()},
        )


# --- (c) memory ---------------------------------------------------------------------------------


async def traced_sweep(db: Database, ids: list[int]) -> tuple[float, float, int]:
    r = replica(db, "traced", None)
    for country in sorted(set(COUNTRIES.values())):  # load the holiday tables (imports) first
        BusinessCalendar(country=country).is_working_day(datetime.now(UTC).date())
    due_at = datetime.now(UTC) - timedelta(seconds=1)
    await make_due(db, ids, due_at)
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    await r.scheduler.reconcile()
    await r.core.idle()  # the passes a full batch started
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    async with db.transaction() as session:
        fired = await session.scalar(
            select(func.count())
            .select_from(BlockerEvent)
            .where(BlockerEvent.kind == Kind.ESCALATED, BlockerEvent.blocker_id.in_(ids))
        )
    return peak / 1e6, elapsed, int(fired or 0)


# --- the run ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    if make_url(args.database_url).get_backend_name() != "postgresql":
        print("benchmarks/escalation.py runs on PostgreSQL: give --database-url", file=sys.stderr)
        return 2
    url, scratch = await scratch_database(args.database_url)
    db = Database(url)
    ok = True
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        bench = await prepare(db, args.areas, args.blockers, 2 * args.due, now)
        zones = len({ZONES[i % len(ZONES)] for i in range(args.areas)})
        print(f"database             postgresql ({os.cpu_count()} cores)")
        print(
            f"setup                {args.blockers} open blockers, {args.areas} areas in {zones} "
            f"zones, {2 * args.areas} members ({time.perf_counter() - started:.1f} s)"
        )
        first = await due_ids(db, bench, 0, args.due)
        second = await due_ids(db, bench, 1, args.due)

        # (a) with the first DUE blockers due in the probed minute.
        probe = now + timedelta(minutes=1)
        await make_due(db, first, probe - timedelta(seconds=30))
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE blockers"))  # as autovacuum would after the burst
        timings = await time_queries(db, probe, args.queries)
        server = await server_times(db, probe, args.queries)
        for name, label in (("source", "earliest due"), ("batch", "due batch")):
            p99 = _percentile(timings[name], 99)
            print(
                f"(a) {label:<16} p50 {_ms(_percentile(timings[name], 50))}, p99 {_ms(p99)} "
                f"over {args.queries} runs (goal p99 < 20 ms); in the server p50 "
                f"{_ms(_percentile(server[name], 50))}, p99 {_ms(_percentile(server[name], 99))}"
            )
            ok = ok and p99 < 0.020
        plan = await explain(db, probe)
        print("    EXPLAIN          " + "\n                     ".join(plan))
        uses_index = any("ix_blockers_next_escalation_at" in line for line in plan)
        scans = any("Seq Scan" in line for line in plan)
        print(f"    index used       {uses_index}; sequential scan {scans}")
        ok = ok and uses_index and not scans

        # (b) the burst, two replicas.
        if args.skip_burst:
            await make_due(db, first, now + timedelta(days=400))  # parked again
        else:
            fig = await burst(db, bench, first, args.rate, args.burst, args.timeout)
            bound = len(first) / args.rate
            ratio = fig.elapsed / bound
            print(
                f"(b) burst            {len(first)} steps due in one minute, two replicas; last "
                f"DM {fig.elapsed:.2f} s after the due time"
            )
            print(
                f"    bound            {bound:.2f} s at {args.rate:g} DMs/s (burst {args.burst}); "
                f"time/bound {ratio:.3f} (goal <= 1.05)"
            )
            print(
                f"    sent once        {fig.received} received, {fig.duplicates} duplicates, "
                f"{fig.outbox_rows} outbox rows ({fig.distinct_keys} keys), {fig.entries} "
                f"timeline entries"
            )
            print(f"    steps claimed by {fig.by_replica}; 429s {fig.rate_limited}")
            ok = (
                ok
                and ratio <= 1.05
                and fig.received == fig.outbox_rows == fig.entries == len(first)
                and fig.duplicates == 0
            )

        # (c) memory of one sweep of DUE steps.
        peak, elapsed, fired = await traced_sweep(db, second)
        print(
            f"(c) sweep memory     peak {peak:.1f} MB (tracemalloc) for {fired} steps in "
            f"{elapsed:.2f} s (batches of {escalation.BATCH_SIZE})"
        )
        ok = ok and fired == len(second)
    finally:
        await db.dispose()
        if scratch is not None and not args.keep:
            await _pg_admin(args.database_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    print("result               " + ("OK" if ok else "BELOW GOAL"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    dm = SLACK_RATES[Method.DM]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SYNCUP_TEST_DATABASE_URL"),
        help="PostgreSQL (default: $SYNCUP_TEST_DATABASE_URL)",
    )
    parser.add_argument("--blockers", type=int, default=100_000)
    parser.add_argument("--areas", type=int, default=1000)
    parser.add_argument("--due", type=int, default=1000, help="steps due in the same minute")
    parser.add_argument("--queries", type=int, default=1000, help="runs of each query in (a)")
    parser.add_argument(
        "--rate", type=float, default=dm.rate, help="DMs/s the platform allows (Slack's pacing)"
    )
    parser.add_argument("--burst", type=int, default=dm.burst, help="the platform's burst")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up (b) after (s)")
    parser.add_argument("--skip-burst", action="store_true", help="skip (b)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--verbose", action="store_true", help="show warnings from the bot")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set SYNCUP_TEST_DATABASE_URL")
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
