"""Migration 0009: an open anonymous poll's keyed ballots and secret move into its own tables
(and back on downgrade); closed polls' ballots and named ballots stay where they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from bot.features.polls.ballots import OWN_TABLE
from storage import migrate
from storage.db import Database

NOW = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
SECRET = bytes(range(32))


@pytest.fixture
async def before_0009(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    try:
        await migrate.upgrade(db.engine, "0008")
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO workspaces (id, platform, external_id, name, created_at) "
                    "VALUES (1, 'test', 'T1', 'Test', :now)"
                ),
                {"now": NOW},
            )
            for poll_id, anonymous, secret, closed in (
                (1, True, SECRET, None),  # open anonymous
                (2, True, None, NOW),  # closed anonymous: sealed already
                (3, False, None, None),  # named
            ):
                await session.execute(
                    text(
                        "INSERT INTO polls (id, workspace_id, question, kind, options, "
                        "max_choices, anonymous, results, threshold, secret, opens_at, "
                        "closed_at, close_generation, results_version, created_at, updated_at) "
                        "VALUES (:id, 1, 'Q?', 'single', '[\"A\", \"B\"]', 1, :anonymous, "
                        "'closed', 3, :secret, :now, :closed, 0, 0, :now, :now)"
                    ),
                    {
                        "id": poll_id,
                        "anonymous": anonymous,
                        "secret": secret,
                        "now": NOW,
                        "closed": closed,
                    },
                )
            for poll_id, key, choice in ((1, "a" * 64, 0), (1, "b" * 64, 1), (2, "c" * 64, 1)):
                await session.execute(
                    text(
                        "INSERT INTO poll_ballots (poll_id, voter_key, choice) VALUES (:p, :k, :c)"
                    ),
                    {"p": poll_id, "k": key, "c": choice},
                )
        yield db
    finally:
        await db.dispose()


async def _rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    async with db.transaction() as session:
        return [tuple(r) for r in (await session.execute(text(sql))).all()]


async def _own_tables(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return sorted(n for n in names if OWN_TABLE.fullmatch(n))


async def test_upgrade_moves_open_polls_out_and_downgrade_moves_them_back(
    before_0009: Database,
) -> None:
    db = before_0009
    await migrate.upgrade(db.engine, "0009")
    assert await _own_tables(db) == ["poll_1_keyed", "poll_1_secret"]
    assert await _rows(db, "SELECT secret FROM poll_1_secret") == [(SECRET,)]
    assert sorted(await _rows(db, "SELECT voter_key, choice FROM poll_1_keyed")) == [
        ("a" * 64, 0),
        ("b" * 64, 1),
    ]
    assert await _rows(db, "SELECT poll_id, voter_key FROM poll_ballots") == [(2, "c" * 64)]
    async with db.engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: [c["name"] for c in inspect(sync).get_columns("polls")]
        )
    assert "secret" not in columns

    await migrate.downgrade(db.engine, "0008")
    assert await _own_tables(db) == []
    assert await _rows(db, "SELECT id, secret FROM polls ORDER BY id") == [
        (1, SECRET),
        (2, None),
        (3, None),
    ]
    assert sorted(await _rows(db, "SELECT poll_id, voter_key, choice FROM poll_ballots")) == [
        (1, "a" * 64, 0),
        (1, "b" * 64, 1),
        (2, "c" * 64, 1),
    ]
