"""Finding a member by the name typed in a form, with Discord's member search, in the time an
interaction has.

``GET /guilds/{id}/members/search`` has a small shared bucket: a 429 is waited out (its
Retry-After) as long as the look-up stays within :data:`WAIT_SECONDS`: the interaction is
deferred by then, and its token lasts 15 minutes, but a person is waiting. Past that, the guild
is marked busy until the Retry-After ends and the look-up raises :class:`DiscordBusy`, a
:class:`~bot.port.DirectoryUnavailable` that the core shows next to the field (the form is kept,
with a button that opens it again with what was typed), instead of an error that loses the form.

Each answer is remembered for :data:`REMEMBER_SECONDS`, so that a name is searched once per form:
the adapter looks the names of a form up before the core's transaction, and the core's own
look-up of a name Discord did not know is then answered from memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from adapters.discord.rest import DiscordHTTPError, DiscordRest
from bot.port import DirectoryUnavailable, MemberInfo

WAIT_SECONDS = 10.0
REMEMBER_SECONDS = 60.0
SEARCH_LIMIT = 5


class DiscordBusy(DirectoryUnavailable):
    """Discord's rate limit outlasts the time a look-up may take."""


class MemberSearch:
    def __init__(
        self,
        rest: DiscordRest,
        *,
        wait_seconds: float = WAIT_SECONDS,
        remember_seconds: float = REMEMBER_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rest = rest
        self.wait_seconds = wait_seconds
        self.remember_seconds = remember_seconds
        self._monotonic = monotonic
        self._sleep = sleep
        self._answers: dict[tuple[str, str], tuple[float, MemberInfo | None]] = {}
        self._busy_until: dict[str, float] = {}
        self.searches = 0  # requests sent, 429s included

    async def find(
        self, guild_id: str, name: str, member: Callable[[dict[str, Any]], MemberInfo]
    ) -> MemberInfo | None:
        wanted = name.removeprefix("@")
        key = (guild_id, wanted.lower())
        now = self._monotonic()
        remembered = self._answers.get(key)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        deadline = now + self.wait_seconds
        while True:
            wait = self._busy_until.get(guild_id, 0.0) - self._monotonic()
            if wait > 0:
                if self._monotonic() + wait > deadline:
                    raise DiscordBusy(
                        f"Discord is busy (rate limited) and could not look @{wanted} up in "
                        "time. Nothing you typed is lost: press Fix to send the form again in "
                        f"a minute (Discord asks to wait {wait:.0f} s)."
                    )
                await self._sleep(wait)
            try:
                self.searches += 1
                results = await self.rest.request(
                    "GET",
                    f"/guilds/{guild_id}/members/search",
                    params={"query": wanted, "limit": str(SEARCH_LIMIT)},
                )
            except DiscordHTTPError as exc:
                if exc.status == 429:
                    retry = exc.retry_after if exc.retry_after is not None else 1.0
                    self._busy_until[guild_id] = self._monotonic() + retry
                    continue
                if exc.status == 404:
                    return None
                raise DirectoryUnavailable(
                    f"Discord did not answer the look-up of @{wanted} (HTTP {exc.status}). "
                    "Nothing you typed is lost: press Fix to send the form again."
                ) from None
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise DirectoryUnavailable(
                    f"Discord could not be reached to look @{wanted} up ({type(exc).__name__}). "
                    "Nothing you typed is lost: press Fix to send the form again."
                ) from None
            found = next((m for m in results or [] if names(m, wanted)), None)
            info = member(found) if found else None
            self._answers[key] = (self._monotonic() + self.remember_seconds, info)
            return info


def names(member: dict[str, Any], wanted: str) -> bool:
    user = member.get("user", {})
    known = {member.get("nick"), user.get("global_name"), user.get("username")}
    return wanted.lower() in {n.lower() for n in known if n}
