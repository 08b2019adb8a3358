"""Group commit for hot form submissions and button presses.

Fifty people pressing Save on their standup at 09:00 should not cost fifty transactions of a
dozen statements each: on one event loop that is about 50 x 15 ms of Python and driver work,
and the fiftieth person waits for all of it. A form registered with a *batch handler* is
instead queued; one consumer takes everything queued, handles it in one transaction with a
handful of multi-row statements, commits once, and answers every submission. Under no load a
batch is one submission and starts at once, so nothing waits for a timer. Actions registered
with a batch handler (poll votes: 12,000 people may press a poll's buttons within a minute) are
queued the same way (:meth:`bot.core.Core.add_action`).

What a batch keeps from the one-event path (``Core.handle``):

* invariant 3: every event id is inserted into ``processed_events`` in the batch's transaction;
  a repeated id (in the batch, or already handled) gets ``None`` like any duplicate;
* a submission the batch handler does not want (an edit, someone else's prompt, anything out of
  the ordinary) is marked ``fallback`` and then goes through the one-event path, unchanged;
* a user error is a response (``FormErrors``) with nothing written for that submission;
* if the batch fails as a whole, nothing of it is kept and every submission is retried alone,
  so one bad submission costs the others time, never their answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy import delete, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Response
from bot.events import ActionInvocation, FormSubmission
from bot.metrics import kind_of
from storage.models import ProcessedEvent
from storage.upsert import insert_do_nothing

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

# Enough to cover a wave of simultaneous submissions; small enough that one batch's
# statements stay well inside SQLite's bound-parameter limit.
MAX_BATCH = 100

E = TypeVar("E", FormSubmission, ActionInvocation)


@dataclass
class BatchItem(Generic[E]):
    """One submission in a batch. The handler sets ``response`` (done in the batch) or
    ``fallback`` (handle it alone afterwards); it must not write anything for a fallback."""

    event: E
    response: Response = None
    fallback: bool = False


@dataclass
class Batch(Generic[E]):
    core: Core
    session: AsyncSession
    now: datetime
    items: list[BatchItem[E]]
    _after_commit: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def after_commit(self, callback: Callable[[], object]) -> None:
        self._after_commit.append(callback)


BatchHandler = Callable[[Batch], Awaitable[None]]


@dataclass
class _Queued(Generic[E]):
    event: E
    future: asyncio.Future[Response]


class FormBatcher(Generic[E]):
    """The queue and the single consumer for one form id (or one action prefix)."""

    def __init__(self, core: Core, handler: BatchHandler, max_batch: int = MAX_BATCH) -> None:
        self.core = core
        self.handler = handler
        self.max_batch = max_batch
        self._queue: list[_Queued[E]] = []
        self._consumer: asyncio.Task[None] | None = None
        self.batches = 0  # how many batch transactions ran (for benchmarks and tests)

    async def submit(self, event: E) -> Response:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(event, future))
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.create_task(self._consume(), name="form-batcher")
        return await future

    async def _consume(self) -> None:
        while self._queue:
            size = self.max_batch
            queued, self._queue = self._queue[:size], self._queue[size:]
            try:
                await self._run(queued)
            except Exception:
                log.exception(
                    "a batch of %d form submissions failed; each is retried alone", len(queued)
                )
                await asyncio.gather(*(self._alone(q) for q in queued if not q.future.done()))

    async def _alone(self, queued: _Queued[E]) -> None:
        try:
            response = await self.core.handle_alone(queued.event)
        except BaseException as exc:  # pragma: no cover - handle_alone answers every error
            queued.future.set_exception(exc)
            return
        queued.future.set_result(response)

    async def _run(self, queued: list[_Queued[E]]) -> None:
        core = self.core
        # The first of several submissions with one event id is the one handled.
        seen: set[tuple[str, str]] = set()
        unique: list[_Queued[E]] = []
        repeats: list[_Queued[E]] = []
        for q in queued:
            key = (q.event.origin.platform, q.event.origin.event_id)
            (repeats if key in seen else unique).append(q)
            seen.add(key)
        now = core.clock.now()
        async with core.db.transaction() as session:
            fresh = await _first_times(session, [q.event for q in unique], now)
            items = [BatchItem(q.event) for q in unique if _key(q.event) in fresh]
            batch = Batch(core, session, now, items)
            if items:
                await self.handler(batch)
            fallback = [item.event for item in items if item.fallback]
            if fallback:
                # Handled alone below, where the one-event path records them itself.
                await session.execute(
                    delete(ProcessedEvent).where(
                        tuple_(ProcessedEvent.platform, ProcessedEvent.event_id).in_(
                            [_key(e) for e in fallback]
                        )
                    )
                )
        self.batches += 1
        for callback in batch._after_commit:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback of a form batch failed")
        responses = {_key(item.event): item for item in items}
        alone: list[_Queued[E]] = []
        for q in unique:
            item = responses.get(_key(q.event))
            if item is None:
                log.info("duplicate %s event %s ignored", *_key(q.event))
                core.metrics.event(kind_of(q.event), "duplicate")
                q.future.set_result(None)
            elif item.fallback:
                alone.append(q)
            else:
                core.metrics.event(kind_of(q.event), "ok")
                q.future.set_result(item.response)
        for q in repeats:
            core.metrics.event(kind_of(q.event), "duplicate")
            q.future.set_result(None)
        if alone:
            await asyncio.gather(*(self._alone(q) for q in alone))


def _key(event: FormSubmission | ActionInvocation) -> tuple[str, str]:
    return (event.origin.platform, event.origin.event_id)


async def _first_times(
    session: AsyncSession, events: list[E], now: datetime
) -> set[tuple[str, str]]:
    """Insert the events' ids; returns those not seen before (one statement)."""
    if not events:
        return set()
    # executemany (SQLAlchemy batches it into multi-row INSERTs with RETURNING): one compiled
    # statement for every batch size, where .values([...]) would compile anew each time.
    stmt = insert_do_nothing(session, ProcessedEvent).returning(
        ProcessedEvent.platform, ProcessedEvent.event_id
    )
    rows = [
        {"platform": e.origin.platform, "event_id": e.origin.event_id, "received_at": now}
        for e in events
    ]
    return {(row[0], row[1]) for row in await session.execute(stmt, rows)}
