"""Live results of named polls: the poll's message is updated after votes, debounced.

A vote only *pokes* its poll once its transaction has committed. The first poke starts a refresh
that waits ``delay`` seconds (so a burst of votes is one update, not one per vote: Slack's
chat.update and Discord's edits are rate limited), then, in a transaction of its own, locks the
poll, bumps ``results_version``, counts, and queues one UPDATE of the live message keyed
``poll:<id>:live:<version>``. Pokes while a refresh is waiting do nothing: the refresh has not
counted yet and will see their votes. The waiting mark is dropped *before* the refresh counts,
so a vote that commits after that starts a refresh of its own and is never missed.

Where the platform refuses edits of old messages (``core.edit_window``: Discord, one hour), a
live message older than that is not edited: the poll is posted again, with its controls and
the current results, and the new post becomes the live one (``live_outbox_id``,
``live_posted_at``).

Refreshes run through :meth:`Core.spawn`, so :meth:`Core.idle` waits for them (the console and
the tests rely on it). The waiting marks are per process: with several replicas each may queue
its own update, in version order under the poll's row lock. If a process dies between a vote and
its refresh, the live message catches up with the next vote or the close.

Anonymous polls never come here: live counts of an anonymous poll would tell who chose what,
vote by vote (invariant 6).
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from bot.core import Core
from bot.features.polls import service

log = logging.getLogger(__name__)

DEFAULT_DELAY_SECONDS = 1.5

_LIVE: weakref.WeakKeyDictionary[Core, LiveResults] = weakref.WeakKeyDictionary()


class LiveResults:
    def __init__(self, core: Core, delay: float = DEFAULT_DELAY_SECONDS) -> None:
        self.core = core
        self.delay = delay
        self._waiting: set[int] = set()
        self.refreshes = 0  # refresh transactions run (for tests and benchmarks)

    def poke(self, poll_id: int) -> None:
        """Votes of ``poll_id`` have committed: have its live message refreshed soon."""
        if poll_id in self._waiting:
            return
        self._waiting.add(poll_id)
        self.core.spawn(self._refresh_later(poll_id), name=f"poll-live-{poll_id}")

    async def _refresh_later(self, poll_id: int) -> None:
        try:
            if self.delay > 0:
                await asyncio.sleep(self.delay)
        finally:
            self._waiting.discard(poll_id)
        try:
            queued = await self.refresh(poll_id)
        except Exception:
            log.exception("refreshing the live results of poll %s failed", poll_id)
            return
        if queued:
            for wake in self.core.on_outbox:
                wake()

    async def refresh(self, poll_id: int) -> bool:
        """One refresh in its own transaction; True if it queued a message."""
        self.refreshes += 1
        async with self.core.db.transaction() as session:
            return await service.refresh_live(
                session, poll_id, self.core.clock.now(), self.core.edit_window
            )


def install(core: Core) -> LiveResults:
    """The core's live results refresher, made on first use."""
    live = _LIVE.get(core)
    if live is None:
        live = _LIVE[core] = LiveResults(core)
    return live


def live_of(core: Core) -> LiveResults | None:
    return _LIVE.get(core)
