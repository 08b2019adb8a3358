"""A :class:`~bot.port.PlatformPort` that delivers over HTTP to :class:`FakeReceiver`.

It maps the wire like the real adapters do: 429 -> :class:`RateLimited` with the Retry-After,
5xx and connection failures -> :class:`DeliveryError` (retried), other 4xx ->
:class:`PermanentDeliveryError`. By default the idempotency header goes out only when the worker
says the message may already be there (``maybe_sent``), so a test can show that the flag is
what prevents a duplicate after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx

from bot.port import (
    Delivery,
    DeliveryError,
    Method,
    PermanentDeliveryError,
    RateLimit,
    RateLimited,
    Receipt,
)
from tests.fakes.receiver import IDEMPOTENCY_HEADER, MESSAGES_PATH

IdempotencyMode = Literal["maybe_sent", "always", "never"]

FAST = RateLimit(rate=1000.0, burst=1000)


class HttpPort:
    platform = "fake"

    def __init__(
        self,
        base_url: str,
        *,
        limits: Mapping[Method, RateLimit] | None = None,
        idempotency: IdempotencyMode = "maybe_sent",
        timeout: float = 10.0,
        rate_ceilings: Mapping[Method, float] | None = None,
    ) -> None:
        self._limits = dict(limits) if limits is not None else dict.fromkeys(Method, FAST)
        # The most the worker's adaptive pacing may raise each method to (read by the worker):
        # by default the limits given, which tests set to what the receiver allows exactly.
        self.rate_ceilings = (
            dict(rate_ceilings)
            if rate_ceilings is not None
            else {method: limit.rate for method, limit in self._limits.items()}
        )
        self._idempotency = idempotency
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.deliveries: list[Delivery] = []

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return self._limits

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, delivery: Delivery) -> dict[str, Any]:
        target = delivery.target
        return {
            "key": delivery.idempotency_key,
            "workspace": delivery.workspace_id,
            "method": delivery.method.value,
            "channel_id": target.channel_id,
            "user_id": target.user_id,
            "dm_channel_id": target.dm_channel_id,
            "thread_of": target.thread_of,
            "message_id": target.message_id,
            "text": delivery.message.fallback(),
        }

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.deliveries.append(delivery)
        headers = {}
        if self._idempotency == "always" or (
            self._idempotency == "maybe_sent" and delivery.maybe_sent
        ):
            headers[IDEMPOTENCY_HEADER] = delivery.idempotency_key
        try:
            response = await self._client.post(
                MESSAGES_PATH, json=self._body(delivery), headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429:
            raise RateLimited(_retry_after(response))
        if response.status_code >= 500:
            raise DeliveryError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentDeliveryError(f"HTTP {response.status_code}: {_error(response)}")
        data = response.json()
        return Receipt(channel_id=data.get("channel_id"), message_id=data.get("id"))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""
