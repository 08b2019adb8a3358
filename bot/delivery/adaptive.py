"""Adaptive pacing: the rate one bucket learns from the platform's answers.

The scheme (the why is in docs/operations.md, "Pacing"): slow start, then a binary search for
the platform's limit between the highest rate that held (``low``) and the lowest that drew a
429 (``high``), with a multiplicative decrease while no rate has held yet.

- **Only a saturated bucket learns.** A send that had to wait for its token shows that the
  bucket, not the work, limited the pace; one that did not (the bucket was idle or the work is
  slower than the rate) says nothing about the platform, so the rate is left alone (as TCP's
  congestion-window validation does) and never climbs while nothing is being sent.
- **Rounds**: a round is a second's worth of saturated sends at the current rate (a quarter of
  a second's in slow start, so that a cold bucket finds its limit within a second or two, not
  ten). Before the first 429 the rate grows by :data:`SLOW_START` a round. After one, each new
  rate is held for :data:`HOLD_ROUNDS` rounds: one that draws no 429 for that long is at most
  the limit and becomes ``low``; the next rate is halfway to ``high``. Once the two are within
  :data:`CONVERGED` the rate stays at ``low`` for :data:`REPROBE_ROUNDS` rounds, then probes
  upwards again (:data:`PROBE_GROWTH` a round) in case the platform allows more now.
- **On a 429** the bucket pauses for the Retry-After (the caller does that); the rate that drew
  it becomes ``high`` and the rate goes back to ``low``, or is cut by :data:`DECREASE` when no
  rate has held yet. Between two 429s of a saturated bucket the platform's own bucket was empty
  at both ends, so the sends that went through show a rate it allowed: that measurement is also
  evidence for ``low``. A 429 while the pause of an earlier one is in force is an echo of the same
  overshoot (a send that had already left) and cuts nothing.
- The rate never leaves [floor, ceiling]: ``[delivery.rates]`` is the ceiling when set, else the
  adapter's, else :data:`DEFAULT_HEADROOM` times the documented rate.

The same state serves a bucket kept in memory (one process) and one shared through PostgreSQL
(:mod:`bot.delivery.shared_pacing`), where it is a row and ``now`` is the database's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOW_START = 2.0  # growth per saturated slow-start round before any 429 (TCP's doubling)
SLOW_START_ROUND_SECONDS = 0.25  # a slow-start round: a quarter of a second's worth of sends
PROBE_GROWTH = 1.1  # growth per round when probing again after a long hold
HOLD_ROUNDS = 10  # saturated rounds a new rate must last without a 429 to count as held
REPROBE_ROUNDS = 300  # rounds at the converged rate before probing upwards again
CONVERGED = 0.03  # low and high this close (relative): stop searching
DECREASE = 0.7  # the cut while no rate has held (CUBIC's beta)
MARGIN = 0.97  # a measured rate is trusted up to this much of the rate that drew a 429
MIN_WINDOW_SECONDS = 1.0  # a measurement needs at least this long ...
MIN_WINDOW_SENDS = 5  # ... and this many sends
ROUND_SECONDS = 1.0
# The ceiling when neither [delivery.rates] nor the adapter sets one: this many times the
# adapter's documented rate.
DEFAULT_HEADROOM = 8.0
FLOOR_FRACTION = 0.05  # never below this fraction of the documented rate


@dataclass
class Pace:
    """One bucket's learned rate and what it is learning from. Times are seconds on the
    bucket's clock (the event loop's, or the database's epoch seconds when shared)."""

    rate: float
    ceiling: float
    floor: float
    learned: bool = False  # a 429 was seen: out of slow start
    measured: float | None = None  # the rate the last measurement between two 429s found
    low: float | None = None  # the highest rate that held (at most the limit)
    high: float | None = None  # the lowest rate that drew a 429 (above the limit)
    window_start: float | None = None  # saturated sending since then (None: not saturated)
    window_sends: int = 0
    window_after_429: bool = False  # the window began at a 429 (the platform's bucket empty)
    round_sends: int = 0
    hold: int = 0  # saturated rounds left at this rate before it counts as held
    rate_limited: int = 0  # 429s seen, for `syncup outbox rates`
    dirty: bool = False  # changed since it was last stored

    def __post_init__(self) -> None:
        # A stored rate outside today's bounds (a lowered ceiling) is paced and saved as bounded.
        self._set(self.rate)

    def _bounded(self, rate: float) -> float:
        return min(max(rate, self.floor), self.ceiling)

    def _set(self, rate: float) -> None:
        rate = self._bounded(rate)
        if rate != self.rate:
            self.rate = rate
            self.dirty = True

    def on_send(self, now: float, waited: bool) -> None:
        """A token was taken at ``now``; ``waited``: the bucket made the send wait for it."""
        if not waited:
            # Idle or slower work: the platform's bucket may have refilled; measure afresh.
            self.window_start = None
            self.window_sends = 0
            self.window_after_429 = False
            self.round_sends = 0
            return
        if self.window_start is None:
            self.window_start = now
            self.window_sends = 0
        self.window_sends += 1
        self.round_sends += 1
        seconds = ROUND_SECONDS if self.learned else SLOW_START_ROUND_SECONDS
        if self.round_sends >= max(1.0, self.rate * seconds):
            self.round_sends = 0
            self._round()

    def _round(self) -> None:
        if self.hold > 0:
            self.hold -= 1
            if self.hold > 0:
                return
            # Held: this rate is at most the limit.
            self.low = max(self.low or 0.0, self.rate)
            self.dirty = True
            if self.high is not None and self.high <= self.low * (1 + CONVERGED):
                self.hold = REPROBE_ROUNDS  # found it: stay, then look again later
                self.high = None
                return
        if self.high is None:
            self._set(self.rate * (SLOW_START if not self.learned else PROBE_GROWTH))
            return
        self._set((self.rate + self.high) / 2)
        self.hold = HOLD_ROUNDS

    def on_429(
        self,
        now: float,
        saturated: bool = True,
        echo: bool = False,
        resume: float | None = None,
    ) -> None:
        """A 429 at ``now``. ``saturated`` False: the bucket was not sending at its rate (the
        limit hit was another one, a channel's), so its rate is not to blame and stays.
        ``echo``: it came while the pause of an earlier 429 was in force, from a send that left
        before that one came back: one overshoot, one cut (as TCP cuts once per window).
        ``resume``: when the pause it sets ends; the next measurement starts there (a window
        that counted the pause would find a rate well below what the platform allowed)."""
        self.rate_limited += 1
        self.dirty = True
        if echo:
            return
        if saturated:
            self.learned = True
            self.high = self.rate
            elapsed = now - self.window_start if self.window_start is not None else 0.0
            # The send that drew the 429 was counted when it took its token.
            through = self.window_sends - 1
            if (
                self.window_after_429
                and elapsed >= MIN_WINDOW_SECONDS
                and through >= MIN_WINDOW_SENDS
            ):
                self.measured = through / elapsed
                self.low = max(self.low or 0.0, min(self.measured, self.high * MARGIN))
            if self.low is not None and self.low >= self.high:
                self.low = self.high * MARGIN  # the limit came down
            self._set(self.low if self.low is not None else self.rate * DECREASE)
            self.hold = HOLD_ROUNDS
        self.window_start = now if resume is None else max(now, resume)
        self.window_sends = 0
        self.window_after_429 = True
        self.round_sends = 0


def bounds(
    documented: float, configured: float | None, ceiling: float | None
) -> tuple[float, float]:
    """(floor, ceiling) of a bucket: ``[delivery.rates]`` is the ceiling when set, else the
    adapter's own ceiling, else :data:`DEFAULT_HEADROOM` times its documented rate."""
    start = configured if configured is not None else documented
    top = configured if configured is not None else ceiling
    if top is None:
        top = documented * DEFAULT_HEADROOM
    return min(start, documented) * FLOOR_FRACTION, max(top, start)
