"""Teams fan-out against the fake Teams connector: the real TeamsPort (the Teams SDK's connector
client) and the real DeliveryWorker, in a fresh, migrated database.

The fake (``tests/fakes/teams/server.py``) enforces Teams' limits for a bot: per conversation 7
operations a second, 8 in 2 s, 60 in 30 s and 1,800 an hour, and per tenant 50 requests a second
over every connector call; beyond them it answers 429 with ``Retry-After``. Two timed parts:

(a) **DMs**: DMS proactive DMs (an Adaptive Card with a button each) to as many members whom
    syncup knows from the team's install event but has no 1:1 chat with yet, so each DM is two
    connector calls: the chat's creation (``POST /v3/conversations`` with the tenant id) and the
    send. Every DM is its own conversation: the tenant's 50 requests a second binds.
(b) **one channel**: POSTS cards into one channel, which Teams allows 60 in 30 s (2 a second
    over time, after at most 8 in the first 2 s).

For each it prints the achieved rate over the allowed rate (goal >= 0.95; requests a second for
(a), posts a second for (b)), the 429s the fake sent, and duplicates and losses counted at the
fake (goal 0 each).

Run from the repository root::

    .venv/bin/python benchmarks/teams_fanout.py [--dms 1000 --posts 100]
    .venv/bin/python benchmarks/teams_fanout.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from adapters.teams.adapter import TeamsAdapter  # noqa: E402
from adapters.teams.ids import member_key  # noqa: E402
from adapters.teams.port import TeamsPort  # noqa: E402
from adapters.teams.refs import CHANNEL, MEMBER, References  # noqa: E402
from benchmarks.slack_fanout import Figures, show  # noqa: E402
from benchmarks.standup_fanout import _pg_admin, scratch_database  # noqa: E402
from bot.chat import Actions, Button, Section, message, text  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.delivery.outbox import enqueue  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.port import Method, Target  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Member, OutboxMessage, OutboxStatus, Workspace  # noqa: E402
from storage.teams import TeamsReference  # noqa: E402
from tests.fakes.teams.harness import settings_for  # noqa: E402
from tests.fakes.teams.server import TENANT, TENANT_WINDOWS, WINDOWS, FakeTeams, Sent  # noqa: E402

CHANNEL_ID = "19:standup@thread.tacv2"
CHUNK = 500


def aad(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


async def prepare(db: Database, fake: FakeTeams, members: int) -> int:
    """A tenant whose team syncup was added to: a reference for each member (their Teams id, no
    chat yet) and for the channel. Returns the workspace's id."""
    await migrate.upgrade(db.engine)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        workspace = Workspace(platform="teams", external_id=TENANT, name="bench", created_at=now)
        session.add(workspace)
        await session.flush()
        people = [fake.add_user(aad(n), f"member {n:05d}", "Europe/Berlin") for n in range(members)]
        member_rows = [
            {
                "workspace_id": workspace.id,
                "platform_user_id": member_key(p.aad_id),
                "display_name": p.name,
                "timezone": p.timezone,
                "created_at": now,
                "updated_at": now,
            }
            for p in people
        ]
        refs: list[dict[str, Any]] = [
            {
                "workspace_id": workspace.id,
                "kind": MEMBER,
                "key": member_key(p.aad_id),
                "service_url": fake.service_url,
                "teams_id": p.teams_id,
                "conversation_id": None,
                "name": p.name,
                "updated_at": now,
            }
            for p in people
        ]
        refs.append(
            {
                "workspace_id": workspace.id,
                "kind": CHANNEL,
                "key": CHANNEL_ID,
                "service_url": fake.service_url,
                "teams_id": None,
                "conversation_id": CHANNEL_ID,
                "name": "standup",
                "updated_at": now,
            }
        )
        for start in range(0, len(member_rows), CHUNK):
            await session.execute(insert(Member), member_rows[start : start + CHUNK])
        for start in range(0, len(refs), CHUNK):
            await session.execute(insert(TeamsReference), refs[start : start + CHUNK])
        fake.add_channel(CHANNEL_ID, "standup")
        return workspace.id


def card(n: int) -> Any:
    return message(
        Section(text(f"Good morning! Standup prompt {n}: what did you do yesterday?")),
        Actions((Button("Answer", "bench:answer", str(n)),)),
    )


async def queue(db: Database, workspace_id: int, rows: list[tuple[Method, Target, str]]) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for n, (method, target, key) in enumerate(rows):
            await enqueue(
                session,
                workspace_id=workspace_id,
                method=method,
                target=target,
                message=card(n),
                key=key,
                now=now,
            )


async def unsent(db: Database, keys: Sequence[str]) -> int:
    async with db.transaction() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.idempotency_key.like("bench:%"),
                OutboxMessage.status != OutboxStatus.SENT,
            )
        )
    return int(left or 0)


def _text(sent: Sent) -> str:
    content = (sent.activity.get("attachments") or [{}])[0].get("content", {})
    return str(content.get("body", [{}])[0].get("text", ""))


async def drain(
    db: Database,
    fake: FakeTeams,
    port: TeamsPort,
    keys: list[str],
    *,
    done: Any,
    count: Any,
    allowed_rate: float,
    burst: int,
    give_up_after: float,
) -> tuple[Figures, list[Sent]]:
    settings = DeliverySection(poll_interval_seconds=0.05, batch_size=200)
    worker = DeliveryWorker(db, port, settings, clock=SystemClock(), instance="bench")
    sent_before = len(fake.sent)
    calls_before = len(fake.calls)
    limited_before = fake.rate_limited
    started = time.perf_counter()
    await worker.start()
    try:
        async with asyncio.timeout(give_up_after):
            while not done(fake.sent[sent_before:]):  # noqa: ASYNC110 (another thread's list)
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    finished = time.perf_counter()
    await worker.stop()
    await port.refs.settled()
    new = fake.sent[sent_before:]
    per_text = Counter((s.conversation_id, _text(s)) for s in new)
    duplicates = sum(n - 1 for n in per_text.values() if n > 1)
    losses = await unsent(db, keys) + max(len(keys) - len(per_text), 0)
    figures = Figures(
        count(new, fake.calls[calls_before:]),
        finished - started,
        allowed_rate,
        burst,
        fake.rate_limited - limited_before,
        duplicates,
        losses,
    )
    return figures, new


async def run(args: argparse.Namespace) -> int:
    ok = True
    logging.getLogger("microsoft_teams").setLevel(logging.CRITICAL)
    fake = FakeTeams()
    fake.start()
    with tempfile.TemporaryDirectory(prefix="syncup-teams-fanout-") as tmp:
        base = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}"
        url, scratch = await scratch_database(base)
        db = Database(url)
        try:
            workspace_id = await prepare(db, fake, args.dms)
            settings = settings_for(fake, url)

            async def token(scope: Any, tenant_id: str | None = None) -> str:
                return await fake.fetch_bot_token()

            adapter = TeamsAdapter(settings, token=token)
            refs = References()
            refs.db = db
            port = TeamsPort(adapter.api_for, refs, now=lambda: datetime.now(UTC))
            tenant_rate, _ = TENANT_WINDOWS[0]
            print(f"database             {make_url(url).get_backend_name()}")
            print(
                f"fake Teams           {tenant_rate} requests/s per tenant; per conversation "
                + ", ".join(f"{n} in {s:g} s" for n, s in WINDOWS)
                + "; 429 + Retry-After beyond"
            )

            # (a) DMs, each to a member without a chat yet: a creation and a send.
            dm_keys = [f"bench:dm:{n}" for n in range(args.dms)]
            await queue(
                db,
                workspace_id,
                [
                    (Method.DM, Target(user_id=member_key(aad(n))), key)
                    for n, key in enumerate(dm_keys)
                ],
            )
            figures, new = await drain(
                db,
                fake,
                port,
                dm_keys,
                done=lambda sent: len(sent) >= args.dms,
                count=lambda sent, calls: sum(1 for c in calls if c.status < 300),
                allowed_rate=float(tenant_rate),
                burst=0,
                give_up_after=args.timeout,
            )
            ok = show("(a) DMs     ", figures) and ok
            print("    (counted: connector requests, a DM's chat creation and its send)")
            print(f"    DMs delivered    {len(new)} ({len(new) / figures.elapsed:.2f}/s)")
            print(f"    1:1 chats made   {len(fake.chats)}")

            # (b) posts in one channel.
            post_keys = [f"bench:post:{n}" for n in range(args.posts)]
            await queue(
                db,
                workspace_id,
                [(Method.POST, Target(channel_id=CHANNEL_ID), key) for key in post_keys],
            )
            channel_allowed = WINDOWS[2][0] / WINDOWS[2][1]  # 60 in 30 s
            figures, _ = await drain(
                db,
                fake,
                port,
                post_keys,
                done=lambda sent: len(sent) >= args.posts,
                count=lambda sent, calls: len(sent),
                allowed_rate=channel_allowed,
                burst=1,
                give_up_after=args.timeout,
            )
            ok = show("(b) channel ", figures) and ok
        finally:
            await db.dispose()
            fake.stop()
            if scratch is not None:
                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dms", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
