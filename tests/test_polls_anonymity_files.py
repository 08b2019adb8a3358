"""Invariant 6 against a copy of the database files, not only against its rows.

An attacker copies the files some time after anonymous polls closed: on SQLite ``syncup.db``
with its ``-wal`` and ``-shm``; on PostgreSQL the raw pages of every table, index and TOAST
relation of the database (read with ``pageinspect``'s ``get_raw_page``, through the shared
buffers, so pages not yet written out count too), dead row versions and free space included.
They know every member's id, and (worst case) every secret the polls ever had. The check looks
for:

* a secret, or a ballot key that a secret and a member id give, anywhere in the bytes;
* a ballot that names its member (a copy opened as a database);
* PostgreSQL only: a transaction id on a ballot's row version that is also on the participation
  rows of some, not all, of the poll's voters: the vote's transaction wrote both, so it ties
  those voters to that ballot even when no key survives.

After the close it finds nothing; pointed at a named poll, or at a copy taken while the poll was
open, it finds the links (so it is not a check that cannot fail).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.features.polls import ballots
from bot.features.polls.ballots import OWN_TABLE
from storage import wal
from storage.db import Database
from tests.test_polls_anonymity import TEAM, VOTERS, Scenario, run_polls
from tests.test_polls_create import START, PollWorld, running_world
from tests.test_pulse_runtime import TEAM as PULSE_TEAM
from tests.test_pulse_runtime import WED, add_pulse, at, make_pulse_world, polls_of, rounds
from tests.test_pulse_runtime import World as PulseWorld
from tests.test_pulse_runtime import vote as pulse_vote


@dataclass
class Copy:
    blobs: dict[str, bytes]  # file or relation -> its bytes
    named_ballots: list[tuple[int, int, int]]  # (poll, member, choice) of ballots naming one
    xid_links: list[str]  # PostgreSQL: transactions tying some voters to a ballot


def needles(members: dict[str, int], secrets: list[bytes]) -> dict[bytes, str]:
    """What must not be found in the bytes: every secret, every member's key under it."""
    found: dict[bytes, str] = {}
    for number, secret in enumerate(secrets):
        found[secret] = f"secret #{number}"
        for name, member_id in members.items():
            key = hmac.new(secret, str(member_id).encode(), hashlib.sha256).hexdigest()
            found[key.encode()] = f"the ballot key of {name} under secret #{number}"
    return found


def links(members: dict[str, int], secrets: list[bytes], polls: list[int], copy: Copy) -> list[str]:
    names = {member_id: name for name, member_id in members.items()}
    found = [
        f"{what} in {where}"
        for where, blob in copy.blobs.items()
        for needle, what in needles(members, secrets).items()
        if needle in blob
    ]
    found += [
        f"a ballot of poll {poll} names {names.get(member, member)} (choice {choice})"
        for poll, member, choice in copy.named_ballots
        if poll in polls
    ]
    return found + copy.xid_links


def poll_links(world: PollWorld, scenario: Scenario, copy: Copy) -> list[str]:
    voters = {name: world.members[name] for name in VOTERS}
    return links(voters, scenario.secrets, scenario.polls, copy)


# -- SQLite: the files ------------------------------------------------------------------------


def sqlite_copy(db: Database, into: Path) -> Copy:
    source = Path(str(db.engine.url.database))
    blobs: dict[str, bytes] = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{source}{suffix}")
        if path.exists():
            target = into / f"copy.db{suffix}"
            shutil.copyfile(path, target)
            blobs[target.name] = target.read_bytes()
    with sqlite3.connect(into / "copy.db") as conn:  # reads the copied WAL too
        named = conn.execute(
            "SELECT poll_id, member_id, choice FROM poll_ballots WHERE member_id IS NOT NULL"
        ).fetchall()
    return Copy(blobs, [tuple(row) for row in named], [])


async def table_names(url: str) -> list[str]:
    """Every table of the SQLite database at ``url``."""
    path = url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]


# -- PostgreSQL: the pages --------------------------------------------------------------------

RELATIONS = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       pg_relation_size(c.oid) / current_setting('block_size')::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't', 'm')
  AND c.relpersistence = 'p'
ORDER BY 1
"""

KEYED = re.compile(r"public\.poll_(\d+)_keyed")
ITEMS = """
SELECT t_xmin::text::bigint, t_xmax::text::bigint, t_infomask, t_attrs
FROM heap_page_item_attrs(get_raw_page(:rel, :blk), CAST(:rel AS regclass))
WHERE lp_flags = 1
"""


def _int(raw: bytes | None) -> int | None:
    return None if raw is None else int.from_bytes(raw, "little", signed=True)


async def pg_copy(db: Database) -> Copy:
    blobs: dict[str, bytes] = {}
    participants: list[tuple[set[int], int, int, bool]] = []  # (xids, poll, member, voted)
    ballots: list[tuple[set[int], int, int, int | None]] = []  # (xids, poll, choice, member)
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        relations = (await conn.execute(text(RELATIONS))).all()
        for relation, blocks in relations:
            pages = [
                bytes(
                    await conn.scalar(
                        text("SELECT get_raw_page(:rel, :blk)"), {"rel": relation, "blk": blk}
                    )
                )
                for blk in range(int(blocks))
            ]
            blobs[relation] = b"".join(pages)
            keyed = KEYED.fullmatch(relation)
            if relation not in ("public.poll_participants", "public.poll_ballots") and not keyed:
                continue
            for blk in range(int(blocks)):
                rows = await conn.execute(text(ITEMS), {"rel": relation, "blk": blk})
                for xmin, xmax, infomask, attrs in rows:
                    xids = {xmin} | ({xmax} if xmax and not infomask & 0x1000 else set())
                    if relation == "public.poll_participants":
                        poll, member = _int(attrs[0]), _int(attrs[1])
                        assert poll is not None and member is not None
                        participants.append((xids, poll, member, bool(attrs[2][0])))
                    elif keyed:  # an open poll's own table: (voter_key, choice, text)
                        choice = _int(attrs[1])
                        assert choice is not None
                        ballots.append((xids, int(keyed.group(1)), choice, None))
                    else:
                        poll, choice = _int(attrs[0]), _int(attrs[2])
                        assert poll is not None and choice is not None
                        ballots.append((xids, poll, choice, _int(attrs[4])))
    return Copy(
        blobs,
        [(p, m, c) for _, p, c, m in ballots if m is not None],
        xid_links(participants, ballots),
    )


def xid_links(
    participants: list[tuple[set[int], int, int, bool]],
    ballots: list[tuple[set[int], int, int, int | None]],
) -> list[str]:
    """A transaction that wrote a ballot of a poll and the participation rows of some, but not
    all, of its voters (the close's transaction touches every voter's row: no link)."""
    voters: dict[int, set[int]] = {}
    for _, poll, member, voted in participants:
        if voted:
            voters.setdefault(poll, set()).add(member)
    found: list[str] = []
    for xids, poll, choice, _ in ballots:
        for xid in xids:
            who = {m for ids, p, m, _ in participants if p == poll and xid in ids}
            who &= voters.get(poll, set())
            if who and who != voters.get(poll, set()):
                found.append(
                    f"transaction {xid} ties members {sorted(who)} to poll {poll}'s {choice}"
                )
    return found


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture
async def world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database, zones=TEAM, admins=[]) as built:
        yield built


async def copy_files(world: PollWorld | PulseWorld, into: Path) -> Copy:
    await wal.settled()  # the checkpoint a close starts once it has committed
    if world.db.dialect == "sqlite":
        return sqlite_copy(world.db, into)
    return await pg_copy(world.db)


async def test_a_copy_of_the_files_after_the_close_links_no_voter(
    world: PollWorld, tmp_path: Path
) -> None:
    scenario = await run_polls(world, anonymous=True)
    assert len(scenario.secrets) == 3
    copy = await copy_files(world, tmp_path)
    assert poll_links(world, scenario, copy) == []
    # The polls' own tables are gone, and the results still add up.
    if world.db.dialect == "sqlite":
        assert not [n for n in await table_names(str(world.db.engine.url)) if OWN_TABLE.match(n)]
        assert copy.blobs.get("copy.db-wal", b"") == b""
    shown = "\n".join(await world.sent("post"))
    assert "Opt-Banana\n██████░░░░ 60% (3)" in shown


async def test_the_check_finds_the_links_in_a_copy_taken_while_the_poll_was_open(
    world: PollWorld, tmp_path: Path
) -> None:
    scenario = await run_polls(world, anonymous=True, close=False)
    found = poll_links(world, scenario, await copy_files(world, tmp_path))
    assert any(p.startswith("secret #") for p in found), found
    assert sum("the ballot key of" in p for p in found) >= 6
    if world.db.dialect == "postgresql":
        assert any(p.startswith("transaction ") for p in found)
    # Closed, and copied again: nothing.
    await world.advance_to(START + timedelta(days=3))
    assert poll_links(world, scenario, await copy_files(world, tmp_path)) == []


async def test_the_check_finds_the_links_of_a_named_poll(world: PollWorld, tmp_path: Path) -> None:
    scenario = await run_polls(world, anonymous=False)
    found = poll_links(world, scenario, await copy_files(world, tmp_path))
    assert any("names voter_ben" in p for p in found), found
    if world.db.dialect == "postgresql":
        assert any(p.startswith("transaction ") for p in found)


async def test_a_pulse_round_after_its_close_links_no_member(
    database: Database, tmp_path: Path
) -> None:
    world = await make_pulse_world(database)
    try:
        pulse_id = await add_pulse(world)
        await world.advance_to(at(WED, "10:00"))
        [round_] = await rounds(world, pulse_id)
        polls = [p.id for p in await polls_of(world, round_.id)]
        async with world.db.transaction() as session:
            secrets = [s for p in polls if (s := await ballots.read_secret(session, p))]
        assert len(secrets) == len(polls) == 3
        plan = [("alice", 5), ("bob", 4), ("carol", 4), ("alice", 2), ("dana", 3), ("erin", 1)]
        for name, choice in plan:
            await pulse_vote(world, name, polls[0], choice)
        await pulse_vote(world, "bob", polls[1], 3)
        members = {name: world.members[name] for name in PULSE_TEAM}
        while_open = links(members, secrets, polls, await copy_files(world, tmp_path))
        assert any("the ballot key of alice" in p for p in while_open), while_open
        await world.advance_to(at(date(2026, 3, 8), "10:00"))
        assert (await rounds(world, pulse_id))[0].closed_at is not None
        assert links(members, secrets, polls, await copy_files(world, tmp_path)) == []
    finally:
        await world.core.idle()
        await world.scheduler.stop()


async def test_start_up_finishes_a_checkpoint_a_crash_cut_short(
    world: PollWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the close's commit and its checkpoint (here: no checkpoint at all)
    leaves the pre-close pages in SQLite's WAL; the next start checkpoints them away."""
    monkeypatch.setattr(ballots, "checkpoint_after_commit", lambda session: None)
    scenario = await run_polls(world, anonymous=True)
    found = poll_links(world, scenario, await copy_files(world, tmp_path))
    if world.db.dialect == "sqlite":
        assert any(p.endswith("in copy.db-wal") for p in found), found
    assert await ballots.tidy(world.db) == []
    assert poll_links(world, scenario, await copy_files(world, tmp_path)) == []


async def test_start_up_drops_the_tables_of_polls_that_are_gone(
    world: PollWorld, tmp_path: Path
) -> None:
    scenario = await run_polls(world, anonymous=True, close=False)
    async with world.db.transaction() as session:  # the workspace removed, its polls with it
        await session.execute(text("DELETE FROM workspaces"))
    assert await ballots.tidy(world.db) == scenario.polls
    assert poll_links(world, scenario, await copy_files(world, tmp_path)) == []
