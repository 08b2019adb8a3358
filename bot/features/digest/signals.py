"""Signals: rules that read across a team's sections and say when something needs a look.

Each rule is a pure function of :class:`~bot.features.digest.figures.TeamFigures`; a fired
signal carries the numbers that fired it, so a reader can check it. The thresholds are named
here and in docs/digest.md:

* **Mood and blockers**: the pulse index (the mean of the shown 1-5 scores) fell by at least
  :data:`PULSE_DROP` against two weeks before, while open blockers rose by at least
  :data:`BLOCKERS_RISE` over the same two weeks (from at least one).
* **Participation**: this week's standup participation is at most two thirds of the mean of the
  four weeks before (down a third or more).
* **Stuck dependency**: the same pair of areas (one waiting on the other) had a dependency open
  at the end of each of the last :data:`STUCK_WEEKS` weeks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.features.digest.figures import TeamFigures, Trend

PULSE_DROP = 0.5
BLOCKERS_RISE = 0.30
PARTICIPATION_KEPT = 2 / 3
STUCK_WEEKS = 3


@dataclass(frozen=True)
class Signal:
    rule: str  # "pulse-blockers" | "participation" | "dependency"
    text: str  # what fired, with its numbers
    numbers: tuple[tuple[str, float], ...]


def _two_weeks(trend: Trend) -> tuple[float | None, float | None]:
    """The latest value and the latest one at least two weeks before it."""
    values = trend.values
    if len(values) < 3 or values[-1] is None:
        return values[-1] if values else None, None
    before = next((v for v in reversed(values[:-2]) if v is not None), None)
    return values[-1], before


def pulse_and_blockers(figures: TeamFigures) -> Signal | None:
    if figures.pulse is None or figures.blockers is None:
        return None
    pulse_now, pulse_then = _two_weeks(figures.pulse.index)
    open_now, open_then = _two_weeks(figures.blockers.open_at_end)
    if None in (pulse_now, pulse_then, open_now, open_then):
        return None
    assert pulse_now is not None and pulse_then is not None
    assert open_now is not None and open_then is not None
    drop = pulse_then - pulse_now
    if open_then < 1 or drop < PULSE_DROP - 1e-9:
        return None
    rise = (open_now - open_then) / open_then
    if rise < BLOCKERS_RISE - 1e-9:
        return None
    return Signal(
        "pulse-blockers",
        f"Pulse down {drop:.1f} over two weeks ({pulse_then:.1f} to {pulse_now:.1f}) while open "
        f"blockers rose {round(rise * 100)}% ({open_then:.0f} to {open_now:.0f}).",
        (
            ("pulse_then", pulse_then),
            ("pulse_now", pulse_now),
            ("open_then", open_then),
            ("open_now", open_now),
        ),
    )


def participation_down(figures: TeamFigures) -> Signal | None:
    if figures.standups is None:
        return None
    rate = figures.standups.rate
    now, before = rate.now, rate.before
    if now is None or before is None or before <= 0 or now > before * PARTICIPATION_KEPT + 1e-9:
        return None
    return Signal(
        "participation",
        f"Standup participation down a third or more: {round(now * 100)}% this week against "
        f"{round(before * 100)}% on average over the four weeks before "
        f"({figures.standups.answered} of {figures.standups.asked} answered).",
        (("rate_now", now), ("rate_before", before)),
    )


def stuck_dependencies(figures: TeamFigures) -> list[Signal]:
    if figures.blockers is None or len(figures.blockers.pairs_by_week) < STUCK_WEEKS:
        return []
    last = figures.blockers.pairs_by_week[-STUCK_WEEKS:]
    stuck = sorted(frozenset.intersection(*last))
    return [
        Signal(
            "dependency",
            f"{waiting} has been blocked on {on} for {STUCK_WEEKS} weeks running (a dependency "
            f"open at the end of each of the last {STUCK_WEEKS} weeks).",
            (("weeks", float(STUCK_WEEKS)),),
        )
        for waiting, on in stuck
    ]


def signals(figures: TeamFigures) -> list[Signal]:
    """Every rule that fires for the team, in the order above."""
    fired = [pulse_and_blockers(figures), participation_down(figures)]
    return [s for s in fired if s is not None] + stuck_dependencies(figures)
