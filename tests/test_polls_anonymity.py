"""Invariant 6, audited from the database: anonymous polls are run to their close (votes at
distinct, precise times, changed votes, a reminder, an open-answer poll and a multiple choice
one), then every row of every table is read. No row may link a voter (member id, platform user
id, display name) to what they chose; no ballot may carry a time, a sequential id or a key that
any key found in the database turns back into a member; the secret is gone.

The same audit run on a named poll, or on an anonymous one before its close, does find the
links (so it is not an audit that cannot fail).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Date, DateTime, MetaData, select, text
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.models import Base, OutboxMessage
from storage.polls import PollBallot, PollParticipant
from tests.test_polls_create import START, PollWorld, running_world

# Distinctive names, so that finding one in a row is never an accident.
VOTERS = {
    "voter_ava": "Europe/Berlin",
    "voter_ben": "America/New_York",
    "voter_cyd": "Asia/Kolkata",
    "voter_dee": "Europe/Berlin",
    "voter_eli": "Europe/London",
    "voter_fay": "Europe/Berlin",
}
TEAM = {"boss_gus": "Europe/Berlin", **VOTERS}
OPTIONS = ("Opt-Apple", "Opt-Banana", "Opt-Cherry")
ANSWERS = ("Fewer meetings-x1", "More pairing-x2", "Written agendas-x3")


@dataclass
class Scenario:
    polls: list[int]
    secrets: list[bytes]
    vote_times: list[datetime]
    labels: dict[int, set[str]]  # poll -> every option label or answer text it has
    chosen: dict[str, set[str]] = field(default_factory=dict)  # voter -> labels they chose


async def run_polls(world: PollWorld, *, anonymous: bool, close: bool = True) -> Scenario:
    flag = " --anonymous" if anonymous else " --results closed"
    options = " ".join(f'"{o}"' for o in OPTIONS)
    single = await world.create(f'"Ship it?" {options} --closes 2d --threshold 3{flag}', "boss_gus")
    multiple = await world.create(
        f'"Which ones?" {options} --multiple 2 --closes 2d --threshold 3{flag}', "boss_gus"
    )
    texts = await world.create(
        f'"What should change?" --text --closes 2d --threshold 3{flag}', "boss_gus"
    )
    polls = [single, multiple, texts]
    secrets = [s for s in [await world.secret(i) for i in polls] if s is not None]
    scenario = Scenario(
        polls,
        secrets,
        [],
        {single: set(OPTIONS), multiple: set(OPTIONS), texts: set(ANSWERS)},
    )
    moment = iter(range(1, 1000))

    def tick() -> None:
        # Every vote at its own precise instant (minutes apart, odd microseconds).
        when = START + timedelta(minutes=7 * next(moment), microseconds=123_457 * next(moment))
        world.clock.set(when)
        scenario.vote_times.append(when)

    plan = [
        ("voter_ava", single, (0,)),
        ("voter_ben", single, (1,)),
        ("voter_ava", single, (2,)),  # ava changes her mind
        ("voter_cyd", single, (1,)),
        ("voter_dee", single, (0,)),
        ("voter_ben", multiple, (0, 2)),
        ("voter_cyd", multiple, (1,)),
        ("voter_eli", multiple, (2, 1)),
        ("voter_dee", multiple, (0,)),
    ]
    for name, poll_id, choices in plan:
        tick()
        await world.vote(name, poll_id, *choices, menu=len(choices) > 1 or poll_id == multiple)
    for name, answer in zip(("voter_ava", "voter_eli", "voter_fay"), ANSWERS, strict=True):
        tick()
        await world.submit(name, "poll-answer", {"answer": answer}, str(texts))
    # The reminder goes out (to those who have not answered, through the participation record),
    # then fay answers from it.
    await world.advance_to(START + timedelta(days=1, hours=1))
    tick()
    await world.vote("voter_fay", single, 1)
    final: dict[str, dict[int, set[str]]] = {}
    for name, poll_id, choices in [*plan, ("voter_fay", single, (1,))]:
        final.setdefault(name, {})[poll_id] = {OPTIONS[c] for c in choices}
    for name, answer in zip(("voter_ava", "voter_eli", "voter_fay"), ANSWERS, strict=True):
        final.setdefault(name, {})[texts] = {answer}
    scenario.chosen = {name: set().union(*by_poll.values()) for name, by_poll in final.items()}
    if close:
        await world.advance_to(START + timedelta(days=3))
    return scenario


# -- the audit -------------------------------------------------------------------------------------


def _is_time(column: Any) -> bool:
    return isinstance(column.type, DateTime | Date) or isinstance(
        getattr(column.type, "impl", None), DateTime | Date
    )


def _member_columns(table: Any) -> list[str]:
    return [
        c.name
        for c in table.columns
        if any(
            fk.column.table.name == "members" and fk.column.name == "id" for fk in c.foreign_keys
        )
        or (table.name == "members" and c.name == "id")
    ]


def _flat(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(value, default=str, ensure_ascii=False)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


async def audit(world: PollWorld, scenario: Scenario) -> list[str]:
    """Every way a voter could be tied to a choice through the stored rows; empty if none."""
    problems: list[str] = []
    voter_ids = {world.members[name]: name for name in VOTERS}
    all_labels = set().union(*scenario.labels.values())
    candidates: set[bytes] = set(scenario.secrets)
    rows_by_table: dict[str, list[dict[str, Any]]] = {}
    keyed_rows: list[dict[str, Any]] = []
    async with world.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            found = (await session.execute(select(table))).mappings().all()
            rows_by_table[table.name] = [dict(r) for r in found]
        # An open anonymous poll's own tables (its keyed ballots and its secret), and any
        # other table the database holds.
        reflected = MetaData()
        await session.run_sync(lambda sync: reflected.reflect(sync.connection()))
        for name, table in reflected.tables.items():
            if name in Base.metadata.tables or name == "alembic_version":
                continue
            found = (await session.execute(select(table))).mappings().all()
            for row in found:
                for value in row.values():
                    if isinstance(value, bytes):
                        candidates.add(value)
                if "voter_key" in row:
                    keyed_rows.append(dict(row))
    for table in Base.metadata.sorted_tables:
        member_columns = _member_columns(table)
        for row in rows_by_table[table.name]:
            for value in row.values():
                if isinstance(value, bytes):
                    candidates.add(value)
                for piece in _strings(value):
                    candidates.add(piece.encode())
            if table.name == "poll_ballots":
                if any(row.get(c) in voter_ids for c in member_columns):
                    problems.append(f"a ballot names {voter_ids[row['member_id']]}")
                continue
            named = {voter_ids[row[c]] for c in member_columns if row.get(c) in voter_ids}
            # The whole row, and each block of a message on its own (a block that names a
            # voter next to one option is a link even if the message lists every option).
            units = [" ".join(_flat(v) for v in row.values())]
            if table.name == "outbox":
                units += [_flat(block) for block in row["payload"].get("blocks", [])]
            for unit in units:
                who = named | {name for name in VOTERS if name in unit}
                labels = {label for label in all_labels if label in unit}
                for name in who:
                    # A unit naming a voter may show a poll's every option (a reminder, the
                    # poll itself), never a part of them that is what this voter chose.
                    for poll_labels in scenario.labels.values():
                        seen = labels & poll_labels
                        if seen and seen != poll_labels and seen & scenario.chosen.get(name, set()):
                            problems.append(f"{table.name} row ties {name} to {sorted(seen)}")
            if table.name != "processed_events":
                for value in row.values():
                    if isinstance(value, datetime) and value in scenario.vote_times:
                        problems.append(f"{table.name} stores the time of a vote: {value}")
    # Ballot keys: neither "m<member id>" nor an HMAC of a member id under any stored key.
    derivable: dict[str, str] = {}
    for key in candidates:
        for member_id, name in voter_ids.items():
            derivable[hmac.new(key, str(member_id).encode(), hashlib.sha256).hexdigest()] = name
    for member_id, name in voter_ids.items():
        derivable[f"m{member_id}"] = name
    for row in [*rows_by_table["poll_ballots"], *keyed_rows]:
        if row["voter_key"] in derivable:
            problems.append(f"a ballot's key leads to {derivable[row['voter_key']]}")
    return problems


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database, zones=TEAM, admins=[]) as built:
        yield built


async def test_an_anonymous_poll_run_to_its_close_links_no_voter_to_any_choice(
    world: PollWorld,
) -> None:
    scenario = await run_polls(world, anonymous=True)
    assert await audit(world, scenario) == []
    # The tables themselves: what a ballot and a participation row can hold.
    ballot_columns = {c.name for c in PollBallot.__table__.columns}
    assert ballot_columns == {"poll_id", "voter_key", "choice", "text", "member_id"}
    assert not any(_is_time(c) for c in PollBallot.__table__.columns)
    assert {c.name for c in PollParticipant.__table__.columns} == {
        "poll_id",
        "member_id",
        "voted",
        "final",
    }
    assert not any(_is_time(c) for c in PollParticipant.__table__.columns)
    async with world.db.transaction() as session:
        ballots = (await session.execute(select(PollBallot))).scalars().all()
        polls = (await session.execute(text("SELECT id, closed_at FROM polls ORDER BY id"))).all()
    assert all(b.member_id is None for b in ballots)
    assert len(ballots) == 5 + 6 + 3
    assert [p.closed_at is not None for p in polls] == [True] * 3
    assert [await world.secret(p) for p in scenario.polls] == [None] * 3
    # The results still add up after the seal.
    shown = "\n".join(await world.sent("post"))
    assert "Opt-Banana\n██████░░░░ 60% (3)" in shown  # ben, cyd and fay
    assert "• Fewer meetings-x1\n• More pairing-x2\n• Written agendas-x3" in shown


# How the sealed ballots lie in the data files: each database can only be asked in its own
# terms, so each check is a test of its own, named after the database that can make it.


async def test_sealed_ballots_have_no_insertion_counter_sqlite_only(world: PollWorld) -> None:
    """SQLite: the ballots are stored by their random key (WITHOUT ROWID), so no hidden rowid
    keeps the order the votes came in, whatever order the seal wrote them in."""
    if world.db.dialect != "sqlite":
        pytest.skip("a check only SQLite can make (rowid)")
    await run_polls(world, anonymous=True)
    async with world.db.transaction() as session:
        with pytest.raises(OperationalError, match="rowid"):
            await session.execute(text("SELECT rowid FROM poll_ballots"))


async def test_sealed_ballots_lie_in_choice_order_postgresql_only(world: PollWorld) -> None:
    """PostgreSQL: a heap keeps rows in the order they were written (ctid), so the seal must
    write them in choice order, not in the order of the votes. SQLite cannot see this: its
    ballots lie in key order (the test above)."""
    if world.db.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (ctid)")
    scenario = await run_polls(world, anonymous=True)
    # Open answers given out of their sorted order: the seal must not keep the order of giving.
    texts = await world.create('"Anything else?" --text --anonymous --threshold 3', "boss_gus")
    for name, answer in [("voter_ava", "Zebra"), ("voter_ben", "Apple"), ("voter_cyd", "Mango")]:
        await world.submit(name, "poll-answer", {"answer": answer}, str(texts))
    await world.command(f"close {texts}", by="boss_gus")
    assert (await world.poll(texts)).closed_at is not None
    async with world.db.transaction() as session:
        for poll_id in [*scenario.polls, texts]:
            order = (
                await session.execute(
                    text("SELECT choice, text FROM poll_ballots WHERE poll_id = :p ORDER BY ctid"),
                    {"p": poll_id},
                )
            ).all()
            assert len(order) > 1
            assert order == sorted(order, key=lambda r: (r[0], r[1] or ""))


async def test_no_vote_queues_anything_and_reminders_read_participation_only(
    world: PollWorld,
) -> None:
    scenario = await run_polls(world, anonymous=True, close=False)
    async with world.db.transaction() as session:
        rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    # Three poll posts and one reminder DM per poll to each who had not answered it yet.
    assert [r.method for r in rows].count("post") == 3
    reminded = sorted(
        (r.idempotency_key.split(":")[1], r.target["user_id"]) for r in rows if r.method == "dm"
    )
    single, multiple, texts = (str(p) for p in scenario.polls)
    assert reminded == sorted(
        [(single, n) for n in ("boss_gus", "voter_eli", "voter_fay")]
        + [(multiple, n) for n in ("boss_gus", "voter_ava", "voter_fay")]
        + [(texts, n) for n in ("boss_gus", "voter_ben", "voter_cyd", "voter_dee")]
    )
    assert all(r.created_at not in scenario.vote_times for r in rows)


async def test_the_audit_finds_links_where_there_are_some(world: PollWorld) -> None:
    """Before the close, the secret is in the database and every ballot key leads to its
    voter; in a named poll the ballots carry the member. The audit reports both."""
    anonymous = await run_polls(world, anonymous=True, close=False)
    open_problems = await audit(world, anonymous)
    assert sum("key leads to" in p for p in open_problems) == 5 + 6 + 3
    await world.advance_to(START + timedelta(days=3))
    assert await audit(world, anonymous) == []


async def test_the_audit_flags_a_named_poll(database: Database) -> None:
    async with running_world(database, zones=TEAM, admins=[]) as named_world:
        named = await run_polls(named_world, anonymous=False)
        problems = await audit(named_world, named)
    assert any(p.startswith("a ballot names") for p in problems)
    # Named results name their voters next to what they chose, as they should.
    assert any("ties voter_ben to" in p for p in problems)


def test_the_time_check_covers_the_columns() -> None:
    assert _is_time(OutboxMessage.__table__.c.created_at)
    assert _is_time(Base.metadata.tables["pulse_rounds"].c.period_date)
    assert not _is_time(PollBallot.__table__.c.choice)
