"""Shared fixtures: a migrated database on SQLite and, when configured, on PostgreSQL.

PostgreSQL comes from ``SYNCUP_TEST_DATABASE_URL``. Without it the PostgreSQL cases are skipped
on a developer's machine; under CI (``CI=true``) a missing or unreachable server fails the run.
Each test gets its own PostgreSQL database, dropped afterwards, so runs never see each other.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import WebSection
from storage import migrate
from storage.db import Database
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver

if TYPE_CHECKING:
    from tests.test_scheduler import Replicas

PG_URL_ENV = "SYNCUP_TEST_DATABASE_URL"
# Every app a test runs serves HTTP on a free port ([web] port 0), never on 8080: tests run
# side by side, and a developer's own syncup may hold 8080. The environment covers settings
# that are loaded; the default covers Settings.model_construct(...), which reads no environment.
os.environ.setdefault("SYNCUP_WEB_PORT", "0")
WebSection.model_fields["port"].default = 0
WebSection.model_rebuild(force=True)


def pg_base_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_ENV} is not set; CI must test on PostgreSQL", pytrace=False)
        return None
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and pg_base_url() is None:
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    return request.param


async def _admin(base: str, statement: str) -> None:
    admin = Database(base)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {make_url(base).host} is unreachable: {exc}", pytrace=False)
    finally:
        await admin.dispose()


async def fresh_pg_database(base: str) -> str:
    """Create an empty database next to the configured one and return its URL."""
    name = f"syncup_t_{uuid.uuid4().hex[:12]}"
    await _admin(base, f'CREATE DATABASE "{name}"')
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(base: str, url: str) -> None:
    name = make_url(url).database
    await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db_url(db_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database on the backend under test."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
        return
    base = pg_base_url()
    assert base is not None
    url = await fresh_pg_database(base)
    try:
        yield url
    finally:
        await asyncio.shield(drop_pg_database(base, url))


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database on the backend under test."""
    db = Database(db_url)
    await migrate.upgrade(db.engine)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}")
    await migrate.upgrade(db.engine)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def replicas(database: Database) -> AsyncIterator[Replicas]:
    """Scheduler processes on ``database``, each with its own engine and pool (the scheduler
    tests' ``Replicas``); stopped and disposed of after the test."""
    from tests.test_scheduler import Replicas

    harness = Replicas(database.url)
    try:
        yield harness
    finally:
        await harness.close()


@pytest.fixture
async def receiver() -> AsyncIterator[FakeReceiver]:
    """A fake platform for the delivery worker (tests/fakes/receiver.py), on 127.0.0.1."""
    async with FakeReceiver() as fake:
        yield fake


@pytest.fixture
async def port(receiver: FakeReceiver) -> AsyncIterator[HttpPort]:
    """The port that sends to :func:`receiver` over HTTP (a module may define its own)."""
    http = HttpPort(receiver.url)
    yield http
    await http.aclose()
