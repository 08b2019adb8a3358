"""A fake Discord on 127.0.0.1 (port 0): the REST routes syncup uses and a gateway websocket,
enough that the unmodified discord.py client logs in, identifies and receives dispatches.

REST lives under ``/api/v10`` (point ``discord.http.Route.BASE`` there, or syncup's
``[discord] api_base_url``); ``GET /gateway/bot`` names the websocket at ``/gateway``. The
gateway speaks plain JSON text frames (discord.py decompresses only binary frames): HELLO,
heartbeat ACKs, IDENTIFY -> READY + GUILD_CREATE (per shard: ``(guild_id >> 22) % count``),
RESUME -> RESUMED, and dispatches on demand (:meth:`FakeDiscord.dispatch`). DMs go to shard 0.

It records every REST call (:attr:`FakeDiscord.calls`), enforces Discord's payload limits
(:mod:`tests.fakes.discord.limits`) with a 400 like Discord's, answers 429 with ``Retry-After``
past a configurable per-channel message rate and a DM-opening rate (``POST /users/@me/channels``,
a route bucket of its own; both with the ``X-RateLimit-*`` headers), honours ``nonce`` +
``enforce_nonce``, refuses DMs to members who closed them (50007) and interaction callbacks given
twice (40060).

With a ``clock`` (the demo clock of the app under test), messages are stamped with its time: their
``timestamp`` and their id, a snowflake whose time bits are that moment (as Discord's are), so a
message's age agrees with the app's time. With an ``edit_window`` too, an edit of a message older
than that is refused as Discord refuses edits of messages older than an hour once its small
allowance is used up: 429 with code 30046. The fake is stricter than Discord (it allows none), so
a test fails whenever the bot relies on editing an old message.

Message creates and edits may be multipart/form-data, as Discord takes files: ``payload_json``
is the body and ``files[n]`` the files; their ``attachments`` are checked (a PNG's signature,
the size limit, every part listed) and kept on the message with their bytes
(:attr:`FakeDiscord.attachment_data`), and an edit's ``attachments`` list replaces the message's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord import limits

API = "/api/v10"
JSON_KEY = web.RequestKey("json", object)
FILES_KEY = web.RequestKey("files", object)
HEARTBEAT_INTERVAL_MS = 41250
MAX_BODY = 4 * limits.FILE_BYTES
_ids = itertools.count(1_310_000_000_000_000_000)
DISCORD_EPOCH_MS = 1_420_070_400_000
OLD_MESSAGE_EDITS = 30046


def snowflake() -> str:
    return str(next(_ids))


def snowflake_at(when: datetime) -> str:
    """A snowflake made at ``when``: milliseconds since Discord's epoch in the top bits, a
    counter in the low 22 (worker, process and increment in Discord's), so ids stay unique."""
    millis = int(when.timestamp() * 1000) - DISCORD_EPOCH_MS
    return str((millis << 22) | (next(_ids) & 0x3FFFFF))


def snowflake_time(snowflake_id: str) -> datetime:
    """When a snowflake was made (discord.utils.snowflake_time does the same)."""
    millis = (int(snowflake_id) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def user_payload(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


@dataclass(frozen=True)
class SentFile:
    """A ``files[n]`` part of a multipart request."""

    index: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class Call:
    method: str
    path: str
    json: Any
    status: int
    response: Any
    query: dict[str, str] = field(default_factory=dict)
    files: list[SentFile] = field(default_factory=list)
    multipart: bool = False


@dataclass
class FakeGuild:
    id: str
    name: str
    owner_id: str
    channels: dict[str, str] = field(default_factory=dict)  # id -> name
    members: dict[str, str] = field(default_factory=dict)  # user id -> name
    # channel id -> permissions @everyone is denied there (an overwrite)
    denied: dict[str, int] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # role id -> name (not @everyone)
    member_roles: dict[str, list[str]] = field(default_factory=dict)  # user id -> role ids
    # Members with the Administrator permission in every interaction (not only ``admin=True``
    # ones): a modal submitted or a button clicked by them carries it too.
    admins: set[str] = field(default_factory=set)

    def role_payload(self, role_id: str, position: int) -> dict[str, Any]:
        return {
            "id": role_id,
            "name": self.roles[role_id],
            "permissions": "0",
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }

    def payload(self, bot: dict[str, Any], *, with_members: bool) -> dict[str, Any]:
        everyone = {
            "id": self.id,
            "name": "@everyone",
            "permissions": str(0x400 | 0x800 | 0x4000 | 0x10000 | 0x80000000),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        member_list = [member_payload(bot)]
        if with_members:
            member_list += [
                member_payload(user_payload(u, n), roles=self.member_roles.get(u, []))
                for u, n in self.members.items()
            ]
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "owner_id": self.owner_id,
            "unavailable": False,
            "large": False,
            "member_count": len(self.members) + 1,
            "features": [],
            "roles": [everyone] + [self.role_payload(r, n + 1) for n, r in enumerate(self.roles)],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    "id": cid,
                    "type": 0,
                    "name": name,
                    "guild_id": self.id,
                    "position": i,
                    "permission_overwrites": (
                        [{"id": self.id, "type": 0, "allow": "0", "deny": str(self.denied[cid])}]
                        if cid in self.denied
                        else []
                    ),
                    "nsfw": False,
                    "parent_id": None,
                }
                for i, (cid, name) in enumerate(self.channels.items())
            ],
            "members": member_list,
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "joined_at": "2026-01-01T00:00:00+00:00",
        }


def member_payload(
    user: dict[str, Any], permissions: int | None = None, roles: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user": user,
        "roles": list(roles or []),
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
    }
    if permissions is not None:
        out["permissions"] = str(permissions)
    return out


@dataclass
class Gateway:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    intents: int = 0
    seq: int = 0
    identified: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, op: int, data: Any, event: str | None = None) -> None:
        frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": event}
        if op == 0:
            self.seq += 1
            frame["s"] = self.seq
        await self.ws.send_str(json.dumps(frame))


@dataclass
class Interaction:
    id: str
    token: str
    payload: dict[str, Any]
    created: float
    responses: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class RestFault:
    """A rate-limited route: a request of ``method`` whose path contains ``fragment`` starts a
    window of ``retry_after`` seconds (``times`` windows in all) in which every such request is
    answered 429 with the time left, in the header and the body, as Discord does."""

    method: str
    fragment: str
    retry_after: float
    times: int = 1
    hits: int = 0
    until: float = 0.0

    def limited(self, method: str, path: str, now: float) -> float | None:
        """The seconds left to wait, or None when the request is served."""
        if method != self.method or self.fragment not in path:
            return None
        if now >= self.until:
            if self.times <= 0:
                return None
            self.times -= 1
            self.until = now + self.retry_after
        self.hits += 1
        return self.until - now


class FakeDiscord:
    """One fake Discord: a bot application, guilds, users, channels and messages."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        ack_deadline: float | None = None,
        clock: Callable[[], datetime] | None = None,
        edit_window: timedelta | None = None,
    ) -> None:
        self.token = token
        # Message times come from ``clock`` when given; edits of messages older than
        # ``edit_window`` (by that clock) are refused with 30046 (see the module docstring).
        self.clock = clock
        self.edit_window = edit_window
        self.application_id = snowflake()
        self.bot = user_payload(self.application_id, "syncup", bot=True)
        self.guilds: dict[str, FakeGuild] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.closed_dms: set[str] = set()
        # Channels where the bot lacks Attach Files: a create or edit with files gets 50013.
        self.no_attach_files: set[str] = set()
        self.dm_channels: dict[str, str] = {}  # user id -> DM channel id
        self.messages: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, str] = {}  # thread id -> parent channel id
        self.thread_names: dict[str, str] = {}  # thread id -> its name
        self.deleted: list[str] = []  # ids of messages deleted
        self.calls: list[Call] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self.interactions: dict[str, Interaction] = {}
        self.gateways: list[Gateway] = []
        self.identifies: list[dict[str, Any]] = []
        self.shard_count = 1
        self.inbound = 0  # interactions and messages dispatched to the bot
        self.heartbeats = 0
        self.resumes: list[dict[str, Any]] = []
        self._sessions: dict[str, tuple[int, int]] = {}  # session id -> shard
        self.ack_deadline = ack_deadline
        # Per-channel message bucket: (count, per seconds); None for no limit.
        self.message_rate: tuple[int, float] | None = None
        # POST /users/@me/channels (opening a DM channel), a route bucket of its own: (count,
        # per seconds); None for no limit.
        self.dm_open_rate: tuple[int, float] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._nonces: dict[tuple[str, str], str] = {}
        # attachment id -> the bytes uploaded for it
        self.attachment_data: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.message_created: asyncio.Event = asyncio.Event()
        # Answers given instead of serving (see :meth:`rate_limit`).
        self.faults: list[RestFault] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        # Room for a file over Discord's limit, so that the fake (not aiohttp) refuses it.
        app = web.Application(middlewares=[self._record], client_max_size=MAX_BODY)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for gateway in list(self.gateways):
            await gateway.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- the world ------------------------------------------------------------------------

    def add_user(self, name: str) -> str:
        user_id = snowflake()
        self.users[user_id] = user_payload(user_id, name)
        return user_id

    def add_guild(
        self, name: str, channels: list[str], members: list[str], *, guild_id: str | None = None
    ) -> FakeGuild:
        """A guild the bot is in; ``guild_id`` picks its shard: ``(id >> 22) % shard_count``."""
        owner = members[0] if members else self.application_id
        guild = FakeGuild(guild_id or snowflake(), name, owner)
        for channel in channels:
            guild.channels[snowflake()] = channel
        for user_id in members:
            guild.members[user_id] = self.users[user_id]["username"]
        self.guilds[guild.id] = guild
        return guild

    def add_role(self, guild: FakeGuild, name: str, members: list[str]) -> str:
        """A role of the guild held by ``members``; its id."""
        role_id = snowflake()
        guild.roles[role_id] = name
        for user_id in members:
            guild.member_roles.setdefault(user_id, []).append(role_id)
        return role_id

    def channel_id(self, guild: FakeGuild, name: str) -> str:
        return next(cid for cid, n in guild.channels.items() if n == name)

    def shard_of(self, guild_id: str | None) -> int:
        if guild_id is None:
            return 0
        return (int(guild_id) >> 22) % self.shard_count

    def _all_channels(self) -> dict[str, str | None]:
        """channel id -> guild id (None for DMs)."""
        out: dict[str, str | None] = {}
        for guild in self.guilds.values():
            for cid in guild.channels:
                out[cid] = guild.id
        for tid, parent in self.threads.items():
            out[tid] = out.get(parent)
        for dm in self.dm_channels.values():
            out[dm] = None
        return out

    # -- queries for tests ----------------------------------------------------------------

    def rate_limit(
        self, method: str, fragment: str, retry_after: float, *, times: int = 1
    ) -> RestFault:
        """Rate-limit a route (a shared-scope bucket): see :class:`RestFault`."""
        fault = RestFault(method, fragment, retry_after, times)
        self.faults.append(fault)
        return fault

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    def created_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m for m in self.messages.values() if channel_id is None or m["channel_id"] == channel_id
        ]

    def dm_messages(self, user_id: str) -> list[dict[str, Any]]:
        channel = self.dm_channels.get(user_id)
        return self.created_messages(channel) if channel else []

    async def wait_for(
        self, check: Callable[[], Any], *, patience: float = 30.0, what: str = "condition"
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while True:
            result = check()
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"fake Discord: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    # -- gateway --------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        gateway = Gateway(ws)
        self.gateways.append(gateway)
        await gateway.send(10, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == 1:
                    self.heartbeats += 1
                    await gateway.send(11, None)
                elif op == 2:
                    await self._identify(gateway, data)
                elif op == 6:
                    if data.get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    self.resumes.append(data)
                    gateway.shard = self._resumed_shard(data)
                    gateway.identified.set()
                    await gateway.send(0, {}, "RESUMED")
        finally:
            if gateway in self.gateways:
                self.gateways.remove(gateway)
        return ws

    async def _identify(self, gateway: Gateway, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if data.get("token") != self.token:
            await gateway.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        gateway.shard = (int(shard[0]), int(shard[1]))
        gateway.intents = int(data.get("intents") or 0)
        self.shard_count = gateway.shard[1]
        mine = [g for g in self.guilds.values() if self.shard_of(g.id) == gateway.shard[0]]
        await gateway.send(
            0,
            {
                "v": 10,
                "user": dict(self.bot, verified=True, mfa_enabled=False, flags=0),
                "guilds": [{"id": g.id, "unavailable": True} for g in mine],
                "session_id": self._new_session(gateway.shard),
                "resume_gateway_url": self.gateway_url,
                "shard": list(gateway.shard),
                "application": {"id": self.application_id, "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
            "READY",
        )
        with_members = bool(gateway.intents & (1 << 1))
        for guild in mine:
            await gateway.send(
                0, guild.payload(self.bot, with_members=with_members), "GUILD_CREATE"
            )
        gateway.identified.set()

    def _new_session(self, shard: tuple[int, int]) -> str:
        session = secrets.token_hex(8)
        self._sessions[session] = shard
        return session

    def _resumed_shard(self, data: dict[str, Any]) -> tuple[int, int]:
        return self._sessions.get(str(data.get("session_id")), (0, 1))

    async def reconnect(self, shard: int = 0) -> None:
        """Ask the shard's connection to reconnect (op 7); discord.py resumes the session."""
        gateway = await self.connected(shard)
        resumed = len(self.resumes)
        await gateway.send(7, None)
        await self.wait_for(lambda: len(self.resumes) > resumed, what="a RESUME")
        await self.connected(shard)

    async def add_channel(self, guild: FakeGuild, name: str) -> str:
        """A text channel is created in ``guild`` (CHANNEL_CREATE)."""
        channel_id = snowflake()
        guild.channels[channel_id] = name
        payload = next(
            c
            for c in guild.payload(self.bot, with_members=False)["channels"]
            if c["id"] == channel_id
        )
        await self.dispatch("CHANNEL_CREATE", payload, shard=self.shard_of(guild.id))
        return channel_id

    async def remove_guild(self, guild: FakeGuild) -> None:
        """The bot is kicked from ``guild`` (GUILD_DELETE without ``unavailable``)."""
        self.guilds.pop(guild.id, None)
        await self.dispatch("GUILD_DELETE", {"id": guild.id}, shard=self.shard_of(guild.id))

    async def add_back(self, guild: FakeGuild) -> None:
        """The bot is added to ``guild`` again (GUILD_CREATE)."""
        self.guilds[guild.id] = guild
        gateway = await self.connected(self.shard_of(guild.id))
        with_members = bool(gateway.intents & (1 << 1))
        await gateway.send(0, guild.payload(self.bot, with_members=with_members), "GUILD_CREATE")

    async def connected(self, shard: int = 0, patience: float = 30.0) -> Gateway:
        def ready() -> Gateway | None:
            for gateway in self.gateways:
                if (
                    gateway.identified.is_set()
                    and not gateway.ws.closed
                    and gateway.shard[0] == shard
                ):
                    return gateway
            return None

        found: Gateway = await self.wait_for(ready, patience=patience, what=f"shard {shard}")
        return found

    async def dispatch(self, event: str, data: dict[str, Any], *, shard: int = 0) -> None:
        gateway = await self.connected(shard)
        if event in ("INTERACTION_CREATE", "MESSAGE_CREATE"):
            self.inbound += 1
        await gateway.send(0, data, event)

    # -- inbound events -------------------------------------------------------------------

    def _actor(self, guild: FakeGuild | None, user_id: str, admin: bool) -> dict[str, Any]:
        user = self.users[user_id]
        if guild is None:
            return {"user": user}
        admin = admin or user_id in guild.admins
        permissions = 0x8 if admin else 0x400 | 0x800
        return {"member": member_payload(user, permissions)}

    def _channel_payload(
        self, channel_id: str, guild: FakeGuild | None, user_id: str
    ) -> dict[str, Any]:
        if guild is None:
            return {"id": channel_id, "type": 1, "recipients": [self.users[user_id]]}
        parent = self.threads.get(channel_id)
        name = guild.channels.get(channel_id) or guild.channels.get(parent or "", "thread")
        return {
            "id": channel_id,
            "type": 11 if parent else 0,
            "name": name,
            "guild_id": guild.id,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": parent,
            "permissions": str((1 << 41) - 1),
        }

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: str,
        guild: FakeGuild | None,
        channel_id: str | None,
        admin: bool = False,
        message: dict[str, Any] | None = None,
        interaction_id: str | None = None,
    ) -> Interaction:
        iid = interaction_id or snowflake()
        if channel_id is None:
            channel_id = self.dm_channels.get(user_id) or self._open_dm(user_id)
        payload: dict[str, Any] = {
            "id": iid,
            "application_id": self.application_id,
            "type": kind,
            "data": data,
            "channel_id": channel_id,
            "channel": self._channel_payload(channel_id, guild, user_id),
            "token": secrets.token_urlsafe(24),
            "version": 1,
            "locale": "en-US",
            "app_permissions": str((1 << 41) - 1),
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild.id} if guild else {},
            "context": 0 if guild else 1,
            "attachment_size_limit": 10_000_000,
            **self._actor(guild, user_id, admin),
        }
        if guild is not None:
            payload["guild_id"] = guild.id
            payload["guild_locale"] = "en-US"
            payload["guild"] = {"id": guild.id, "locale": "en-US", "features": []}
        if message is not None:
            payload["message"] = message
        existing = self.interactions.get(iid)
        if existing is None:
            existing = Interaction(iid, payload["token"], payload, time.monotonic())
            self.interactions[iid] = existing
        else:
            payload["token"] = existing.token
        await self.dispatch(
            "INTERACTION_CREATE", payload, shard=self.shard_of(payload.get("guild_id"))
        )
        return existing

    async def slash(
        self,
        command: str,
        subcommand: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: str,
        guild: FakeGuild | None,
        channel: str | None = None,
        admin: bool = False,
        resolved: dict[str, Any] | None = None,
        interaction_id: str | None = None,
    ) -> Interaction:
        sub_options = []
        for name, value in (options or {}).items():
            kind = 4 if isinstance(value, int) else 3
            if isinstance(value, tuple):  # (type, value) for users (6) and channels (7)
                kind, value = value
            sub_options.append({"name": name, "type": kind, "value": value})
        data: dict[str, Any] = {
            "id": snowflake(),
            "name": command,
            "type": 1,
            "options": [{"name": subcommand, "type": 1, "options": sub_options}],
        }
        if resolved:
            data["resolved"] = resolved
        channel_id = self.channel_id(guild, channel) if guild and channel else None
        return await self._interact(
            2,
            data,
            user_id=user_id,
            guild=guild,
            channel_id=channel_id,
            admin=admin,
            interaction_id=interaction_id,
        )

    async def autocomplete(
        self,
        command: str,
        subcommand: str,
        option: str,
        typed: str,
        *,
        user_id: str,
        guild: FakeGuild | None,
    ) -> Interaction:
        data = {
            "id": snowflake(),
            "name": command,
            "type": 1,
            "options": [
                {
                    "name": subcommand,
                    "type": 1,
                    "options": [{"name": option, "type": 3, "value": typed, "focused": True}],
                }
            ],
        }
        return await self._interact(4, data, user_id=user_id, guild=guild, channel_id=None)

    async def click(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user_id: str,
        values: list[str] | None = None,
        interaction_id: str | None = None,
    ) -> Interaction:
        guild_id = self._all_channels().get(message["channel_id"])
        guild = self.guilds.get(guild_id) if guild_id else None
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            data = {"custom_id": custom_id, "component_type": 3, "values": values}
        return await self._interact(
            3,
            data,
            user_id=user_id,
            guild=guild,
            channel_id=message["channel_id"],
            message=message,
            interaction_id=interaction_id,
        )

    async def submit(
        self,
        modal: dict[str, Any],
        values: dict[str, str | list[str]],
        *,
        user_id: str,
        guild: FakeGuild | None,
        channel_id: str | None = None,
    ) -> Interaction:
        """Submit a modal the bot opened: ``values`` by field custom_id; fields left out keep
        their pre-filled value (as a person pressing Submit would)."""
        components = []
        for top in modal["components"]:
            inner = top.get("component") or (top.get("components") or [{}])[0]
            cid = inner["custom_id"]
            if inner["type"] == limits.STRING_SELECT:
                chosen = values.get(cid)
                if chosen is None:
                    chosen = [o["value"] for o in inner.get("options", []) if o.get("default")]
                chosen = [chosen] if isinstance(chosen, str) else list(chosen)
                item: dict[str, Any] = {"type": 3, "custom_id": cid, "values": chosen}
            else:
                value = values.get(cid, inner.get("value", ""))
                item = {"type": 4, "custom_id": cid, "value": value}
            components.append({"type": limits.LABEL, "id": 1, "component": item})
        data = {"custom_id": modal["custom_id"], "components": components}
        return await self._interact(5, data, user_id=user_id, guild=guild, channel_id=channel_id)

    async def send_dm(self, user_id: str, content: str) -> dict[str, Any]:
        """A member writes to the bot in their DM (MESSAGE_CREATE on shard 0)."""
        channel = self.dm_channels.get(user_id) or self._open_dm(user_id)
        message = self._message(channel, content, author=self.users[user_id])
        await self.dispatch("MESSAGE_CREATE", message, shard=0)
        return message

    async def answered(self, interaction: Interaction, patience: float = 30.0) -> dict[str, Any]:
        """The first callback the bot gave ``interaction``."""
        await asyncio.wait_for(interaction.answered.wait(), patience)
        return interaction.responses[0]

    async def settled_reply(
        self, interaction: Interaction, patience: float = 30.0
    ) -> dict[str, Any]:
        """What the member finally sees: the callback's message, or (after a defer) the edited
        original or the first follow-up."""
        first = await self.answered(interaction, patience)
        if first["type"] in (5, 6):
            await self.wait_for(
                lambda: interaction.original is not None or interaction.followups,
                patience=patience,
                what="a follow-up after the defer",
            )
            if interaction.original is not None:
                return {"type": 4, "data": interaction.original}
            return {"type": 4, "data": interaction.followups[0]}
        return first

    def reply_message(self, interaction: Interaction) -> dict[str, Any]:
        """The private message an interaction was answered with, as a message a member can
        press buttons on (ephemeral messages are not stored in a channel)."""
        first = interaction.responses[0]
        data = first.get("data") or {}
        if first["type"] in (5, 6):
            data = interaction.original or (interaction.followups or [{}])[0]
        message = self._message(
            interaction.payload["channel_id"],
            data.get("content") or "",
            author=self.bot,
            components=data.get("components") or [],
            embeds=data.get("embeds") or [],
            flags=64,
        )
        return message

    @staticmethod
    def custom_ids(message: dict[str, Any]) -> list[str]:
        return [
            item["custom_id"]
            for row in message.get("components") or []
            for item in row.get("components") or []
            if "custom_id" in item
        ]

    # -- REST -----------------------------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)
        body: Any = None
        files: list[SentFile] = []
        multipart = request.content_type.startswith("multipart/")
        if request.can_read_body:
            raw = await request.read()
            if multipart:
                try:
                    body, files = _multipart(raw, request.headers.get("Content-Type", ""))
                except ValueError as exc:
                    return _error(400, 50035, f"Invalid Form Body ({exc})")
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
        request[JSON_KEY] = body
        request[FILES_KEY] = files
        response = await handler(request)
        assert isinstance(response, web.Response)
        try:
            raw_answer = response.body if isinstance(response.body, bytes) else b""
            answer = json.loads(raw_answer) if raw_answer else None
        except ValueError:
            answer = raw_answer.decode(errors="replace")
        self.calls.append(
            Call(
                request.method,
                request.path[len(API) :],
                body,
                response.status,
                answer,
                dict(request.query),
                files,
                multipart,
            )
        )
        return response

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        parts = [p for p in path.split("/") if p]
        method = request.method
        body = request[JSON_KEY]
        public = parts[:1] in (["interactions"], ["webhooks"])
        auth = request.headers.get("Authorization", "")
        if not public and auth != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        now = time.monotonic()
        for fault in self.faults:
            wait = fault.limited(method, path, now)
            if wait is not None:
                headers = {"Retry-After": f"{math.ceil(wait)}", "X-RateLimit-Scope": "shared"}
                limited = {"message": "You are being rate limited.", "retry_after": round(wait, 3)}
                return _json({**limited, "global": False}, 429, headers)
        route = (method, tuple(_shape(parts)))
        handler = _ROUTES.get(route)
        if handler is None:
            return _error(404, 0, f"404: Not Found ({method} {path})")
        return await handler(self, parts, body, request)

    # users, gateway, application

    async def _get_gateway(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _me(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        return _json(dict(self.bot, verified=True, mfa_enabled=False, flags=0))

    async def _app(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        return _json(
            {
                "id": self.application_id,
                "name": "syncup",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user_payload(snowflake(), "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
                "rpc_origins": [],
                "interactions_endpoint_url": None,
            }
        )

    async def _put_commands(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        if parts[1] != self.application_id:
            return _error(403, 50001, "Missing Access")
        problems = limits.Problems()
        if not isinstance(body, list) or len(body) > 100:
            problems.add("commands", "Must be 100 or fewer in length.")
        for i, command in enumerate(body or []):
            problems.errors.update(limits.check_command(command, f"{i}.").errors)
        if isinstance(body, list):
            problems.errors.update(limits.check_unique_names(body).errors)
            if len(json.dumps(command)) > 8000:
                problems.add(f"{i}", "Command exceeds 8000 characters")
        if problems.errors:
            return _json(problems.body(), 400)
        stored = [dict(c, id=snowflake(), application_id=self.application_id) for c in body]
        if len(parts) == 3:
            self.global_commands = stored
        else:
            self.guild_commands[parts[3]] = stored
        return _json(stored)

    # messages

    def _message(
        self, channel_id: str, content: str, *, author: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        guild_id = self._all_channels().get(channel_id)
        now = self.clock() if self.clock is not None else None
        message: dict[str, Any] = {
            "id": snowflake_at(now) if now is not None else snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": _stamp(now) if now is not None else "2026-11-27T12:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if guild_id:
            message["guild_id"] = guild_id
        message.update(extra)
        return message

    def _bucket(self, key: str, rate: tuple[int, float] | None) -> float | None:
        """Take a token from the bucket ``key`` (``rate``: count per seconds); the seconds to
        wait when it is empty, None when the request may go."""
        if rate is None:
            return None
        count, per = rate
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(count), now))
        tokens = min(float(count), tokens + (now - stamp) * count / per)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * per / count
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def _limited(self, wait: float, bucket: str, count: int) -> web.Response:
        """Discord's 429 for a route bucket: the wait in the body and the headers."""
        retry = math.ceil(wait * 1000) / 1000
        return _json(
            {"message": "You are being rate limited.", "retry_after": retry, "global": False},
            429,
            {
                "Retry-After": f"{retry:.3f}",
                "X-RateLimit-Scope": "user",
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Limit": str(count),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{retry:.3f}",
            },
        )

    async def _post_message(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        channel_id = parts[1]
        channels = self._all_channels()
        if channel_id not in channels:
            return _error(404, 10003, "Unknown Channel")
        wait = self._bucket(channel_id, self.message_rate)
        if wait is not None:
            return self._limited(wait, "messages", self.message_rate[0] if self.message_rate else 0)
        if channels[channel_id] is None:
            user = next(u for u, c in self.dm_channels.items() if c == channel_id)
            if user in self.closed_dms:
                return _error(403, 50007, "Cannot send messages to this user")
        problems = limits.check_message(body or {})
        files = _parts(request)
        if files and channel_id in self.no_attach_files:
            return _error(403, 50013, "Missing Permissions")
        if any(len(data) > limits.FILE_BYTES for _, data in files.values()):
            return _error(413, 40005, "Request entity too large")
        limits.check_files(problems, body or {}, files)
        if problems.errors:
            return _json(problems.body(), 400)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self._nonces.get((channel_id, str(nonce)))
            if earlier is not None:
                return _json(self.messages[earlier])
        message = self._message(
            channel_id,
            body.get("content") or "",
            author=self.bot,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            nonce=nonce,
            attachments=self._attach(channel_id, body.get("attachments") or [], files, []),
        )
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        message["allowed_mentions"] = body.get("allowed_mentions")
        self.messages[message["id"]] = message
        if nonce is not None:
            self._nonces[(channel_id, str(nonce))] = message["id"]
        self.message_created.set()
        return _json(message)

    def _in_channel(self, parts: list[str]) -> dict[str, Any] | None:
        """The message ``/channels/<parts[1]>/messages/<parts[3]>`` names, if it is there."""
        message = self.messages.get(parts[3])
        return message if message is not None and message["channel_id"] == parts[1] else None

    async def _patch_message(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        message = self._in_channel(parts)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        if self.clock is not None and self.edit_window is not None:
            age = self.clock() - datetime.fromisoformat(message["timestamp"])
            if age >= self.edit_window:
                retry = 60.0
                return _json(
                    {
                        "code": OLD_MESSAGE_EDITS,
                        "message": "Maximum number of edits to messages older than 1 hour "
                        "reached. Try again later",
                        "retry_after": retry,
                        "global": False,
                    },
                    429,
                    {"Retry-After": f"{retry:.3f}", "X-RateLimit-Scope": "user"},
                )
        problems = limits.check_message(body or {}, edit=True)
        files = _parts(request)
        if files and parts[1] in self.no_attach_files:
            return _error(403, 50013, "Missing Permissions")
        if any(len(data) > limits.FILE_BYTES for _, data in files.values()):
            return _error(413, 40005, "Request entity too large")
        had = message.get("attachments") or []
        limits.check_files(problems, body or {}, files, kept={str(a["id"]) for a in had})
        if problems.errors:
            return _json(problems.body(), 400)
        for key in ("content", "embeds", "components", "allowed_mentions"):
            if key in body:
                message[key] = body[key]
        if "attachments" in body:  # the list replaces the message's: unlisted ones are removed
            message["attachments"] = self._attach(parts[1], body["attachments"], files, list(had))
        message["edited_timestamp"] = (
            _stamp(self.clock()) if self.clock is not None else "2026-11-27T12:01:00.000000+00:00"
        )
        return _json(message)

    async def _get_message(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        message = self._in_channel(parts)
        return _json(message) if message is not None else _error(404, 10008, "Unknown Message")

    async def _delete_message(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        if self._in_channel(parts) is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[parts[3]]
        self.deleted.append(parts[3])
        return web.Response(status=204)

    def _attach(
        self,
        channel_id: str,
        listed: list[dict[str, Any]],
        files: dict[int, tuple[str, bytes]],
        had: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """A message's attachments after a create or an edit: those of ``had`` that are listed
        again, then the new ones (an index into ``files``), with their bytes kept."""
        by_id = {str(a["id"]): a for a in had}
        out: list[dict[str, Any]] = []
        for item in listed:
            kept = by_id.get(str(item.get("id")))
            if kept is not None:
                out.append(kept)
                continue
            filename, data = files[int(item["id"])]
            attachment_id = snowflake()
            name = str(item.get("filename") or filename)
            self.attachment_data[attachment_id] = data
            where = f"attachments/{channel_id}/{attachment_id}/{name}"
            out.append(
                {
                    "id": attachment_id,
                    "filename": name,
                    "description": item.get("description"),
                    "size": len(data),
                    "content_type": "image/png" if name.endswith(".png") else None,
                    "url": f"https://cdn.discordapp.com/{where}",
                    "proxy_url": f"https://media.discordapp.net/{where}",
                }
            )
        return out

    async def _start_thread(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        parent, message_id = parts[1], parts[3]
        if message_id not in self.messages:
            return _error(404, 10008, "Unknown Message")
        if message_id in self.threads:
            return _error(400, 160004, "A thread has already been created for this message")
        name = str((body or {}).get("name") or "")
        if not 1 <= len(name) <= 100 or "\n" in name:
            return _error(400, 50035, "Invalid Form Body (name: 1-100 characters, one line)")
        self.threads[message_id] = parent
        self.thread_names[message_id] = str((body or {}).get("name") or "")
        return _json(
            {"id": message_id, "type": 11, "parent_id": parent, "name": (body or {}).get("name")}
        )

    def _open_dm(self, user_id: str) -> str:
        channel = self.dm_channels.get(user_id)
        if channel is None:
            channel = snowflake()
            self.dm_channels[user_id] = channel
        return channel

    async def _post_dm(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        user_id = str((body or {}).get("recipient_id"))
        if user_id not in self.users:
            return _error(400, 50035, "Invalid Form Body")
        wait = self._bucket("dm-channels", self.dm_open_rate)
        if wait is not None:
            count = self.dm_open_rate[0] if self.dm_open_rate else 0
            return self._limited(wait, "dm-channels", count)
        channel = self._open_dm(user_id)
        return _json({"id": channel, "type": 1, "recipients": [self.users[user_id]]})

    # guilds

    async def _search_members(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        guild = self.guilds.get(parts[1])
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        query = request.query.get("query", "").lower()
        found = [
            member_payload(self.users[u])
            for u, name in guild.members.items()
            if name.lower().startswith(query)
        ]
        return _json(found[: int(request.query.get("limit", "1"))])

    async def _get_member(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        guild = self.guilds.get(parts[1])
        if guild is None or parts[3] not in guild.members:
            return _error(404, 10007, "Unknown Member")
        roles = guild.member_roles.get(parts[3], [])
        return _json(member_payload(self.users[parts[3]], roles=roles))

    async def _list_members(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        guild = self.guilds.get(parts[1])
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        members_intent = any(g.intents & (1 << 1) for g in self.gateways)
        if not members_intent:
            return _error(403, 50001, "Missing Access")
        ordered = sorted(guild.members, key=int)
        after = request.query.get("after")
        if after:
            ordered = [u for u in ordered if int(u) > int(after)]
        limit = int(request.query.get("limit", "1"))
        return _json(
            [
                member_payload(self.users[u], roles=guild.member_roles.get(u, []))
                for u in ordered[:limit]
            ]
        )

    async def _guild_roles(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        guild = self.guilds.get(parts[1])
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        payload = guild.payload(self.bot, with_members=False)["roles"]
        return _json(payload)

    async def _guild_channels(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        guild = self.guilds.get(parts[1])
        if guild is None:
            return _error(404, 10004, "Unknown Guild")
        return _json(guild.payload(self.bot, with_members=False)["channels"])

    # interactions

    async def _callback(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        interaction = self.interactions.get(parts[1])
        if interaction is None or interaction.token != parts[2]:
            return _error(404, 10062, "Unknown interaction")
        if self.ack_deadline is not None and (
            time.monotonic() - interaction.created > self.ack_deadline
        ):
            return _error(404, 10062, "Unknown interaction")
        if interaction.responses:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        kind = (body or {}).get("type")
        data = (body or {}).get("data") or {}
        if kind == 9:
            problems = limits.check_modal(data)
        elif kind in (4, 7):
            problems = limits.check_message(data, edit=kind == 7)
        elif kind == 8:
            problems = limits.check_autocomplete(data)
        elif kind in (1, 5, 6):
            problems = limits.Problems()
        else:
            problems = limits.Problems()
            problems.add("type", "Unknown interaction response type")
        if kind == 9 and interaction.payload["type"] == 5:
            problems.add("type", "A modal cannot answer a modal submit")
        if problems.errors:
            return _json(problems.body(), 400)
        interaction.responses.append(body)
        if kind == 4:
            interaction.original = None
        interaction.answered.set()
        return web.Response(status=204)

    def _by_token(self, token: str) -> Interaction | None:
        return next((i for i in self.interactions.values() if i.token == token), None)

    async def _followup(self, parts: list[str], body: Any, request: web.Request) -> web.Response:
        interaction = self._by_token(parts[2])
        if interaction is None or not interaction.responses or parts[1] != self.application_id:
            return _error(404, 10015, "Unknown Webhook")
        problems = limits.check_message(body or {})
        if problems.errors:
            return _json(problems.body(), 400)
        message = self._message(
            interaction.payload["channel_id"],
            body.get("content") or "",
            author=self.bot,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=body.get("flags") or 0,
        )
        interaction.followups.append(message)
        return _json(message)

    async def _edit_original(
        self, parts: list[str], body: Any, request: web.Request
    ) -> web.Response:
        interaction = self._by_token(parts[2])
        if interaction is None or not interaction.responses:
            return _error(404, 10015, "Unknown Webhook")
        problems = limits.check_message(body or {}, edit=True)
        if problems.errors:
            return _json(problems.body(), 400)
        message = self._message(
            interaction.payload["channel_id"],
            body.get("content") or "",
            author=self.bot,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
        )
        interaction.original = message
        return _json(message)


def _multipart(raw: bytes, content_type: str) -> tuple[Any, list[SentFile]]:
    """``payload_json`` (decoded) and the ``files[n]`` parts of a multipart/form-data body."""
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    if not message.is_multipart():
        raise ValueError("not multipart")
    body: Any = None
    files: list[SentFile] = []
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition") or "")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "payload_json":
            body = json.loads(data or b"{}")
        elif name.startswith("files[") and name.endswith("]") and name[6:-1].isdigit():
            filename = part.get_filename() or ""
            files.append(SentFile(int(name[6:-1]), filename, part.get_content_type(), data))
        else:
            raise ValueError(f"unexpected part {name!r}")
    return body, files


def _parts(request: web.Request) -> dict[int, tuple[str, bytes]]:
    files: list[SentFile] = request[FILES_KEY]  # type: ignore[assignment]
    return {f.index: (f.filename, f.data) for f in files}


def _shape(parts: list[str]) -> list[str]:
    """The route's shape: ids and interaction/webhook tokens replaced by ``{}``."""
    tokened = parts[:1] in (["interactions"], ["webhooks"])
    return ["{}" if p.isdigit() or (tokened and i == 2) else p for i, p in enumerate(parts)]


Handler = Callable[[FakeDiscord, list[str], Any, web.Request], Awaitable[web.Response]]
_ROUTES: dict[tuple[str, tuple[str, ...]], Handler] = {
    ("GET", ("gateway", "bot")): FakeDiscord._get_gateway,
    ("GET", ("gateway",)): FakeDiscord._get_gateway,
    ("GET", ("users", "@me")): FakeDiscord._me,
    ("GET", ("oauth2", "applications", "@me")): FakeDiscord._app,
    ("GET", ("applications", "@me")): FakeDiscord._app,
    ("PUT", ("applications", "{}", "commands")): FakeDiscord._put_commands,
    ("PUT", ("applications", "{}", "guilds", "{}", "commands")): FakeDiscord._put_commands,
    ("POST", ("channels", "{}", "messages")): FakeDiscord._post_message,
    ("PATCH", ("channels", "{}", "messages", "{}")): FakeDiscord._patch_message,
    ("GET", ("channels", "{}", "messages", "{}")): FakeDiscord._get_message,
    ("DELETE", ("channels", "{}", "messages", "{}")): FakeDiscord._delete_message,
    ("POST", ("channels", "{}", "messages", "{}", "threads")): FakeDiscord._start_thread,
    ("POST", ("users", "@me", "channels")): FakeDiscord._post_dm,
    ("GET", ("guilds", "{}", "members", "search")): FakeDiscord._search_members,
    ("GET", ("guilds", "{}", "members", "{}")): FakeDiscord._get_member,
    ("GET", ("guilds", "{}", "members")): FakeDiscord._list_members,
    ("GET", ("guilds", "{}", "channels")): FakeDiscord._guild_channels,
    ("GET", ("guilds", "{}", "roles")): FakeDiscord._guild_roles,
    ("POST", ("interactions", "{}", "{}", "callback")): FakeDiscord._callback,
    ("POST", ("webhooks", "{}", "{}")): FakeDiscord._followup,
    ("PATCH", ("webhooks", "{}", "{}", "messages", "@original")): FakeDiscord._edit_original,
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py decodes a body only with that content type.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _stamp(when: datetime) -> str:
    """An ISO 8601 timestamp as Discord writes them (UTC, microseconds)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)
