"""Delivery throughput against a rate-limited fake platform.

Enqueues N messages for one workspace into a fresh, migrated SQLite database (or the empty
database given with --database-url), runs the delivery worker against the fake receiver, which
allows RATE messages/s with a burst of BURST per (workspace, method) and answers 429 beyond that,
and prints what got through: the achieved rate against the allowed one (goal >= 0.95), the 429s
the worker provoked, duplicates and losses (goal 0 each). The worker's buckets come from the
port's rate_limits(), set to the same RATE and BURST as the receiver.

Run from the repository root::

    .venv/bin/python benchmarks/delivery.py [--messages 2000 --rate 20 --burst 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.chat import message  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.delivery.outbox import enqueue  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.port import Method, RateLimit, Target  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import OutboxMessage, OutboxStatus, Workspace  # noqa: E402
from tests.fakes.http_port import HttpPort  # noqa: E402
from tests.fakes.receiver import FakeReceiver  # noqa: E402

ENQUEUE_CHUNK = 500


async def prepare(db: Database, messages: int, run_id: str) -> list[str]:
    """Migrate, add the workspace and enqueue the messages; returns their keys in order."""
    await migrate.upgrade(db.engine)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        workspace = Workspace(
            platform="fake", external_id=f"BENCH-{run_id}", name="benchmark", created_at=now
        )
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id
    keys = [f"bench:{run_id}:{i:05d}" for i in range(messages)]
    for start in range(0, messages, ENQUEUE_CHUNK):
        async with db.transaction() as session:
            for key in keys[start : start + ENQUEUE_CHUNK]:
                await enqueue(
                    session,
                    workspace_id=workspace_id,
                    method=Method.POST,
                    target=Target(channel_id="C-bench"),
                    message=message(f"standup report {key}"),
                    key=key,
                    now=now,
                )
    return keys


async def outbox_figures(db: Database, keys: list[str]) -> dict[str, int]:
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(
                    OutboxMessage.status,
                    func.count(),
                    func.sum(OutboxMessage.rate_limited),
                    func.max(OutboxMessage.attempts),
                )
                .where(OutboxMessage.idempotency_key.in_(keys))
                .group_by(OutboxMessage.status)
            )
        ).all()
    figures = {"sent": 0, "pending": 0, "dead": 0, "rate_limited": 0, "max_attempts": 0}
    for status, count, rate_limited, max_attempts in rows:
        figures[OutboxStatus(status).value] = count
        figures["rate_limited"] += int(rate_limited or 0)
        figures["max_attempts"] = max(figures["max_attempts"], int(max_attempts or 0))
    return figures


async def run(args: argparse.Namespace) -> int:
    run_id = f"{int(time.time())}"
    with tempfile.TemporaryDirectory(prefix="syncup-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        try:
            keys = await prepare(db, args.messages, run_id)
            async with FakeReceiver(rate=args.rate, burst=args.burst) as receiver:
                limit = RateLimit(rate=args.rate, burst=args.burst)
                port = HttpPort(receiver.url, limits=dict.fromkeys(Method, limit))
                settings = DeliverySection.model_validate({"batch_size": args.batch_size})
                worker = DeliveryWorker(db, port, settings, clock=SystemClock())
                started = time.perf_counter()
                await worker.start()
                try:
                    async with asyncio.timeout(args.timeout):
                        await receiver.wait_for_keys(keys)
                    elapsed = time.perf_counter() - started
                finally:
                    await worker.stop()
                    await port.aclose()
                figures = await outbox_figures(db, keys)
                counts = receiver.counts()
        finally:
            await db.dispose()

    achieved = args.messages / elapsed
    ideal = max(args.messages - args.burst, 0) / args.rate
    losses = sum(1 for key in keys if counts[key] == 0) + figures["pending"] + figures["dead"]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    ratio = achieved / args.rate
    print(f"database             {url.split('://', 1)[0]}")
    print(f"messages             {args.messages}")
    print(f"allowed              {args.rate:g}/s, burst {args.burst}")
    print(f"elapsed              {elapsed:.2f} s (best possible {ideal:.2f} s)")
    print(f"achieved rate        {achieved:.2f}/s")
    print(f"achieved/allowed     {ratio:.3f}  (goal >= 0.95)")
    print(f"429s received        {receiver.rate_limited}")
    print(f"rate_limited in rows {figures['rate_limited']}")
    print(f"duplicates           {duplicates}  (goal 0)")
    print(f"losses               {losses}  (goal 0)")
    print(f"rows sent/pend/dead  {figures['sent']}/{figures['pending']}/{figures['dead']}")
    ok = ratio >= 0.95 and duplicates == 0 and losses == 0
    print("result               " + ("OK" if ok else "BELOW GOAL"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (seconds)")
    parser.add_argument("--verbose", action="store_true", help="show the worker's log")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
