"""Report refreshes after the answer's transaction: in-process, single-flight per run, with a
trailing run.

An answer, skip or edit does not render the report in its own transaction (that would lock the
run and load the whole roster once per answer: O(team) work per answer, and every answer of a run
queued behind the others). It marks what changed (``standup_prompts.report_dirty``,
``standup_runs.report_dirty_since``) and, once its transaction has committed, *pokes* the run:

* no refresh of that run running here: one starts as soon as answers to the run pause for
  50 ms (a lone answer: 50 ms later; a burst: when it ebbs, or after 5 s at most);
* one running: the run is remembered and refreshed once more when it ends, after a rest of
  three times as long as the refresh took (so that a large report's refreshes take at most a
  quarter of the event loop from the answers). Everything that committed meanwhile is covered
  by the next: under load, O(team) work per refresh, not per answer, and Slack's chat.update
  gets one call per refresh, not one per answer.

A refresh (:func:`report.refresh_apart`) takes the marks in a short transaction, renders the
parent once and the replies of the marked prompts from a read snapshot that blocks no writer,
and queues only what changed in a second short transaction. If the process dies between an
answer's commit and its refresh, the marks stay and the sweep (``schedules.StandupSchedules``)
or the window's close picks them up. Two refreshes of one run (two replicas, the sweep) never
publish out of order: the one that took the marks last wins, and the other puts its marks back.

The refreshes run through :meth:`Core.spawn`, so :meth:`Core.idle` waits for them and the
console's "settled" sees them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from bot.core import Core
from bot.features.standups import report
from storage.outages import DatabaseUnavailable

log = logging.getLogger(__name__)

# A refresh starts once answers to its run have paused this long, or after MAX_WAIT_SECONDS.
QUIET_SECONDS = 0.05
MAX_WAIT_SECONDS = 5.0
# Between back-to-back refreshes of one run (answers arrived during the last one), rest this
# many times as long as the last refresh took, at most MAX_REST_SECONDS.
REST_FACTOR = 3.0
MAX_REST_SECONDS = 10.0

_REFRESHERS: weakref.WeakKeyDictionary[Core, ReportRefresher] = weakref.WeakKeyDictionary()


class ReportRefresher:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._running: set[int] = set()
        self._again: set[int] = set()
        self._last_poke: dict[int, float] = {}  # run id -> time.monotonic() of its last poke
        self._gap: dict[int, float | None] = {}  # run id -> the time between its last two pokes
        # How many refresh transactions ran, and how many of them queued something.
        self.refreshes = 0
        self.published = 0
        self.seconds = 0.0  # wall time spent in refreshes

    def poke(self, run_id: int) -> None:
        """The run's report is out of date (and the change has committed)."""
        now = time.monotonic()
        last = self._last_poke.get(run_id)
        self._gap[run_id] = now - last if last is not None else None
        self._last_poke[run_id] = now
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
                await self._until_quiet(run_id)
                self._again.discard(run_id)
                started = time.perf_counter()
                try:
                    await self.refresh(run_id)
                except DatabaseUnavailable:
                    return  # the outage is logged once where it was found; the sweep retries
                except Exception:
                    # The marks were rolled back with the refresh: the next poke or the sweep
                    # retries. No retry loop here.
                    log.exception("refreshing the report of standup run %s failed", run_id)
                    return
                if run_id not in self._again:
                    return
                # Answers keep coming: let them have the loop. A refresh of a large report is
                # mostly Python work on the event loop every answer shares; resting REST_FACTOR
                # times as long as it took keeps it to a fraction of the loop however fast
                # answers arrive, and the report still follows within seconds.
                rest = min(REST_FACTOR * (time.perf_counter() - started), MAX_REST_SECONDS)
                await asyncio.sleep(rest)
        finally:
            # No await between the last check of _again and this: a poke either saw the run
            # running (and was picked up above) or starts a new refresh.
            self._running.discard(run_id)
            self._again.discard(run_id)
            self._last_poke.pop(run_id, None)
            self._gap.pop(run_id, None)

    async def _until_quiet(self, run_id: int) -> None:
        """Wait until answers to the run pause for QUIET_SECONDS, or MAX_WAIT_SECONDS at most:
        during a burst (a whole team answering at 09:00) the report is rendered once it ebbs,
        not in the middle of it, and still within seconds under a steady stream."""
        began = time.monotonic()
        while True:
            now = time.monotonic()
            # Pokes close together are a burst: a pause must be a few of their gaps long.
            gap = self._gap.get(run_id)
            quiet = QUIET_SECONDS if gap is None else max(QUIET_SECONDS, min(3 * gap, 1.0))
            quiet_for = now - self._last_poke.get(run_id, 0.0)
            waited = now - began
            if quiet_for >= quiet or waited >= MAX_WAIT_SECONDS:
                return
            await asyncio.sleep(min(quiet - quiet_for, MAX_WAIT_SECONDS - waited))

    async def refresh(self, run_id: int) -> bool:
        """One refresh of one run (see :func:`report.refresh_apart`); True if it queued
        something. When another refresh got in between, the run is refreshed again."""
        now = self.core.clock.now()
        started = time.perf_counter()
        outcome = await report.refresh_apart(self.core.db, run_id, now)
        self.refreshes += 1
        self.seconds += time.perf_counter() - started
        if outcome is report.Refreshed.CONTENDED:
            self._again.add(run_id)
        if outcome is report.Refreshed.SENT:
            self.published += 1
            for wake in self.core.on_outbox:
                wake()
            return True
        return False


def install(core: Core) -> ReportRefresher:
    """The core's refresher, made on first use."""
    refresher = _REFRESHERS.get(core)
    if refresher is None:
        refresher = _REFRESHERS[core] = ReportRefresher(core)
    return refresher


def refresher_of(core: Core) -> ReportRefresher | None:
    return _REFRESHERS.get(core)
