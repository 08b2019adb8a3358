"""Database outages: one line when the database goes, one when it is back, and the schedules
re-read at once on its return. Disk full and read-only get one clear line each.

PostgreSQL is made unreachable for one App only, through a TCP proxy the test takes down (the
shared server keeps running for everyone else). ``asyncio.timeout`` is only a safety net.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.clock import Clock
from bot.config import DatabaseSection, DeliverySection, SchedulerSection, Settings
from bot.port import Delivery, Method, RateLimit, Receipt
from bot.scheduling.scheduler import Occurrence, Schedule
from storage import migrate
from storage.db import Database
from storage.models import ProcessedEvent
from storage.outages import DatabaseUnavailable, Outage
from storage.wal import WalWatch
from tests.conftest import drop_pg_database, fresh_pg_database, pg_base_url
from tests.fakes.clock import FakeClock
from tests.fakes.tcp_proxy import TcpProxy
from tests.test_core import command

SAFETY = 60
START = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
OUTAGE_LOGGER = "storage.outages"


class QuietPort:
    platform = "fake"

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return dict.fromkeys(Method, RateLimit(rate=100.0, burst=100))

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:
        return Receipt(message_id=str(delivery.outbox_id))


class IdleAdapter:
    def __init__(self, clock: FakeClock) -> None:
        self.port = QuietPort()
        self._clock = clock

    def clock(self) -> Clock | None:
        return self._clock

    async def run(self, app: App) -> int:
        await asyncio.Event().wait()
        return 0


class PollClose:
    """A schedule source with one occurrence (a poll's close) an hour after the start."""

    def __init__(self) -> None:
        self.ran: list[datetime] = []
        self.done = asyncio.Event()

    async def schedules(self, session: AsyncSession, now: datetime) -> Iterable[Schedule]:
        at = START + timedelta(hours=1)
        return [Schedule("test:close", "test-close", DateTrigger(run_date=at, timezone=UTC))]

    async def run(self, occurrence: Occurrence) -> None:
        self.ran.append(occurrence.fire_at)
        self.done.set()


@pytest.fixture
async def proxied_pg() -> AsyncIterator[tuple[str, TcpProxy]]:
    base = pg_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL")
    url = await fresh_pg_database(base)
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.up()
    try:
        yield parsed.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.down()
        await drop_pg_database(base, url)


class LineWatch(logging.Handler):
    """Sets an event when a log line containing ``needle`` is emitted."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


async def wait_for_line(needle: str) -> None:
    watch = LineWatch(needle)
    logging.getLogger(OUTAGE_LOGGER).addHandler(watch)
    try:
        async with asyncio.timeout(SAFETY):
            await watch.seen.wait()
    finally:
        logging.getLogger(OUTAGE_LOGGER).removeHandler(watch)


async def test_postgresql_outage_logs_one_line_each_way_and_reconciles_on_return(
    proxied_pg: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = proxied_pg
    clock = FakeClock(START)
    settings = Settings.model_construct(
        database=DatabaseSection(url=url),
        # Only the database's return can reconcile within this test.
        scheduler=SchedulerSection(reconcile_interval_seconds=3600),
        delivery=DeliverySection(poll_interval_seconds=0.02),
    )
    app = App(settings, IdleAdapter(clock))
    close = PollClose()
    app.scheduler.add_source(close)
    app.scheduler.add_handler("test-close", close.run)
    caplog.set_level(logging.INFO)
    await app.start()
    try:
        gone = asyncio.create_task(wait_for_line("database unreachable"))
        await asyncio.sleep(0)
        await proxy.down()
        await gone
        # The close falls due while the database is away; it is tried and fails meanwhile.
        clock.advance(timedelta(hours=1, minutes=1))
        assert not await app.scheduler.run_occurrence(
            app.scheduler._schedules["test:close"], START + timedelta(hours=1)
        )
        # An event meanwhile gets a plain answer, and no traceback.
        said = await app.core.handle(command("/syncup help"))
        assert "cannot reach its database right now" in str(said)
        polls = app.worker  # the worker keeps polling every 20 ms during the outage
        for _ in range(20):
            with pytest.raises(DatabaseUnavailable):
                await polls.idle()
            await asyncio.sleep(0.02)
        assert close.ran == []
        back = asyncio.create_task(wait_for_line("database usable again"))
        await asyncio.sleep(0)
        await proxy.up()
        await back
        async with asyncio.timeout(SAFETY):
            await close.done.wait()
    finally:
        await app.stop()
    gc.collect()  # a task whose exception nobody retrieved is reported when collected

    assert close.ran == [START + timedelta(hours=1)]  # run on return, not an hour later
    outage = [r for r in caplog.records if r.name == OUTAGE_LOGGER]
    assert [r.levelname for r in outage] == ["ERROR", "WARNING"], [r.getMessage() for r in outage]
    assert outage[0].getMessage().startswith("database unreachable (")
    assert "retries by itself" in outage[0].getMessage()
    assert outage[1].getMessage().startswith("database usable again after")
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    assert "never retrieved" not in caplog.text
    assert sum("ERROR" == r.levelname for r in caplog.records) == 1


async def test_a_database_with_nothing_listening_is_unreachable_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = TcpProxy("127.0.0.1", 9)
    await proxy.up()
    port = proxy.port
    await proxy.down()  # the port is free again: nothing listens there
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing", watch_outages=True)
    caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
    try:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable) as raised:
                async with db.transaction() as session:
                    await session.execute(text("SELECT 1"))
            assert raised.value.kind is Outage.UNREACHABLE
    finally:
        await db.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]
    assert len(lines) == 1
    assert "ConnectionRefusedError" in lines[0] or "OSError" in lines[0]

    # A one-shot command (the CLI) gets the driver's own error, for its own one-line message.
    cli = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    try:
        with pytest.raises(OSError):
            async with cli.transaction() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await cli.dispose()
    assert len([r for r in caplog.records if r.name == OUTAGE_LOGGER]) == 1


async def insert_event(db: Database, n: int, *, pad: int = 0) -> None:
    async with db.transaction() as session:
        session.add(
            ProcessedEvent(
                platform="fake", event_id=f"e{n}-" + "x" * pad, received_at=datetime.now(UTC)
            )
        )


async def test_sqlite_disk_full_gets_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'full.db'}"
    setup = Database(url)
    await migrate.upgrade(setup.engine)
    await setup.dispose()
    db = Database(url, watch_outages=True)

    @event.listens_for(db.engine.sync_engine, "connect")
    def _small_disk(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages + 1}")
        cursor.close()

    caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            for n in range(100):
                await insert_event(db, n, pad=2000)  # SQLite does not enforce the length
        assert raised.value.kind is Outage.DISK_FULL
        with pytest.raises(DatabaseUnavailable):
            await insert_event(db, 1000, pad=2000)
    finally:
        await db.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]
    assert lines == [
        "database disk full (OperationalError: database or disk is full): nothing can be saved "
        "until space is freed"
    ]


async def test_sqlite_read_only_file_gets_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ro.db"
    setup = Database(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(setup.engine)
    await setup.dispose()
    db = Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true", watch_outages=True)
    caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
    try:
        for n in range(2):
            with pytest.raises(DatabaseUnavailable) as raised:
                await insert_event(db, n)
            assert raised.value.kind is Outage.READ_ONLY
    finally:
        await db.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]
    assert len(lines) == 1
    assert lines[0].startswith("database read-only (")
    assert "permissions" in lines[0]


async def test_postgresql_read_only_gets_one_line_and_a_read_session_is_no_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    base = pg_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL")
    url = await fresh_pg_database(base)
    db = Database(url, watch_outages=True)
    try:
        await migrate.upgrade(db.engine)
        async with db.read() as session:  # the caller's mistake, not an outage
            with pytest.raises(Exception, match="read-only"):
                await session.execute(text("CREATE TABLE nope (x int)"))
        name = make_url(url).database
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
        await db.engine.dispose()  # new sessions get the setting
        caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
        for n in range(2):
            with pytest.raises(DatabaseUnavailable) as raised:
                await insert_event(db, n)
            assert raised.value.kind is Outage.READ_ONLY
    finally:
        await db.dispose()
        await drop_pg_database(base, url)
    lines = [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]
    assert len(lines) == 1 and lines[0].startswith("database read-only (")


async def test_a_wal_that_cannot_be_checkpointed_is_told_once_then_recovers(
    sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    path = sqlite_database.engine.url.database
    assert path is not None
    watch = WalWatch(sqlite_database, warn_bytes=256 * 1024)
    caplog.set_level(logging.INFO, logger="storage.wal")
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM processed_events").fetchone()  # holds a snapshot
        for n in range(400):
            await insert_event(sqlite_database, n, pad=2000)
        first = await watch.check()
        assert first.stuck and first.size > 256 * 1024
        await insert_event(sqlite_database, 1000, pad=2000)
        assert (await watch.check()).stuck
        reader.execute("COMMIT")
    finally:
        reader.close()
    after = await watch.check()
    assert not after.stuck
    assert WalWatch(sqlite_database).path == f"{path}-wal"
    assert (await watch.check()).size < 256 * 1024  # truncated once copied back
    lines = [r for r in caplog.records if r.name == "storage.wal"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert "cannot be checkpointed" in lines[0].getMessage()
    assert "keeps a read transaction open" in lines[0].getMessage()
    assert "checkpointed again" in lines[1].getMessage()


async def test_a_network_error_of_the_callers_own_is_no_database_outage(
    database: Database, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A platform call inside a transaction that cannot connect is not the database's fault."""
    await database.dispose()
    database = Database(db_url, watch_outages=True)
    caplog.set_level(logging.INFO, logger=OUTAGE_LOGGER)
    with pytest.raises(ConnectionRefusedError):
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
            raise ConnectionRefusedError(111, "Connect call failed ('203.0.113.1', 443)")
    with pytest.raises(ConnectionRefusedError):
        async with database.read():
            raise ConnectionRefusedError(111, "Connect call failed ('203.0.113.1', 443)")
    await database.dispose()
    assert database.health.outage is None
    assert [r for r in caplog.records if r.name == OUTAGE_LOGGER] == []
