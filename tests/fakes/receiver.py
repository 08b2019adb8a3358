"""A fake platform that receives the delivery worker's messages over real HTTP.

It runs an aiohttp server on 127.0.0.1 (port 0) and behaves like the parts of Slack and Discord
that matter to delivery:

- a token bucket per (workspace, method), answering ``429`` with a ``Retry-After`` (seconds, as a
  decimal like Discord's) once the bucket is empty;
- an idempotency header, like Discord's ``nonce`` with ``enforce_nonce``: a request that carries
  it, for a key that was already accepted, gets the existing message back instead of a new one;
- faults on demand: the next N requests (optionally only for one workspace/method/key) answer a
  status, drop the connection (before or after creating the message), or hang until released.

Every created message is recorded with its idempotency key, so a message created twice shows up
as a duplicate; an idempotent hit is not a duplicate because nothing new was created.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

IDEMPOTENCY_HEADER = "X-Idempotency-Key"
MESSAGES_PATH = "/api/messages"

FaultKind = Literal["status", "disconnect", "accept_then_disconnect", "hold"]


@dataclass
class Fault:
    """What the next matching requests get instead of normal service.

    ``times`` is how many requests it applies to (``None``: until :meth:`clear`); ``hold`` waits
    for :attr:`gate` and then serves the request normally.
    """

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    times: int | None = 1
    workspace: str | None = None
    method: str | None = None
    key: str | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    hits: int = 0

    def matches(self, workspace: str, method: str, key: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (
            (self.workspace is None or self.workspace == workspace)
            and (self.method is None or self.method == method)
            and (self.key is None or self.key == key)
        )

    def release(self) -> None:
        """Let held requests through."""
        self.gate.set()

    def clear(self) -> None:
        """Stop applying this fault to new requests (held ones stay held until released)."""
        self.times = 0


@dataclass(frozen=True)
class Created:
    """A message the fake platform created (or, for ``update``, edited)."""

    seq: int
    message_id: str
    key: str
    workspace: str
    method: str
    channel_id: str | None
    thread_of: str | None
    text: str


@dataclass(frozen=True)
class Request:
    """One request as seen by the fake, with what it answered."""

    key: str
    workspace: str
    method: str
    idempotent: bool
    outcome: str  # "created", "existing", "429", "500", "disconnect", ...
    at: float = 0.0  # the event loop's time when the fake answered


class _Bucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> float:
        """Take a token; returns 0, or the seconds until one is available (nothing taken)."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FakeReceiver:
    """The fake platform. ``rate=None`` means no rate limit."""

    def __init__(self, *, rate: float | None = None, burst: int = 1) -> None:
        self.rate = rate
        self.burst = burst
        self.created: list[Created] = []
        self.requests: list[Request] = []
        self.rate_limited = 0  # 429s answered, by the bucket or by a fault
        self.deduplicated = 0  # idempotent requests answered with the existing message
        self._faults: list[Fault] = []
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._by_key: dict[str, Created] = {}
        self._messages: dict[str, Created] = {}
        self._changed = asyncio.Condition()
        # Requests being served now, in all and per target (see :func:`target_of`), and the
        # most seen at once: how much the worker overlaps its sends, counted here.
        self.in_flight = 0
        self.max_in_flight = 0
        self.target_in_flight: Counter[str] = Counter()
        self.max_target_in_flight = 0
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://127.0.0.1:{port}"
        return self._url

    async def close(self) -> None:
        for fault in self._faults:
            fault.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the receiver is not started")
        return self._url

    # --- faults and inspection -----------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def refill(self) -> None:
        """A new rate-limit window: every bucket full again (as after a pause longer than the
        window, e.g. a restart), so the next send is judged on its own."""
        self._buckets.clear()

    def counts(self) -> Counter[str]:
        """How many messages were created per idempotency key."""
        return Counter(c.key for c in self.created)

    def duplicates(self) -> int:
        """Messages created more than once (beyond the first)."""
        return sum(n - 1 for n in self.counts().values() if n > 1)

    def keys(self) -> list[str]:
        """Idempotency keys in the order their messages were created."""
        return [c.key for c in self.created]

    def by_key(self, key: str) -> Created:
        return self._by_key[key]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds; it is re-checked after every request."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_keys(self, keys: list[str] | set[str]) -> None:
        wanted = set(keys)
        await self.wait_until(lambda: wanted <= self._by_key.keys())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- the endpoint --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        key = str(body["key"])
        workspace = str(body["workspace"])
        method = str(body["method"])
        idempotent = request.headers.get(IDEMPOTENCY_HEADER) == key
        target = target_of(body)
        self.in_flight += 1
        self.target_in_flight[target] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.max_target_in_flight = max(self.max_target_in_flight, self.target_in_flight[target])
        try:
            response, outcome = await self._serve(body, key, workspace, method, idempotent)
        finally:
            self.in_flight -= 1
            self.target_in_flight[target] -= 1
        now = asyncio.get_running_loop().time()
        self.requests.append(Request(key, workspace, method, idempotent, outcome, now))
        await self._notify()
        if response is None:
            request.transport.close()  # type: ignore[union-attr]
            return web.Response(status=500)  # never reaches the client
        return response

    async def _serve(
        self,
        body: dict[str, Any],
        key: str,
        workspace: str,
        method: str,
        idempotent: bool,
    ) -> tuple[web.Response | None, str]:
        fault = next((f for f in self._faults if f.matches(workspace, method, key)), None)
        if fault is not None:
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
            await self._notify()
            if fault.kind == "hold":
                await fault.gate.wait()
            elif fault.kind == "disconnect":
                return None, "disconnect"
            elif fault.kind == "status":
                if fault.status == 429:
                    return self._too_many(fault.retry_after or 0.2), "429"
                return _error(fault.status, f"injected {fault.status}"), str(fault.status)

        if idempotent and key in self._by_key:
            self.deduplicated += 1
            return _ok(self._by_key[key]), "existing"

        if self.rate is not None:
            now = asyncio.get_running_loop().time()
            bucket = self._buckets.get((workspace, method))
            if bucket is None:
                bucket = self._buckets[(workspace, method)] = _Bucket(self.rate, self.burst, now)
            wait = bucket.take(now)
            if wait > 0:
                return self._too_many(wait), "429"

        checked = self._check(body, method)
        if checked is not None:
            return checked, str(checked.status)
        created = self._create(body, key, workspace, method)
        if fault is not None and fault.kind == "accept_then_disconnect":
            return None, "created+disconnect"
        return _ok(created), "created"

    def _check(self, body: dict[str, Any], method: str) -> web.Response | None:
        if method == "update":
            if body.get("message_id") not in self._messages:
                return _error(404, "unknown message")
        elif body.get("thread_of") is not None and body["thread_of"] not in self._messages:
            return _error(404, "unknown thread")
        if method == "dm":
            if body.get("user_id") is None and body.get("dm_channel_id") is None:
                return _error(400, "no user or dm channel")
        elif body.get("channel_id") is None:
            return _error(400, "no channel")
        return None

    def _create(self, body: dict[str, Any], key: str, workspace: str, method: str) -> Created:
        if method == "update":
            message_id = str(body["message_id"])
            channel = self._messages[message_id].channel_id
        else:
            message_id = f"m{len(self._messages) + 1}"
            if method == "dm":
                channel = body.get("dm_channel_id") or f"D-{body['user_id']}"
            else:
                channel = body.get("channel_id")
        created = Created(
            seq=len(self.created) + 1,
            message_id=message_id,
            key=key,
            workspace=workspace,
            method=method,
            channel_id=channel,
            thread_of=body.get("thread_of"),
            text=str(body.get("text", "")),
        )
        self.created.append(created)
        self._by_key.setdefault(key, created)
        self._messages[message_id] = created
        return created

    def _too_many(self, retry_after: float) -> web.Response:
        self.rate_limited += 1
        seconds = max(0.001, math.ceil(retry_after * 1000) / 1000)
        return web.json_response(
            {"error": "rate_limited", "retry_after": seconds},
            status=429,
            headers={"Retry-After": f"{seconds:.3f}"},
        )


def target_of(body: dict[str, Any]) -> str:
    """What one send goes to: a DM's recipient, an update's message, a post's channel."""
    if body["method"] == "dm":
        return f"user:{body.get('user_id') or body.get('dm_channel_id')}"
    if body["method"] == "update":
        return f"message:{body.get('message_id')}"
    return f"channel:{body.get('channel_id')}"


def _ok(created: Created) -> web.Response:
    return web.json_response({"id": created.message_id, "channel_id": created.channel_id})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
