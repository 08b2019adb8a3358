"""Shared, adaptive pacing: 1, 2 and 3 replicas on one PostgreSQL against a limit they are not told.

For each replica count: a fresh database, one workspace with MESSAGES DMs queued, and REPLICAS
separate processes each running the real delivery worker (shipped settings) against the fake
platform (tests/fakes/receiver.py), which allows RATE sends a second per (workspace, method)
with a burst of BURST and answers 429 + Retry-After beyond. The replicas are told only the
documented rate TOLD (as Slack documents DMs at a few a second), so they must learn the rest;
the ceiling is the default headroom over TOLD. It prints, per replica count: the achieved rate
over the allowed one (goal >= 0.95 for 2 and 3 replicas), the 429s received (goal: no more than
one replica's, a handful), duplicates and losses (goal 0), the rate the bucket learned, and the
machine's load (``uptime``), since the machine may be shared.

Run from the repository root (a PostgreSQL server the user may create databases on)::

    .venv/bin/python benchmarks/shared_pacing.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.standup_fanout import _pg_admin, scratch_database  # noqa: E402
from bot.chat import message  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.delivery.adaptive import DEFAULT_HEADROOM  # noqa: E402
from bot.delivery.outbox import Outgoing, enqueue_many  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.port import Method, RateLimit, Target  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Workspace  # noqa: E402
from storage.pacing import DeliveryRate  # noqa: E402
from tests.fakes.http_port import HttpPort  # noqa: E402
from tests.fakes.receiver import FakeReceiver  # noqa: E402

WORKSPACE = "T-PACING"


@dataclass
class Run:
    replicas: int
    elapsed: float
    rate_limited: int
    duplicates: int
    losses: int
    learned: float


async def replica(url: str, receiver_url: str, name: str, told: float, burst: int) -> None:
    """One replica: the shipped worker, told only the documented rate, until killed."""
    db = Database(url)
    limits = dict.fromkeys(Method, RateLimit(rate=told, burst=burst))
    ceilings = dict.fromkeys(Method, told * DEFAULT_HEADROOM)
    port = HttpPort(receiver_url, limits=limits, rate_ceilings=ceilings)
    worker = DeliveryWorker(db, port, DeliverySection(), clock=SystemClock(), instance=name)
    await worker.start()
    await asyncio.Event().wait()


async def prepare(url: str, messages: int) -> list[str]:
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        now = datetime.now(UTC)
        async with db.transaction() as session:
            ws = Workspace(platform="fake", external_id=WORKSPACE, name="pacing", created_at=now)
            session.add(ws)
            await session.flush()
            keys = [f"dm-{i:05d}" for i in range(messages)]
            outgoing = [
                Outgoing(ws.id, Method.DM, Target(user_id=f"U{i:05d}"), message("standup?"), key)
                for i, key in enumerate(keys)
            ]
            await enqueue_many(session, outgoing, now)
        return keys
    finally:
        await db.dispose()


async def learned_rate(url: str) -> float:
    db = Database(url)
    try:
        async with db.transaction() as session:
            rate = await session.scalar(
                select(DeliveryRate.rate).where(DeliveryRate.bucket == Method.DM.value)
            )
        return float(rate or 0.0)
    finally:
        await db.dispose()


async def run_once(args: argparse.Namespace, replicas: int) -> Run:
    url, name = await scratch_database(args.database_url)
    procs: list[asyncio.subprocess.Process] = []
    try:
        keys = await prepare(url, args.messages)
        async with FakeReceiver(rate=args.rate, burst=args.burst) as receiver:
            for n in range(replicas):
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        __file__,
                        "--replica",
                        f"replica-{n + 1}",
                        "--database-url",
                        url,
                        "--receiver",
                        receiver.url,
                        "--told",
                        str(args.told),
                        "--burst",
                        str(args.burst),
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
            async with asyncio.timeout(args.timeout):
                await receiver.wait_for_keys(keys)
            created = [r.at for r in receiver.requests if r.outcome == "created"]
            first = min(r.at for r in receiver.requests)
            elapsed = max(created) - first
            counts = receiver.counts()
            duplicates = receiver.duplicates()
            losses = sum(1 for key in keys if counts[key] == 0)
            rate_limited = receiver.rate_limited
        learned = await learned_rate(url)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await _pg_admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return Run(replicas, elapsed, rate_limited, duplicates, losses, learned)


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def run(args: argparse.Namespace) -> int:
    print(f"database             {make_url(args.database_url).get_backend_name()}")
    print(f"messages             {args.messages} DMs, one workspace")
    print(f"allowed (untold)     {args.rate:g}/s, burst {args.burst}")
    print(f"told (documented)    {args.told:g}/s, ceiling {args.told * DEFAULT_HEADROOM:g}/s")
    print(f"load before          {load()}")
    print()
    print(
        f"{'replicas':>8} {'elapsed s':>9} {'achieved/s':>10} {'ach/allowed':>11} "
        f"{'429s':>5} {'dup':>4} {'lost':>4} {'learned/s':>9}"
    )
    results = []
    for replicas in args.replicas:
        result = await run_once(args, replicas)
        results.append(result)
        achieved = args.messages / result.elapsed
        print(
            f"{replicas:>8} {result.elapsed:>9.1f} {achieved:>10.2f} "
            f"{achieved / args.rate:>11.3f} {result.rate_limited:>5} {result.duplicates:>4} "
            f"{result.losses:>4} {result.learned:>9.2f}",
            flush=True,
        )
    print()
    print(f"load after           {load()}")
    one = next((r.rate_limited for r in results if r.replicas == 1), None)
    ok = all(
        r.duplicates == 0
        and r.losses == 0
        and (r.replicas == 1 or args.messages / r.elapsed / args.rate >= 0.95)
        and (one is None or r.rate_limited <= max(one, 5))
        for r in results
    )
    print("result               " + ("OK" if ok else "BELOW GOAL"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("SYNCUP_TEST_DATABASE_URL"))
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="the platform's untold limit")
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--told", type=float, default=4.0, help="the documented rate")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--replica", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--receiver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        asyncio.run(replica(args.database_url, args.receiver, args.replica, args.told, args.burst))
        return
    if not args.database_url or not args.database_url.startswith("postgresql"):
        parser.error("--database-url must name a PostgreSQL server (replicas share one)")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
