"""Standup fan-out against the fake Slack: the real SlackPort and DeliveryWorker over HTTP.

One workspace with PARTICIPANTS members and a member-local standup (``prepare`` from
``benchmarks/standup_fanout.py``) in a fresh, migrated database. Two timed parts:

(a) **DMs**: one occurrence's prompts (``runtime.prompt_member`` for every participant: real
    Block Kit, checked by the fake) delivered with chat.postMessage. The fake Slack allows
    WORKSPACE_RATE chat.postMessage calls a second per workspace (burst BURST) and 1 a second per
    channel, and answers 429 + Retry-After beyond that; syncup paces DMs at the same workspace
    rate (``[delivery.rates] dm``).
(b) **one channel**: REPORT_POSTS thread replies into the report channel, which Slack allows at
    1 message a second; the worker's per-channel pacing (the port's ``channel_rate_limit()``,
    0.97 a second) has to keep to it.

syncup paces DMs at MARGIN (0.97) of the workspace rate: sending exactly at the limit meets it
with network jitter, and each 429 costs a Retry-After pause.

For each it prints the achieved rate over the allowed rate (goal >= 0.95), the 429s received,
and duplicates and losses (goal 0 each).

Run from the repository root::

    .venv/bin/python benchmarks/slack_fanout.py [--participants 300 --workspace-rate 10]
    .venv/bin/python benchmarks/slack_fanout.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

``--side-by-side`` runs syncup against a hand-written slack_sdk loop instead (see
``benchmarks/slack_sides.py``)::

    .venv/bin/python benchmarks/slack_fanout.py --side-by-side --members 200 2000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapters.slack.port import SlackPort, StaticTokens  # noqa: E402
from benchmarks import slack_sides  # noqa: E402
from benchmarks.standup_fanout import (  # noqa: E402
    dm_keys,
    enqueue_occurrence,
    prepare,
    scratch_database,
)
from bot.chat import message  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection, RateSetting  # noqa: E402
from bot.delivery.outbox import enqueue  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.port import Method, Target  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Member, OutboxMessage, OutboxStatus  # noqa: E402
from tests.fakes.slack.server import ChannelState, FakeSlack  # noqa: E402

TOKEN = "xoxb-bench"
REPORT_CHANNEL = "C-standup"


@dataclass
class Figures:
    sent: int
    elapsed: float
    allowed_rate: float
    burst: int
    rate_limited: int
    duplicates: int
    losses: int

    @property
    def achieved_rate(self) -> float:
        # The burst goes at once; the rest can go no faster than the allowed rate.
        paced = max(self.sent - self.burst, 0)
        return paced / self.elapsed if self.elapsed > 0 else float("inf")

    @property
    def ratio(self) -> float:
        return self.achieved_rate / self.allowed_rate


async def _unsent(db: Database, keys: Sequence[str]) -> int:
    left = 0
    async with db.transaction() as session:
        for start in range(0, len(keys), 1000):
            left += (
                await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.idempotency_key.in_(keys[start : start + 1000]),
                        OutboxMessage.status != OutboxStatus.SENT,
                    )
                )
                or 0
            )
    return left


async def drain(
    db: Database,
    fake: FakeSlack,
    keys: list[str],
    rates: dict[str, RateSetting],
    *,
    channels: set[str],
    allowed_rate: float,
    burst: int,
    give_up_after: float,
) -> Figures:
    port = SlackPort(StaticTokens(TOKEN), api_base_url=fake.api_url)
    settings = DeliverySection(poll_interval_seconds=0.05, batch_size=200, rates=rates)
    worker = DeliveryWorker(db, port, settings, clock=SystemClock(), instance="bench")
    posted_before = len(fake.messages)
    limited_before = fake.rate_limited
    started = time.perf_counter()
    last = started
    await worker.start()
    try:
        async with asyncio.timeout(give_up_after):
            while True:
                done = sum(1 for m in fake.messages[posted_before:] if m.channel in channels)
                if done >= len(keys):
                    last = time.perf_counter()
                    break
                await asyncio.sleep(0.01)
    except TimeoutError:
        last = time.perf_counter()
    finally:
        await worker.stop()
    posted = [m for m in fake.messages[posted_before:] if m.channel in channels]
    per_text = Counter((m.channel, m.text) for m in posted)
    duplicates = sum(n - 1 for n in per_text.values() if n > 1)
    losses = await _unsent(db, keys)
    return Figures(
        len(posted),
        last - started,
        allowed_rate,
        burst,
        fake.rate_limited - limited_before,
        duplicates,
        losses,
    )


def show(name: str, figures: Figures) -> bool:
    print(
        f"{name}  {figures.sent} messages in {figures.elapsed:.2f} s; "
        f"achieved {figures.achieved_rate:.2f}/s, allowed {figures.allowed_rate:g}/s "
        f"(after a burst of {figures.burst})"
    )
    print(f"    achieved/allowed {figures.ratio:.3f}  (goal >= 0.95)")
    print(f"    429s received    {figures.rate_limited}")
    print(f"    duplicates       {figures.duplicates}  (goal 0)")
    print(f"    losses           {figures.losses}  (goal 0)")
    return figures.ratio >= 0.95 and figures.duplicates == 0 and figures.losses == 0


async def run(args: argparse.Namespace) -> int:
    ok = True
    with tempfile.TemporaryDirectory(prefix="syncup-slack-fanout-") as tmp:
        base = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}"
        url, scratch = await scratch_database(base)
        db = Database(url)
        fake = await FakeSlack(bot_token=TOKEN, fractional_retry_after=True).start()
        try:
            bench = await prepare(db, args.participants, "each")
            fake.tokens = {TOKEN: bench.workspace_external_id}
            async with db.transaction() as session:
                for user_id, dm in await session.execute(
                    select(Member.platform_user_id, Member.dm_channel_id).where(
                        Member.workspace_id == bench.workspace_id
                    )
                ):
                    fake.add_user(user_id, user_id.lower())
                    fake.channels[dm] = ChannelState(dm, dm, {user_id}, is_im=True)
            fake.add_channel(REPORT_CHANNEL, "standup", [])
            fake.team_post_rate = (args.workspace_rate, args.burst)
            fake.channel_rate = (1.0, 1)
            print(f"database             {make_url(url).get_backend_name()}")
            print(
                f"fake Slack           chat.postMessage {args.workspace_rate:g}/s per workspace "
                f"(burst {args.burst}), 1/s per channel; 429 + Retry-After beyond"
            )

            # (a) DMs of one occurrence.
            marker = datetime.now(UTC) - timedelta(seconds=1)
            queued = await enqueue_occurrence(db, bench, datetime.now(UTC).date(), "slack")
            keys = await dm_keys(db, bench.workspace_id, marker)
            paced = args.workspace_rate * args.margin
            dm_rate = {"dm": RateSetting(rate=paced, burst=args.burst)}
            figures = await drain(
                db,
                fake,
                keys,
                dm_rate,
                channels=set(fake.channels) - {REPORT_CHANNEL},
                allowed_rate=args.workspace_rate,
                burst=args.burst,
                give_up_after=args.timeout,
            )
            ok = show("(a) DMs     ", figures) and ok and queued == len(keys)

            # (b) replies in one channel, which Slack allows at 1 a second.
            now = datetime.now(UTC)
            post_keys = [f"bench:report:{n}" for n in range(args.report_posts)]
            async with db.transaction() as session:
                for n, key in enumerate(post_keys):
                    await enqueue(
                        session,
                        workspace_id=bench.workspace_id,
                        method=Method.POST,
                        target=Target(channel_id=REPORT_CHANNEL),
                        message=message(f"answer {n}"),
                        key=key,
                        now=now,
                    )
            post_rate = {"post": RateSetting(rate=paced, burst=args.burst)}
            figures = await drain(
                db,
                fake,
                post_keys,
                post_rate,
                channels={REPORT_CHANNEL},
                allowed_rate=1.0,
                burst=1,
                give_up_after=args.timeout,
            )
            ok = show("(b) channel ", figures) and ok
        finally:
            await fake.stop()
            await db.dispose()
            if scratch is not None:
                from benchmarks.standup_fanout import _pg_admin

                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=300)
    parser.add_argument(
        "--workspace-rate",
        type=float,
        default=None,
        help="chat.postMessage calls a second the fake Slack allows per workspace (10; 20 "
        "side by side)",
    )
    parser.add_argument("--burst", type=int, default=None, help="(10; 5 side by side)")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="syncup against a hand-written slack_sdk loop (benchmarks/slack_sides.py)",
    )
    slack_sides.add_arguments(parser)
    parser.add_argument(
        "--margin",
        type=float,
        default=0.97,
        help="syncup paces DMs at this fraction of the workspace rate ([delivery.rates] dm)",
    )
    parser.add_argument("--report-posts", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.side_by_side:
        args.workspace_rate = args.workspace_rate or 20.0
        args.burst = args.burst or 5
        sys.exit(asyncio.run(slack_sides.run(args)))
    args.workspace_rate = args.workspace_rate or 10.0
    args.burst = args.burst or 10
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
