"""Adaptive pacing: the rate one bucket learns from the platform's answers.

The scheme (the why is in docs/operations.md, "Pacing"): TCP's slow start and congestion
avoidance (additive increase, multiplicative decrease) with the decrease bounded by a measured
delivery rate, as BBR measures a path's bottleneck.

- **Only a saturated bucket grows.** A send that had to wait for its token shows that the
  bucket, not the work, limited the pace; one that did not (the bucket was idle or the work is
  slower than the rate) says nothing about the platform, so the rate is left alone (as TCP's
  congestion-window validation does) and never climbs while nothing is being sent.
- **Growth per round**: after a round of saturated sends (a second's worth at the current rate,
  at least a burst) with no 429, the rate grows: by half in slow start (no 429 seen yet for this
  bucket), by :data:`PROBE_STEP` of itself once a 429 has been seen, after :data:`HOLD_ROUNDS`
  rounds of holding the rate the last 429 left. It never exceeds the ceiling (``[delivery.rates]``
  when set, else a multiple of the adapter's documented rate).
- **On a 429** the bucket pauses for the Retry-After (the caller does that) and its rate is cut.
  A platform's limit is a token bucket too: between two 429s of a bucket that was sending all the
  time, the sends that went through are exactly what the platform allowed, so their rate over
  that stretch *is* the limit; the new rate is :data:`MARGIN` of it (never more than the rate
  that drew the 429, never less than half of it). Without such a measurement (the first 429,
  or a pause in the sending since the last one) the rate is multiplied by :data:`DECREASE`.

The same state serves a bucket kept in memory (one process) and one shared through PostgreSQL
(:mod:`bot.delivery.shared_pacing`), where it is a row and ``now`` is the database's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOW_START = 1.5  # growth per saturated round before any 429
PROBE_STEP = 0.01  # growth per saturated round after a 429 (of the rate), once the hold is over
HOLD_ROUNDS = 20  # saturated rounds a measured rate is held before probing above it
DECREASE = 0.7  # the cut without a measurement (CUBIC's beta)
MARGIN = 0.97  # the new rate against a measured limit: room for network jitter
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
    measured: float | None = None  # the limit the last measurement found
    window_start: float | None = None  # saturated sending since then (None: not saturated)
    window_sends: int = 0
    window_after_429: bool = False  # the window began at a 429 (the platform's bucket empty)
    round_sends: int = 0
    hold: int = 0  # saturated rounds left before probing again
    rate_limited: int = 0  # 429s seen, for `syncup outbox rates`
    dirty: bool = False  # changed since it was last stored

    def __post_init__(self) -> None:
        self.rate = min(max(self.rate, self.floor), self.ceiling)

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
        if self.round_sends >= max(1.0, self.rate * ROUND_SECONDS):
            self.round_sends = 0
            self._grow()

    def _grow(self) -> None:
        if self.hold > 0:
            self.hold -= 1
            return
        factor = SLOW_START if not self.learned else 1.0 + PROBE_STEP
        grown = min(self.ceiling, self.rate * factor)
        if grown != self.rate:
            self.rate = grown
            self.dirty = True

    def on_429(self, now: float, saturated: bool = True, echo: bool = False) -> None:
        """A 429 at ``now``. ``saturated`` False: the bucket was not sending at its rate (the
        limit hit was another one, a channel's), so its rate is not to blame and stays.
        ``echo``: it came while the pause of an earlier 429 was in force, from a send that left
        before that one came back: one overshoot, one cut (as TCP cuts once per window)."""
        self.rate_limited += 1
        self.dirty = True
        if echo:
            return
        if saturated:
            cut = self.rate * DECREASE
            elapsed = now - self.window_start if self.window_start is not None else 0.0
            # The send that drew the 429 was counted when it took its token.
            through = self.window_sends - 1
            if (
                self.window_after_429
                and elapsed >= MIN_WINDOW_SECONDS
                and through >= MIN_WINDOW_SENDS
            ):
                self.measured = through / elapsed
                cut = min(self.rate, max(self.rate / 2, self.measured * MARGIN))
                self.hold = HOLD_ROUNDS
            self.rate = min(max(cut, self.floor), self.ceiling)
            self.learned = True
        self.window_start = now
        self.window_sends = 0
        self.window_after_429 = True
        self.round_sends = 0

    def limit_to(self, ceiling: float) -> None:
        """Apply a new ceiling (an operator changed ``[delivery.rates]``) to a stored rate."""
        self.ceiling = ceiling
        if self.rate > ceiling:
            self.rate = ceiling
            self.dirty = True


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
