"""Slack's people and channels for the core (:class:`bot.port.PlatformDirectory`), kept warm.

A workspace's members are read once with users.list (paged, 200 a page, paced for its Tier 2
limit of about 20 calls a minute, Retry-After honoured) when syncup starts or first hears from
the workspace, kept up to date by the ``team_join`` and ``user_change`` events, and read again
after :data:`RESYNC_SECONDS`. A name typed in a form is then found in memory: an unknown name is
answered at once from the complete list, never with a scan of the workspace of its own (1,236
members took 36 calls and eight 429s); while the first read is under way a look-up waits for it
instead of starting another. A member by id is the roster's, else users.info (cached).

Look-ups may be slow (the first read, an API call with latency): each one first sets the
:data:`LOOKING_UP` event of the work it runs in, so that an interaction's handler can answer
Slack's 3-second deadline before the slow part (see :mod:`adapters.slack.forms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.port import ChannelInfo, DirectoryUnavailable, GroupInfo, MemberInfo

log = logging.getLogger(__name__)

PAGE_SIZE = 200
# users.list is Tier 2 (20+ calls a minute): one page every 3 s, with a margin.
PAGE_INTERVAL = 3.1
MAX_429_PER_PAGE = 5
RESYNC_SECONDS = 24 * 3600.0
RETRY_FAILED_SECONDS = 300.0

# Set by an interaction handler around the work it races against Slack's deadline.
LOOKING_UP: ContextVar[asyncio.Event | None] = ContextVar("slack_looking_up", default=None)

ClientFor = Callable[..., Awaitable[AsyncWebClient]]


def looking_up() -> None:
    """A platform call is about to happen in this work: tell whoever waits on it."""
    started = LOOKING_UP.get()
    if started is not None:
        started.set()


def error_code(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else {}
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def retry_after(exc: SlackApiError, default: float = 1.0) -> float:
    headers = exc.response.headers if exc.response is not None else {}
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return default


def is_rate_limited(exc: SlackApiError) -> bool:
    status = exc.response.status_code if exc.response is not None else 0
    return status == 429 or error_code(exc) == "ratelimited"


@dataclass
class Roster:
    """One workspace's members as users.list and member events describe them."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    synced_at: float = 0.0

    def put(self, user: dict[str, Any]) -> None:
        self.users[str(user["id"])] = user

    def find(self, name: str) -> dict[str, Any] | None:
        wanted = name.lower().removeprefix("@")
        for user in self.users.values():
            if user.get("deleted"):
                continue
            names = {
                str(user.get("name", "")).lower(),
                display_name(user).lower(),
                str(user.get("real_name", "")).lower(),
            }
            if wanted in names:
                return user
        return None


@dataclass
class _Cached:
    value: Any
    until: float


class SlackDirectory:
    def __init__(
        self,
        client_for: ClientFor,
        *,
        profile_cache_seconds: float = 3600.0,
        page_interval: float = PAGE_INTERVAL,
        resync_seconds: float = RESYNC_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_for = client_for
        self.profile_cache_seconds = profile_cache_seconds
        self.page_interval = page_interval
        self.resync_seconds = resync_seconds
        self._monotonic = monotonic
        self._profiles: dict[tuple[str, str], _Cached] = {}
        self._rosters: dict[str, Roster] = {}
        self._syncs: dict[str, asyncio.Task[Roster]] = {}
        self._changed: dict[str, dict[str, dict[str, Any]]] = {}
        self._failed_at: dict[str, float] = {}
        # users.list calls made, and 429s met, by the member syncs (figures for the docs).
        self.list_calls = 0
        self.list_429s = 0

    # -- the member sync ------------------------------------------------------------------

    def warm(self, team_id: str) -> asyncio.Task[Roster] | None:
        """Start reading the workspace's members unless a read is under way or recent; the
        task of the read under way, if any."""
        running = self._syncs.get(team_id)
        if running is not None and not running.done():
            return running
        failed = self._failed_at.get(team_id)
        if failed is not None and self._monotonic() - failed < RETRY_FAILED_SECONDS:
            return running  # the last read failed just now: not again on every event
        roster = self._rosters.get(team_id)
        if roster is not None and roster.complete:
            if self._monotonic() - roster.synced_at < self.resync_seconds:
                return None
        task = asyncio.ensure_future(self._sync(team_id))
        task.set_name(f"slack member sync {team_id}")
        task.add_done_callback(self._synced)
        self._syncs[team_id] = task
        return task

    def _synced(self, task: asyncio.Task[Roster]) -> None:
        team_id = task.get_name().rsplit(" ", 1)[-1]
        if not task.cancelled() and task.exception() is not None:
            self._failed_at[team_id] = self._monotonic()
            log.warning("slack: reading the member list failed: %s", task.exception())
        else:
            self._failed_at.pop(team_id, None)

    async def roster(self, team_id: str) -> Roster:
        """The complete member list (waiting for the read under way, or starting one)."""
        roster = self._rosters.get(team_id)
        task = self.warm(team_id)
        if roster is not None and roster.complete:
            return roster
        if task is None:
            raise DirectoryUnavailable(
                "Slack's member list could not be read just now; try again in a few minutes."
            )
        looking_up()
        try:
            return await asyncio.shield(task)
        except SlackApiError as exc:
            raise unavailable(exc) from None
        except (ClientError, OSError, TimeoutError) as exc:
            raise DirectoryUnavailable(
                f"Slack could not be reached for the member list ({type(exc).__name__}); "
                "try again in a few minutes."
            ) from None

    async def stop(self) -> None:
        for task in self._syncs.values():
            task.cancel()
        for task in self._syncs.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._syncs.clear()

    async def _sync(self, team_id: str) -> Roster:
        client = await self._client_for(team_id)
        fresh = Roster()
        cursor = ""
        first = True
        while True:
            if not first:
                await asyncio.sleep(self.page_interval)
            first = False
            response = await self._page(client, cursor)
            for user in response.get("members", []):
                fresh.put(dict(user))
            cursor = (response.get("response_metadata") or {}).get("next_cursor", "")
            if not cursor:
                break
        fresh.complete = True
        fresh.synced_at = self._monotonic()
        for user in self._changed.pop(team_id, {}).values():  # events met while reading win
            fresh.put(user)
        self._rosters[team_id] = fresh
        log.info("slack: %d members of %s read", len(fresh.users), team_id)
        return fresh

    async def _page(self, client: AsyncWebClient, cursor: str) -> Any:
        for _ in range(MAX_429_PER_PAGE):
            self.list_calls += 1
            try:
                return await client.users_list(limit=PAGE_SIZE, cursor=cursor or None)
            except SlackApiError as exc:
                if not is_rate_limited(exc):
                    raise
                self.list_429s += 1
                await asyncio.sleep(retry_after(exc, self.page_interval))
        self.list_calls += 1
        return await client.users_list(limit=PAGE_SIZE, cursor=cursor or None)

    def member_event(self, team_id: str, user: dict[str, Any]) -> None:
        """``team_join`` / ``user_change``: the member as Slack now describes them."""
        if not user.get("id"):
            return
        user = dict(user)
        self._rosters.setdefault(team_id, Roster()).put(user)
        running = self._syncs.get(team_id)
        if running is not None and not running.done():
            self._changed.setdefault(team_id, {})[str(user["id"])] = user
        self._profiles[(team_id, str(user["id"]))] = _Cached(
            user, self._monotonic() + self.profile_cache_seconds
        )

    def forget(self, team_id: str) -> None:
        self._profiles = {k: v for k, v in self._profiles.items() if k[0] != team_id}
        self._rosters.pop(team_id, None)
        self._changed.pop(team_id, None)
        task = self._syncs.pop(team_id, None)
        if task is not None:
            task.cancel()

    # -- members ---------------------------------------------------------------------------

    async def profile(self, team_id: str, user_id: str) -> dict[str, Any] | None:
        """The member's users.info record: the roster's, else cached for
        ``profile_cache_seconds``; None if Slack does not know them."""
        key = (team_id, user_id)
        now = self._monotonic()
        cached = self._profiles.get(key)
        if cached is not None and cached.until > now:
            return cached.value  # type: ignore[no-any-return]
        roster = self._rosters.get(team_id)
        if roster is not None and user_id in roster.users:
            return roster.users[user_id]
        looking_up()
        client = await self._client_for(team_id, retry_429=True)
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            if error_code(exc) in ("user_not_found", "user_not_visible"):
                return None
            raise
        user = dict(response["user"])
        self._profiles[key] = _Cached(user, now + self.profile_cache_seconds)
        return user

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None:
        try:
            if user_id:
                user = await self.profile(workspace_id, user_id)
                return member_of(user) if user else None
            if not name:
                return None
            found = (await self.roster(workspace_id)).find(name)
            return member_of(found) if found is not None else None
        except SlackApiError as exc:
            raise unavailable(exc) from None

    # -- channels --------------------------------------------------------------------------

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None:
        if not channel_id and not name:
            return None
        looking_up()
        client = await self._client_for(workspace_id, retry_429=True)
        try:
            if channel_id:
                try:
                    response = await client.conversations_info(channel=channel_id)
                except SlackApiError as exc:
                    if error_code(exc) == "channel_not_found":
                        return None
                    raise
                return channel_of(response["channel"])
            wanted = (name or "").lower().removeprefix("#")
            cursor = ""
            while True:
                response = await client.conversations_list(
                    limit=PAGE_SIZE,
                    cursor=cursor or None,
                    exclude_archived=True,
                    types="public_channel,private_channel",
                )
                for channel in response.get("channels", []):
                    if str(channel.get("name", "")).lower() == wanted:
                        return channel_of(channel)
                cursor = (response.get("response_metadata") or {}).get("next_cursor", "")
                if not cursor:
                    return None
        except SlackApiError as exc:
            raise unavailable(exc) from None

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        looking_up()
        client = await self._client_for(workspace_id, retry_429=True)
        try:
            ids: list[str] = []
            cursor = ""
            while True:
                response = await client.conversations_members(
                    channel=channel_id, limit=PAGE_SIZE, cursor=cursor or None
                )
                ids.extend(str(i) for i in response.get("members", []))
                cursor = (response.get("response_metadata") or {}).get("next_cursor", "")
                if not cursor:
                    break
            members: list[MemberInfo] = []
            for user_id in ids:
                user = await self.profile(workspace_id, user_id)
                if user and not user.get("is_bot") and not user.get("deleted"):
                    members.append(member_of(user))
            return members
        except SlackApiError as exc:
            raise unavailable(exc) from None

    # -- user groups (bot.port.PlatformGroups) ------------------------------------------------

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None:
        """A user group by id, or by its handle (``data-eng``) or name, from usergroups.list
        (disabled groups left out)."""
        if not group_id and not name:
            return None
        wanted = (name or "").lower().removeprefix("@")
        looking_up()
        client = await self._client_for(workspace_id, retry_429=True)
        try:
            response = await client.usergroups_list(include_disabled=False)
        except SlackApiError as exc:
            raise unavailable(exc) from None
        for group in response.get("usergroups", []):
            if group.get("date_delete"):
                continue
            handle = str(group.get("handle") or group.get("name") or group.get("id"))
            if group_id and str(group.get("id")) == group_id:
                return GroupInfo(str(group["id"]), handle)
            if wanted and wanted in (handle.lower(), str(group.get("name", "")).lower()):
                return GroupInfo(str(group["id"]), handle)
        return None

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        """The group's members from usergroups.users.list, each from the member list (bots and
        deactivated accounts left out)."""
        looking_up()
        client = await self._client_for(workspace_id, retry_429=True)
        try:
            response = await client.usergroups_users_list(usergroup=group_id)
            members: list[MemberInfo] = []
            for user_id in response.get("users", []):
                user = await self.profile(workspace_id, str(user_id))
                if user and not user.get("is_bot") and not user.get("deleted"):
                    members.append(member_of(user))
            return members
        except SlackApiError as exc:
            if error_code(exc) in ("no_such_subteam", "subteam_not_found"):
                return []
            raise unavailable(exc) from None


def display_name(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    return str(
        profile.get("display_name")
        or user.get("name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("id")
    )


def member_of(user: dict[str, Any]) -> MemberInfo:
    return MemberInfo(
        user_id=str(user["id"]),
        display_name=display_name(user),
        timezone=user.get("tz") or None,
        is_bot=bool(user.get("is_bot")),
    )


def channel_of(channel: dict[str, Any]) -> ChannelInfo:
    name = str(channel.get("name") or channel.get("id"))
    can_post = bool(channel.get("is_member")) and not channel.get("is_archived")
    reason = ""
    if channel.get("is_archived"):
        reason = f"#{name} is archived; choose another channel."
    elif not can_post:
        reason = f"Invite @syncup to #{name} first (type /invite @syncup there)."
    return ChannelInfo(str(channel["id"]), name, can_post, reason)


def unavailable(exc: SlackApiError) -> DirectoryUnavailable:
    code = error_code(exc)
    if code == "missing_scope":
        needed = (exc.response.data or {}).get("needed", "") if exc.response else ""
        return DirectoryUnavailable(
            f"syncup lacks the Slack scope {needed or 'it needs'}; an admin must reinstall the "
            "app with the scopes of `syncup slack manifest`."
        )
    return DirectoryUnavailable(f"Slack did not answer the lookup ({code or 'error'}).")
