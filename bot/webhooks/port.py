"""The port the delivery worker gets: webhook rows to the webhook sender, the rest to the
platform. The worker's pacing, retries, leases and dead letters stay the same for both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.port import Delivery, Method, PlatformPort, RateLimit, Receipt
from bot.webhooks.sender import WebhookSender

# Webhook sends per second per workspace, unless [delivery.rates] webhook says otherwise.
WEBHOOK_RATE = RateLimit(rate=5.0, burst=10)


class RoutingPort:
    """Wraps the platform's port; anything else asked of it is the platform's."""

    def __init__(self, platform: PlatformPort, webhooks: WebhookSender) -> None:
        self._platform_port = platform
        self.webhooks = webhooks
        self.platform = platform.platform

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return {**self._platform_port.rate_limits(), Method.WEBHOOK: WEBHOOK_RATE}

    def channel_rate_limit(self) -> RateLimit | None:
        return self._platform_port.channel_rate_limit()

    async def deliver(self, delivery: Delivery) -> Receipt:
        if delivery.method is Method.WEBHOOK:
            return await self.webhooks.deliver(delivery)
        return await self._platform_port.deliver(delivery)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._platform_port, name)
