"""``POST /hooks/{source}/{token}``: the inbound webhook endpoint on the core's HTTP server.

In order, each step answering before the next reads more:

1. anything but ``POST /hooks/<source>/<token>`` with a known source: 404 (405 for a GET);
2. a body over :data:`MAX_BODY_BYTES` (1 MiB): 413, read with a cap, never buffered whole;
3. a token no hook has, or a hook of another source: 404, the same answer either way, both
   after one indexed lookup (no signature is checked for either);
4. over the hook's rate (``[web] hook_rate_per_minute``): 429 with ``Retry-After``;
5. a bad or missing signature, or a timestamp more than 5 minutes off: 401;
6. then 200: a delivery id seen before does nothing more; otherwise the delivery is acted on
   (bot.features.hooks.service.deliver) and its outcome kept, also when it is ignored (not
   JSON, fields missing, an event syncup does not celebrate).

Only ids are logged (the hook's id, the delivery id), never a payload.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from bot.clock import Clock
from bot.features.hooks import service, sources
from bot.metrics import Metrics
from bot.web.asgi import Mount, Receive, Scope, Send, TooLarge, answer, read_body, too_large
from bot.webhooks.keys import Keys, KeyUnavailable, SecretUnreadable
from storage.db import Database
from storage.hooks import Hook, HookRule

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
PREFIX = "/hooks"
# A hook's row (and its decrypted secret) is kept this long in memory; a change made through
# this process drops it at once (forget), other replicas see it within this time.
CACHE_SECONDS = 5.0
# Past this share of CACHE_SECONDS, a hit starts reading the hook again (in the background):
# a hook that receives deliveries steadily never has them wait for its read.
REFRESH_AT = 0.8
_NOT_FOUND = {"ok": False, "error": "not found"}
# At most this many hooks are read in one query (a burst to many hooks not in memory).
READ_AT_ONCE = 200
# Built once: read for every burst of hooks not in memory.
_HOOKS = select(Hook.id, Hook.workspace_id, Hook.source, Hook.token, Hook.secret).where(
    Hook.token.in_(bindparam("tokens", expanding=True))
)
_RULES = (
    select(*service.RULE_COLUMNS)
    .where(HookRule.hook_id.in_(bindparam("hooks", expanding=True)))
    .order_by(HookRule.id)
)


@dataclass(frozen=True)
class Known:
    id: int
    workspace_id: int
    source: str
    secret: str
    loaded: float
    # The hook's rules by event, read with it: a delivery's transaction does not read them again.
    rules: Mapping[str, tuple[service.Rule, ...]]


class Bucket:
    """A token bucket: ``per_minute`` deliveries a minute, as a burst or spread out."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.tokens = float(per_minute)
        self.rate = per_minute / 60.0
        self.at = time.monotonic()

    def take(self, now: float) -> float:
        """0 when a delivery may go now, else the seconds until one may."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Batches:
    """Group commit: deliveries that arrive while a transaction is being written wait for the
    next one, which writes them all (up to :data:`BATCH`) in a few statements. Each is answered
    once its transaction committed, so a 200 means it is stored. If a batch fails as a whole,
    nothing of it is kept and each delivery is tried again alone: one that cannot be saved (its
    hook removed in the meantime, a milestone that fails) is answered 503 without costing the
    others theirs.

    SQLite has one writer: one batch at a time. PostgreSQL takes :data:`WRITERS` at once, each
    on its own connection: a batch spends most of its time waiting on the server's round trips,
    during which the next one can be written. Two batches holding one delivery id are then as
    two replicas would be: the second one's claim waits for the first one's commit and finds
    it taken (``duplicate``), or takes it if the first rolled back."""

    BATCH = 200
    WRITERS = 3

    def __init__(
        self,
        db: Database,
        clock: Clock,
        wake: Callable[[], None] | None,
        writers: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wake = wake
        self.writers = writers or (1 if db.dialect == "sqlite" else self.WRITERS)
        self._pending: list[tuple[service.Arrival, asyncio.Future[str]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.transactions = 0  # how many were committed (for benchmarks and tests)

    async def submit(self, arrival: service.Arrival) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((arrival, future))
        if len(self._tasks) < self.writers:
            task = asyncio.create_task(self._drain(), name="hooks-batches")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.BATCH], self._pending[self.BATCH :]
            try:
                await self._write(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0][1], exc)
                    continue
                log.warning(
                    "hooks: a batch of %d deliveries failed (%s); each is tried alone",
                    len(batch),
                    type(exc).__name__,
                )
                for item in batch:
                    try:
                        await self._write([item])
                    except Exception as alone:
                        _fail(item[1], alone)

    async def _write(self, batch: list[tuple[service.Arrival, asyncio.Future[str]]]) -> None:
        # Urgent: senders wait for this commit; background writes queued here go after it.
        async with self.db.transaction(urgent=True) as session:
            outcomes = await service.deliver(
                session, [arrival for arrival, _ in batch], self.clock.now()
            )
        self.transactions += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        if "posted" in outcomes and self.wake is not None:
            self.wake()


def _fail(future: asyncio.Future[str], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


class HookReceiver:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keys: Keys,
        per_minute: int,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.keys = keys
        self.per_minute = per_minute
        self.wake = wake
        self.batches = Batches(db, clock, wake)
        self._known: dict[str, Known] = {}
        self._loading: dict[str, asyncio.Future[Known | None]] = {}
        # Keys for the next read: (source, token, what their requests wait on).
        self._wanted: dict[str, tuple[str, str, asyncio.Future[Known | None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._generation = 0  # moved on by forget
        self._buckets: dict[int, Bucket] = {}
        self.metrics = Metrics()  # the app's (bot.app sets it)

    def mount(self) -> Mount:
        return Mount(PREFIX, self)

    def forget(self, source: str, token: str) -> None:
        """A hook was removed, or its rules changed, here: read it again before the next
        delivery (a removed one answers 404 at once)."""
        key = f"{source}/{token}"
        self._known.pop(key, None)
        if key not in self._wanted:  # a read under way began before the change: not it
            self._loading.pop(key, None)
        self._generation += 1

    async def _find(self, source: str, token: str) -> Known | None:
        """The hook with this token and source. Keyed by both, so a token asked for under
        another source is looked up in the database like one that does not exist: the same
        answer after the same work (a cached hit would answer sooner and tell it exists).
        Every hook asked for while none is being read is read in the next query, together
        (a burst to twenty hooks not in memory is one query, not twenty, and each key is read
        once however many requests wait for it)."""
        key = f"{source}/{token}"
        known = self._known.get(key)
        age = time.monotonic() - known.loaded if known is not None else CACHE_SECONDS
        if age < CACHE_SECONDS * REFRESH_AT and known is not None:
            return known
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.get_running_loop().create_future()
            loading.add_done_callback(functools.partial(self._loaded, key))
            self._wanted[key] = (source, token, loading)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read_wanted(), name="hooks-read")
        if age < CACHE_SECONDS and known is not None:
            return known  # still valid: read again ahead of its expiry, without waiting
        # Shielded: a request that goes away does not cancel the read the others wait for.
        return await asyncio.shield(loading)

    def _loaded(self, key: str, loading: asyncio.Future[Known | None]) -> None:
        if self._loading.get(key) is loading:
            del self._loading[key]
        if not loading.cancelled() and loading.exception() is not None:
            # Those waiting get the error; a read ahead of expiry nobody waits for is retried
            # by the next delivery.
            log.warning("hooks: a hook could not be read (%s)", type(loading.exception()).__name__)

    async def _read_wanted(self) -> None:
        await asyncio.sleep(0)  # the other requests of this turn of the loop join the read
        while self._wanted:
            keys = list(self._wanted)[:READ_AT_ONCE]
            wanted = {key: self._wanted.pop(key) for key in keys}
            try:
                found = await self._load({key: (s, t) for key, (s, t, _) in wanted.items()})
            except Exception as exc:
                for _, _, loading in wanted.values():
                    _fail(loading, exc)
                continue
            for key, (_, _, loading) in wanted.items():
                if not loading.done():
                    loading.set_result(found[key])

    async def _load(self, wanted: Mapping[str, tuple[str, str]]) -> dict[str, Known | None]:
        generation = self._generation
        # Only hooks that exist are kept: a scan of made-up tokens cannot fill memory.
        async with self.db.read() as session:
            rows = {
                row.token: row
                for row in await session.execute(
                    _HOOKS, {"tokens": sorted({token for _, token in wanted.values()})}
                )
            }
            matched = {
                key: rows[token]
                for key, (source, token) in wanted.items()
                if token in rows and rows[token].source == source
            }
            rules: dict[int, dict[str, list[service.Rule]]] = defaultdict(lambda: defaultdict(list))
            if matched:
                ids = sorted({row.id for row in matched.values()})
                for rule in await session.execute(_RULES, {"hooks": ids}):
                    rules[rule.hook_id][rule.event].append(rule)
        now = time.monotonic()
        found: dict[str, Known | None] = {}
        for key in wanted:
            row = matched.get(key)
            if row is None:
                self._known.pop(key, None)  # removed by another replica
                found[key] = None
                continue
            try:
                secret = self.keys.box().open(row.secret)
            except (KeyUnavailable, SecretUnreadable) as exc:
                log.error("hooks: hook %d cannot be checked: %s", row.id, exc)
                found[key] = None
                continue
            by_event = {event: tuple(listed) for event, listed in rules[row.id].items()}
            hook = Known(row.id, row.workspace_id, row.source, secret, now, by_event)
            if generation == self._generation:  # else removed here while it was read
                self._known[key] = hook
            found[key] = hook
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")
        source = parts[2] if len(parts) > 2 and parts[2] in sources.SOURCES else "unknown"
        self.metrics.hook(source, await self._serve(parts, scope, receive, send))

    async def _serve(self, parts: list[str], scope: Scope, receive: Receive, send: Send) -> str:
        """Answer one request; returns its result as syncup_hook_deliveries_total labels it."""
        if len(parts) != 4 or parts[2] not in sources.SOURCES or not parts[3]:
            await answer(send, 404, _NOT_FOUND)
            return "not_found"
        if scope.get("method") != "POST":
            await answer(
                send, 405, {"ok": False, "error": "POST only"}, headers=[(b"allow", b"POST")]
            )
            return "wrong_method"
        try:
            body = await read_body(scope, receive, MAX_BODY_BYTES)
        except TooLarge:
            await too_large(scope, send, MAX_BODY_BYTES)
            return "too_large"
        if body is None:
            return "gone"
        hook = await self._find(parts[2], parts[3][:64])
        if hook is None:
            await answer(send, 404, _NOT_FOUND)
            return "not_found"
        wait = self._bucket(hook.id).take(time.monotonic())
        if wait > 0:
            retry = str(max(1, int(wait + 0.999))).encode()
            log.info("hooks: hook %d over its rate; answered 429", hook.id)
            await answer(
                send,
                429,
                {"ok": False, "error": "too many deliveries"},
                headers=[(b"retry-after", retry)],
            )
            return "rate_limited"
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers") or []
        }
        now = self.clock.now()
        try:
            delivery = sources.verify(hook.source, hook.secret, headers, body, now)
        except sources.BadSignature as exc:
            log.info("hooks: refused a delivery to hook %d: %s", hook.id, exc)
            await answer(send, 401, {"ok": False, "error": "invalid signature"})
            return "bad_signature"
        arrival = service.Arrival(
            hook.id, hook.workspace_id, hook.source, delivery, headers, body, hook.rules
        )
        try:
            outcome = await self.batches.submit(arrival)
        except Exception as exc:  # the database: the sender retries later
            log.warning("hooks: delivery to hook %d not saved (%s); answered 503", hook.id, exc)
            await answer(send, 503, {"ok": False, "error": "try again later"})
            return "unavailable"
        log.info("hooks: delivery %r to hook %d: %s", delivery[:64], hook.id, outcome)
        await answer(send, 200, {"ok": True, "outcome": outcome})
        return outcome

    def _bucket(self, hook_id: int) -> Bucket:
        bucket = self._buckets.get(hook_id)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._buckets.clear()
            bucket = self._buckets[hook_id] = Bucket(self.per_minute)
        return bucket
