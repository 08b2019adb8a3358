"""Standup fan-out: 5,000 participants across 20 time zones.

Builds one workspace with PARTICIPANTS members spread over 20 IANA zones and one member-local
standup (three questions, a reminder, a report per answer) in a fresh, migrated database, then
measures the three things issue 3 asks for:

(a) **enqueue**: one occurrence's prompts, ``runtime.prompt_participants`` (what a team-wide
    occurrence runs) for every participant in one
    transaction (a run row, a prompt row and an outbox DM each, written in bulk: goal under 2 s
    for 5,000 on both databases), the wall time and the peak
    Python memory (tracemalloc, measured on a second, identical occurrence so that tracing does
    not slow the timed one);
(d) **first DM**: ``/standup run`` typed by an admin while the delivery worker runs: the time from
    the command to the first of its DMs at the fake platform (goal under 200 ms);
(b) **delivery**: those DMs sent by the :class:`DeliveryWorker` to the fake platform on
    127.0.0.1, which allows RATE DMs/s with a burst of BURST per workspace and answers 429 beyond
    that; the total time against the bound PARTICIPANTS / RATE (goal <= 1.05 x the bound), with
    duplicates and losses (goal 0 each);
(c) **answers**: every participant answers through ``Core.handle`` (a ``FormSubmission`` of form
    ``standup-answer``) in waves of CONCURRENCY submitted together; p50 and p99 of the time to
    handle one answer, from submission to response, waiting for a connection or a lock included
    (goal p99 < 100 ms). Then ALONE edits of given answers are timed one at a time: the work of
    one answer with nothing queued in front of it.

``--blockers PCT`` makes that share of the answers name a blocker (each then a tracked blocker
with a timeline entry, a card in the outbox and its escalation booked, in the answer's batch).

``--report-mode each`` (the default) keeps the channel report up to date as answers arrive;
``cutoff`` posts it once at the window's end. In both modes an answer only marks the report out of
date; the refresh runs after the answer's transaction, in the background (one per batch of
answers that arrived during the previous one), and is not part of an answer's time: (c) prints
how many refreshes ran and when the report was up to date.

SQLite (a temporary file) by default. ``--database-url postgresql+asyncpg://user@host/db`` uses
that server: a scratch database is created next to the named one and dropped afterwards.

Run from the repository root::

    .venv/bin/python benchmarks/standup_fanout.py [--participants 5000 --rate 100 --burst 10]
    .venv/bin/python benchmarks/standup_fanout.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.chat import FormErrors, Reply, message  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import DeliverySection  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.delivery.worker import DeliveryWorker  # noqa: E402
from bot.events import Actor, CommandInvocation, FormSubmission, Origin  # noqa: E402
from bot.heap import settle_heap  # noqa: E402
from bot.port import Delivery, Method, RateLimit, Target  # noqa: E402
from bot.scheduling.scheduler import Scheduler  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import (  # noqa: E402
    Channel,
    Member,
    OutboxMessage,
    OutboxStatus,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Workspace,
)
from tests.fakes.http_port import HttpPort  # noqa: E402
from tests.fakes.receiver import FakeReceiver, Request  # noqa: E402

PLATFORM = "fake"
ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Chatham",
)
QUESTIONS = (
    {"text": "What did you do since last time?", "kind": "text", "choices": [], "blocker": False},
    {"text": "What will you do next?", "kind": "text", "choices": [], "blocker": False},
    {"text": "Anything blocking you?", "kind": "text", "choices": [], "blocker": True},
)
INSERT_CHUNK = 1000


@dataclass
class Bench:
    workspace_id: int
    workspace_external_id: str
    standup_id: int
    member_ids: list[int]


# --- setup -----------------------------------------------------------------------------------


async def prepare(db: Database, participants: int, report_mode: str) -> Bench:
    await migrate.upgrade(db.engine)
    now = datetime.now(UTC)
    external = f"BENCH-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as session:
        workspace = Workspace(
            platform=PLATFORM, external_id=external, name="fan-out benchmark", created_at=now
        )
        session.add(workspace)
        await session.flush()
        channel = Channel(
            workspace_id=workspace.id, external_id="C-standup", name="standup", created_at=now
        )
        session.add(channel)
        await session.flush()
        rows = [
            {
                "workspace_id": workspace.id,
                "platform_user_id": f"U{i:05d}",
                "display_name": f"member {i:05d}",
                "timezone": ZONES[i % len(ZONES)],
                "timezone_set_by_member": True,
                "dm_channel_id": f"D{i:05d}",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(participants)
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            await session.execute(insert(Member), rows[start : start + INSERT_CHUNK])
        member_ids = list(
            await session.scalars(
                select(Member.id).where(Member.workspace_id == workspace.id).order_by(Member.id)
            )
        )
        standup = Standup(
            workspace_id=workspace.id,
            name="daily",
            report_channel_id=channel.id,
            questions=[dict(q) for q in QUESTIONS],
            days=[1, 2, 3, 4, 5, 6, 7],
            every_weeks=1,
            anchor_date=date(2026, 1, 5),
            time_of_day="09:00",
            team_timezone=None,
            reminder_minutes=60,
            window_minutes=240,
            report_mode=report_mode,
            created_at=now,
            updated_at=now,
        )
        session.add(standup)
        await session.flush()
        links = [{"standup_id": standup.id, "member_id": m} for m in member_ids]
        for start in range(0, len(links), INSERT_CHUNK):
            await session.execute(insert(StandupParticipant), links[start : start + INSERT_CHUNK])
        return Bench(workspace.id, external, standup.id, member_ids)


# --- (a) enqueue -----------------------------------------------------------------------------


async def enqueue_occurrence(db: Database, bench: Bench, run_date: date, tag: str) -> int:
    """One occurrence: prompt every participant in one transaction; returns the prompts queued."""
    from bot.features.standups import runtime

    now = datetime.now(UTC)
    async with db.transaction() as session:
        standup = await session.get_one(Standup, bench.standup_id)
        prefix = f"bench:{tag}:{run_date.isoformat()}"
        return await runtime.prompt_participants(session, standup, run_date, now, key_prefix=prefix)


async def dm_keys(db: Database, workspace_id: int, since: datetime) -> list[str]:
    async with db.transaction() as session:
        return list(
            await session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.workspace_id == workspace_id,
                    OutboxMessage.method == Method.DM.value,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.created_at >= since,
                )
            )
        )


async def settle_untimed(db: Database, keys: Sequence[str]) -> None:
    """Mark the memory pass's DMs sent so that only the timed occurrence is delivered."""
    async with db.transaction() as session:
        for start in range(0, len(keys), INSERT_CHUNK):
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.idempotency_key.in_(keys[start : start + INSERT_CHUNK]))
                .values(status=OutboxStatus.SENT, sent_at=datetime.now(UTC))
            )


# --- (b) delivery ----------------------------------------------------------------------------


@dataclass
class DeliveryFigures:
    elapsed: float
    rate_limited: int
    duplicates: int
    losses: int


async def deliver(
    db: Database, keys: list[str], rate: float, burst: int, give_up_after: float
) -> DeliveryFigures:
    async with FakeReceiver(rate=rate, burst=burst) as receiver:
        limit = RateLimit(rate=rate, burst=burst)
        port = HttpPort(receiver.url, limits=dict.fromkeys(Method, limit))
        worker = DeliveryWorker(db, port, DeliverySection(), clock=SystemClock())
        started = time.perf_counter()
        await worker.start()
        try:
            async with asyncio.timeout(give_up_after):
                await receiver.wait_for_keys(keys)
            elapsed = time.perf_counter() - started
        finally:
            await worker.stop()
            await port.aclose()
        counts = receiver.counts()
        left = 0
        async with db.transaction() as session:
            for start in range(0, len(keys), INSERT_CHUNK):
                left += (
                    await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(
                            OutboxMessage.idempotency_key.in_(keys[start : start + INSERT_CHUNK]),
                            OutboxMessage.status != OutboxStatus.SENT,
                        )
                    )
                    or 0
                )
        losses = sum(1 for key in keys if counts[key] == 0) + left
        return DeliveryFigures(elapsed, receiver.rate_limited, receiver.duplicates(), losses)


# --- (d) the first DM of a command ------------------------------------------------------------

WARM_UP = Delivery(
    0, "BENCH-warm-up", Method.DM, Target(user_id="U-warm"), message("warm up"), "warm-up", 1
)


class ReceiverThread:
    """The fake platform on an event loop of its own, in a thread, as a platform is a server of
    its own: on the bot's loop, a request's arrival waited for the bot's queueing work to give
    the loop back, which a real platform does not. Its requests carry that loop's time, which
    is the same monotonic clock as the bot's loop."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, burst
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.receiver: FakeReceiver | None = None

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with FakeReceiver(rate=self._rate, burst=self._burst) as receiver:
            self.receiver = receiver
            self._ready.set()
            await self._stop.wait()

    @property
    def url(self) -> str:
        assert self.receiver is not None
        return self.receiver.url

    @property
    def requests(self) -> list[Request]:
        assert self.receiver is not None
        return list(self.receiver.requests)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """:meth:`FakeReceiver.wait_until`, on the receiver's loop."""
        assert self._loop is not None and self.receiver is not None
        waiting = self.receiver.wait_until(predicate)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(waiting, self._loop))

    async def __aenter__(self) -> ReceiverThread:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)


@dataclass
class FirstDm:
    handled: float  # from the command to its response (the rest of the team queued too)
    first: float  # from the command to the first of its DMs at the fake platform
    queued: int


async def first_dm(db: Database, bench: Bench, rate: float, burst: int) -> FirstDm:
    """``/standup run daily`` typed by an admin while the delivery worker runs (woken after the
    command's commit, as in the app): the time from the command to the first of its DMs at the
    fake platform."""
    from bot.features import standups

    clock = SystemClock()
    core = Core(db, clock)
    scheduler = Scheduler(db, clock, instance="bench-first")
    standups.register(core, scheduler)
    core.on_schedules_changed.append(scheduler.reconcile)  # as bot.app wires them
    settle_heap()
    event_id = f"bench-run-{uuid.uuid4().hex[:8]}"
    prefix = f"standup:{bench.standup_id}:now:{event_id}:"
    async with ReceiverThread(rate=rate, burst=burst) as receiver:
        limit = RateLimit(rate=rate, burst=burst)
        port = HttpPort(receiver.url, limits=dict.fromkeys(Method, limit))
        worker = DeliveryWorker(db, port, DeliverySection(), clock=clock)
        core.on_outbox.append(worker.wake)
        await worker.start()
        try:
            # A worker that has been running: its first look at the outbox is behind it, and
            # its HTTP client has sent before (the first request of a process imports httpx's
            # async backend, 50 ms), here for another workspace, whose bucket is its own.
            await port.deliver(WARM_UP)
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await core.handle(
                CommandInvocation(
                    Origin(PLATFORM, bench.workspace_external_id, event_id, channel_id="C-standup"),
                    Actor("U00000", "member 00000", is_platform_admin=True),
                    "standup",
                    "run daily",
                )
            )
            handled = loop.time() - started
            said = response.message.fallback() if isinstance(response, Reply) else repr(response)
            if not said.startswith("Sent"):
                raise RuntimeError(f"/standup run daily answered {said!r}")

            def ours() -> list[float]:
                return [r.at for r in receiver.requests if r.key.startswith(prefix)]

            await receiver.wait_until(lambda: bool(ours()))
            first = min(ours()) - started
            await core.idle()
        finally:
            await worker.stop()
            await port.aclose()
    async with db.transaction() as session:
        queued = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.idempotency_key.like(f"{prefix}%"))
        )
    return FirstDm(handled, first, int(queued or 0))


# --- (c) answers -----------------------------------------------------------------------------


@dataclass
class AnswerFigures:
    latencies: list[float]  # the concurrent answers, each from submission to response
    alone: list[float]  # edits submitted one at a time afterwards: the work without queueing
    failures: int
    elapsed: float
    answered: int
    stored: int
    settled: float  # until the last report refresh of the answers had finished
    refreshes: int  # report refresh transactions during the answers
    refresh_s: float  # their wall time in all
    batches: int  # group-commit transactions the answers took


async def answer_all(
    db: Database,
    bench: Bench,
    run_date: date,
    concurrency: int,
    limit: int | None,
    sample: int,
    blockers_pct: int = 0,
) -> AnswerFigures:
    from bot.features import blockers
    from bot.features.standups import refresher, runtime

    clock = SystemClock()
    core = Core(db, clock)
    scheduler = Scheduler(db, clock, instance="bench")
    runtime.register(core, scheduler)
    blockers.register(core)  # blocker answers become tracked blockers, with cards, as in the app
    settle_heap()  # as App.start does

    async with db.transaction() as session:
        prompts = (
            await session.execute(
                select(StandupPrompt.id, Member.platform_user_id, Member.display_name)
                .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
                .join(Member, Member.id == StandupPrompt.member_id)
                .where(StandupRun.standup_id == bench.standup_id, StandupRun.run_date == run_date)
                .order_by(StandupPrompt.id)
                .limit(limit)
            )
        ).all()

    latencies: list[float] = []
    alone: list[float] = []
    failures = 0

    async def submit(
        index: int, prompt_id: int, user_id: str, name: str, into: list[float] = latencies
    ) -> None:
        nonlocal failures
        kind = "answer" if into is latencies else "edit"
        event = FormSubmission(
            origin=Origin(PLATFORM, bench.workspace_external_id, f"bench-{kind}-{index}"),
            actor=Actor(user_id, name),
            form_id=runtime.FORM_ID,
            values={
                "q0": f"worked on ticket {index}",
                "q1": f"ticket {index + 1}",
                "q2": f"waiting on ticket {index}" if index % 100 < blockers_pct else "none",
            },
            state=str(prompt_id),
        )
        started = time.perf_counter()
        response = await core.handle(event)
        into.append(time.perf_counter() - started)
        if isinstance(response, FormErrors) or (
            isinstance(response, Reply) and "went wrong" in response.message.fallback()
        ):
            failures += 1

    started = time.perf_counter()
    for start in range(0, len(prompts), concurrency):
        wave = prompts[start : start + concurrency]
        await asyncio.gather(
            *(submit(start + i, pid, uid, name) for i, (pid, uid, name) in enumerate(wave))
        )
    elapsed = time.perf_counter() - started
    # The report is refreshed after the answers' transactions, in the background.
    await core.idle()
    settled = time.perf_counter() - started
    reports = refresher.refresher_of(core)
    refreshes = reports.refreshes if reports is not None else 0
    refresh_s = reports.seconds if reports is not None else 0.0
    batcher = core.batcher(runtime.FORM_ID)
    batches = batcher.batches if batcher is not None else 0
    # Edits of answers already given, one at a time: what one answer costs with no one waiting
    # (its report refresh is awaited after it, untimed).
    step = max(1, len(prompts) // max(sample, 1))
    for n, (pid, uid, name) in enumerate(prompts[::step][:sample]):
        await submit(n, pid, uid, name, alone)
        await core.idle()

    async with db.transaction() as session:
        answered = await session.scalar(
            select(func.count())
            .select_from(StandupPrompt)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .where(
                StandupRun.standup_id == bench.standup_id,
                StandupRun.run_date == run_date,
                StandupPrompt.status == PromptStatus.ANSWERED,
            )
        )
        stored = await session.scalar(
            select(func.count())
            .select_from(StandupAnswer)
            .join(StandupPrompt, StandupPrompt.id == StandupAnswer.prompt_id)
            .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
            .where(StandupRun.standup_id == bench.standup_id, StandupRun.run_date == run_date)
        )
    return AnswerFigures(
        latencies,
        alone,
        failures,
        elapsed,
        int(answered or 0),
        int(stored or 0),
        settled,
        refreshes,
        refresh_s,
        batches,
    )


# --- scratch PostgreSQL database -------------------------------------------------------------


async def _pg_admin(base: str, statement: str) -> None:
    admin = Database(base)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


async def scratch_database(url: str) -> tuple[str, str | None]:
    """The URL to benchmark on and, for PostgreSQL, the scratch database to drop afterwards."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url, None
    name = f"syncup_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(url, f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False), name


# --- the run ---------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


async def run(args: argparse.Namespace) -> int:
    parts = set(args.parts)
    ok = True
    with tempfile.TemporaryDirectory(prefix="syncup-fanout-") as tmp:
        base = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}"
        url, scratch = await scratch_database(base)
        pool = {} if args.pool_size is None else {"pool_size": args.pool_size, "max_overflow": 0}
        db = Database(url, **pool)
        try:
            bench = await prepare(db, args.participants, args.report_mode)
            zones = len({ZONES[i % len(ZONES)] for i in range(args.participants)})
            print(f"database             {make_url(url).get_backend_name()}")
            print(f"participants         {args.participants} in {zones} time zones")
            run_date = datetime.now(UTC).date()

            # (a) the timed occurrence, then an identical one under tracemalloc.
            marker = datetime.now(UTC) - timedelta(seconds=1)
            started = time.perf_counter()
            queued = await enqueue_occurrence(db, bench, run_date, "timed")
            enqueue_s = time.perf_counter() - started
            keys = await dm_keys(db, bench.workspace_id, marker)
            print(
                f"(a) enqueue          {queued} prompts in {enqueue_s:.2f} s "
                f"({_ms(enqueue_s / max(queued, 1))} each, one transaction)"
            )
            print(f"    DMs in outbox    {len(keys)}")
            if "a" in parts:  # the memory pass: a second occurrence under tracemalloc
                gc.collect()
                before_memory = set(keys)
                tracemalloc.start()
                await enqueue_occurrence(db, bench, run_date + timedelta(days=1), "traced")
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                traced = [
                    k
                    for k in await dm_keys(db, bench.workspace_id, marker)
                    if k not in before_memory
                ]
                await settle_untimed(db, traced)
                print(
                    f"    peak memory      {peak / 1e6:.1f} MB (tracemalloc, a second occurrence)"
                )
            ok = ok and queued == args.participants and len(keys) == queued

            # (b) delivery of the timed occurrence's DMs.
            if "b" in parts:
                figures = await deliver(db, keys, args.rate, args.burst, args.timeout)
                bound = len(keys) / args.rate
                ratio = figures.elapsed / bound if bound else 0.0
                print(
                    f"(b) delivery         {len(keys)} DMs in {figures.elapsed:.2f} s; "
                    f"bound {bound:.2f} s at {args.rate:g}/s (burst {args.burst})"
                )
                best = max(len(keys) - args.burst, 0) / args.rate
                print(
                    f"    time/bound       {ratio:.3f}  (goal <= 1.05; best possible {best:.2f} s)"
                )
                print(f"    429s received    {figures.rate_limited}")
                print(f"    duplicates       {figures.duplicates}  (goal 0)")
                print(f"    losses           {figures.losses}  (goal 0)")
                ok = ok and ratio <= 1.05 and figures.duplicates == 0 and figures.losses == 0

            # (d) a command's first DM, while the worker runs.
            if "d" in parts:
                if "b" not in parts:
                    await settle_untimed(db, keys)  # only the command's DMs are due
                dm = await first_dm(db, bench, args.rate, args.burst)
                print(
                    f"(d) first DM         {_ms(dm.first)} from `/standup run` to its first DM at "
                    f"the fake platform (goal < 200 ms); {dm.queued} DMs queued "
                    f"in the background; the command answered in {_ms(dm.handled)}"
                )
                ok = ok and dm.first < 0.2

            # (c) every participant answers, CONCURRENCY at a time.
            if "c" in parts:
                answers = await answer_all(
                    db, bench, run_date, args.concurrency, args.answers, args.alone, args.blockers
                )
                p50 = _percentile(answers.latencies, 50)
                p99 = _percentile(answers.latencies, 99)
                print(
                    f"(c) answers          {len(answers.latencies)} through Core.handle, "
                    f"{args.concurrency} at a time, in {answers.elapsed:.2f} s "
                    f"({len(answers.latencies) / answers.elapsed:.0f}/s)"
                )
                print(f"    p50              {_ms(p50)}")
                print(f"    p99              {_ms(p99)}  (goal < 100 ms)")
                print(f"    max              {_ms(max(answers.latencies))}")
                print(
                    f"    transactions     {answers.batches} group commits for "
                    f"{len(answers.latencies)} answers"
                )
                if answers.alone:
                    print(
                        f"    one at a time    p50 {_ms(_percentile(answers.alone, 50))}, "
                        f"p99 {_ms(_percentile(answers.alone, 99))} "
                        f"({len(answers.alone)} edits with nothing else running)"
                    )
                print(
                    f"    report           {answers.refreshes} refreshes for "
                    f"{len(answers.latencies)} answers "
                    f"({_ms(answers.refresh_s / max(answers.refreshes, 1))} each); up to date "
                    f"{answers.settled:.2f} s after the first answer"
                )
                print(
                    f"    stored           {answers.answered} prompts answered, "
                    f"{answers.stored} answers, {answers.failures} failed"
                )
                ok = (
                    ok
                    and p99 < 0.1
                    and answers.failures == 0
                    and answers.answered == len(answers.latencies)
                )
        finally:
            await db.dispose()
            if scratch is not None and not args.keep:
                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    print("result               " + ("OK" if ok else "BELOW GOAL"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0, help="DMs/s the platform allows")
    parser.add_argument("--burst", type=int, default=10, help="the platform's burst")
    parser.add_argument("--concurrency", type=int, default=50, help="answers in flight at once")
    parser.add_argument(
        "--report-mode", choices=("each", "cutoff"), default="each", help="the standup's report"
    )
    parser.add_argument(
        "--parts",
        default="abcd",
        help="which parts to run: any of a, b, c, d (the prompts are always queued once; "
        "a adds the memory pass)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=None, help="database connections (default: the app's)"
    )
    parser.add_argument(
        "--alone", type=int, default=100, help="edits timed one at a time after (c)"
    )
    parser.add_argument(
        "--answers", type=int, default=None, help="submit only the first N answers (default: all)"
    )
    parser.add_argument(
        "--blockers",
        type=int,
        default=0,
        help="percent of answers that name a blocker (each a tracked blocker with a card)",
    )
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch PostgreSQL database")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up delivery after (s)")
    parser.add_argument("--verbose", action="store_true", help="show warnings from the bot")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
