"""Polls: 10,000 concurrent votes on one poll, and the weekly digest over 1,000,000 ballots.

(a) **votes**: one anonymous single-choice poll with VOTERS members in its audience. Every member
    votes through ``Core.handle`` (an ``ActionInvocation`` of the poll's button, as an adapter
    hands it over; votes are group-committed, ``bot/features/polls/vote_batch.py``), all
    submitted at once (goal: at least 1,000 votes/s on PostgreSQL, 500/s on SQLite). On top,
    DOUBLE_CLICKS members click twice with the same event id (one must count) and CHANGES
    members vote again for another option (the second vote must replace the first). The counts
    are then checked against what was cast: every option's count, the number of ballots, the
    participation record; then the poll is closed (its ballots sealed) and checked again.
    Prints the wall time and per-vote latency.
(c) **votes, steady**: the same with STEADY_VOTERS voters and a tenth of them clicking twice
    and changing their vote, IN_FLIGHT clients each sending its next click when the last one
    was answered: p99 of the time from a click to its answer (goal under 150 ms with 100).
(b) **digest**: a team pulse with a year of weekly rounds whose ballots total DIGEST_BALLOTS
    (1,000,000 by default), written in SQL; ``compute_digest`` for the last week is timed
    (REPEATS runs after one warm-up) and its latest scores are checked against a plain
    recomputation. The goal is under 200 ms on PostgreSQL.

SQLite (a temporary file) by default; ``--database-url postgresql+asyncpg://user@host/db`` uses
a scratch database next to the named one, dropped afterwards. Run from the repository root::

    .venv/bin/python benchmarks/polls.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/polls.py --parts a --voters 2000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.standup_fanout import (  # noqa: E402
    _ms,
    _percentile,
    _pg_admin,
    scratch_database,
)
from bot.chat import Reply  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.events import ActionInvocation, Actor, Origin  # noqa: E402
from bot.features import polls  # noqa: E402
from bot.features.polls import ballots  # noqa: E402
from bot.features.polls.render import VOTE_ACTION, vote_action_id  # noqa: E402
from bot.features.pulse.bank import default_bank  # noqa: E402
from bot.features.pulse.scores import compute_digest  # noqa: E402
from bot.heap import settle_heap  # noqa: E402
from bot.scheduling.scheduler import Scheduler  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Channel, Member, Team, TeamMember, Workspace  # noqa: E402
from storage.polls import (  # noqa: E402
    Poll,
    PollBallot,
    PollKind,
    PollParticipant,
    Pulse,
    PulseRound,
    ResultsVisibility,
    keyed_table,
)

PLATFORM = "fake"
INSERT_CHUNK = 1000
OPTIONS = ("Ship Friday", "Ship Monday", "Wait a week", "No opinion")


@dataclass
class Population:
    workspace_id: int
    external_id: str
    channel_id: int
    member_ids: list[int]


async def populate(db: Database, members: int, tag: str) -> Population:
    now = datetime.now(UTC)
    external = f"BENCH-{tag}-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as session:
        workspace = Workspace(platform=PLATFORM, external_id=external, name=tag, created_at=now)
        session.add(workspace)
        await session.flush()
        channel = Channel(
            workspace_id=workspace.id, external_id=f"C-{tag}", name=tag, created_at=now
        )
        session.add(channel)
        await session.flush()
        rows = [
            {
                "workspace_id": workspace.id,
                "platform_user_id": f"U{i:06d}",
                "display_name": f"member {i:06d}",
                "timezone": "UTC",
                "timezone_set_by_member": True,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(members)
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            await session.execute(insert(Member), rows[start : start + INSERT_CHUNK])
        ids = list(
            await session.scalars(
                select(Member.id).where(Member.workspace_id == workspace.id).order_by(Member.id)
            )
        )
        return Population(workspace.id, external, channel.id, ids)


# --- (a) votes -----------------------------------------------------------------------------------


async def votes(
    db: Database,
    voters: int,
    double_clicks: int,
    changes: int,
    in_flight: int | None,
    label: str = "(a) votes",
) -> bool:
    """``in_flight`` None: every click submitted at once; else that many clients, each sending
    its next click when the previous one was answered."""
    people = await populate(db, voters, "votes")
    now = datetime.now(UTC)
    async with db.transaction() as session:
        poll = Poll(
            workspace_id=people.workspace_id,
            channel_id=people.channel_id,
            creator_id=people.member_ids[0],
            question="When do we ship?",
            kind=PollKind.SINGLE.value,
            options=list(OPTIONS),
            max_choices=1,
            anonymous=True,
            results=ResultsVisibility.CLOSED.value,
            threshold=5,
            opens_at=now,
            closes_at=now + timedelta(days=1),
        )
        await ballots.create_poll(session, poll, people.member_ids, now=now)
        poll_id = poll.id

    core = Core(db, SystemClock())
    polls.register(core, Scheduler(db, core.clock, instance="bench"))
    settle_heap()  # as App.start does
    rng = random.Random(6)
    first = {i: rng.randrange(len(OPTIONS)) for i in range(voters)}
    clicks = rng.sample(range(voters), double_clicks)
    changers = rng.sample(range(voters), changes)
    final = dict(first)
    for i in changers:
        final[i] = (first[i] + 1 + rng.randrange(len(OPTIONS) - 1)) % len(OPTIONS)

    def click(i: int, choice: int, event_id: str) -> ActionInvocation:
        return ActionInvocation(
            origin=Origin(PLATFORM, people.external_id, event_id, channel_id="C-votes"),
            actor=Actor(f"U{i:06d}", f"member {i:06d}"),
            action_id=vote_action_id(poll_id),
            value=str(choice),
        )

    latencies: list[float] = []
    refused: list[str] = []
    ignored = 0  # handled already: a repeated event id gets no response

    async def send(event: ActionInvocation) -> None:
        started = time.perf_counter()
        response = await core.handle(event)
        latencies.append(time.perf_counter() - started)
        if response is None:
            nonlocal ignored
            ignored += 1
            return
        said = response.message.fallback() if isinstance(response, Reply) else repr(response)
        if not said.startswith("Your vote"):
            refused.append(said)

    run = uuid.uuid4().hex[:8]  # event ids of this run only
    wave = [click(i, first[i], f"{run}-vote-{i}") for i in range(voters)]
    wave += [click(i, first[i], f"{run}-vote-{i}") for i in clicks]  # the same event again
    random.Random(7).shuffle(wave)
    second = [click(i, final[i], f"{run}-change-{i}") for i in changers]

    async def clients(events: list[ActionInvocation]) -> None:
        if in_flight is None:
            await asyncio.gather(*(send(e) for e in events))
            return
        pending = iter(events)

        async def client() -> None:
            for event in pending:
                await send(event)

        await asyncio.gather(*(client() for _ in range(in_flight)))

    batcher = core.action_batcher(VOTE_ACTION)
    batches_before = batcher.batches if batcher is not None else 0
    started = time.perf_counter()
    await clients(wave)
    # Second thoughts, after the first votes: each replaces that member's first vote.
    await clients(second)
    elapsed = time.perf_counter() - started
    await core.idle()
    batches = (batcher.batches if batcher is not None else 0) - batches_before

    expected = Counter(final.values())
    async with db.transaction() as session:
        poll = await session.get_one(Poll, poll_id)
        counted = await ballots.tally(session, poll)
        # While open, an anonymous poll's ballots are in its own table (storage/polls.py).
        rows = await session.scalar(select(func.count()).select_from(keyed_table(poll_id)))
    total = len(wave) + len(changers)
    flight = "all" if in_flight is None else str(in_flight)
    print(
        f"{label:<21}{total} clicks ({voters} voters, {double_clicks} double "
        f"clicks, {changes} changed votes), {flight} in flight, in {elapsed:.2f} s, "
        f"{total / elapsed:.0f}/s in {batches} transactions"
    )
    goal = "goal p99 < 150 ms" if in_flight is not None else "all queued at once"
    print(
        f"    latency          p50 {_ms(_percentile(latencies, 50))}, "
        f"p99 {_ms(_percentile(latencies, 99))}, max {_ms(max(latencies))} "
        f"(from submission to answer, queueing included; {goal})"
    )
    if in_flight is None:
        print(
            f"    rate             {total / elapsed:.0f} votes/s "
            "(goal >= 1,000/s on PostgreSQL, >= 500/s on SQLite)"
        )
    print(f"    duplicates       {ignored} repeated event ids ignored (expected {len(clicks)})")
    ok = not refused and ignored == len(clicks)
    if refused:
        print(f"    REFUSED          {len(refused)}, e.g. {refused[0]!r}")
    ok &= _check("open", counted, rows, expected, voters)

    async with db.transaction() as session:
        poll = await session.get_one(Poll, poll_id)
        await ballots.close_poll(session, poll, datetime.now(UTC))
    async with db.transaction() as session:
        poll = await session.get_one(Poll, poll_id)
        counted = await ballots.tally(session, poll)
        rows = await session.scalar(
            select(func.count()).select_from(PollBallot).where(PollBallot.poll_id == poll_id)
        )
        sealed = await ballots.read_secret(session, poll_id) is None
    ok &= _check("after close", counted, rows, expected, voters) and sealed
    print(f"    sealed           secret erased: {sealed}")
    return ok


def _check(
    when: str, counted: ballots.Tally, rows: int | None, expected: Counter[int], voters: int
) -> bool:
    got = {choice: counted.counts.get(choice, 0) for choice in range(len(OPTIONS))}
    want = {choice: expected.get(choice, 0) for choice in range(len(OPTIONS))}
    lost = sum(max(0, want[c] - got[c]) for c in want)
    doubled = sum(max(0, got[c] - want[c]) for c in want)
    good = got == want and rows == voters and counted.voters == voters
    print(
        f"    counts {when:<12}{' '.join(f'{got[c]}' for c in sorted(got))} "
        f"(expected {' '.join(f'{want[c]}' for c in sorted(want))}); ballots {rows}, "
        f"participants voted {counted.voters}/{counted.eligible}; lost {lost}, doubled {doubled}"
        f"{'' if good else '  MISMATCH'}"
    )
    return good


# --- (b) digest ----------------------------------------------------------------------------------


async def digest(db: Database, args: argparse.Namespace) -> bool:
    rounds = args.weeks
    per_round = args.questions
    everything = default_bank()
    # One eNPS question and the rest 1-5 scales, the same every week.
    bank = [q for q in everything if q["kind"] == PollKind.ENPS.value][:1]
    bank += [q for q in everything if q["kind"] != PollKind.ENPS.value][: per_round - len(bank)]
    askings = rounds * per_round
    team_size = max(5, args.digest_ballots // askings)
    people = await populate(db, team_size, "digest")
    first_round = date(2025, 12, 3)  # a Wednesday
    now = datetime.now(UTC)
    async with db.transaction() as session:
        team = Team(
            workspace_id=people.workspace_id,
            name="digest",
            channel_id=people.channel_id,
            timezone="Europe/Berlin",
            created_at=now,
        )
        session.add(team)
        await session.flush()
        for start in range(0, team_size, INSERT_CHUNK):
            await session.execute(
                insert(TeamMember),
                [
                    {"team_id": team.id, "member_id": m}
                    for m in people.member_ids[start : start + INSERT_CHUNK]
                ],
            )
        pulse = Pulse(
            workspace_id=people.workspace_id,
            team_id=team.id,
            anchor_date=date(2025, 12, 1),
            questions_per_round=per_round,
            bank=bank,
            threshold=5,
            created_at=now,
            updated_at=now,
        )
        session.add(pulse)
        await session.flush()
        poll_ids: list[int] = []
        for week in range(rounds):
            period = first_round + timedelta(weeks=week)
            sent = datetime(period.year, period.month, period.day, 9, tzinfo=UTC)
            closes = sent + timedelta(days=4)
            round_ = PulseRound(
                pulse_id=pulse.id,
                period_date=period,
                sent_at=sent,
                closes_at=closes,
                closed_at=closes,
            )
            session.add(round_)
            await session.flush()
            for q in range(per_round):
                question = bank[q]
                poll = Poll(
                    workspace_id=people.workspace_id,
                    team_id=team.id,
                    round_id=round_.id,
                    question_key=question["key"],
                    channel_id=people.channel_id,
                    question=question["text"],
                    kind=question["kind"],
                    options=[],
                    anonymous=True,
                    results=ResultsVisibility.CLOSED.value,
                    threshold=5,
                    opens_at=sent,
                    closes_at=closes,
                    closed_at=closes,
                    created_at=sent,
                    updated_at=closes,
                )
                session.add(poll)
                await session.flush()
                # Every asking passed the threshold on its own: its round's close showed it
                # alone (bot.features.pulse.scores.publish_round).
                poll.result_pool_id = poll.id
                poll_ids.append(poll.id)
        week_end = closes + timedelta(days=1)
        pulse_id = pulse.id
        kinds = {p: bank[i % per_round]["kind"] for i, p in enumerate(poll_ids)}
        assert len(bank) == per_round
    started = time.perf_counter()
    await _fill(db, poll_ids, kinds, people.member_ids)
    fill_s = time.perf_counter() - started
    async with db.transaction() as session:
        stored = await session.scalar(
            select(func.count()).select_from(PollBallot).where(PollBallot.poll_id.in_(poll_ids))
        )
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE poll_ballots"))
            await conn.execute(text("VACUUM ANALYZE poll_participants"))
            await conn.execute(text("VACUUM ANALYZE polls"))
    else:
        async with db.transaction() as session:
            await session.execute(text("ANALYZE"))
    print(
        f"(b) digest data      {stored} ballots in {len(poll_ids)} closed pulse questions "
        f"({rounds} weekly rounds x {per_round}, a team of {team_size}); written in {fill_s:.1f} s"
    )

    timings: list[float] = []
    result = None
    for attempt in range(args.repeats + 1):
        async with db.read() as session:
            started = time.perf_counter()
            result = await compute_digest(session, pulse_id, week_end)
            took = time.perf_counter() - started
        if attempt:  # the first run warms caches and prepared statements
            timings.append(took)
    assert result is not None
    print(
        f"    compute_digest   p50 {_ms(statistics.median(timings))}, min {_ms(min(timings))}, "
        f"max {_ms(max(timings))} over {len(timings)} runs (goal < 200 ms on PostgreSQL)"
    )
    return await _check_digest(db, result, poll_ids[-per_round:])


async def _fill(
    db: Database, poll_ids: Sequence[int], kinds: dict[int, str], members: Sequence[int]
) -> None:
    """Every member answered every question: participants and sealed ballots (random keys,
    choices from a per-poll skewed distribution), in SQL on PostgreSQL."""
    if db.dialect == "postgresql":
        async with db.transaction() as session:
            for poll_id in poll_ids:
                top = 10 if kinds[poll_id] == PollKind.ENPS.value else 5
                low = 0 if top == 10 else 1
                await session.execute(
                    text(
                        "INSERT INTO poll_participants (poll_id, member_id, voted, final) "
                        "SELECT :p, m, true, true FROM unnest(CAST(:members AS bigint[])) AS m"
                    ),
                    {"p": poll_id, "members": list(members)},
                )
                await session.execute(
                    text(
                        "INSERT INTO poll_ballots (poll_id, voter_key, choice) "
                        "SELECT :p, md5(random()::text || g), LEAST(t.top, t.low + "
                        "floor(power(random(), 0.6) * (t.top - t.low + 1)))::int "
                        "FROM generate_series(1, CAST(:n AS int)) AS g, "
                        "(SELECT CAST(:top AS int) AS top, CAST(:low AS int) AS low) AS t "
                        "ORDER BY 3"
                    ),
                    {"p": poll_id, "n": len(members), "top": top, "low": low},
                )
        return
    rng = random.Random(8)
    for poll_id in poll_ids:
        top = 10 if kinds[poll_id] == PollKind.ENPS.value else 5
        low = 0 if top == 10 else 1
        async with db.transaction() as session:
            await session.execute(
                insert(PollParticipant),
                [
                    {"poll_id": poll_id, "member_id": m, "voted": True, "final": True}
                    for m in members
                ],
            )
            choices = sorted(
                min(top, low + int(rng.random() ** 0.6 * (top - low + 1))) for _ in members
            )
            await session.execute(
                insert(PollBallot),
                [{"poll_id": poll_id, "voter_key": uuid.uuid4().hex, "choice": c} for c in choices],
            )


async def _check_digest(db: Database, result: object, latest: Sequence[int]) -> bool:
    """The digest's scores of the latest round against a straight recomputation."""
    questions = {q.poll_id: q for q in result.questions}  # type: ignore[attr-defined]
    ok = True
    async with db.read() as session:
        for poll_id in latest:
            rows = (
                await session.execute(
                    select(PollBallot.choice, func.count())
                    .where(PollBallot.poll_id == poll_id)
                    .group_by(PollBallot.choice)
                )
            ).all()
            dist = dict(rows)
            total = sum(dist.values())
            kind = (await session.get_one(Poll, poll_id)).kind
            if kind == PollKind.ENPS.value:
                want = (
                    100
                    * (
                        sum(n for c, n in dist.items() if c >= 9)
                        - sum(n for c, n in dist.items() if c <= 6)
                    )
                    / total
                )
            else:
                want = sum(c * n for c, n in dist.items()) / total
            shown = questions.get(poll_id)
            got = shown.score.value if shown is not None and shown.score is not None else None
            good = got is not None and abs(got - want) < 1e-9
            ok &= good
            shown_text = "nothing" if got is None else f"{got:.3f}"
            print(
                f"    check poll {poll_id:<6}{kind:<6} digest {shown_text}, recomputed {want:.3f}"
                f"{'' if good else '  MISMATCH'}"
            )
    return ok


# --- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    ok = True
    with tempfile.TemporaryDirectory(prefix="syncup-polls-") as tmp:
        base = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'polls.db'}"
        url, scratch = await scratch_database(base)
        db = Database(url)
        try:
            await migrate.upgrade(db.engine)
            print(f"database             {make_url(url).get_backend_name()}")
            if "a" in args.parts:
                ok &= await votes(db, args.voters, args.double_clicks, args.changes, None)
            if "c" in args.parts:
                ok &= await votes(
                    db,
                    args.steady_voters,
                    args.steady_voters // 10,
                    args.steady_voters // 10,
                    args.in_flight,
                    "(c) votes, steady",
                )
            if "b" in args.parts:
                ok &= await digest(db, args)
        finally:
            await db.dispose()
            if scratch:
                await _pg_admin(base, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    print("result               " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--parts",
        default="abc",
        help="a: votes all at once, b: digest, c: votes IN_FLIGHT at a time (default: abc)",
    )
    parser.add_argument("--in-flight", type=int, default=100, help="clicks in flight in (c)")
    parser.add_argument("--steady-voters", type=int, default=5_000, help="voters of (c)")
    parser.add_argument("--voters", type=int, default=10_000)
    parser.add_argument("--double-clicks", type=int, default=1_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--digest-ballots", type=int, default=1_000_000)
    parser.add_argument("--weeks", type=int, default=50, help="weekly rounds of the pulse")
    parser.add_argument("--questions", type=int, default=4, help="questions per round")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
