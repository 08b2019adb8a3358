"""Outbound Slack: the delivery port and the directory (people and channels).

POST is chat.postMessage (a reply when ``thread_of`` is set), DM is chat.postMessage into the
member's ``D...`` channel, UPDATE is chat.update, EPHEMERAL is chat.postEphemeral. A message
over Slack's limits goes out as several messages (the receipt names the first).

DMs. chat.update and the history look-up need the ``D...`` id, not the user id. When it is not
known (neither on the member nor remembered here), the first DM is posted to the user id: Slack
posts it in the bot's DM with the member and answers with the ``D...`` id, which is remembered
here and, through the receipt, stored on the member by the worker. So a fan-out to members never
DMed before costs no conversations.open, a Tier 3 method (about 50 a minute). conversations.open
is called only (a) for a retry whose earlier attempt's answer was lost (``maybe_sent``: the
look-up below needs the ``D...`` id that answer carried), (b) in a workspace that refused a user
id (``channel_not_found``) or answered it with something other than a ``D...`` id (Slack's docs
conflict on this; the port then opens conversations first there), and (c) for an ephemeral
reply that has no channel.

Slack has no idempotency key, so every post carries its outbox key in message metadata; a retry
whose earlier attempt may have gone through (``maybe_sent``, after a crash or a timeout) first
looks for it in the channel's latest messages (conversations.history, ``im:history`` /
``channels:history``) and reports that message instead of posting twice.

Slack's answers are mapped onto the core's errors: ``ratelimited`` / HTTP 429 -> RateLimited with
Retry-After; a channel the bot cannot use -> PermanentDeliveryError; a member who cannot be
messaged -> RecipientUnreachable; anything else (5xx, a dropped connection) is retried.

Charts. An image block needs a public URL, which a self-hosted bot does not have, so a message's
:class:`~bot.chat.Chart` is shown in it as words (its title and alt text, in a context block) and
its picture (:func:`bot.charts.render_png`) is uploaded with ``files_upload_v2``
(files.getUploadURLExternal, the bytes, files.completeUploadExternal with ``channel_id``, the
thread's ``thread_ts`` when the message is a reply, the title and ``alt_txt``) right after the
message, into the same channel or thread. Choices, for invariant 2:

* The upload is part of the delivery but never a reason to post the message again: once
  chat.postMessage has answered, the row is sent whatever the upload does. A refused or failed
  upload (no ``files:write``, a 5xx, a dropped connection; 429s are retried twice first) is
  logged and left out: the message already says what the chart shows, so nothing is lost, and
  a retry of the row cannot double the message. (Raising would send the row round again, and
  without history access the retry would post the message a second time.)
* Each chart's file is named after the outbox key and its place in the message
  (``syncup-chart-<hash>.png``). A retry whose earlier attempt may have gone through
  (``maybe_sent``) and that finds the message (see above) uploads only the charts whose file is
  not among the same latest messages, so a crash between the post and the upload is completed
  and one after it is not repeated.
* An UPDATE shows the chart's words only: the file posted with the original message stays as
  it was (finding and replacing it would need ``files:read`` and files.delete, and a new file
  on every refresh would flood the thread). EPHEMERAL messages cannot carry files at all.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.directory import SlackDirectory, error_code, retry_after
from bot.charts import draw
from bot.chat import Chart
from bot.port import (
    ChannelInfo,
    Delivery,
    DeliveryError,
    GroupInfo,
    MemberInfo,
    Method,
    PermanentDeliveryError,
    RateLimit,
    RateLimited,
    Receipt,
    RecipientUnreachable,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"

# Slack's tiers per method (platform-limits.md, section 1): chat.postMessage has a workspace cap
# of "several hundred a minute" on top of 1 a second per channel; chat.update is Tier 3 (50+ a
# minute), chat.postEphemeral Tier 4 (100+), conversations.open Tier 3.
RATE_LIMITS: Mapping[Method, RateLimit] = {
    Method.POST: RateLimit(rate=1.0, burst=3),
    Method.DM: RateLimit(rate=4.0, burst=8),
    Method.UPDATE: RateLimit(rate=0.8, burst=5),
    Method.EPHEMERAL: RateLimit(rate=1.6, burst=10),
}
# Slack's "1 message a second per channel", with a 3% margin: sending exactly at the limit meets
# it with network jitter, and every 429 costs a Retry-After pause.
CHANNEL_RATE_LIMIT = RateLimit(rate=0.97, burst=1)

CHANNEL_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_non_threadable_channel",
        "restricted_action_thread_only_channel",
        "team_access_not_granted",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "thread_not_found",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive_bot",
        "missing_scope",
        "ekm_access_denied",
    }
)
RECIPIENT_ERRORS = frozenset(
    {
        "user_not_found",
        "user_not_visible",
        "user_disabled",
        "users_not_found",
        "account_inactive",
        "cannot_dm_bot",
        "not_allowed_token_type",
        "user_not_in_channel",
    }
)
DEFAULT_RETRY_AFTER = 1.0
# Slack has no idempotency key: each post carries its outbox key as message metadata, and a
# retry after a lost outcome looks for it among this many latest messages first.
METADATA_EVENT = "syncup_outbox"
RECENT = 50
# Static selects hold 100 options (multi-selects too); the core never offers more in one.
MAX_SELECT_OPTIONS = 100
# files.getUploadURLExternal refuses alt_txt over 1,000 characters (alt_txt_too_large).
MAX_ALT_TEXT = 1000
CHART_FILE_PREFIX = "syncup-chart-"


class TokenSource(Protocol):
    async def bot_token(self, team_id: str) -> str:
        """The bot token for a workspace (refreshed first when it rotates and is about to
        expire); :class:`PermanentDeliveryError` when the workspace has no install."""
        ...


class StaticTokens:
    """Single-workspace mode: one bot token from config."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def bot_token(self, team_id: str) -> str:
        return self.token


def delivery_error(exc: SlackApiError, method: Method) -> DeliveryError:
    """Slack's refusal as the core's error kind."""
    code = error_code(exc)
    status = exc.response.status_code if exc.response is not None else 0
    if status == 429 or code == "ratelimited":
        return RateLimited(retry_after(exc, DEFAULT_RETRY_AFTER), f"slack: {code or 'ratelimited'}")
    if code in RECIPIENT_ERRORS and method in (Method.DM, Method.EPHEMERAL):
        return RecipientUnreachable(f"slack: {code}")
    if code in CHANNEL_ERRORS or code in RECIPIENT_ERRORS:
        return PermanentDeliveryError(f"slack: {code}")
    return DeliveryError(f"slack: {code or f'HTTP {status}'}")


class SlackPort:
    """The delivery port and directory over slack_sdk's AsyncWebClient."""

    platform = PLATFORM
    # Read by bot.app: Slack apps may edit their own messages at any age (no edit window).
    max_select_options = MAX_SELECT_OPTIONS
    edit_window = None

    def __init__(
        self,
        tokens: TokenSource,
        *,
        api_base_url: str = "https://slack.com/api/",
        profile_cache_seconds: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tokens = tokens
        self.api_base_url = api_base_url
        self.profile_cache_seconds = profile_cache_seconds
        self._monotonic = monotonic
        self._clients: dict[str, AsyncWebClient] = {}
        self._dm_channels: dict[tuple[str, str], str] = {}
        # Workspaces where a DM to a user id did not come back with a D... channel.
        self._open_first: set[str] = set()
        self.directory = SlackDirectory(
            self.client, profile_cache_seconds=profile_cache_seconds, monotonic=monotonic
        )

    # -- clients ---------------------------------------------------------------------------

    def client_for_token(self, token: str, *, retry_429: bool = False) -> AsyncWebClient:
        key = f"{token}:{retry_429}"
        client = self._clients.get(key)
        if client is None:
            client = AsyncWebClient(token=token, base_url=self.api_base_url)
            if retry_429:
                client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
            self._clients[key] = client
        return client

    async def client(self, team_id: str, *, retry_429: bool = False) -> AsyncWebClient:
        return self.client_for_token(await self.tokens.bot_token(team_id), retry_429=retry_429)

    def remember_dm(self, team_id: str, user_id: str, channel_id: str) -> None:
        if channel_id.startswith("D"):
            self._dm_channels[(team_id, user_id)] = channel_id

    def forget(self, team_id: str) -> None:
        """An uninstalled workspace: drop what is cached about it."""
        self._dm_channels = {k: v for k, v in self._dm_channels.items() if k[0] != team_id}
        self._open_first.discard(team_id)
        self.directory.forget(team_id)

    # -- PlatformPort ----------------------------------------------------------------------

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return RATE_LIMITS

    def channel_rate_limit(self) -> RateLimit | None:
        return CHANNEL_RATE_LIMIT

    async def deliver(self, delivery: Delivery) -> Receipt:
        try:
            return await self._deliver(delivery)
        except SlackApiError as exc:
            raise delivery_error(exc, delivery.method) from None
        except (TimeoutError, ClientError, OSError) as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}") from None
        except render.RenderError as exc:  # the same on every try: a bug to fix in the core
            raise PermanentDeliveryError(f"cannot render for Slack: {exc}") from None

    async def _deliver(self, delivery: Delivery) -> Receipt:
        team = delivery.workspace_id
        target = delivery.target
        client = await self.client(team)
        parts = render.messages(delivery.message)
        if delivery.method is Method.UPDATE:
            if not target.message_id or not target.channel_id:
                raise PermanentDeliveryError("an update needs the channel and the message ts")
            first = parts[0]
            await client.chat_update(
                channel=target.channel_id,
                ts=target.message_id,
                text=first.text,
                blocks=first.blocks,
            )
            for extra in parts[1:]:  # more than one message's worth: the rest in its thread
                await client.chat_postMessage(
                    channel=target.channel_id,
                    thread_ts=target.message_id,
                    text=extra.text,
                    blocks=extra.blocks,
                )
            return Receipt(channel_id=target.channel_id, message_id=target.message_id)
        if delivery.method is Method.EPHEMERAL:
            if not target.user_id:
                raise PermanentDeliveryError("an ephemeral message needs the member's user id")
            channel = target.channel_id or await self.dm_channel(client, team, target.user_id)
            for part in parts:
                await client.chat_postEphemeral(
                    channel=channel, user=target.user_id, text=part.text, blocks=part.blocks
                )
            return Receipt(channel_id=channel)
        if delivery.method is Method.DM:
            if target.dm_channel_id:
                channel = target.dm_channel_id
                if target.user_id:
                    self.remember_dm(team, target.user_id, channel)
            elif target.user_id:
                known = self._dm_channels.get((team, target.user_id))
                if known is not None:
                    channel = known
                elif delivery.maybe_sent or team in self._open_first:
                    # The look-up of an earlier attempt needs the D... id, which its lost
                    # answer carried: open the conversation only in this case.
                    channel = await self.dm_channel(client, team, target.user_id)
                else:
                    channel = target.user_id  # Slack posts in the DM and answers its D... id
            else:
                raise PermanentDeliveryError("a DM needs the member's user id")
            thread = target.thread_of
        else:
            channel = target.channel_id or target.dm_channel_id or ""
            if not channel:
                raise PermanentDeliveryError("a post needs a channel id")
            thread = target.thread_of
        charts = render.charts_of(delivery.message)
        if delivery.maybe_sent:
            earlier = await self.find_sent(client, channel, thread, delivery.idempotency_key)
            if earlier is not None:
                log.info("slack: outbox %d was posted before (%s)", delivery.outbox_id, earlier)
                if charts:
                    posted = await self._files_in(client, earlier.channel_id or channel, thread)
                    await self._upload_charts(
                        delivery, earlier.channel_id or channel, thread, charts, skip=posted
                    )
                return earlier
        first_ts: str | None = None
        if delivery.method is Method.DM and channel == target.user_id:
            response = await self._first_dm(client, team, channel, parts[0], delivery, thread)
            first_ts, channel = str(response["ts"]), str(response.get("channel") or channel)
            parts = parts[1:]
        posted_in = channel
        for n, part in enumerate(parts, start=0 if first_ts is None else 1):
            response = await client.chat_postMessage(
                channel=channel,
                text=part.text,
                blocks=part.blocks,
                thread_ts=thread,
                unfurl_links=False,
                unfurl_media=False,
                metadata=outbox_metadata(delivery.idempotency_key, n),
            )
            if first_ts is None:
                first_ts = str(response["ts"])
                posted_in = str(response.get("channel") or channel)
        if charts:
            await self._upload_charts(delivery, posted_in, thread, charts)
        return Receipt(channel_id=posted_in, message_id=first_ts)

    async def _upload_charts(
        self,
        delivery: Delivery,
        channel: str,
        thread: str | None,
        charts: list[Chart],
        *,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        """Each chart as a PNG file shared into ``channel`` (the thread when ``thread``), after
        the message; best effort (see the module docstring): a failure is logged, not raised."""
        client = await self.client(delivery.workspace_id, retry_429=True)
        for n, chart in enumerate(charts):
            filename = chart_filename(delivery.idempotency_key, n)
            if filename in skip:
                log.info("slack: outbox %d: %s was uploaded before", delivery.outbox_id, filename)
                continue
            try:
                png = await draw(chart)  # in a worker thread
            except Exception:  # a drawing bug must not send the row round again
                log.exception("slack: outbox %d: drawing a chart failed", delivery.outbox_id)
                continue
            try:
                await client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread,
                    file=png,
                    filename=filename,
                    title=render.shorten(chart.title.strip() or "Chart", 255),
                    alt_txt=render.shorten(chart.alt, MAX_ALT_TEXT),
                )
            except SlackApiError as exc:
                log.warning(
                    "slack: outbox %d: the chart %r was not uploaded (%s); the message shows its "
                    "alt text",
                    delivery.outbox_id,
                    chart.title,
                    error_code(exc) or exc.response.status_code,
                )
            except (SlackClientError, TimeoutError, ClientError, OSError) as exc:
                log.warning(
                    "slack: outbox %d: the chart %r was not uploaded (%s); the message shows its "
                    "alt text",
                    delivery.outbox_id,
                    chart.title,
                    type(exc).__name__,
                )
            except Exception:  # after the post, nothing may send the row round again
                log.exception(
                    "slack: outbox %d: uploading the chart %r failed",
                    delivery.outbox_id,
                    chart.title,
                )

    async def _files_in(
        self, client: AsyncWebClient, channel: str, thread: str | None
    ) -> frozenset[str]:
        """The names of syncup's chart files among the channel's (or thread's) latest messages
        (empty when syncup may not read them)."""
        recent = await self._recent(client, channel, thread)
        return frozenset(
            str(item.get("name", ""))
            for message in recent or []
            for item in message.get("files") or []
            if str(item.get("name", "")).startswith(CHART_FILE_PREFIX)
        )

    async def _recent(
        self, client: AsyncWebClient, channel: str, thread: str | None
    ) -> list[dict[str, Any]] | None:
        """The channel's (or thread's) latest messages with their metadata; None when syncup
        may not read them."""
        try:
            if thread:
                response = await client.conversations_replies(
                    channel=channel, ts=thread, limit=RECENT, include_all_metadata=True
                )
            else:
                response = await client.conversations_history(
                    channel=channel, limit=RECENT, include_all_metadata=True
                )
        except SlackApiError as exc:
            log.info("slack: cannot check %s for an earlier post (%s)", channel, error_code(exc))
            return None
        return list(response.get("messages") or [])

    async def find_sent(
        self, client: AsyncWebClient, channel: str, thread: str | None, key: str
    ) -> Receipt | None:
        """A message an earlier attempt posted (its outcome lost in a crash), found by the
        outbox key in its metadata among the channel's (or thread's) latest messages. None when
        there is none, or when syncup may not read the channel (then it posts again)."""
        for item in await self._recent(client, channel, thread) or []:
            payload = (item.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key and payload.get("part", 0) == 0:
                return Receipt(channel_id=channel, message_id=str(item["ts"]))
        return None

    async def _first_dm(
        self,
        client: AsyncWebClient,
        team: str,
        user_id: str,
        part: render.SlackMessage,
        delivery: Delivery,
        thread: str | None,
    ) -> Any:
        """The first part of a DM to a member whose ``D...`` channel is not known yet, posted
        to the user id: Slack posts it in the bot's DM with the member and answers with that
        channel, which is kept (for the message's other parts, later DMs and chat.update, and,
        through the receipt, on the member). No conversations.open, a Tier 3 method (about 50
        a minute), per member. Where Slack refuses the user id (``channel_not_found``) or
        answers with something other than a ``D...`` id, the workspace goes back to opening
        the conversation first (``_open_first``)."""
        post = {
            "text": part.text,
            "blocks": part.blocks,
            "thread_ts": thread,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": outbox_metadata(delivery.idempotency_key, 0),
        }
        try:
            response = await client.chat_postMessage(channel=user_id, **post)
        except SlackApiError as exc:
            if error_code(exc) != "channel_not_found":
                raise
            channel = await self.dm_channel(client, team, user_id)  # user_not_found etc. raise
            log.warning("slack: %s refuses DMs to a user id; opening conversations first", team)
            self._open_first.add(team)
            response = await client.chat_postMessage(channel=channel, **post)
        channel = str(response.get("channel") or "")
        if channel.startswith("D"):
            self.remember_dm(team, user_id, channel)
        elif team not in self._open_first:
            log.warning(
                "slack: a DM to a user id in %s landed in %r, not a D... channel; opening "
                "conversations first from now on",
                team,
                channel,
            )
            self._open_first.add(team)
        return response

    async def dm_channel(self, client: AsyncWebClient, team_id: str, user_id: str) -> str:
        """The member's ``D...`` channel: conversations.open once, then remembered."""
        known = self._dm_channels.get((team_id, user_id))
        if known is not None:
            return known
        response = await client.conversations_open(users=user_id)
        channel = str(response["channel"]["id"])
        self._dm_channels[(team_id, user_id)] = channel
        return channel

    # -- PlatformDirectory (adapters.slack.directory) ---------------------------------------

    async def profile(self, team_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.directory.profile(team_id, user_id)

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        return await self.directory.member_info(workspace_id, user_id=user_id, name=name)

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        return await self.directory.channel_info(workspace_id, channel_id=channel_id, name=name)

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        return await self.directory.channel_members(workspace_id, channel_id)

    # -- PlatformGroups: user groups ---------------------------------------------------------

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None:
        return await self.directory.group_info(workspace_id, group_id=group_id, name=name)

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        return await self.directory.group_members(workspace_id, group_id)


def chart_filename(key: str, n: int) -> str:
    """The file name of the ``n``-th chart of the outbox row ``key``: the same on every attempt,
    so a retry can tell the chart was uploaded."""
    digest = hashlib.sha256(f"{key}#chart{n}".encode()).hexdigest()[:20]
    return f"{CHART_FILE_PREFIX}{digest}.png"


def outbox_metadata(key: str, part: int) -> dict[str, Any]:
    """Slack message metadata naming the outbox row, so a retry can tell it was posted."""
    return {"event_type": METADATA_EVENT, "event_payload": {"key": key, "part": part}}
