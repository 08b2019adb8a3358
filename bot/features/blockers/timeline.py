"""A blocker's timeline, and who hears about each step.

Every change to a blocker is one :class:`~storage.models.BlockerEvent` row (who did what when),
written by :func:`record` in the transaction of the change. :func:`record` then tells the
listeners, in that same transaction: the card in the area's channel is redrawn, outbound
webhooks are queued. A listener writes only to the outbox (invariant 2), so a change and what
it announces commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Blocker, BlockerEvent


class Kind:
    """The kinds of timeline entries; webhooks name their events after them."""

    OPENED = "opened"
    REPORTED_AGAIN = "reported_again"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    SNOOZED = "snoozed"
    REASSIGNED = "reassigned"
    NOTED = "noted"
    SEVERITY = "severity"
    AREA = "area"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Change:
    """What a listener is told: the blocker as it now is, and the entry just written."""

    session: AsyncSession
    blocker: Blocker
    entry: BlockerEvent
    now: datetime


Listener = Callable[[Change], Awaitable[None]]

_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Register ``listener`` for every change (once per process: features call it from their
    ``register``; registering the same function again changes nothing)."""
    if listener not in _listeners:
        _listeners.append(listener)


async def record(
    session: AsyncSession,
    blocker: Blocker,
    kind: str,
    now: datetime,
    *,
    actor_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> BlockerEvent:
    """Write the entry and tell the listeners, in the caller's transaction."""
    entry = BlockerEvent(
        blocker_id=blocker.id, at=now, actor_id=actor_id, kind=kind, detail=dict(detail or {})
    )
    session.add(entry)
    blocker.updated_at = now
    await session.flush()
    change = Change(session, blocker, entry, now)
    for listener in list(_listeners):
        await listener(change)
    return entry
