"""The bot's outbound token, kept until it nearly expires.

The SDK asks its token provider for every connector call. With a client secret it goes to MSAL,
which caches; a ``token`` provider of one's own (a managed identity, a vault, the tests' fake) is
called every time, which doubles each send with a token fetch. :class:`CachedTokens` keeps each
(scope, tenant) token until five minutes before its expiry (the SDK's own margin), and lets one
caller fetch while the others wait for it.
"""

from __future__ import annotations

import asyncio
from inspect import isawaitable

from microsoft_teams.api.auth.credentials import TokenProvider
from microsoft_teams.api.auth.json_web_token import JsonWebToken
from microsoft_teams.api.auth.token import TokenProtocol


class CachedTokens:
    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider
        self._tokens: dict[tuple[str, str | None], JsonWebToken] = {}
        self._locks: dict[tuple[str, str | None], asyncio.Lock] = {}

    async def __call__(self, scope: str, tenant_id: str | None = None) -> TokenProtocol | None:
        key = (scope, tenant_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            kept = self._tokens.get(key)
            if kept is not None and not kept.is_expired():
                return kept
            value = self._fetch(scope, tenant_id)
            got = await value if isawaitable(value) else value
            if got is None:
                return None
            token = JsonWebToken(str(got))
            if token.expiration:
                self._tokens[key] = token
            return token

    def _fetch(self, scope: str, tenant_id: str | None) -> object:
        provider = self._provider
        get_app_token = getattr(provider, "get_app_token", None)
        if get_app_token is not None:
            return get_app_token(scope, tenant_id)
        assert callable(provider)
        return provider(scope, tenant_id)
