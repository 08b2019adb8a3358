"""Turning changes into queued webhook events (invariant 2: in the change's transaction).

:func:`on_blocker_change` listens to the blocker timeline: each entry whose kind is an event
(``events.BLOCKER_EVENTS``) is queued for every enabled endpoint of the workspace that
subscribed to it; an ESCALATED entry whose level names an endpoint (``webhook:<id>``) goes to
that endpoint whatever its filter, and so do the acknowledgement, resolution or cancellation of
a blocker that an escalation level sent there (so a PagerDuty incident it opened is closed).

:func:`queue_event` is the one way to queue an event, for this feature and later ones: one
outbox row per (endpoint, event) with ``Method.WEBHOOK``, the endpoint's id, the event and the
``webhook-id`` that every retry of it carries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Message
from bot.delivery.outbox import enqueue
from bot.features.blockers.timeline import Change
from bot.port import Method, Target
from bot.webhooks.events import (
    BLOCKER_EVENTS,
    FOLLOW_UPS,
    blocker_data,
    envelope,
    followed,
    targeted_endpoint,
)
from storage.models import BlockerEvent
from storage.webhooks import WebhookEndpoint


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def queue_event(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    event: dict[str, Any],
    *,
    key: str,
    now: datetime,
    depends_on: int | None = None,
) -> int:
    """Queue ``event`` for ``endpoint``; ``key`` makes it once per (endpoint, cause)."""
    payload = {"endpoint_id": endpoint.id, "webhook_id": new_webhook_id(), "event": event}
    return await enqueue(
        session,
        workspace_id=endpoint.workspace_id,
        method=Method.WEBHOOK,
        target=Target(),
        message=Message(()),
        key=key,
        now=now,
        depends_on=depends_on,
        payload=payload,
    )


async def enabled_endpoints(session: AsyncSession, workspace_id: int) -> list[WebhookEndpoint]:
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.disabled.is_(False))
        .order_by(WebhookEndpoint.id)
    )
    return list(rows)


async def on_blocker_change(change: Change) -> None:
    """The timeline listener (registered by ``bot.webhooks.register``)."""
    entry = change.entry
    event_type = BLOCKER_EVENTS.get(entry.kind)
    if event_type is None:
        return
    session = change.session
    endpoints = await enabled_endpoints(session, change.blocker.workspace_id)
    if not endpoints:
        return
    named = targeted_endpoint(entry)
    history: list[BlockerEvent] | None = None
    event: dict[str, Any] | None = None
    for endpoint in endpoints:
        wanted = event_type in endpoint.events or endpoint.id == named
        if not wanted and entry.kind in FOLLOW_UPS:
            if history is None:
                history = list(
                    await session.scalars(
                        select(BlockerEvent).where(BlockerEvent.blocker_id == change.blocker.id)
                    )
                )
            wanted = followed(endpoint.id, history)
        if not wanted:
            continue
        if event is None:
            data = await blocker_data(session, change.blocker, entry, change.now)
            event = envelope(event_type, entry.at, data)
        await queue_event(
            session,
            endpoint,
            event,
            key=f"webhook:{endpoint.id}:timeline:{entry.id}",
            now=change.now,
        )
