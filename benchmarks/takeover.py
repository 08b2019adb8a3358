"""Takeover after a kill -9: how long a dead replica's outbox rows wait for another one.

Two replica processes run the real delivery worker (shipped settings: lease and heartbeat) on
one database, sending to the fake receiver at RATE messages/s, as Slack paces a channel. The
first replica claims all 30 prompts; once 10 arrived it is killed with SIGKILL while it holds
the other 20 (one of them possibly in flight). The benchmark prints the time from the kill to
the next prompt the second replica delivers (goal: at most 15 s), the time until all arrived,
and checks that none is lost or doubled and that the order held.

Run from the repository root (PostgreSQL is what several replicas run on; without
--database-url a SQLite file stands in, as two processes on one file would)::

    .venv/bin/python benchmarks/takeover.py --database-url postgresql+asyncpg://postgres@127.0.0.1/x
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.chat import message  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.delivery.outbox import enqueue  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.port import Method, RateLimit, Target  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Workspace  # noqa: E402
from tests.fakes.http_port import HttpPort  # noqa: E402
from tests.fakes.receiver import FakeReceiver  # noqa: E402

PROMPTS = 30
KILL_AFTER = 10


async def replica(url: str, receiver_url: str, name: str, rate: float) -> None:
    """One replica: the worker with the shipped delivery settings, until killed."""
    db = Database(url)
    limits = dict.fromkeys(Method, RateLimit(rate=rate, burst=1))
    port = HttpPort(receiver_url, limits=limits)
    worker = DeliveryWorker(db, port, DeliverySection(), clock=SystemClock(), instance=name)
    await worker.start()
    await asyncio.Event().wait()


async def prepare(db: Database) -> list[str]:
    await migrate.upgrade(db.engine)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        ws = Workspace(platform="fake", external_id="T-takeover", name="takeover", created_at=now)
        session.add(ws)
        await session.flush()
        keys = [f"prompt-{i:02d}" for i in range(PROMPTS)]
        for key in keys:
            await enqueue(
                session,
                workspace_id=ws.id,
                method=Method.DM,
                target=Target(user_id=f"U{key}"),
                message=message(f"Standup time: {key}"),
                key=key,
                now=now,
            )
    return keys


async def start_replica(
    url: str, receiver_url: str, name: str, rate: float
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--replica",
        name,
        "--database-url",
        url,
        "--receiver",
        receiver_url,
        "--rate",
        str(rate),
        stderr=asyncio.subprocess.DEVNULL,
    )


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp.name) / 'takeover.db'}"
    db = Database(url)
    keys = await prepare(db)
    await db.dispose()
    survivor = None
    async with FakeReceiver() as receiver:
        first = await start_replica(url, receiver.url, "replica-1", args.rate)
        try:
            await receiver.wait_until(lambda: len(receiver.counts()) >= 1)
            survivor = await start_replica(url, receiver.url, "replica-2", args.rate)
            await receiver.wait_until(lambda: len(receiver.counts()) >= KILL_AFTER)
            os.kill(first.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            at_kill = len(receiver.counts())
            await first.wait()
            await receiver.wait_until(lambda: len(receiver.counts()) > at_kill)
            takeover = time.monotonic() - killed_at
            async with asyncio.timeout(args.timeout):
                await receiver.wait_for_keys(keys)
            all_done = time.monotonic() - killed_at
        finally:
            for proc in (first, survivor):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        order_kept = receiver.keys() == keys
        duplicates = receiver.duplicates()
    tmp.cleanup()
    settings = DeliverySection()
    print(f"database:             {Database(url).dialect}")
    print(
        f"lease / heartbeat:    {settings.lease_seconds:.0f} s / {settings.lease_seconds / 3:.1f} s"
    )
    print(f"sent before the kill: {at_kill} of {PROMPTS}")
    print(f"takeover after kill:  {takeover:.1f} s (goal <= 15 s)")
    print(f"all {PROMPTS} arrived after: {all_done:.1f} s")
    print(f"order kept:           {order_kept}")
    print(f"duplicates:           {duplicates}")
    return 0 if takeover <= 15 and order_kept and duplicates == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite)")
    parser.add_argument("--rate", type=float, default=1.0, help="prompts per second per replica")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--replica", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--receiver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        asyncio.run(replica(args.database_url, args.receiver, args.replica, args.rate))
        return
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
