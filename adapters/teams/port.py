"""Delivering outbox rows to Teams through the connector (the Teams SDK's ``ApiClient``).

* POST: a card in a channel (its stored reference gives the service URL); ``thread_of`` a
  message: a reply in that message's thread (the conversation id ``<channel>;messageid=<id>``).
* DM: the member's 1:1 chat, from their stored reference; created through the connector with
  the tenant id the first time (``POST /v3/conversations``) and remembered. A member syncup has
  no reference for (never met: no activity, no installation) is :class:`RecipientUnreachable`.
* UPDATE: the activity replaced (``PUT``); a message split into several cards edits each part
  that remains and posts the parts that are new.
* EPHEMERAL: Teams has no private message in a channel, so it goes to the member's 1:1 chat.

A message over one card's size (about 28 KB) goes out as several activities; the receipt names
every part (``part_ids``). 429 -> :class:`RateLimited` with its ``Retry-After``; 412, 502, 504 and
other 5xx are retried; 401/403/404 and a refused payload (400, 413) are permanent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
from microsoft_teams.api import Account, ApiClient, CreateConversationParams
from microsoft_teams.api.activities.message import MessageActivityInput

from adapters.teams import render
from adapters.teams.directory import TeamsDirectory
from adapters.teams.refs import CHANNEL, MEMBER, REMOVED, Reference, References
from adapters.teams.window import SlidingWindow
from bot.chat import Context, Message, text
from bot.port import (
    Delivery,
    DeliveryError,
    Method,
    PermanentDeliveryError,
    RateLimit,
    RateLimited,
    Receipt,
    RecipientUnreachable,
)

log = logging.getLogger(__name__)

PLATFORM = "teams"
# Teams allows a bot 50 requests a second per tenant over every connector call, and per
# conversation 7 a second, 8 in 2 s, 60 in 30 s and 1,800 an hour. The tenant's budget is one
# sliding window here, as Teams counts it (adapters/teams/window.py), which every connector call
# takes a place in (a DM to a member without a chat yet is two calls: the chat's creation and
# the send). The worker's per-method buckets may each use all of it; a channel's own bucket
# keeps under 60 in 30 s (1 + 30 x 1.94 = 59.2) and 8 in 2 s. The hourly cap per conversation
# (1,800) is left to 429 and Retry-After.
TENANT_WINDOW = (50, 1.0)
TENANT_RATE = TENANT_WINDOW[0] / TENANT_WINDOW[1]
RATE_LIMITS: Mapping[Method, RateLimit] = {
    method: RateLimit(rate=TENANT_RATE, burst=5)
    for method in (Method.POST, Method.DM, Method.UPDATE, Method.EPHEMERAL)
}
CHANNEL_LIMIT = RateLimit(rate=1.94, burst=1)
RETRIED = {412, 429, 500, 502, 503, 504}
DM_PREFIX = "dm:"
PRIVATE_NOTE = "Only you can see this (Teams cannot show it privately in the channel)."

Now = Callable[[], datetime]


def delivery_error(exc: httpx.HTTPStatusError, what: str) -> DeliveryError:
    status = exc.response.status_code
    if status == 429:
        return RateLimited(_retry_after(exc.response), "Teams: too many requests")
    if status in RETRIED:
        return DeliveryError(f"{what}: Teams answered {status}")
    return PermanentDeliveryError(f"{what}: Teams refused it ({status} {_code(exc.response)})")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def sdk_activity(payload: dict[str, Any]) -> MessageActivityInput:
    return MessageActivityInput.model_validate(payload)


class TeamsPort(TeamsDirectory):
    """The outbox port, and (through :class:`TeamsDirectory`) the platform directory."""

    platform = PLATFORM

    def __init__(
        self,
        api: Callable[[str], ApiClient],
        refs: References,
        *,
        now: Now | None = None,
    ) -> None:
        self._api = api
        self._now = now or (lambda: datetime.now(UTC))
        self._tenants: dict[str, SlidingWindow] = {}
        super().__init__(refs, self._roster, self._now)

    async def _roster(self, service_url: str, conversation_id: str) -> list[Any]:
        return list(await self._api(service_url).conversations.members(conversation_id).get_all())

    def api_for(self, service_url: str) -> ApiClient:
        return self._api(service_url)

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return RATE_LIMITS

    def channel_rate_limit(self) -> RateLimit | None:
        return CHANNEL_LIMIT

    def paced(self, tenant: str) -> AbstractAsyncContextManager[None]:
        """A place in the tenant's budget for one connector call (Teams counts each), made
        inside the ``async with``."""
        window = self._tenants.get(tenant)
        if window is None:
            window = SlidingWindow(*TENANT_WINDOW)
            self._tenants[tenant] = window
        return window.slot()

    async def deliver(self, delivery: Delivery) -> Receipt:
        what = f"{delivery.method.value} {delivery.outbox_id}"
        try:
            return await self._deliver(delivery)
        except httpx.HTTPStatusError as exc:
            raise delivery_error(exc, what) from None
        except render.RenderError as exc:
            raise PermanentDeliveryError(f"cannot render for Teams: {exc}") from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"{what}: {type(exc).__name__}") from None

    async def _deliver(self, delivery: Delivery) -> Receipt:
        target = delivery.target
        tenant = delivery.workspace_id
        if delivery.method is Method.UPDATE:
            if not target.message_id or not target.channel_id:
                raise PermanentDeliveryError("an update needs the message and its conversation")
            if target.channel_id.startswith(DM_PREFIX):
                user = target.channel_id.removeprefix(DM_PREFIX)
                conversation, service = await self.dm_conversation(tenant, user)
            else:
                conversation = target.channel_id
                service = await self._service_url(tenant, conversation)
            receipt = await self._update(delivery, conversation, service)
            return Receipt(target.channel_id, receipt.message_id, receipt.part_ids)
        channel = target.channel_id or ""
        if delivery.method is Method.POST and channel.startswith(DM_PREFIX):
            target = replace(target, user_id=channel.removeprefix(DM_PREFIX), channel_id=None)
            delivery = replace(delivery, method=Method.DM, target=target)
        if delivery.method in (Method.DM, Method.EPHEMERAL):
            if not target.user_id:
                raise PermanentDeliveryError("a DM needs the member's id")
            conversation, service = await self.dm_conversation(tenant, target.user_id)
            msg = delivery.message
            if delivery.method is Method.EPHEMERAL:
                msg = Message((*msg.blocks, Context(text(PRIVATE_NOTE))), msg.summary)
            receipt = await self._post(tenant, conversation, service, msg)
            # 1:1 chat ids run past what the outbox keeps (64 characters): the member's id
            # stands for the chat, and an update finds the chat again from it.
            return Receipt(DM_PREFIX + target.user_id, receipt.message_id, receipt.part_ids)
        channel = target.channel_id
        if not channel:
            raise PermanentDeliveryError("a post needs a channel")
        service = await self._service_url(tenant, channel)
        conversation = f"{channel};messageid={target.thread_of}" if target.thread_of else channel
        receipt = await self._post(tenant, conversation, service, delivery.message)
        return Receipt(channel, receipt.message_id, receipt.part_ids)

    async def _post(self, tenant: str, conversation: str, service: str, msg: Message) -> Receipt:
        ids: list[str] = []
        for content in render.render_message(msg):
            payload = render.activity(content, msg.fallback())
            async with self.paced(tenant):
                sent = await self._api(service).conversations.create_activity(
                    conversation, sdk_activity(payload)
                )
            ids.append(sent.id)
        return Receipt(conversation, ids[0], tuple(ids) if len(ids) > 1 else None)

    async def _update(self, delivery: Delivery, conversation: str, service: str) -> Receipt:
        target = delivery.target
        assert target.message_id is not None
        cards = render.render_message(delivery.message)
        old = list(target.part_ids) or [target.message_id]
        ids: list[str] = []
        api = self._api(service)
        for n, content in enumerate(cards):
            payload = render.activity(content, delivery.message.fallback())
            async with self.paced(delivery.workspace_id):
                if n < len(old):
                    await api.conversations.update_activity(
                        conversation, old[n], sdk_activity(payload)
                    )
                    ids.append(old[n])
                    continue
                sent = await api.conversations.create_activity(conversation, sdk_activity(payload))
                ids.append(sent.id)
        for extra in old[len(cards) :]:
            async with self.paced(delivery.workspace_id):
                await api.conversations.delete_activity(conversation, extra)
        parts = tuple(ids) if len(ids) > 1 or len(old) > 1 else None
        return Receipt(conversation, ids[0], parts)

    async def _service_url(self, tenant: str, channel: str) -> str:
        ref = await self.refs.find(tenant, CHANNEL, channel.split(";")[0])
        if ref is not None and ref.teams_id and await self.refs.find(tenant, REMOVED, ref.teams_id):
            raise PermanentDeliveryError(
                "syncup was removed from the team of this channel: add the app to the team "
                "again, or choose another channel"
            )
        if ref is not None:
            return ref.service_url
        url = await self.refs.any_service_url(tenant)
        if url is None:
            raise PermanentDeliveryError(f"syncup has no conversation reference for {channel}")
        return url

    async def dm_conversation(self, tenant: str, user_id: str) -> tuple[str, str]:
        """The member's 1:1 chat and its service URL; created (with the tenant) on first use."""
        ref = await self.refs.find(tenant, MEMBER, user_id)
        if ref is None or (ref.conversation_id is None and ref.teams_id is None):
            raise RecipientUnreachable(
                "syncup has never met this member in Teams (no chat, no installation): "
                "they need to install syncup or talk to it once"
            )
        if ref.conversation_id is not None:
            return ref.conversation_id, ref.service_url
        params = CreateConversationParams(
            members=[Account(id=ref.teams_id or "", name=ref.name)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}},
        )
        try:
            async with self.paced(tenant):
                created = await self._api(ref.service_url).conversations.create(params)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code in (403, 404):
                raise RecipientUnreachable(
                    f"Teams refused a chat with this member ({exc.response.status_code})"
                ) from None
            raise
        # Kept in memory at once, stored in the background: the send need not wait for a write
        # (were it lost, Teams answers the same chat to the next creation).
        self.refs.remember_later(
            tenant,
            MEMBER,
            user_id,
            Reference(ref.service_url, ref.teams_id, created.id, ref.name),
            self._now(),
        )
        return created.id, ref.service_url
