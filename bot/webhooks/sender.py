"""Sending one webhook row: the delivery worker's port for ``Method.WEBHOOK``.

The worker keeps its semantics for webhook rows (pacing per (workspace, webhook), leases,
backoff, dead letters in ``syncup outbox``); this module makes one HTTP attempt and says how it
went in the port's terms: 2xx sent; 429 :class:`RateLimited` with the Retry-After; 408, 5xx,
timeouts and connection errors a retry; any other 4xx, a redirect (never followed), a refused
address or an endpoint that no longer exists, dead at once.

Per attempt: the endpoint is read, its secret or routing key decrypted, the URL checked again
against private addresses with a fresh DNS answer (the connection goes to the checked address),
and, for Standard Webhooks, the signature computed over this attempt's timestamp; the
``webhook-id`` stored on the row stays the same across attempts. Nothing of the URL, the body
or the secret is logged; errors name the endpoint.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import httpx

from bot.config import WebhooksSection
from bot.metrics import Metrics
from bot.port import (
    Delivery,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    Receipt,
)
from bot.webhooks.formats import USER_AGENT, encode, pagerduty_body, standard_request
from bot.webhooks.keys import Keys, KeyUnavailable, SecretUnreadable
from bot.webhooks.targets import (
    ResolutionFailed,
    Resolver,
    TargetRefused,
    check_target,
    parse_url,
    pinned_request,
    system_resolver,
)
from storage.db import Database
from storage.webhooks import WebhookEndpoint, WebhookFormat

log = logging.getLogger(__name__)

# A 429 without Retry-After waits this long; a longer Retry-After than the cap is cut to it (a
# receiver must not park every webhook of the workspace for a day).
DEFAULT_RETRY_AFTER_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 3600.0


def retry_after(value: str | None, now: float) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_SECONDS
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class WebhookSender:
    """``deliver`` for webhook rows; one HTTP client (no redirects) for all of them."""

    def __init__(
        self,
        db: Database,
        settings: WebhooksSection,
        keys: Keys,
        *,
        resolver: Resolver = system_resolver,
        wall: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._keys = keys
        self._resolver = resolver
        # Receivers check webhook-timestamp against their own clock: real time, not the
        # injected clock (the console's demo clock jumps).
        self._wall = wall
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(settings.timeout_seconds),
            transport=transport,
            headers={"user-agent": USER_AGENT},
        )
        self.metrics = Metrics()  # the app's (bot.app sets it)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, delivery: Delivery) -> Receipt:
        try:
            receipt = await self._deliver(delivery)
        except RateLimited:
            self.metrics.webhook("rate_limited")
            raise
        except PermanentDeliveryError:
            self.metrics.webhook("refused")
            raise
        except Exception:  # the worker retries these with backoff
            self.metrics.webhook("failed")
            raise
        self.metrics.webhook("sent")
        return receipt

    async def _deliver(self, delivery: Delivery) -> Receipt:
        data = delivery.data or {}
        endpoint_id = int(data.get("endpoint_id") or 0)
        webhook_id = str(data.get("webhook_id") or "")
        event: dict[str, Any] = dict(data.get("event") or {})
        if not endpoint_id or not webhook_id or not event:
            raise PermanentDeliveryError("webhook row without its endpoint or event")
        endpoint = await self._endpoint(endpoint_id)
        try:
            secret = self._keys.box().open(endpoint.secret)
        except (KeyUnavailable, SecretUnreadable) as exc:
            raise PermanentDeliveryError(f"webhook {endpoint.name!r}: {exc}") from None
        allow = self._settings.allow_private_targets
        if endpoint.format == WebhookFormat.PAGERDUTY:
            raw_url = self._settings.pagerduty_events_url
            headers = {"content-type": "application/json"}
            body = encode(pagerduty_body(event, secret, webhook_id))
        else:
            raw_url = endpoint.url
            headers, body = standard_request(event, webhook_id, secret, int(self._wall()))
        try:
            checked = await check_target(
                parse_url(raw_url, allow_private=allow),
                allow_private=allow,
                resolver=self._resolver,
            )
        except TargetRefused as exc:
            raise PermanentDeliveryError(f"webhook {endpoint.name!r}: {exc.message}") from None
        except ResolutionFailed as exc:
            raise DeliveryError(f"webhook {endpoint.name!r}: {exc}") from None
        url, host, extensions = pinned_request(checked)
        try:
            # Streamed and never read: a receiver's answer body is not ours to hold in memory.
            async with self._client.stream(
                "POST", url, content=body, headers={**headers, **host}, extensions=extensions
            ) as response:
                return self._outcome(endpoint, response, webhook_id)
        except httpx.TimeoutException:
            raise DeliveryError(
                f"webhook {endpoint.name!r}: no answer within {self._settings.timeout_seconds:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {endpoint.name!r}: {type(exc).__name__}") from None

    async def _endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        async with self._db.read() as session:
            endpoint = await session.get(WebhookEndpoint, endpoint_id)
            if endpoint is not None:
                session.expunge(endpoint)
        if endpoint is None:
            raise PermanentDeliveryError(f"webhook endpoint #{endpoint_id} was removed")
        if endpoint.disabled:
            raise PermanentDeliveryError(f"webhook {endpoint.name!r} is disabled")
        return endpoint

    def _outcome(
        self, endpoint: WebhookEndpoint, response: httpx.Response, webhook_id: str
    ) -> Receipt:
        status = response.status_code
        name = endpoint.name
        if 200 <= status < 300:
            return Receipt(message_id=webhook_id)
        if status == 429:
            raise RateLimited(
                retry_after(response.headers.get("retry-after"), self._wall()),
                f"webhook {name!r}: HTTP 429",
            )
        if status == 408 or status >= 500:
            raise DeliveryError(f"webhook {name!r}: HTTP {status}")
        if 300 <= status < 400:
            raise PermanentDeliveryError(
                f"webhook {name!r}: HTTP {status}, a redirect (not followed: give the final URL)"
            )
        raise PermanentDeliveryError(f"webhook {name!r}: HTTP {status}, refused")
