"""The metrics an operator runs syncup by, served at ``/metrics`` in the Prometheus text format.

Each :class:`Metrics` has a registry of its own, not ``prometheus_client``'s global one: tests
and several apps in one process never count into each other. The composition root (bot.app)
makes one and hands it to the core, the scheduler, the delivery worker, the webhook sender, the
inbound hook receiver and the database; each of those has a private one until then, so it can be
built and tested alone.

Labels hold kinds, methods, handlers and results only: never a workspace, a member, a channel or
an action's id (which would name a poll), so a scrape tells nothing about anyone. The outbox
gauges are read from the database at each scrape (one grouped query over the pending and dead
rows, which the ``ix_outbox_due`` index finds), so every replica reports the shared outbox.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.events import (
    ActionInvocation,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    InboundEvent,
    ShortcutInvocation,
)
from bot.web.asgi import Mount, Receive, Scope, Send, answer, header
from storage.db import Database
from storage.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

PATH = "/metrics"
# Handling an event: most take milliseconds; a slow one (a big report) a second or more.
EVENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From an occurrence's due time to its run: the reconcile interval (60 s) bounds it normally.
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
# Waiting for a database connection (SQLite: for the one writer's turn).
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_KINDS: dict[type, str] = {
    CommandInvocation: "command",
    ActionInvocation: "action",
    FormSubmission: "form",
    ShortcutInvocation: "shortcut",
    DirectMessageReceived: "message",
}


def kind_of(event: InboundEvent) -> str:
    """An event's kind as the metrics label it (never its ids: an action's names a poll)."""
    return _KINDS.get(type(event), "other")


class Metrics:
    """Every metric syncup exports, in one registry of its own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "syncup_events",
            "Inbound events handled, by kind (command, action, form, shortcut, message) and "
            "outcome (ok, duplicate, user_error, refused, unavailable, error).",
            ["kind", "outcome"],
            registry=r,
        )
        self.event_seconds = Histogram(
            "syncup_event_handling_seconds",
            "Time from an inbound event reaching the core to its private answer, by kind.",
            ["kind"],
            buckets=EVENT_BUCKETS,
            registry=r,
        )
        self.sends = Counter(
            "syncup_sends",
            "Outbox send attempts by method and result: sent, retried (back to pending with "
            "backoff, or waiting for the message it depends on), rate_limited (a 429), dead "
            "(dead-lettered), skipped (no longer this worker's).",
            ["method", "result"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "syncup_outbox_pending",
            "Outbox rows waiting to be sent, by method (read from the database at scrape).",
            ["method"],
            registry=r,
        )
        self.outbox_oldest = Gauge(
            "syncup_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row waiting to be sent, by method (absent when none waits).",
            ["method"],
            registry=r,
        )
        self.outbox_dead = Gauge(
            "syncup_outbox_dead",
            "Dead-lettered outbox rows kept in the database, by method (syncup outbox lists them).",
            ["method"],
            registry=r,
        )
        self.scheduler_lag = Histogram(
            "syncup_scheduler_lag_seconds",
            "Time from an occurrence's due time to its run (claimed here), by handler.",
            ["handler"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.occurrences = Counter(
            "syncup_occurrences",
            "Scheduled occurrences by handler and outcome: ran, claimed_elsewhere (another "
            "replica or an earlier run had it), failed (retried within its grace).",
            ["handler", "outcome"],
            registry=r,
        )
        self.db_waits = Counter(
            "syncup_db_pool_waits",
            "Transactions that had to queue for a database connection (SQLite: for the "
            "writer's turn) because all were in use.",
            registry=r,
        )
        self.db_wait_seconds = Histogram(
            "syncup_db_pool_wait_seconds",
            "Time each transaction waited for its database connection (0 when one was free).",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.hook_deliveries = Counter(
            "syncup_hook_deliveries",
            "Inbound webhook deliveries (/hooks) by source and result: posted, ignored, ping, "
            "duplicate (answered 200); bad_signature (401), rate_limited (429), not_found "
            "(404), unavailable (503), too_large (413), wrong_method (405).",
            ["source", "result"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "syncup_webhook_deliveries",
            "Outbound webhook HTTP attempts by result: sent (2xx), rate_limited (429), failed "
            "(408, 5xx, timeout, connection: retried), refused (other 4xx, a redirect, a "
            "refused address, a removed or disabled endpoint: dead at once).",
            ["result"],
            registry=r,
        )

    # -- recording (one call at each instrumentation point) -----------------------------------

    def event(self, kind: str, outcome: str) -> None:
        self.events.labels(kind, outcome).inc()

    def sent(self, method: str, result: str) -> None:
        self.sends.labels(method, result).inc()

    def occurrence(self, handler: str, outcome: str, lag: float | None = None) -> None:
        self.occurrences.labels(handler, outcome).inc()
        if lag is not None:
            self.scheduler_lag.labels(handler).observe(max(0.0, lag))

    def pool_wait(self, seconds: float) -> None:
        self.db_wait_seconds.observe(seconds)
        if seconds > 0:
            self.db_waits.inc()

    def hook(self, source: str, result: str) -> None:
        self.hook_deliveries.labels(source, result).inc()

    def webhook(self, result: str) -> None:
        self.webhook_deliveries.labels(result).inc()

    # -- scraping -----------------------------------------------------------------------------

    async def refresh(self, db: Database, now: datetime) -> None:
        """Set the outbox gauges from the database (pending by method, oldest, dead)."""
        stmt = (
            select(
                OutboxMessage.status,
                OutboxMessage.method,
                func.count(),
                func.min(OutboxMessage.created_at),
            )
            .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.DEAD]))
            .group_by(OutboxMessage.status, OutboxMessage.method)
        )
        async with db.read() as session:
            rows = (await session.execute(stmt)).all()
        for gauge in (self.outbox_pending, self.outbox_oldest, self.outbox_dead):
            gauge.clear()
        for status, method, count, oldest in rows:
            if status == OutboxStatus.DEAD:
                self.outbox_dead.labels(method).set(count)
                continue
            self.outbox_pending.labels(method).set(count)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            self.outbox_oldest.labels(method).set(max(0.0, age))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsEndpoint:
    """``GET /metrics``. With ``token`` set, only ``Authorization: Bearer <token>`` is answered
    (401 otherwise); without it the page is open, as a Prometheus target usually is, and it
    should then be kept off the public side of a proxy (docs/operations.md)."""

    def __init__(
        self,
        metrics: Metrics,
        db: Database,
        now: Callable[[], datetime],
        token: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.db = db
        self.now = now
        self.token = token

    def mount(self) -> Mount:
        return Mount(PATH, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != PATH:
            await answer(send, 404, {"ok": False, "error": "not found"})
            return
        if scope.get("method") not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET")]
            await answer(send, 405, {"ok": False, "error": "GET only"}, headers=allow)
            return
        if self.token and not self._authorized(header(scope, b"authorization")):
            challenge = [(b"www-authenticate", b'Bearer realm="syncup metrics"')]
            await answer(send, 401, {"ok": False, "error": "unauthorized"}, headers=challenge)
            return
        try:
            await self.metrics.refresh(self.db, self.now())
        except Exception as exc:  # the counters are still worth serving
            log.warning("metrics: the outbox gauges could not be read (%s)", type(exc).__name__)
        body = self.metrics.exposition()
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", b"%d" % len(body)),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, value: str | None) -> bool:
        assert self.token is not None
        scheme, _, given = (value or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())
