"""The operator's ``syncup outbox`` commands (bot/delivery/admin.py) at their edges (issue 17,
the gaps mutation testing found): what ``outbox list`` shows of each message and how many,
what ``outbox retry`` puts back in the queue and what it leaves alone, even when another
operator and a worker act on the same row at once, and which learned rates ``outbox rates``
shows, in which order, with what they measured. Both databases, through the functions and
through the command line the operator types."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from bot.chat import message
from bot.cli import cli
from bot.delivery import admin
from bot.delivery.admin import LearnedRate, OutboxEntry, RetryResult
from bot.delivery.outbox import enqueue
from bot.port import Method, Target
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus, Workspace
from storage.pacing import DeliveryRate
from tests.cli_env import without_syncup_env
from tests.conftest import pg_base_url

QUEUED = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
DIED = datetime(2026, 3, 9, 8, 5, tzinfo=UTC)  # the last attempt, when the row went dead
RETRIED = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # the operator's `outbox retry`
UPDATED = datetime(2026, 3, 9, 7, 45, 12, tzinfo=UTC)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI with none of the machine's settings, run from an empty folder."""
    test_url = pg_base_url()  # read before the SYNCUP_ settings go
    without_syncup_env(monkeypatch)
    if test_url is not None:
        monkeypatch.setenv("SYNCUP_TEST_DATABASE_URL", test_url)
    monkeypatch.chdir(tmp_path)
    yield CliRunner()


async def syncup(runner: CliRunner, database: Database, *args: str) -> Result:
    """``syncup ARGS`` against ``database``, as an operator runs it (in a thread of its own: the
    command runs its own event loop)."""
    return await asyncio.to_thread(
        runner.invoke, cli, list(args), env={"SYNCUP_DATABASE_URL": database.url}, input=""
    )


async def add_workspace(db: Database, external_id: str) -> int:
    async with db.transaction() as session:
        ws = Workspace(platform="fake", external_id=external_id, name="", created_at=QUEUED)
        session.add(ws)
        await session.flush()
        return ws.id


async def queue(db: Database, ws: int, *keys: str, at: datetime = QUEUED) -> list[int]:
    """One post per key, queued at ``at``; their ids."""
    async with db.transaction() as session:
        return [
            await enqueue(
                session,
                workspace_id=ws,
                method=Method.POST,
                target=Target(channel_id="C1"),
                message=message(f"text of {key}"),
                key=key,
                now=at,
            )
            for key in keys
        ]


async def set_row(db: Database, row_id: int, **values: object) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values)
        )


async def kill(db: Database, row_id: int, error: str, attempts: int = 8) -> None:
    """The row as the worker leaves a dead letter: tried, due at its last attempt, no lease;
    ``sending_since`` kept when the last attempt's outcome was unknown."""
    await set_row(
        db,
        row_id,
        status=OutboxStatus.DEAD,
        attempts=attempts,
        last_error=error,
        next_attempt_at=DIED,
        sending_since=DIED,
    )


async def stored(db: Database, row_id: int) -> OutboxMessage:
    async with db.transaction() as session:
        found = await session.get(OutboxMessage, row_id)
        assert found is not None
        return found


async def statuses(db: Database) -> dict[int, OutboxStatus]:
    async with db.transaction() as session:
        rows = await session.execute(select(OutboxMessage.id, OutboxMessage.status))
        return {row_id: OutboxStatus(status) for row_id, status in rows.all()}


# -- outbox list ------------------------------------------------------------------------------


async def test_list_gives_each_message_as_stored_and_outbox_list_shows_when_it_goes_next(
    database: Database, runner: CliRunner
) -> None:
    ws = await add_workspace(database, "W-LIST")
    pending, dead = await queue(database, ws, "waiting", "refused")
    later = QUEUED + timedelta(minutes=3, seconds=7)
    await set_row(database, pending, attempts=2, next_attempt_at=later, last_error="HTTP 500")
    await kill(database, dead, "PermanentDeliveryError: HTTP 404:\nchannel_not_found")

    entries = await admin.list_messages(database)

    assert entries == [
        OutboxEntry(
            id=pending,
            workspace="W-LIST",
            method="post",
            status="pending",
            attempts=2,
            next_attempt_at=later,
            last_error="HTTP 500",
            created_at=QUEUED,
        ),
        OutboxEntry(
            id=dead,
            workspace="W-LIST",
            method="post",
            status="dead",
            attempts=8,
            next_attempt_at=DIED,
            last_error="PermanentDeliveryError: HTTP 404:\nchannel_not_found",
            created_at=QUEUED,
        ),
    ]
    shown = await syncup(runner, database, "outbox", "list")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[1:] == [
        f"{pending:>6}  pending  post          2  2026-03-09 08:03:07  HTTP 500",
        f"{dead:>6}  dead     post          8  2026-03-09 08:05:00  "
        "PermanentDeliveryError: HTTP 404: channel_not_found",
    ]


async def test_list_shows_fifty_by_default_and_as_few_as_one_oldest_first(
    database: Database,
) -> None:
    ws = await add_workspace(database, "W-MANY")
    ids = await queue(database, ws, *(f"k{n:02}" for n in range(51)))

    assert [e.id for e in await admin.list_messages(database)] == ids[:50]
    assert [e.id for e in await admin.list_messages(database, "pending", 1)] == ids[:1]
    assert [e.id for e in await admin.list_messages(database, "all", 2)] == ids[:2]


async def test_a_limit_below_one_is_refused_with_its_reason(database: Database) -> None:
    for limit in (0, -1):
        with pytest.raises(ValueError) as refused:
            await admin.list_messages(database, "all", limit)
        assert str(refused.value) == "limit must be at least 1"


# -- outbox retry -----------------------------------------------------------------------------


async def test_retrying_one_dead_message_queues_it_due_now_and_leaves_the_other_dead_letters(
    database: Database,
) -> None:
    ws = await add_workspace(database, "W-RETRY")
    first, second, third = await queue(database, ws, "a", "b", "c")
    for row_id in (first, second, third):
        await kill(database, row_id, "DeliveryError: HTTP 502")

    result = await admin.retry_dead(database, [second], RETRIED)

    assert result == RetryResult(1, (second,), (), ())
    again = await stored(database, second)
    assert (again.status, again.attempts, again.last_error) == (OutboxStatus.PENDING, 0, None)
    assert again.next_attempt_at == RETRIED  # due when the operator asked, as `list` shows
    assert (again.lease_until, again.leased_by) == (None, None)
    assert again.sending_since == DIED  # an unknown outcome still goes out flagged maybe_sent
    for row_id in (first, third):  # not asked for: still dead, as they were
        left = await stored(database, row_id)
        assert (left.status, left.attempts, left.last_error, left.next_attempt_at) == (
            OutboxStatus.DEAD,
            8,
            "DeliveryError: HTTP 502",
            DIED,
        )


async def test_outbox_retry_queues_only_the_named_dead_letter_and_list_shows_it_due(
    database: Database, runner: CliRunner
) -> None:
    ws = await add_workspace(database, "W-CLI")
    first, second = await queue(database, ws, "a", "b")
    for row_id in (first, second):
        await kill(database, row_id, "DeliveryError: HTTP 502")

    before = datetime.now(UTC).replace(microsecond=0)
    retried = await syncup(runner, database, "outbox", "retry", str(second))
    after = datetime.now(UTC)

    assert retried.exit_code == 0, retried.output
    assert retried.output == "1 message(s) queued again.\n"
    assert await statuses(database) == {first: OutboxStatus.DEAD, second: OutboxStatus.PENDING}
    listed = (await syncup(runner, database, "outbox", "list")).output.splitlines()
    assert listed[1] == f"{first:>6}  dead     post          8  2026-03-09 08:05:00  " + (
        "DeliveryError: HTTP 502"
    )
    fields = listed[2].split()
    assert fields[:4] == [str(second), "pending", "post", "0"] and len(fields) == 6
    due = datetime.fromisoformat(f"{fields[4]}T{fields[5]}+00:00")
    assert before <= due <= after


@contextlib.asynccontextmanager
async def second_operator(url: str) -> Any:
    """Another process on the same database (its own engine and connections)."""
    other = Database(url)
    try:
        yield other
    finally:
        await other.dispose()


async def test_a_dead_letter_retried_and_sent_meanwhile_is_not_queued_again_postgresql_only(
    database: Database,
) -> None:
    """PostgreSQL: two operators retry the same dead letter at once. Operator A reads it as dead;
    before A's update, operator B's retry puts it back in the queue and a worker sends it. A's
    update must pass over it (it is no longer dead): put back to pending, the message would go
    out a second time. SQLite cannot see this: A's transaction holds the one write lock from its
    start, so nothing can change the row between A's read and A's update."""
    if database.dialect != "postgresql":
        pytest.skip("a check only PostgreSQL can make (a write between two statements)")
    ws = await add_workspace(database, "W-RACE")
    (row_id,) = await queue(database, ws, "once")
    await kill(database, row_id, "DeliveryError: HTTP 502")
    real = database.transaction

    @contextlib.asynccontextmanager
    async def b_acts_after_a_reads(**kwargs: Any) -> Any:
        async with real(**kwargs) as session:
            execute = session.execute

            async def then_b(*args: Any, **kw: Any) -> Any:
                session.execute = execute  # type: ignore[method-assign]
                result = await execute(*args, **kw)
                async with second_operator(database.url) as other:
                    assert int(await admin.retry_dead(other, [row_id], RETRIED)) == 1
                    await set_row(  # the worker's send, recorded
                        other,
                        row_id,
                        status=OutboxStatus.SENT,
                        attempts=1,
                        sending_since=None,
                        platform_channel_id="C1",
                        platform_message_id="m-1",
                        sent_at=RETRIED,
                    )
                return result

            session.execute = then_b  # type: ignore[method-assign]
            yield session

    database.transaction = b_acts_after_a_reads  # type: ignore[method-assign]
    try:
        result = await admin.retry_dead(database, [row_id], RETRIED)
    finally:
        database.transaction = real  # type: ignore[method-assign]

    sent = await stored(database, row_id)
    assert (sent.status, sent.attempts, sent.platform_message_id) == (OutboxStatus.SENT, 1, "m-1")
    # A is told what its update did: nothing was queued again, the row was not dead any more.
    assert result == RetryResult(0, (), (row_id,), ())


# -- outbox rates -----------------------------------------------------------------------------


async def add_rates(db: Database, rows: list[tuple[int, str, float | None]]) -> None:
    """Learned rates, in the order given: (workspace, bucket, measured)."""
    for n, (ws, bucket, measured) in enumerate(rows):
        async with db.transaction() as session:
            session.add(
                DeliveryRate(
                    workspace_id=ws,
                    bucket=bucket,
                    rate=2.8 + n,
                    burst=8,
                    learned=measured is not None,
                    measured=measured,
                    rate_limited=n,
                    updated_at=UPDATED,
                )
            )


async def test_rates_by_workspace_then_bucket_with_what_they_measured_without_channels(
    database: Database, runner: CliRunner
) -> None:
    # Stored in no useful order: the workspace made later sorts first, its buckets backwards.
    zulu = await add_workspace(database, "T-ZULU")
    alpha = await add_workspace(database, "T-ALPHA")
    await add_rates(
        database,
        [
            (zulu, "post", None),
            (alpha, "post", 1.5),
            (alpha, "channel:C1", None),  # a channel's fixed pace, not learned: left out
            (alpha, "dm", None),
            (zulu, "channel:C9", 4.0),
        ],
    )

    rates = await admin.learned_rates(database)

    assert rates == [
        LearnedRate("T-ALPHA", "dm", 5.8, 8, False, None, 3, UPDATED),
        LearnedRate("T-ALPHA", "post", 3.8, 8, True, 1.5, 1, UPDATED),
        LearnedRate("T-ZULU", "post", 2.8, 8, False, None, 0, UPDATED),
    ]
    shown = await syncup(runner, database, "outbox", "rates")
    assert shown.exit_code == 0, shown.output
    assert [line.split() for line in shown.output.splitlines()[1:]] == [
        ["T-ALPHA", "dm", "5.80", "8", "probing", "-", "3", "2026-03-09", "07:45:12"],
        ["T-ALPHA", "post", "3.80", "8", "cut", "by", "429", "1.50", "1", "2026-03-09", "07:45:12"],
        ["T-ZULU", "post", "2.80", "8", "probing", "-", "0", "2026-03-09", "07:45:12"],
    ]
