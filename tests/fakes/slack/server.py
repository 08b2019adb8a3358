"""A fake Slack on 127.0.0.1 (port 0) that speaks the real wire protocol.

- **Web API**: ``POST /api/<method>`` with a JSON or form body and the token in the
  ``Authorization`` header (or a ``token`` field), answering ``{"ok": ...}`` like Slack. It
  implements the methods syncup calls (chat.*, conversations.*, views.*, users.*, usergroups.*,
  auth.test, apps.connections.open, oauth.v2.access), records every call, checks Block Kit limits
  (:mod:`tests.fakes.slack.blockkit`; a violation is answered ``invalid_blocks`` and kept in
  :attr:`FakeSlack.violations`), and answers ``429`` with ``Retry-After`` past the configured
  rates: per (team, method) (``TIER_3`` for conversations.open as Slack limits it), per channel
  for chat.postMessage (a post to a user id counts in that member's DM), and per team for
  chat.postMessage as a whole. chat.postMessage to a user id posts in the bot's DM with the
  member and answers with its ``D...`` channel id. Faults on demand (:meth:`FakeSlack.fail`).
- **Files**: files.getUploadURLExternal hands out ``http://127.0.0.1:<port>/upload/<file id>``;
  ``POST`` there takes the bytes (raw or multipart), checked against the declared length, Slack's
  size limit and, for a ``.png``, the PNG signature; files.completeUploadExternal shares the file
  into ``channel_id`` (and ``thread_ts``) as a message with ``files``, which conversations.history
  and .replies show. Bad input gets Slack's error names (``file_not_found``, ``invalid_channel``,
  ``not_in_channel``, ``alt_txt_too_large``, ``missing_argument``); a bad upload is answered 400
  and kept in :attr:`FakeSlack.violations`.
- **response_url**: ``POST /respond/<id>``, recorded as an ephemeral reply (or a channel post).
- **Socket Mode**: ``apps.connections.open`` hands out ``ws://127.0.0.1:<port>/socket``; the
  socket says ``hello``, :meth:`FakeSlack.send_envelope` pushes an envelope and waits for its
  ack (whose payload it returns).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.slack import blockkit


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    team: str | None
    status: int
    response: dict[str, Any]


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    tz: str = "UTC"
    is_admin: bool = False
    is_bot: bool = False
    deleted: bool = False
    # The workspace the member belongs to; None: every workspace the fake serves (the tests'
    # one team). users.list lists a workspace's own members only.
    team: str | None = None


@dataclass
class ChannelState:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    bot_is_member: bool = True
    is_archived: bool = False
    is_im: bool = False


@dataclass
class UserGroup:
    id: str
    handle: str
    name: str = ""
    users: list[str] = field(default_factory=list)
    disabled: bool = False


@dataclass
class Posted:
    """A message in a channel as Slack keeps it (updates replace blocks and text)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    team: str | None
    edits: int = 0
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None  # a file share: the files it shows


@dataclass
class UploadedFile:
    """A file from files.getUploadURLExternal on: its bytes once uploaded, where it was shared."""

    id: str
    filename: str
    length: int
    alt_txt: str | None
    team: str | None
    data: bytes | None = field(default=None, repr=False)
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    share_ts: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": "image/png" if self.filename.endswith(".png") else "",
            "size": len(self.data or b""),
        }
        if self.alt_txt:
            out["alt_txt"] = self.alt_txt
        return out


@dataclass
class Bucket:
    rate: float
    burst: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """0 when a request may go, else the seconds until one may."""
        if self.tokens < 0:
            self.tokens, self.updated = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Fault:
    method: str
    error: str
    status: int = 200
    times: int = 1
    retry_after: float | None = None
    # Serve the call (the message is created), then answer with the error anyway: an outcome
    # lost on the way back, as when a connection drops after Slack posted.
    after: bool = False


POST_METHODS = {"chat.postMessage"}
# Slack's Tier 3 ("50+ a minute", e.g. conversations.open, chat.update) as a method rate:
# ``fake.method_rates["conversations.open"] = TIER_3``.
TIER_3 = (50 / 60, 3)
MAX_FILE_BYTES = 1024**3  # Slack's limit for one file: 1 GB
MAX_ALT_TXT = 1000  # files.getUploadURLExternal: alt_txt_too_large past it
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENVELOPE_TIMEOUT = 10.0  # Slack waits 3 s for an ack; the tests are generous
MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}


class FakeSlack:
    def __init__(
        self,
        *,
        team_id: str = "T1",
        team_name: str = "Acme",
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        bot_user_id: str = "UBOT",
        fractional_retry_after: bool = True,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.tokens: dict[str, str] = {bot_token: team_id}
        self.app_tokens = {app_token}
        self.bot_user_id = bot_user_id
        self.users: dict[str, User] = {}
        self.channels: dict[str, ChannelState] = {}
        self.calls: list[Call] = []
        self.messages: list[Posted] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.files: dict[str, UploadedFile] = {}
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.rate_limited: int = 0
        self.method_rates: dict[str, tuple[float, int]] = {}
        self.channel_rate: tuple[float, int] | None = None
        self.team_post_rate: tuple[float, int] | None = None
        self.fractional_retry_after = fractional_retry_after
        self._buckets: dict[tuple[str, ...], Bucket] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._kinds: dict[str, str] = {}
        self.socket_connected = asyncio.Event()
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.on_call: list[Callable[[Call], None]] = []
        # Scopes the bot token has beyond the manifest's (conversations.history in channels).
        self.scopes: set[str] = set()
        # Manifest scopes the bot token lacks (an app installed before they were added).
        self.lacking_scopes: set[str] = set()
        self.usergroups: dict[str, UserGroup] = {}
        # Seconds each Web API method takes to answer (a slow Slack), by method name.
        self.latency: dict[str, float] = {}
        # What happened, in order: ("answered", method) when a Web API answer leaves, ("ack",
        # kind) when an app's ack arrives (Socket Mode here, HTTP mode in the harness). Tests
        # compare positions (the ack came before the first look-up was answered), not clocks.
        self.timeline: list[tuple[str, str]] = []
        # Look-up indexes over ``messages`` and ``views`` (a day at scale posts 100,000s), kept
        # up to date lazily so that a test may still append to or clear the lists itself.
        self._posted: dict[tuple[str, str], Posted] = {}
        self._posted_seen: tuple[int, int] = (0, 0)
        self._view_triggers: set[str] = set()
        self._view_ids: dict[str, int] = {}
        self._views_seen: tuple[int, int] = (0, 0)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=64 * 1024**2)  # chart uploads, and room to spare
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self) -> str:
        return f"{self.url}/respond/{next(self._ids)}"

    # -- the workspace ---------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, tz: str = "UTC", **kw: Any) -> User:
        user = User(user_id, name, kw.pop("real_name", name.title()), tz, **kw)
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, members: list[str], **kw: Any) -> None:
        self.channels[channel_id] = ChannelState(channel_id, name, set(members), **kw)

    def add_usergroup(self, group_id: str, handle: str, users: list[str], **kw: Any) -> None:
        self.usergroups[group_id] = UserGroup(group_id, handle, kw.pop("name", handle), users, **kw)

    def dm_of(self, user_id: str) -> str:
        channel_id = f"D{user_id}"
        if channel_id not in self.channels:
            self.channels[channel_id] = ChannelState(channel_id, channel_id, {user_id}, is_im=True)
        return channel_id

    def fail(
        self, method: str, error: str, *, times: int = 1, status: int = 200, **kw: Any
    ) -> None:
        self.faults.append(Fault(method, error, status, times, **kw))

    # -- what happened -----------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None) -> list[Posted]:
        return [m for m in self.messages if channel is None or m.channel == channel]

    def dms_to(self, user_id: str) -> list[Posted]:
        return self.posts(f"D{user_id}")

    def answered_before_ack(self, kind: str, methods: set[str]) -> list[str]:
        """The calls of ``methods`` answered while the app held the latest request of ``kind``:
        after it was sent and before its ack arrived."""
        acks = [n for n, (what, name) in enumerate(self.timeline) if (what, name) == ("ack", kind)]
        assert acks, f"no ack of {kind} in {self.timeline}"
        sent = [n for n, (what, name) in enumerate(self.timeline[: acks[-1]]) if what == "sent"]
        start = sent[-1] if sent else 0
        return [
            name
            for what, name in self.timeline[start : acks[-1]]
            if what == "answered" and name in methods
        ]

    def shared_files(self, channel: str | None = None) -> list[UploadedFile]:
        """Files shared into a channel (any channel when None), in the order they were."""
        shared = [f for f in self.files.values() if f.share_ts is not None]
        shared.sort(key=lambda f: f.share_ts or "")
        return [f for f in shared if channel is None or f.channel == channel]

    # -- rate limits -----------------------------------------------------------------------

    def _wait(self, method: str, team: str | None, args: dict[str, Any], now: float) -> float:
        keys: list[tuple[tuple[str, ...], tuple[float, int]]] = []
        if method in self.method_rates:
            keys.append(((team or "", method), self.method_rates[method]))
        if method in POST_METHODS:
            if self.team_post_rate is not None:
                keys.append(((team or "", "post-team"), self.team_post_rate))
            if self.channel_rate is not None:
                channel = str(args.get("channel", ""))
                if channel in self.users:  # a post to a user id counts in the member's DM
                    channel = f"D{channel}"
                keys.append(((team or "", "post-channel", channel), self.channel_rate))
        wait = 0.0
        for key, (rate, burst) in keys:
            bucket = self._buckets.setdefault(key, Bucket(rate, burst))
            wait = max(wait, bucket.take(now))
        return wait

    # -- Web API -----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        if self.latency.get(method):
            await asyncio.sleep(self.latency[method])
        ctype = request.headers.get("Content-Type", "")
        args: dict[str, Any] = dict(request.query)
        if "json" in ctype:
            args.update(json.loads(raw or b"{}"))
        else:
            args.update(parse_qsl(raw.decode()))
            for key in ("blocks", "view", "attachments"):
                if isinstance(args.get(key), str):
                    args[key] = json.loads(args[key])
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or args.get(
            "token"
        )
        team = self.tokens.get(token or "")
        status, body, headers = 200, {"ok": True}, {}
        fault = next((f for f in self.faults if f.method == method and f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            if fault.after and team is not None:
                self._serve(method, args, team, token)
            status, body = fault.status, {"ok": False, "error": fault.error}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
                self.rate_limited += 1
        elif method in ("oauth.v2.access", "apps.connections.open") or team is not None:
            wait = self._wait(method, team, args, asyncio.get_running_loop().time())
            if wait > 0:
                self.rate_limited += 1
                status, body = 429, {"ok": False, "error": "ratelimited"}
                after = f"{wait:.3f}" if self.fractional_retry_after else str(math.ceil(wait))
                headers["Retry-After"] = after
            else:
                body = self._serve(method, args, team, token)
        else:
            body = {"ok": False, "error": "invalid_auth"}
        call = Call(method, args, token, team, status, body)
        self.calls.append(call)
        self.timeline.append(("answered", method))
        for listener in self.on_call:
            listener(call)
        return web.json_response(body, status=status, headers=headers)

    def _serve(
        self, method: str, args: dict[str, Any], team: str | None, token: str | None
    ) -> dict[str, Any]:
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        if method in MESSAGE_METHODS:
            problems = blockkit.check_message(args)
            if problems:
                self.violations.extend(f"{method}: {p}" for p in problems)
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
        result: dict[str, Any] = handler(args, team=team, token=token)
        return result

    def _ts_now(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _channel_for_post(self, args: dict[str, Any]) -> tuple[ChannelState | None, str]:
        channel_id = str(args.get("channel", ""))
        if channel_id in self.users:
            # A user id posts in the bot's DM with that member, and the answer's ``channel`` is
            # its D... id (slack_sdk's docs; the Slackbot-DM reading is not modelled). A bot
            # user has no such DM.
            if self.users[channel_id].is_bot:
                return None, "channel_not_found"
            channel_id = self.dm_of(channel_id)
        channel = self.channels.get(channel_id)
        if channel is None:
            return None, "channel_not_found"
        if channel.is_archived:
            return None, "is_archived"
        if not channel.is_im and not channel.bot_is_member:
            return None, "not_in_channel"
        if channel.is_im:
            user = self.users.get(next(iter(channel.members)))
            if user is not None and user.deleted:
                return None, "user_disabled"
        return channel, ""

    def find_message(self, channel: str, ts: str) -> Posted | None:
        """The message ``ts`` in ``channel`` (an index over :attr:`messages`)."""
        seen_list, seen = self._posted_seen
        if seen_list != id(self.messages) or seen > len(self.messages):
            self._posted, seen = {}, 0
        for posted in self.messages[seen:]:
            self._posted.setdefault((posted.channel, posted.ts), posted)
        self._posted_seen = (id(self.messages), len(self.messages))
        found = self._posted.get((channel, ts))
        if found is not None and found.channel == channel and found.ts == ts:
            return found
        # An entry a test replaced or edited by hand: the list is the truth.
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def _view_index(self) -> None:
        seen_list, seen = self._views_seen
        if seen_list != id(self.views) or seen > len(self.views):
            self._view_triggers, self._view_ids, seen = set(), {}, 0
        for n in range(seen, len(self.views)):
            self._view_triggers.add(self.views[n]["trigger_id"])
            self._view_ids.setdefault(self.views[n]["id"], n)
        self._views_seen = (id(self.views), len(self.views))

    def _view_at(self, view_id: Any) -> int | None:
        self._view_index()
        n = self._view_ids.get(str(view_id))
        if n is not None and n < len(self.views) and self.views[n]["id"] == view_id:
            return n
        return next((i for i, v in enumerate(self.views) if v["id"] == view_id), None)

    def revoke(self, team_id: str) -> None:
        """The app was uninstalled: the team's tokens stop working."""
        self.tokens = {t: team for t, team in self.tokens.items() if team != team_id}

    def _m_auth_test(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        team = kw.get("team") or self.team_id
        return {
            "ok": True,
            "team_id": team,
            "team": self.team_name,
            "user_id": self.bot_user_id,
            "bot_id": "B" + self.bot_user_id,
            "url": "https://acme.slack.com/",
        }

    def _m_chat_postMessage(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel, error = self._channel_for_post(args)
        if channel is None:
            return {"ok": False, "error": error}
        thread = args.get("thread_ts") or None
        if thread and self.find_message(channel.id, thread) is None:
            return {"ok": False, "error": "thread_not_found"}
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        posted = Posted(
            channel.id,
            self._ts_now(),
            args.get("text", ""),
            args.get("blocks"),
            thread,
            kw.get("team"),
            metadata=metadata,
        )
        self.messages.append(posted)
        return {"ok": True, "channel": channel.id, "ts": posted.ts, "message": {"ts": posted.ts}}

    def member_message(self, channel: str, user: str, text: str, **extra: Any) -> dict[str, Any]:
        """A member's message in ``channel``, as conversations.history and a message shortcut
        show it (Slack's ``&``, ``<`` and ``>`` escaped in ``text``)."""
        posted = Posted(channel, self._ts_now(), text, None, extra.get("thread_ts"), self.team_id)
        self.messages.append(posted)
        return {"type": "message", "user": user, "text": text, "ts": posted.ts, **extra}

    def _m_chat_getPermalink(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("message_ts", ""))
        if not any(m.channel == channel and m.ts == ts for m in self.messages):
            return {"ok": False, "error": "message_not_found"}
        link = f"https://acme.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _m_chat_update(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel_id, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if channel_id.startswith("U"):
            return {"ok": False, "error": "channel_not_found"}  # updates need the D... id
        posted = self.find_message(channel_id, ts)
        if posted is not None:
            posted.text = args.get("text", posted.text)
            posted.blocks = args.get("blocks", posted.blocks)
            posted.edits += 1
            return {"ok": True, "channel": channel_id, "ts": ts}
        return {"ok": False, "error": "message_not_found"}

    def _m_chat_postEphemeral(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel, error = self._channel_for_post(args)
        if channel is None:
            return {"ok": False, "error": error}
        user = str(args.get("user", ""))
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        self.ephemerals.append({**args, "channel": channel.id})
        return {"ok": True, "message_ts": self._ts_now()}

    def _m_conversations_open(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        users = str(args.get("users", "")).split(",")
        user = self.users.get(users[0])
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        if user.is_bot:
            return {"ok": False, "error": "cannot_dm_bot"}
        if user.deleted:
            return {"ok": False, "error": "user_disabled"}
        return {"ok": True, "channel": {"id": self.dm_of(user.id)}}

    def _user_json(self, user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "team_id": user.team or self.team_id,
            "name": user.name,
            "real_name": user.real_name,
            "deleted": user.deleted,
            "is_bot": user.is_bot,
            "is_admin": user.is_admin,
            "is_owner": False,
            "tz": user.tz,
            "profile": {
                "display_name": user.name,
                "real_name": user.real_name,
            },
        }

    def _m_users_info(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None or user.team not in (None, kw.get("team")):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_json(user)}

    def _m_users_list(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        limit = int(args.get("limit", 0) or 0)
        if not limit:
            return {"ok": False, "error": "limit_required"}
        team = kw.get("team")
        ids = sorted(u.id for u in self.users.values() if u.team in (None, team))
        start = int(args.get("cursor") or 0)
        page = ids[start : start + limit]
        cursor = str(start + limit) if start + limit < len(ids) else ""
        return {
            "ok": True,
            "members": [self._user_json(self.users[i]) for i in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def _channel_json(self, channel: ChannelState) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "is_member": channel.bot_is_member,
            "is_archived": channel.is_archived,
            "is_im": channel.is_im,
        }

    def _m_conversations_info(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._channel_json(channel)}

    def _m_conversations_list(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        found = [self._channel_json(c) for c in self.channels.values() if not c.is_im]
        return {"ok": True, "channels": found, "response_metadata": {"next_cursor": ""}}

    def _m_conversations_members(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        members = sorted(channel.members | ({self.bot_user_id} if channel.bot_is_member else set()))
        return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}

    def _m_usergroups_list(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if "usergroups:read" in self.lacking_scopes:
            return {"ok": False, "error": "missing_scope", "needed": "usergroups:read"}
        with_disabled = str(args.get("include_disabled", "")).lower() in ("1", "true")
        groups = [
            {
                "id": g.id,
                "team_id": self.team_id,
                "handle": g.handle,
                "name": g.name,
                "date_delete": 1 if g.disabled else 0,
                "user_count": len(g.users),
            }
            for g in self.usergroups.values()
            if with_disabled or not g.disabled
        ]
        return {"ok": True, "usergroups": groups}

    def _m_usergroups_users_list(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if "usergroups:read" in self.lacking_scopes:
            return {"ok": False, "error": "missing_scope", "needed": "usergroups:read"}
        group = self.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group.users)}

    def _history_json(self, posted: Posted, with_metadata: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "message", "ts": posted.ts, "text": posted.text}
        if posted.thread_ts:
            item["thread_ts"] = posted.thread_ts
        if with_metadata and posted.metadata:
            item["metadata"] = posted.metadata
        if posted.files:
            item["files"] = posted.files
            item["upload"] = False
            item["bot_id"] = "B" + self.bot_user_id
        return item

    def _m_conversations_history(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.is_im and "channels:history" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:history"}
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in self.messages if m.channel == channel.id and not m.thread_ts]
        limit = int(args.get("limit", 100) or 100)
        items = [self._history_json(m, meta) for m in reversed(found)][:limit]
        return {"ok": True, "messages": items, "has_more": len(found) > limit}

    def _m_conversations_replies(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.is_im and "channels:history" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "channels:history"}
        meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        ts = str(args.get("ts", ""))
        found = [m for m in self.messages if m.channel == channel.id and ts in (m.ts, m.thread_ts)]
        return {"ok": True, "messages": [self._history_json(m, meta) for m in found]}

    # -- files --------------------------------------------------------------------------------

    def _m_files_getUploadURLExternal(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length") or 0)
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not filename or length <= 0:
            return {"ok": False, "error": "missing_argument"}
        if length > MAX_FILE_BYTES:
            return {"ok": False, "error": "file_upload_size_restricted"}
        alt = args.get("alt_txt")
        if alt is not None and len(str(alt)) > MAX_ALT_TXT:
            return {"ok": False, "error": "alt_txt_too_large"}
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = UploadedFile(
            file_id, filename, length, None if alt is None else str(alt), kw.get("team")
        )
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        raw = args.get("files")
        try:
            wanted = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(wanted, list) or not wanted:
            return {"ok": False, "error": "invalid_arguments"}
        found: list[tuple[UploadedFile, dict[str, Any]]] = []
        for item in wanted:
            uploaded = self.files.get(str((item or {}).get("id", "")))
            # An unknown id, another team's, bytes never uploaded, or a ticket used already.
            if (
                uploaded is None
                or uploaded.team != kw.get("team")
                or uploaded.data is None
                or uploaded.share_ts is not None
            ):
                return {"ok": False, "error": "file_not_found"}
            found.append((uploaded, item))
        channel_id = str(args.get("channel_id") or "")
        channels = [channel_id] if channel_id else []
        channels += [c for c in str(args.get("channels") or "").split(",") if c]
        thread = args.get("thread_ts") or None
        if thread and len(channels) != 1:
            return {"ok": False, "error": "invalid_arguments"}
        targets: list[ChannelState] = []
        for cid in channels:
            channel, error = self._channel_for_post({"channel": cid})
            if channel is None:
                return {
                    "ok": False,
                    "error": "invalid_channel" if error == "channel_not_found" else error,
                }
            targets.append(channel)
        if thread and not any(m.ts == thread and m.channel == targets[0].id for m in self.messages):
            return {"ok": False, "error": "invalid_arguments"}
        for uploaded, item in found:
            uploaded.title = str(item.get("title") or uploaded.filename)
        for channel in targets:
            ts = self._ts_now()
            for uploaded, _ in found:
                uploaded.channel, uploaded.thread_ts, uploaded.share_ts = channel.id, thread, ts
            files = [uploaded.json() for uploaded, _ in found]
            self.messages.append(
                Posted(channel.id, ts, "", None, thread, kw.get("team"), files=files)
            )
        return {"ok": True, "files": [uploaded.json() for uploaded, _ in found]}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the file's bytes, raw or as multipart form data."""
        uploaded = self.files.get(request.match_info["file_id"])
        if uploaded is None or uploaded.share_ts is not None:
            return web.Response(status=404, text="not found")
        raw = await request.read()
        data = raw
        if request.content_type.startswith("multipart/"):
            data = _multipart_file(raw, request.headers.get("Content-Type", ""))
        problem = ""
        if len(data) != uploaded.length:
            problem = f"{len(data)} bytes, but files.getUploadURLExternal said {uploaded.length}"
        elif len(data) > MAX_FILE_BYTES:
            problem = f"{len(data)} bytes, more than Slack takes"
        elif uploaded.filename.lower().endswith(".png") and not _valid_png(data):
            problem = "not a PNG (signature or IHDR)"
        if problem:
            self.violations.append(f"upload {uploaded.id} ({uploaded.filename}): {problem}")
            return web.Response(status=400, text=problem)
        uploaded.data = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    def _m_views_open(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        self._view_index()
        if args["trigger_id"] in self._view_triggers:
            return {"ok": False, "error": "trigger_exchanged"}
        problems = blockkit.check_view(view)
        if problems:
            self.violations.extend(f"views.open: {p}" for p in problems)
            return {"ok": False, "error": "invalid_arguments", "errors": problems}
        opened = {
            **view,
            "id": f"V{next(self._ids)}",
            "hash": f"h{next(self._ids)}",
            "trigger_id": args["trigger_id"],
            "team_id": kw.get("team"),
        }
        self.views.append(opened)
        return {"ok": True, "view": opened}

    def _m_views_update(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        view = args.get("view") or {}
        problems = blockkit.check_view(view)
        if problems:
            self.violations.extend(f"views.update: {p}" for p in problems)
            return {"ok": False, "error": "invalid_arguments"}
        n = self._view_at(args.get("view_id"))
        if n is not None:
            shown = self.views[n]
            keep = {k: shown[k] for k in ("id", "trigger_id", "team_id")}
            self.views[n] = {**view, **keep, "hash": f"h{next(self._ids)}"}
            return {"ok": True, "view": self.views[n]}
        return {"ok": False, "error": "not_found"}

    def _m_apps_connections_open(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if kw.get("token") not in self.app_tokens:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _m_oauth_v2_access(self, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if args.get("grant_type") == "refresh_token":
            team = self.refresh_tokens.pop(str(args.get("refresh_token", "")), None)
            if team is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            token = f"xoxe.xoxb-{next(self._ids)}"
            refresh = f"xoxe-1-{next(self._ids)}"
            self.tokens[token] = team
            self.refresh_tokens[refresh] = team
            return {
                "ok": True,
                "token_type": "bot",
                "access_token": token,
                "refresh_token": refresh,
                "expires_in": 43200,
                "team": {"id": team, "name": self.team_name},
            }
        grant = self.oauth_codes.pop(str(args.get("code", "")), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        return {"ok": True, **grant}

    def grant_code(
        self, code: str, team_id: str, *, rotating: bool = False, expires_in: int = 43200
    ) -> str:
        """Make ``code`` redeemable by oauth.v2.access for an install into ``team_id``."""
        token = f"xoxb-{team_id}-{next(self._ids)}"
        if rotating:
            token = "xoxe.xoxb-" + token
        self.tokens[token] = team_id
        grant: dict[str, Any] = {
            "app_id": "A1",
            "authed_user": {"id": "UADMIN"},
            "scope": "commands,chat:write",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": self.bot_user_id,
            "team": {"id": team_id, "name": f"Team {team_id}"},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if rotating:
            refresh = f"xoxe-1-{next(self._ids)}"
            self.refresh_tokens[refresh] = team_id
            grant["refresh_token"] = refresh
            grant["expires_in"] = expires_in
        self.oauth_codes[code] = grant
        return token

    # -- response_url --------------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        problems = blockkit.check_message(body)
        if problems:
            self.violations.extend(f"response_url: {p}" for p in problems)
            return web.json_response({"ok": False, "error": "invalid_blocks"}, status=400)
        self.responses.append({"id": request.match_info["id"], **body})
        return web.json_response({"ok": True})

    # -- Socket Mode -----------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": len(self._sockets), "debug_info": {}}
        )
        self.socket_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind = self._kinds.pop(data.get("envelope_id", ""), "")
                self.timeline.append(("ack", kind))
                future = self._acks.pop(data.get("envelope_id", ""), None)
                if future is not None and not future.done():
                    future.set_result(data.get("payload") or {})
        finally:
            self._sockets.remove(ws)
        return ws

    async def drop_sockets(self) -> None:
        """Close every Socket Mode connection, as Slack does when it refreshes them."""
        self.socket_connected.clear()
        for ws in list(self._sockets):
            await ws.close()

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0
    ) -> dict[str, Any]:
        """Push one envelope (``slash_commands``, ``interactive``, ``events_api``) to a
        connected socket and return the ack's payload."""
        await asyncio.wait_for(self.socket_connected.wait(), ENVELOPE_TIMEOUT)
        envelope_id = f"env-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        self._kinds[envelope_id] = str(payload.get("type") or kind)
        self.timeline.append(("sent", self._kinds[envelope_id]))
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[0].send_json(envelope)
        return await asyncio.wait_for(future, ENVELOPE_TIMEOUT)


def _valid_png(data: bytes) -> bool:
    """The PNG signature, then an IHDR chunk of 13 bytes with a width and height."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33:
        return False
    length, kind = int.from_bytes(data[8:12], "big"), data[12:16]
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return kind == b"IHDR" and length == 13 and width > 0 and height > 0


def _multipart_file(raw: bytes, content_type: str) -> bytes:
    """The first file part of a multipart/form-data body."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    for part in message.iter_parts():
        if part.get_filename() is not None or part.get_param("name", header="content-disposition"):
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return b""


async def start_fake_slack(**kw: Any) -> FakeSlack:
    return await FakeSlack(**kw).start()
