"""Storage behaviour on SQLite and PostgreSQL: UTC times, constraints, cascades, SQLite setup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage import migrate
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.models import (
    Base,
    Channel,
    Member,
    OutboxMessage,
    ProcessedEvent,
    RoleAssignment,
    RoleName,
    Team,
    TeamMember,
    Workspace,
)

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


async def _add_workspace(session: AsyncSession, external_id: str = "T1") -> Workspace:
    workspace = Workspace(platform="slack", external_id=external_id, created_at=NOW)
    session.add(workspace)
    await session.flush()
    return workspace


def _member(workspace: Workspace, user: str) -> Member:
    return Member(workspace_id=workspace.id, platform_user_id=user, created_at=NOW, updated_at=NOW)


async def _count(db: Database, model: type[Base]) -> int:
    async with db.transaction() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


# --- UTCDateTime ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(NOW, id="utc"),
        pytest.param(
            datetime(
                2024, 6, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            id="plus-0530-across-midnight",
        ),
        pytest.param(
            datetime(2024, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-12))), id="minus-1200"
        ),
        pytest.param(datetime(2024, 3, 10, 1, 59, 59, tzinfo=NEW_YORK), id="ny-before-dst"),
        pytest.param(datetime(2024, 3, 10, 3, 0, tzinfo=NEW_YORK), id="ny-after-dst"),
        pytest.param(datetime(2024, 11, 3, 1, 30, fold=0, tzinfo=NEW_YORK), id="ny-fold0"),
        pytest.param(datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NEW_YORK), id="ny-fold1"),
    ],
)
async def test_utc_datetime_round_trips_the_same_instant_in_utc(
    database: Database, moment: datetime
) -> None:
    async with database.transaction() as session:
        workspace = Workspace(platform="slack", external_id="T1", created_at=moment)
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id

    async with database.transaction() as session:  # a new session: the value comes from the DB
        loaded = (
            await session.execute(select(Workspace.created_at).where(Workspace.id == workspace_id))
        ).scalar_one()

    # Compared in UTC: Python never calls a time in a zone's repeated hour (a DST fold) equal to
    # one in another zone (PEP 495), so ``loaded == moment`` is False there even when right.
    in_utc = moment.astimezone(UTC)
    assert loaded == in_utc  # the same instant
    assert loaded.timestamp() == moment.timestamp()
    assert loaded.utcoffset() == timedelta(0)
    assert loaded.tzname() == "UTC"
    assert (loaded.date(), loaded.time()) == (in_utc.date(), in_utc.time())


async def test_utc_datetime_orders_and_filters_by_instant_in_sql(database: Database) -> None:
    """Stored as UTC, so SQL comparisons agree with time even when zones were mixed on input."""
    plus_ten = timezone(timedelta(hours=10))
    moments = {
        "A": datetime(2024, 1, 1, 9, 0, tzinfo=plus_ten),  # 2023-12-31 23:00 UTC
        "B": datetime(2024, 1, 1, 0, 30, tzinfo=UTC),  # 00:30 UTC
        "C": datetime(2023, 12, 31, 20, 0, tzinfo=NEW_YORK),  # 2024-01-01 01:00 UTC
    }
    async with database.transaction() as session:
        for name, moment in moments.items():
            session.add(Workspace(platform="slack", external_id=name, created_at=moment))

    async with database.transaction() as session:
        ordered = (
            await session.execute(select(Workspace.external_id).order_by(Workspace.created_at))
        ).scalars()
        assert list(ordered) == ["A", "B", "C"]
        # 10:45 at +10:00 is 00:45 UTC: after A and B, before C.
        bound = datetime(2024, 1, 1, 10, 45, tzinfo=plus_ten)
        before = (
            await session.execute(
                select(Workspace.external_id)
                .where(Workspace.created_at < bound)
                .order_by(Workspace.external_id)
            )
        ).scalars()
        assert list(before) == ["A", "B"]


async def test_utc_datetime_keeps_none(database: Database) -> None:
    async with database.transaction() as session:
        workspace = await _add_workspace(session)
        session.add(
            OutboxMessage(
                idempotency_key="k1",
                workspace_id=workspace.id,
                method="post",
                target={},
                payload={},
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )
    async with database.transaction() as session:
        sent_at = (await session.execute(select(OutboxMessage.sent_at))).scalar_one()
    assert sent_at is None


async def test_utc_datetime_refuses_a_naive_datetime(database: Database) -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9)
    with pytest.raises(StatementError, match="naive datetime") as raised:
        async with database.transaction() as session:
            session.add(Workspace(platform="slack", external_id="T1", created_at=naive))
    assert isinstance(raised.value.orig, ValueError)
    assert await _count(database, Workspace) == 0  # nothing half-saved

    with pytest.raises(StatementError, match="naive datetime"):
        async with database.transaction() as session:
            await session.execute(select(Workspace).where(Workspace.created_at < naive))


# --- constraints ---------------------------------------------------------------------------------


async def test_workspace_platform_and_external_id_are_unique(database: Database) -> None:
    async with database.transaction() as session:
        await _add_workspace(session, "T1")
        # The same id on another platform is another workspace.
        session.add(Workspace(platform="discord", external_id="T1", created_at=NOW))

    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(Workspace(platform="slack", external_id="T1", created_at=NOW))

    assert await _count(database, Workspace) == 2


async def test_member_workspace_and_platform_user_id_are_unique(database: Database) -> None:
    async with database.transaction() as session:
        first = await _add_workspace(session, "T1")
        second = await _add_workspace(session, "T2")
        session.add(_member(first, "U1"))
        # The same user id in another workspace is another member.
        session.add(_member(second, "U1"))
        first_id = first.id

    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            workspace = await session.get(Workspace, first_id)
            assert workspace is not None
            session.add(_member(workspace, "U1"))

    assert await _count(database, Member) == 2


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            session.add(
                Member(workspace_id=424242, platform_user_id="U1", created_at=NOW, updated_at=NOW)
            )
    assert await _count(database, Member) == 0


async def test_a_failed_insert_in_a_savepoint_keeps_the_transaction(database: Database) -> None:
    """How an "insert the key or skip" claim works: the duplicate rolls back only its savepoint."""
    async with database.transaction() as session:
        session.add(ProcessedEvent(platform="slack", event_id="Ev1", received_at=NOW))
        await session.flush()
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                session.add(ProcessedEvent(platform="slack", event_id="Ev1", received_at=NOW))
        session.add(ProcessedEvent(platform="slack", event_id="Ev2", received_at=NOW))

    async with database.transaction() as session:
        ids = (await session.execute(select(ProcessedEvent.event_id).order_by("event_id"))).all()
    assert [row[0] for row in ids] == ["Ev1", "Ev2"]


# --- cascades ------------------------------------------------------------------------------------


async def _populate(database: Database, external_id: str) -> int:
    """A workspace with a row in every table that refers to it; returns its id."""
    async with database.transaction() as session:
        workspace = await _add_workspace(session, external_id)
        member = _member(workspace, "U1")
        channel = Channel(workspace_id=workspace.id, external_id="C1", created_at=NOW)
        session.add_all([member, channel])
        await session.flush()
        team = Team(workspace_id=workspace.id, name="core", channel_id=channel.id, created_at=NOW)
        session.add(team)
        await session.flush()
        session.add_all(
            [
                TeamMember(team_id=team.id, member_id=member.id),
                RoleAssignment(
                    workspace_id=workspace.id,
                    member_id=member.id,
                    role=RoleName.TEAM_LEAD,
                    team_id=team.id,
                    granted_at=NOW,
                ),
                OutboxMessage(
                    idempotency_key=f"{external_id}-1",
                    workspace_id=workspace.id,
                    method="post",
                    target={"channel": "C1"},
                    payload={"text": "hi"},
                    next_attempt_at=NOW,
                    created_at=NOW,
                ),
            ]
        )
        return workspace.id


WORKSPACE_CHILDREN: list[type[Base]] = [
    Member,
    Channel,
    Team,
    TeamMember,
    RoleAssignment,
    OutboxMessage,
]


async def test_deleting_a_workspace_in_sql_cascades_to_its_rows(database: Database) -> None:
    doomed = await _populate(database, "T1")
    await _populate(database, "T2")
    for model in WORKSPACE_CHILDREN:
        assert await _count(database, model) == 2, model

    async with database.transaction() as session:
        await session.execute(delete(Workspace).where(Workspace.id == doomed))

    for model in WORKSPACE_CHILDREN:
        assert await _count(database, model) == 1, model  # the other workspace keeps its rows
    async with database.transaction() as session:
        remaining = (await session.execute(select(Member.workspace_id))).scalars().all()
    assert doomed not in remaining


async def test_deleting_a_workspace_through_the_orm_cascades(database: Database) -> None:
    workspace_id = await _populate(database, "T1")

    async with database.transaction() as session:
        workspace = await session.get(Workspace, workspace_id)
        assert workspace is not None
        await session.delete(workspace)

    assert await _count(database, Workspace) == 0
    for model in WORKSPACE_CHILDREN:
        assert await _count(database, model) == 0, model


async def test_deleting_a_channel_unsets_the_team_channel(database: Database) -> None:
    await _populate(database, "T1")
    async with database.transaction() as session:
        await session.execute(delete(Channel))
    async with database.transaction() as session:
        team = (await session.execute(select(Team))).scalar_one()
    assert team.channel_id is None


# --- SQLite setup --------------------------------------------------------------------------------


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_database: Database,
) -> None:
    async def check(conn: AsyncConnection) -> None:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
        busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
        assert str(journal).lower() == "wal"
        assert foreign_keys == 1
        assert busy == SQLITE_BUSY_TIMEOUT_MS > 0
        await conn.commit()  # every transaction holds the write lock (BEGIN IMMEDIATE)

    engine = sqlite_database.engine
    # Two DBAPI connections: every pooled connection is set up, not just the first.
    async with engine.connect() as first:
        await check(first)
        async with engine.connect() as second:
            await check(second)
            first_raw = (await first.get_raw_connection()).driver_connection
            second_raw = (await second.get_raw_connection()).driver_connection
            assert first_raw is not second_raw


async def test_two_databases_on_one_sqlite_file_write_concurrently(tmp_path: Path) -> None:
    """Read-then-write transactions from two processes' engines all succeed.

    Each transaction reads, yields to the other writers, then writes. With a plain (deferred)
    BEGIN two of them would hold read snapshots and the second to write would fail at once with
    "database is locked" (the busy timeout cannot help a stale snapshot); BEGIN IMMEDIATE makes
    them queue for the write lock instead.
    """
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first = Database(url)
    second = Database(url)
    try:
        await migrate.upgrade(first.engine)

        async def write(db: Database, n: int) -> int:
            async with db.transaction() as session:
                seen = (
                    await session.execute(select(func.count()).select_from(ProcessedEvent))
                ).scalar_one()
                await asyncio.sleep(0.002)
                session.add(ProcessedEvent(platform="slack", event_id=f"E{n}", received_at=NOW))
                return seen

        writes = 30
        results = await asyncio.gather(
            *(write(first if n % 2 else second, n) for n in range(writes)),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        # Serialised: every transaction saw a different number of earlier rows.
        assert sorted(r for r in results if isinstance(r, int)) == list(range(writes))
        assert await _count(second, ProcessedEvent) == writes
    finally:
        await first.dispose()
        await second.dispose()


# --- read snapshots -----------------------------------------------------------------------------


async def test_a_read_is_one_snapshot_that_writers_do_not_wait_for(database: Database) -> None:
    """Database.read: what a report refresh renders from. Writers go on while it is open (on
    SQLite neither lock is taken), it keeps seeing what was there when it began, and it cannot
    write; the connection it used is writable again afterwards."""
    async with database.transaction() as session:
        await _add_workspace(session, "T-before")
    async with database.read() as reading:
        assert await reading.scalar(select(func.count()).select_from(Workspace)) == 1

        async def write() -> None:
            async with database.transaction() as session:
                await _add_workspace(session, "T-during")

        await asyncio.wait_for(write(), timeout=10)
        assert await reading.scalar(select(func.count()).select_from(Workspace)) == 1
        with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
            await reading.execute(delete(Workspace))
    assert await _count(database, Workspace) == 2
    for n in range(3):  # pooled connections that served a read write again
        async with database.transaction() as session:
            await _add_workspace(session, f"T-after-{n}")
    assert await _count(database, Workspace) == 5


async def test_a_burst_of_transactions_waits_for_connections_instead_of_failing(
    db_url: str,
) -> None:
    """Far more transactions at once than the pool has connections, each holding its
    connection longer than the pool's checkout timeout would let the last one wait: all of
    them commit (they queue in Database.transaction, not in the pool)."""
    db = Database(db_url, pool_size=1, max_overflow=1, pool_timeout=0.2)
    try:
        await migrate.upgrade(db.engine)

        async def one(i: int) -> None:
            async with db.transaction() as session:
                await session.execute(
                    insert(ProcessedEvent).values(
                        platform="test", event_id=f"burst-{i}", received_at=datetime.now(UTC)
                    )
                )
                await asyncio.sleep(0.05)

        await asyncio.gather(*(one(i) for i in range(20)))
        async with db.transaction() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(ProcessedEvent.platform == "test")
            )
        assert count == 20
    finally:
        await db.dispose()
