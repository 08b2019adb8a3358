"""A 429's Retry-After holds every send of that workspace and method until it has passed.

What a platform asks of a client that got a 429: nothing more for that bucket until Retry-After
has passed, not the row that was refused, not the rows behind it, not a row queued during the
pause, whichever replica holds them. Three safeguards keep that (the refused row is due only after
the pause, the worker's bucket is paused, and the pause is as long as the platform said); each
test here fails if one of them is lost, even while the others hold.

Arrival times are the event loop's monotonic time, read by the fake when it answers; the checks
are lower bounds (nothing *before* the pause ended), which a slow machine can only satisfy more
easily, never a claim about speed.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.delivery.worker import DeliveryWorker
from bot.port import Method
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus
from tests.fakes.http_port import HttpPort
from tests.fakes.receiver import FakeReceiver, Fault, Request
from tests.test_delivery import SAFETY, JumpClock, add_workspace, put, settings

RETRY_AFTER = 1.5  # seconds, as the fake's 429 says
# The fake rounds Retry-After up to the millisecond and both ends read one monotonic clock.
SLACK = 0.005


def the_429(receiver: FakeReceiver) -> Request:
    refused = [r for r in receiver.requests if r.outcome == "429"]
    assert len(refused) == 1, refused
    return refused[0]


def sends_into_the_pause(receiver: FakeReceiver, workspace: str, method: str) -> list[Request]:
    """Requests for (workspace, method) that reached the platform before Retry-After passed."""
    refused = the_429(receiver)
    return [
        r
        for r in receiver.requests
        if r.workspace == workspace
        and r.method == method
        and r is not refused
        and refused.at <= r.at < refused.at + RETRY_AFTER - SLACK
    ]


async def rate_limited_row_recorded(database: Database, key: str) -> None:
    """Wait until the worker has written the 429's outcome for ``key``."""
    while True:
        async with database.read() as session:
            rate_limited = await session.scalar(
                select(OutboxMessage.rate_limited).where(OutboxMessage.idempotency_key == key)
            )
        if rate_limited:
            return
        await asyncio.sleep(0.01)


async def three_posts_and_a_429(
    database: Database, receiver: FakeReceiver, clock: JumpClock
) -> tuple[int, list[str], Fault]:
    """Three posts queued in workspace W-1; the first send of a post there answers 429."""
    ws = await add_workspace(database, "W-1")
    posts = [f"post-{i}" for i in range(3)]
    for key in posts:
        await put(database, clock, ws, key)
    refusal = receiver.inject(
        Fault("status", status=429, retry_after=RETRY_AFTER, workspace="W-1", method="post")
    )
    return ws, posts, refusal


async def the_429_recorded(database: Database, receiver: FakeReceiver, refusal: Fault) -> None:
    """Wait until the fake has answered the 429 and the worker has written its outcome."""
    async with asyncio.timeout(SAFETY):
        await receiver.wait_until(lambda: refusal.hits == 1)
        await rate_limited_row_recorded(database, "post-0")


async def test_nothing_reaches_the_method_before_retry_after_even_with_the_clock_jumped(
    database: Database, receiver: FakeReceiver, port: HttpPort
) -> None:
    """The pause holds on its own: with the demo clock jumped an hour ahead, the rows put back
    are due by the database's reckoning, and a row queued during the pause is due at once; none
    of them may go before Retry-After. Another method of the same workspace is not held."""
    clock = JumpClock()
    ws, posts, refusal = await three_posts_and_a_429(database, receiver, clock)
    worker = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")

    await worker.start()
    try:
        await the_429_recorded(database, receiver, refusal)
        clock.advance(3600)
        await put(database, clock, ws, "queued-in-the-pause")
        await put(database, clock, ws, "a-dm", method=Method.DM)
        worker.wake()
        async with asyncio.timeout(SAFETY):
            await receiver.wait_for_keys([*posts, "queued-in-the-pause", "a-dm"])
    finally:
        await worker.stop()

    assert sends_into_the_pause(receiver, "W-1", "post") == []
    first_after = min(
        r.at for r in receiver.requests if r.method == "post" and r.outcome == "created"
    )
    assert first_after >= the_429(receiver).at + RETRY_AFTER - SLACK
    dm = next(r for r in receiver.requests if r.key == "a-dm")
    assert dm.at < the_429(receiver).at + RETRY_AFTER  # DMs are another bucket: not held
    assert receiver.duplicates() == 0
    assert [k for k in receiver.keys() if k.startswith("post")] == posts  # order kept


async def test_a_second_replica_does_not_send_a_refused_row_before_retry_after(
    database: Database, receiver: FakeReceiver, port: HttpPort
) -> None:
    """The row refused with a 429 and the rows behind it are not due before Retry-After in the
    database, so a replica whose own pacing knows nothing of the 429 leaves them alone too."""
    clock = JumpClock()
    _, posts, refusal = await three_posts_and_a_429(database, receiver, clock)
    first = DeliveryWorker(database, port, settings(), clock=clock, instance="w1")
    second = DeliveryWorker(database, port, settings(), clock=clock, instance="w2")

    await first.start()
    try:
        await the_429_recorded(database, receiver, refusal)
        await second.start()
        try:
            async with asyncio.timeout(SAFETY):
                await receiver.wait_for_keys(posts)
        finally:
            await second.stop()
    finally:
        await first.stop()

    assert sends_into_the_pause(receiver, "W-1", "post") == []
    assert receiver.duplicates() == 0
    async with database.read() as session:
        statuses = set((await session.scalars(select(OutboxMessage.status))).all())
    assert statuses == {OutboxStatus.SENT}
