"""A small Discord REST client for what syncup sends itself: outbox messages, interaction
responses, command registration and directory look-ups.

discord.py's ``HTTPClient`` sleeps through 429s on its own; the delivery worker must see them to
pace a whole (guild, method) bucket and to keep the row in the outbox, so outbox sends go through
this client, which never retries: a 429 becomes :class:`DiscordHTTPError` with ``retry_after``.

A request with ``files`` is multipart/form-data as Discord takes it: the JSON body as the
``payload_json`` part (nonce, ``enforce_nonce`` and ``attachments`` included), each file as
``files[n]``, matching the attachment of ``id`` n.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.port import Quota

log = logging.getLogger(__name__)

USER_AGENT = "DiscordBot (https://github.com/syncup/syncup, 0.1) syncup"
TIMEOUT_SECONDS = 15.0


# Where request() leaves the X-RateLimit-* headers of each answer, for the caller that set it
# (DiscordPort.deliver: the delivery worker paces by them). A context variable, so that
# concurrent deliveries each see their own.
quotas: contextvars.ContextVar[list[Quota] | None] = contextvars.ContextVar(
    "discord_quotas", default=None
)


def quota_of(headers: Mapping[str, str]) -> Quota | None:
    """Discord's rate-limit headers as a :class:`Quota` (None when it sent none)."""
    try:
        limit = int(headers["X-RateLimit-Limit"])
        remaining = int(headers["X-RateLimit-Remaining"])
        reset_after = float(headers["X-RateLimit-Reset-After"])
    except (KeyError, ValueError):
        return None
    return Quota(
        limit=limit,
        remaining=remaining,
        reset_after=max(0.0, reset_after),
        bucket=headers.get("X-RateLimit-Bucket"),
        scope=headers.get("X-RateLimit-Scope"),
    )


class DiscordHTTPError(Exception):
    """A non-2xx answer: ``status``, Discord's JSON error ``code`` (0 when none) and message;
    ``retry_after`` in seconds for a 429."""

    def __init__(
        self, status: int, code: int, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}, Discord error {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.quota: Quota | None = None


class DiscordRest:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            # The adapter has stopped: a send that comes this late fails (and is retried by the
            # next run, with the same nonce) rather than opening a session nobody closes.
            raise aiohttp.ClientConnectionError("the Discord REST client is closed")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def close(self) -> None:
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        files: list[tuple[str, bytes, str]] | None = None,
    ) -> Any:
        """One request, no retries; the decoded JSON answer (None for 204). ``files``:
        (file name, bytes, content type) sent as ``files[n]`` next to ``payload_json``."""
        headers = {"Authorization": f"Bot {self._token}"} if auth else {}
        data: str | aiohttp.FormData | None
        if files:
            data = aiohttp.FormData(quote_fields=False)
            data.add_field(
                "payload_json", json.dumps(json_body or {}), content_type="application/json"
            )
            for n, (filename, content, content_type) in enumerate(files):
                data.add_field(f"files[{n}]", content, filename=filename, content_type=content_type)
        else:
            if json_body is not None:
                headers["Content-Type"] = "application/json"
            data = json.dumps(json_body) if json_body is not None else None
        async with self._client().request(
            method, self.base_url + path, data=data, params=params, headers=headers
        ) as response:
            raw = await response.read()
            quota = quota_of(response.headers)
            sink = quotas.get()
            if sink is not None and quota is not None:
                sink.append(quota)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if response.status == 429:
                retry = _retry_after(response.headers.get("Retry-After"), body)
                scope = response.headers.get("X-RateLimit-Scope", "")
                error = DiscordHTTPError(
                    429, 0, f"rate limited ({scope or 'unknown'} scope)", retry
                )
                error.quota = quota or (Quota(0, 0, retry, scope=scope) if scope else None)
                raise error
            if response.status >= 400:
                code = int(body.get("code", 0)) if isinstance(body, dict) else 0
                message = str(body.get("message", "")) if isinstance(body, dict) else ""
                if isinstance(body, dict) and body.get("errors"):
                    message += " " + json.dumps(body["errors"])[:500]
                raise DiscordHTTPError(response.status, code, message or response.reason or "")
            return body


def _retry_after(header: str | None, body: Any) -> float:
    for source in (isinstance(body, dict) and body.get("retry_after"), header):
        try:
            if source not in (None, False, ""):
                return max(0.0, float(source))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return 1.0
