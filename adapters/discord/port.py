"""Delivering outbox rows to Discord, and looking members and channels up.

* POST: a message in a channel; ``thread_of`` a message: in the thread started on it (created
  on first use, named after that message; a thread started on a message has that message's id).
  A message past 6,000 characters goes out as several; the receipt names every part
  (``part_ids``), which the worker keeps for later edits.
* DM: the member's DM channel, opened once (``POST /users/@me/channels``) and remembered; its id
  is returned in the receipt, and the worker stores it on the member (``dm_channel_id``), so
  later DMs, after a restart too, come with it and open nothing. Opening is its own route bucket
  at Discord, so the port paces it with a bucket of its own (``DM_OPEN_LIMIT``), apart from the
  DM messages' (worker) bucket: a 429 on opening pauses opening only; the port waits it out (up
  to ``DM_OPEN_MAX_WAIT``) and opens again, and the message bucket keeps its pace. A longer
  Retry-After gives the row back (:class:`RateLimited`), as any 429 does.
* UPDATE: an edit of the message (one message: see :func:`render.render_edit`); of a message
  that is or becomes several, an edit of each part that remains, a delete of the parts past the
  new end and a post of new ones (``Target.part_ids``). Discord limits edits of messages older
  than an hour (error 30046), so the port's ``edit_window`` tells the core to post anew past
  that.
* EPHEMERAL: Discord has ephemeral messages only as interaction responses, so an ephemeral
  outbox row goes to the member's DM instead, marked as private.

Every send carries ``allowed_mentions`` (nobody unless a mention is meant) and a nonce derived
from the outbox idempotency key with ``enforce_nonce``: a retry of a send whose outcome was lost
returns the message Discord already created instead of a second one. A message with a
:class:`~bot.chat.Chart` goes as multipart/form-data: ``payload_json`` (with the same nonce and
``enforce_nonce``) and the PNG (:func:`bot.charts.render_png`) as ``files[n]``, shown by the embed
``attachment://chart-<n>.png`` and described by the chart's alt text; the picture and the message
are one request, so they are created, retried and deduplicated together. An UPDATE with a chart
replaces the file: the edit is multipart too and lists only the new ``attachments`` (an edit
always lists them, so a chart that is dropped takes its old file along). 429 -> :class:`RateLimited`
(the worker pauses the bucket), 50007 -> :class:`RecipientUnreachable`, unknown channel/message
and missing access/permissions -> :class:`PermanentDeliveryError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from adapters.discord import render
from adapters.discord.rest import DiscordHTTPError, DiscordRest, quotas
from adapters.discord.search import MemberSearch
from bot.chat import Context, Message, text
from bot.delivery.ratelimit import TokenBucket
from bot.port import (
    ChannelInfo,
    Delivery,
    DeliveryError,
    DirectoryUnavailable,
    GroupInfo,
    MemberInfo,
    Method,
    PermanentDeliveryError,
    Quota,
    RateLimit,
    RateLimited,
    Receipt,
    RecipientUnreachable,
)

log = logging.getLogger(__name__)

PLATFORM = "discord"
NONCE_LENGTH = 25
# Discord error codes
UNKNOWN_CHANNEL = 10003
MEMBER_PAGE = 1000  # GET /guilds/{id}/members returns at most this many a request
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
CANNOT_DM = 50007
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035
THREAD_EXISTS = 160004
PERMANENT = {UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, MISSING_ACCESS, MISSING_PERMISSIONS, 10004}
THREAD_NAME = 100

# Discord allows 50 requests a second per bot and about 5 messages per 5 s per channel; DMs
# are paced well below that (mass DMs get bots flagged). Config can lower or raise these.
RATE_LIMITS: Mapping[Method, RateLimit] = {
    Method.POST: RateLimit(rate=10.0, burst=10),
    Method.DM: RateLimit(rate=2.0, burst=5),
    Method.UPDATE: RateLimit(rate=5.0, burst=5),
    Method.EPHEMERAL: RateLimit(rate=2.0, burst=5),
}
CHANNEL_LIMIT = RateLimit(rate=1.0, burst=5)
# Opening DM channels: not documented; paced like the DMs it precedes, in a bucket of its own.
DM_OPEN_LIMIT = RateLimit(rate=2.0, burst=5)
# A 429 on opening a DM channel with a Retry-After up to this is waited out in the port; the
# opening is tried this many times.
DM_OPEN_MAX_WAIT = 5.0
DM_OPEN_TRIES = 3
# Edits of messages older than an hour are limited (30046: "maximum number of edits to messages
# older than 1 hour reached"), and one select menu holds 25 options.
EDIT_WINDOW = timedelta(hours=1)
MAX_SELECT_OPTIONS = 25
PNG = "image/png"
CachedChannel = Callable[[str, str | None, str | None], ChannelInfo | None]
PRIVATE_NOTE = "Only you can see this (Discord cannot show it privately in the channel)."


def nonce_for(key: str, part: int = 0) -> str:
    """A deterministic nonce of at most 25 characters for an outbox key (and message part)."""
    digest = hashlib.sha256(f"{key}#{part}".encode()).hexdigest()
    return digest[:NONCE_LENGTH]


def delivery_error(exc: DiscordHTTPError, what: str) -> DeliveryError:
    if exc.status == 429:
        retry = exc.retry_after if exc.retry_after is not None else 1.0
        return RateLimited(retry, quota=exc.quota)
    if exc.code == CANNOT_DM:
        return RecipientUnreachable(f"{what}: the member does not accept DMs (Discord 50007)")
    if exc.code in PERMANENT or exc.status in (401, 403, 404):
        return PermanentDeliveryError(f"{what}: {exc}")
    if exc.code == INVALID_FORM_BODY or exc.status == 400:
        return PermanentDeliveryError(f"{what}: Discord refused the payload: {exc}")
    return DeliveryError(f"{what}: {exc}")


class DiscordPort:
    platform = PLATFORM
    # Read by bot.app (see bot.port).
    edit_window = EDIT_WINDOW
    max_select_options = MAX_SELECT_OPTIONS

    def __init__(
        self,
        rest: DiscordRest,
        *,
        members_intent: bool = False,
        cached_channel: CachedChannel | None = None,
    ) -> None:
        self.rest = rest
        self.members_intent = members_intent
        # The gateway's view of a guild's channels (with the bot's permissions in them).
        self.cached_channel = cached_channel
        self._dm_channels: dict[str, str] = {}
        self._dm_open = TokenBucket(DM_OPEN_LIMIT.rate, DM_OPEN_LIMIT.burst)
        self._threads: set[str] = set()
        # Members by typed name, within the time an interaction has (adapters.discord.search).
        self.search = MemberSearch(rest)

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return RATE_LIMITS

    def channel_rate_limit(self) -> RateLimit | None:
        return CHANNEL_LIMIT

    def remember_dm(self, user_id: str, channel_id: str) -> None:
        self._dm_channels[user_id] = channel_id

    async def deliver(self, delivery: Delivery) -> Receipt:
        seen: list[Quota] = []
        token = quotas.set(seen)
        try:
            receipt = await self._deliver(delivery)
            # The last answer's window: what the next send of this bucket meets.
            return replace(receipt, quota=seen[-1]) if seen else receipt
        except DiscordHTTPError as exc:
            raise delivery_error(exc, f"{delivery.method.value} {delivery.outbox_id}") from None
        except render.RenderError as exc:
            raise PermanentDeliveryError(f"cannot render for Discord: {exc}") from None
        finally:
            quotas.reset(token)

    async def _deliver(self, delivery: Delivery) -> Receipt:
        target = delivery.target
        method = delivery.method
        if method is Method.UPDATE:
            if not target.message_id or not target.channel_id:
                raise PermanentDeliveryError("an update needs the message and its channel")
            parts = render.render_message(delivery.message, guild_id=delivery.workspace_id)
            if len(target.part_ids) > 1 or len(parts) > 1:
                return await self._edit_parts(delivery, parts)
            files = await _drawn(delivery)

            def edit(images: bool) -> dict[str, Any]:
                return render.render_edit(
                    delivery.message, guild_id=delivery.workspace_id, images=images
                )

            path = f"/channels/{target.channel_id}/messages/{target.message_id}"
            await self._with_charts("PATCH", path, edit, files)
            return Receipt(channel_id=target.channel_id, message_id=target.message_id)
        if method in (Method.DM, Method.EPHEMERAL):
            user_id = target.user_id
            if not user_id and not target.dm_channel_id:
                raise PermanentDeliveryError("a DM needs the member's user id")
            channel = target.dm_channel_id if method is Method.DM else None
            if channel and user_id:
                self.remember_dm(user_id, channel)  # stored on the member: for ephemerals too
            channel = channel or await self.dm_channel(user_id or "")
            msg = delivery.message
            if method is Method.EPHEMERAL:
                msg = Message((*msg.blocks, Context(text(PRIVATE_NOTE))), msg.summary)
            return await self._post(channel, msg, delivery)
        channel = target.channel_id or target.dm_channel_id
        if not channel:
            raise PermanentDeliveryError("a post needs a channel id")
        if target.thread_of:
            channel = await self._thread(channel, target.thread_of)
        return await self._post(channel, delivery.message, delivery)

    async def _edit_parts(self, delivery: Delivery, parts: list[dict[str, Any]]) -> Receipt:
        """An edit of a message that is (or becomes) several messages: each part that remains
        is edited, parts past the new end are deleted, new parts are posted after the last (in
        the thread or channel; Discord cannot insert a message), so that the channel shows the
        message as it now is, once. Charts show in words on this path (answers have none)."""
        target = delivery.target
        channel = target.channel_id or ""
        old = list(target.part_ids) or [target.message_id or ""]
        ids: list[str] = []
        for n, payload in enumerate(parts):
            if n < len(old):
                payload.pop("attachments", None)
                await self.rest.request(
                    "PATCH", f"/channels/{channel}/messages/{old[n]}", json_body=payload
                )
                ids.append(old[n])
                continue
            payload["nonce"] = nonce_for(delivery.idempotency_key, n)
            payload["enforce_nonce"] = True
            sent = await self.rest.request(
                "POST", f"/channels/{channel}/messages", json_body=payload
            )
            ids.append(str(sent["id"]))
        for extra in old[len(parts) :]:
            try:
                await self.rest.request("DELETE", f"/channels/{channel}/messages/{extra}")
            except DiscordHTTPError as exc:
                if exc.code != UNKNOWN_MESSAGE:  # deleted already (a retry): done
                    raise
        return Receipt(channel_id=channel, message_id=ids[0], part_ids=tuple(ids))

    async def _post(self, channel: str, msg: Message, delivery: Delivery) -> Receipt:
        # Buttons carry their guild: an interaction from a DM has none (and edits keep it).
        files = await _drawn(delivery, msg)
        with_images = render.render_message(
            msg, guild_id=delivery.workspace_id, images=files is not None
        )
        ids: list[str] = []
        for part, payload in enumerate(with_images):

            def post(images: bool, part: int = part, payload: dict[str, Any] = payload) -> Any:
                if not images:  # the same part with its charts in words
                    worded = render.render_message(
                        msg, guild_id=delivery.workspace_id, images=False
                    )
                    payload = worded[min(part, len(worded) - 1)]
                payload["nonce"] = nonce_for(delivery.idempotency_key, part)
                payload["enforce_nonce"] = True
                return payload

            sent = await self._with_charts("POST", f"/channels/{channel}/messages", post, files)
            ids.append(str(sent["id"]))
        # Every part's id, when there are several: an edit must reach them all.
        return Receipt(
            channel_id=channel, message_id=ids[0], part_ids=tuple(ids) if len(ids) > 1 else None
        )

    async def _with_charts(
        self,
        verb: str,
        path: str,
        build: Callable[[bool], dict[str, Any]],
        files: list[tuple[str, bytes, str]] | None,
    ) -> Any:
        """Send ``build(images)``; where the channel denies Attach Files (50013 on a request
        that carried files), send it again with the charts in words rather than lose it."""
        payload = build(files is not None)
        if not (files and payload.get("attachments")):
            return await self.rest.request(verb, path, json_body=payload)
        try:
            return await self.rest.request(verb, path, json_body=payload, files=files)
        except DiscordHTTPError as exc:
            if exc.code != MISSING_PERMISSIONS:
                raise
            log.warning("%s %s: no Attach Files permission; charts sent in words", verb, path)
            return await self.rest.request(verb, path, json_body=build(False))

    async def dm_channel(self, user_id: str) -> str:
        """The member's DM channel: remembered, else opened behind the opening bucket (see the
        module docstring)."""
        known = self._dm_channels.get(user_id)
        if known is not None:
            return known
        for tries in range(1, DM_OPEN_TRIES + 1):
            await self._dm_open.acquire()
            try:
                opened: dict[str, Any] = await self.rest.request(
                    "POST", "/users/@me/channels", json_body={"recipient_id": user_id}
                )
                break
            except DiscordHTTPError as exc:
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                if exc.status != 429 or wait > DM_OPEN_MAX_WAIT or tries == DM_OPEN_TRIES:
                    raise
                log.info("discord: opening DM channels is rate limited for %.3gs", wait)
                self._dm_open.pause(wait)
        channel = str(opened["id"])
        self._dm_channels[user_id] = channel
        return channel

    async def _thread(self, channel: str, message_id: str) -> str:
        """The thread on ``message_id`` (same id), started on first use and named after that
        message (the report: its title), not after the first reply."""
        if message_id in self._threads:
            return message_id
        try:
            parent = await self.rest.request("GET", f"/channels/{channel}/messages/{message_id}")
        except DiscordHTTPError as exc:
            if exc.status != 404:
                raise
            parent = None
        try:
            await self.rest.request(
                "POST",
                f"/channels/{channel}/messages/{message_id}/threads",
                json_body={"name": thread_name(parent), "auto_archive_duration": 1440},
            )
        except DiscordHTTPError as exc:
            if exc.code != THREAD_EXISTS:
                raise
        self._threads.add(message_id)
        return message_id

    # -- the directory (PlatformDirectory) -------------------------------------------------

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        if not user_id:
            return await self.search.find(workspace_id, name, _member) if name else None
        try:
            found = await self.rest.request("GET", f"/guilds/{workspace_id}/members/{user_id}")
        except DiscordHTTPError as exc:
            if exc.status == 404:
                return None
            raise
        return _member(found) if found else None

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        wanted = (name or "").removeprefix("#").lower() or None
        if self.cached_channel is not None:
            cached = self.cached_channel(workspace_id, channel_id, wanted)
            if cached is not None:
                return cached
        channels = await self.rest.request("GET", f"/guilds/{workspace_id}/channels")
        for channel in channels:
            if str(channel["id"]) == channel_id or (wanted and channel.get("name") == wanted):
                return ChannelInfo(str(channel["id"]), str(channel.get("name", "")))
        return None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        if not self.members_intent:
            raise DirectoryUnavailable(
                "Everyone in a channel as participants needs Discord's Server Members intent: "
                "turn it on in the Developer Portal (Bot, Privileged Gateway Intents) and set "
                "[discord] members_intent = true, or name the participants (@alice @bob)."
            )
        try:
            members = await self.rest.request(
                "GET", f"/guilds/{workspace_id}/members", params={"limit": "1000"}
            )
        except DiscordHTTPError as exc:
            if exc.code == MISSING_ACCESS:
                raise DirectoryUnavailable(
                    "Discord refused the member list: turn on the Server Members intent in the "
                    "Developer Portal (Bot, Privileged Gateway Intents)."
                ) from None
            raise
        return [_member(m) for m in members if not m.get("user", {}).get("bot")]

    # -- roles as user groups (PlatformGroups) ------------------------------------------------

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None:
        """A role of the guild by id or name (case ignored; not @everyone, not a bot's own)."""
        wanted = (name or "").removeprefix("@").casefold()
        for role in await self.rest.request("GET", f"/guilds/{workspace_id}/roles"):
            role_id = str(role["id"])
            if role_id == workspace_id or (role.get("tags") or {}).get("bot_id"):
                continue  # @everyone has the guild's id
            if role_id == group_id or (wanted and str(role.get("name")).casefold() == wanted):
                return GroupInfo(role_id, str(role.get("name") or role_id))
        return None

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        """Members holding the role: the guild's member list (the Server Members intent),
        read 1,000 at a time."""
        if not self.members_intent:
            raise DirectoryUnavailable(
                "Who holds a Discord role needs the Server Members intent: turn it on in the "
                "Developer Portal (Bot, Privileged Gateway Intents) and set [discord] "
                "members_intent = true, or name the people (@alice @bob)."
            )
        found: list[MemberInfo] = []
        after = "0"
        while True:
            try:
                page = await self.rest.request(
                    "GET",
                    f"/guilds/{workspace_id}/members",
                    params={"limit": str(MEMBER_PAGE), "after": after},
                )
            except DiscordHTTPError as exc:
                if exc.code == MISSING_ACCESS:
                    raise DirectoryUnavailable(
                        "Discord refused the member list: turn on the Server Members intent in "
                        "the Developer Portal (Bot, Privileged Gateway Intents)."
                    ) from None
                raise
            for member in page:
                if group_id in member.get("roles", []) and not member.get("user", {}).get("bot"):
                    found.append(_member(member))
            if len(page) < MEMBER_PAGE:
                return found
            after = str(page[-1]["user"]["id"])


async def _drawn(
    delivery: Delivery, msg: Message | None = None
) -> list[tuple[str, bytes, str]] | None:
    """The charts' PNGs, ``files[n]`` for the attachment of id n (drawn at each send: the outbox
    keeps the chart's data, and a retry draws the same bytes). None when drawing failed (a bug):
    the message then shows its charts in words rather than not at all. Drawn in a worker
    thread: matplotlib takes a while, the gateway's heartbeats must not wait."""
    try:
        drawn = await asyncio.to_thread(render.chart_files, msg or delivery.message)
        return [(name, png, PNG) for name, png in drawn]
    except Exception:
        log.exception("outbox %d: drawing a chart failed; sent in words", delivery.outbox_id)
        return None


def thread_name(parent: dict[str, Any] | None) -> str:
    """A thread's name from the message it is started on: its first line of text (markdown
    headings and emphasis left out), else its first embed's title or first line."""
    lines: list[str] = []
    if parent:
        lines.append(str(parent.get("content") or ""))
        for embed in parent.get("embeds") or []:
            lines += [str(embed.get("title") or ""), str(embed.get("description") or "")]
    for text_ in lines:
        for line in text_.splitlines():
            name = line.strip().lstrip("#>-").strip().replace("**", "").replace("__", "")
            name = _ESCAPED.sub(r"\1", name)  # a thread name is plain text, not markdown
            if name and not name.startswith("<@"):
                return name[:THREAD_NAME]
    return "Replies"


_ESCAPED = re.compile(r"\\([^A-Za-z0-9\s])")


def display_name(user: dict[str, Any], nick: str | None = None) -> str:
    return str(nick or user.get("global_name") or user.get("username") or user.get("id"))


def _member(data: dict[str, Any]) -> MemberInfo:
    user = data.get("user", {})
    return MemberInfo(
        str(user.get("id")),
        display_name(user, data.get("nick")),
        None,
        bool(user.get("bot")),
    )
