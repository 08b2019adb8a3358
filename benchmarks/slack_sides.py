"""Side by side on one fake Slack (issue 18, point 4): syncup against a hand-written loop.

Every sender gets a fresh fake Slack with the same limits: chat.postMessage WORKSPACE_RATE a
second per workspace (burst BURST) and 1 a second per channel, conversations.open at Tier 3
(50 a minute), 429 with Retry-After (whole seconds, as Slack sends it) beyond. Each sends one DM
to each of MEMBERS members never DMed before (no ``D...`` id known):

* **hand-written, sequential**: what a developer writes with slack_sdk, an ``AsyncWebClient``
  with its ``AsyncRateLimitErrorRetryHandler`` (``--sdk-retries`` retries) posting to each user
  id in turn;
* **hand-written, N concurrent**: the same with ``--concurrency`` sends in flight;
* **syncup**: the real app (Slack adapter in Socket Mode, core, delivery worker with its default
  pacing: no ``[delivery.rates]``, the limit unknown to it) on a fresh database; a manager types
  ``/standup run daily`` (a standup of every member) and the participants' prompts go out.

For each: the time for the DMs (from the first send, for syncup from the command), reached /
time / allowed (members reached per second over the allowed rate), the 429s and conversations.open
calls the fake saw, the DMs lost (members with none) and duplicated (members with more than one);
for syncup also the command's ack and the time from the command to the first DM.

Run from the repository root::

    .venv/bin/python benchmarks/slack_fanout.py --side-by-side --members 200
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update

from benchmarks.standup_fanout import _pg_admin, prepare, scratch_database
from bot.config import (
    BotSection,
    DatabaseSection,
    DeliverySection,
    Settings,
    SlackSection,
)
from storage.db import Database
from storage.models import Member, Standup, Workspace
from tests.fakes.slack import payloads
from tests.fakes.slack.harness import SlackWorld
from tests.fakes.slack.server import TIER_3, Call, FakeSlack

TOKEN = "xoxb-sides"
REPORT_CHANNEL = "C-standup"  # the channel benchmarks.standup_fanout.prepare records
PROMPT = "Time for your standup: what did you do, what next, anything blocking you?"


@dataclass
class Row:
    sender: str
    members: int
    elapsed: float  # seconds until the last member was reached (or the run gave up)
    reached: int
    allowed: float
    rate_limited: int
    opened: int
    lost: int
    duplicated: int
    first_dm: float | None = None  # syncup: command -> first DM
    ack: float | None = None  # syncup: command -> ack

    @property
    def ratio(self) -> float:
        return self.reached / self.elapsed / self.allowed if self.elapsed > 0 else 0.0


class Watch:
    """The DMs the fake posted (answered ok, in a ``D...`` channel), with when they left."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.times: list[float] = []
        # The DM channels posted in, counted as the posts are answered: polling the fake's
        # messages for each member would take the event loop away from the sender under test.
        self.channels: set[str] = set()
        fake.on_call.append(self._seen)

    def _seen(self, call: Call) -> None:
        channel = str(call.response.get("channel") or "")
        if call.method == "chat.postMessage" and call.response.get("ok") and channel[:1] == "D":
            self.times.append(time.perf_counter())
            self.channels.add(channel)

    def reached(self, users: list[str]) -> int:
        return sum(1 for user in users if f"D{user}" in self.channels)

    def row(self, sender: str, users: list[str], started: float, allowed: float) -> Row:
        """The figures of a run that started at ``started`` (perf_counter), as they are now."""
        last = self.times[-1] if self.times else time.perf_counter()
        per_user = Counter(m.channel for m in self.fake.messages if m.channel[:1] == "D")
        return Row(
            sender,
            len(users),
            last - started,
            self.reached(users),
            allowed,
            self.fake.rate_limited,
            len(self.fake.calls_of("conversations.open")),
            lost=sum(1 for user in users if not per_user[f"D{user}"]),
            duplicated=sum(n - 1 for n in per_user.values() if n > 1),
        )


async def new_fake(args: argparse.Namespace, users: list[str]) -> FakeSlack:
    fake = await FakeSlack(bot_token=TOKEN, fractional_retry_after=False).start()
    for user in users:
        fake.add_user(user, user.lower())
    fake.add_channel(REPORT_CHANNEL, "standup", users[:1])
    fake.team_post_rate = (args.workspace_rate, args.burst)
    fake.channel_rate = (1.0, 1)
    fake.method_rates["conversations.open"] = TIER_3
    return fake


def user_ids(members: int) -> list[str]:
    return [f"U{i:05d}" for i in range(members)]  # as benchmarks.standup_fanout.prepare names them


async def hand_written(args: argparse.Namespace, members: int, concurrency: int) -> Row:
    users = user_ids(members)
    fake = await new_fake(args, users)
    watch = Watch(fake)
    client = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=args.sdk_retries))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": PROMPT}}]
    pending = iter(users)

    async def sender() -> None:
        for user in pending:  # one iterator shared by the senders: each user once
            try:
                await client.chat_postMessage(channel=user, text=PROMPT, blocks=blocks)
            except SlackApiError:
                pass  # the retry handler gave up: this member is not reached

    started = time.perf_counter()
    try:
        async with asyncio.timeout(args.timeout):
            await asyncio.gather(*(sender() for _ in range(concurrency)))
    except TimeoutError:
        pass
    finally:
        await fake.stop()
    name = "hand-written, sequential" if concurrency == 1 else f"hand-written, {concurrency} conc."
    return watch.row(name, users, started, args.workspace_rate)


async def syncup(args: argparse.Namespace, members: int) -> Row:
    users = user_ids(members)
    with tempfile.TemporaryDirectory(prefix="syncup-slack-sides-") as tmp:
        base = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'sides.db'}"
        url, scratch = await scratch_database(base)
        db = Database(url)
        fake = await new_fake(args, users)
        world: SlackWorld | None = None
        try:
            bench = await prepare(db, members, "each")
            # Slack members never DMed (no D... id), in UTC, with the standup's own time six
            # hours away: nothing is due when the app starts, only the command prompts them.
            later = (datetime.now(UTC) + timedelta(hours=6)).strftime("%H:%M")
            async with db.transaction() as session:
                await session.execute(
                    update(Workspace)
                    .where(Workspace.id == bench.workspace_id)
                    .values(platform="slack", external_id=fake.team_id)
                )
                await session.execute(
                    update(Member)
                    .where(Member.workspace_id == bench.workspace_id)
                    .values(dm_channel_id=None, timezone="UTC")
                )
                await session.execute(
                    update(Standup)
                    .where(Standup.id == bench.standup_id)
                    .values(owner_id=bench.member_ids[0], time_of_day=later)
                )
            settings = Settings(
                slack=SlackSection(
                    bot_token=SecretStr(TOKEN),
                    app_token=SecretStr("xapp-test"),
                    mode="socket",
                    api_base_url=fake.api_url,
                ),
                delivery=DeliverySection(),  # no [delivery.rates]: the limit is unknown
                database=DatabaseSection(url=url),
                bot=BotSection(platform="slack"),
            )
            world = SlackWorld(fake, settings, datetime.now(UTC))
            await world.start()
            await asyncio.sleep(1.0)  # let the start-up settle
            before = sum(1 for m in fake.messages if m.channel[:1] == "D")
            watch = Watch(fake)
            payload = payloads.slash_command(
                "/standup",
                "run daily",
                user=users[0],
                channel=REPORT_CHANNEL,
                channel_name="standup",
                response_url=fake.response_url(),
                team=fake.team_id,
            )
            started = time.perf_counter()
            await world.send("slash_commands", payload)
            acked = time.perf_counter() - started
            try:
                async with asyncio.timeout(args.timeout):
                    while watch.reached(users) < members:  # noqa: ASYNC110 (the fake's state)
                        await asyncio.sleep(0.05)
            except TimeoutError:
                pass
            last = watch.times[-1] if watch.times else time.perf_counter()
            await asyncio.sleep(args.linger)  # anything still coming would be a duplicate
            if before:
                print(f"    (warning: {before} DMs went out before the command)")
            row = watch.row("syncup, no [delivery.rates]", users, started, args.workspace_rate)
            row.elapsed = last - started  # not the lingering
            row.first_dm = (watch.times[0] - started) if watch.times else None
            row.ack = acked
            return row
        finally:
            if world is not None:
                await world.stop()
            await fake.stop()
            await db.dispose()
            if scratch is not None:
                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def show(row: Row) -> None:
    first = f"{row.first_dm * 1000:.0f} ms" if row.first_dm is not None else "-"
    ack = f"{row.ack * 1000:.0f} ms" if row.ack is not None else "-"
    print(
        f"{row.sender:<28} {row.elapsed:>8.1f} s {row.reached:>6}/{row.members:<6} "
        f"{row.ratio:>6.2f} {row.rate_limited:>6} {row.opened:>6} {first:>9} {ack:>7} "
        f"{row.lost:>5} {row.duplicated:>5}"
    )


async def run(args: argparse.Namespace) -> int:
    print(
        f"fake Slack: chat.postMessage {args.workspace_rate:g}/s per workspace "
        f"(burst {args.burst}), 1/s per channel, conversations.open Tier 3 (50/min); "
        "429 + whole-second Retry-After"
    )
    print(f"database: {args.database_url or 'SQLite (temporary file)'}")
    print(
        f"{'sender':<28} {'time':>10} {'reached':>13} {'r/t/a':>6} {'429s':>6} {'opens':>6} "
        f"{'first DM':>9} {'ack':>7} {'lost':>5} {'dup':>5}"
    )
    for members in args.members:
        senders = [s.strip() for s in args.senders.split(",")]
        for name in senders:
            if name == "sequential":
                row = await hand_written(args, members, 1)
            elif name == "concurrent":
                row = await hand_written(args, members, args.concurrency)
            elif name == "syncup":
                row = await syncup(args, members)
            else:
                raise SystemExit(f"unknown sender {name!r}: sequential, concurrent, syncup")
            show(row)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--members", type=int, nargs="+", default=[200], help="members to DM (several: a run each)"
    )
    parser.add_argument("--senders", default="sequential,concurrent,syncup")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sdk-retries", type=int, default=5)
    parser.add_argument("--linger", type=float, default=2.0)
