"""Report refreshes after the answer's transaction: in-process, single-flight per run, with a
trailing run.

An answer, skip or edit does not render the report in its own transaction (that would lock the
run and load the whole roster once per answer: O(team) work per answer, and every answer of a run
queued behind the others). It marks what changed (``standup_prompts.report_dirty``,
``standup_runs.report_dirty_since``) and, once its transaction has committed, *pokes* the run:

* no refresh of that run running here: one starts at once (no delay when idle);
* one running: the run is remembered and refreshed once more when it ends. Everything that
  committed during one refresh is covered by the next: under load, O(team) work per refresh,
  not per answer, and Slack's chat.update gets one call per refresh, not one per answer.

A refresh is its own transaction (:func:`report.refresh_marked`): it locks the run, takes the
marks, renders the parent once and the replies of the marked prompts, and queues only what
changed. If the process dies between an answer's commit and its refresh, the marks stay and the
sweep (``schedules.StandupSchedules``) or the window's close picks them up. Two replicas
refreshing one run serialize on the run row; the second finds nothing marked and does nothing.

The refreshes run through :meth:`Core.spawn`, so :meth:`Core.idle` waits for them and the
console's "settled" sees them.
"""

from __future__ import annotations

import logging
import time
import weakref

from bot.core import Core
from bot.features.standups import report
from storage.models import Standup, StandupRun

log = logging.getLogger(__name__)

_REFRESHERS: weakref.WeakKeyDictionary[Core, ReportRefresher] = weakref.WeakKeyDictionary()


class ReportRefresher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._running: set[int] = set()
        self._again: set[int] = set()
        # How many refresh transactions ran, and how many of them queued something.
        self.refreshes = 0
        self.published = 0
        self.seconds = 0.0  # wall time spent in refreshes

    def poke(self, run_id: int) -> None:
        """The run's report is out of date (and the change has committed)."""
        if run_id in self._running:
            self._again.add(run_id)
            return
        self._running.add(run_id)
        self.core.spawn(self._refresh_until_clean(run_id), name=f"standup-report-{run_id}")

    def running(self) -> bool:
        return bool(self._running)

    async def _refresh_until_clean(self, run_id: int) -> None:
        try:
            while True:
                self._again.discard(run_id)
                try:
                    await self.refresh(run_id)
                except Exception:
                    # The marks were rolled back with the refresh: the next poke or the sweep
                    # retries. No retry loop here.
                    log.exception("refreshing the report of standup run %s failed", run_id)
                    return
                if run_id not in self._again:
                    return
        finally:
            # No await between the last check of _again and this: a poke either saw the run
            # running (and was picked up above) or starts a new refresh.
            self._running.discard(run_id)
            self._again.discard(run_id)

    async def refresh(self, run_id: int) -> bool:
        """One refresh of one run, in its own transaction; True if it queued something."""
        now = self.core.clock.now()
        started = time.perf_counter()
        async with self.core.db.transaction() as session:
            run = await session.get(StandupRun, run_id)
            standup = None if run is None else await session.get(Standup, run.standup_id)
            sent = False
            if run is not None and standup is not None:
                sent = await report.refresh_marked(session, standup, run, now)
        self.refreshes += 1
        self.seconds += time.perf_counter() - started
        if sent:
            self.published += 1
            for wake in self.core.on_outbox:
                wake()
        return sent


def install(core: Core) -> ReportRefresher:
    """The core's refresher, made on first use."""
    refresher = _REFRESHERS.get(core)
    if refresher is None:
        refresher = _REFRESHERS[core] = ReportRefresher(core)
    return refresher


def refresher_of(core: Core) -> ReportRefresher | None:
    return _REFRESHERS.get(core)
