"""The escalation ladder of one blocker, as pure arithmetic: which step is next and when.

A ladder starts at its *anchor*: when the blocker opened, or when its ladder restarted (a
reassignment, a severity change, a reopen). Each level of the policy fires ``after`` business
time from the anchor. Rounds (``repeat``) follow one another: round ``r`` starts ``r`` ladder
lengths after the anchor, so the first level fires again as long after the last one as it did
after the start (a ladder whose first level is immediate waits as long as its last gap).

* **Critical** blockers start at the second level, at once, and count wall-clock time
  (:data:`~bot.features.blockers.business_time.ALWAYS_OPEN`); the gaps between the later levels
  are kept.
* **Low** blockers stop after the first level (repeats repeat that level only).
* **Acknowledged** blockers: the acknowledgement moved the anchor to the end of the pause
  (``reack``); the ladder then starts again with its first level at once.
* **Snoozed** blockers: nothing fires before ``snoozed_until``.

The position on the ladder is ``(round, level)``: the round and the policy's level number of the
last step that fired (level 0: none yet). :func:`due` returns the step to fire now: after
downtime that spanned several levels, only the highest due one, flagged ``delayed``; the
skipped ones never fire (nobody wants three messages at once about one blocker).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.features.blockers.business_time import ALWAYS_OPEN, BusinessCalendar
from bot.features.blockers.policy import Level, Policy, effective_levels
from storage.models import BlockerSeverity

# A step that fires this much later than it was due (downtime, a stopped scheduler) says so.
DELAY_TOLERANCE = timedelta(minutes=10)
DEFAULT_REPEAT_GAP = timedelta(hours=1)


@dataclass(frozen=True)
class LadderState:
    anchor: datetime
    level: int = 0
    round: int = 0
    severity: BlockerSeverity = BlockerSeverity.NORMAL
    acknowledged: bool = False
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class Step:
    round: int
    level: int  # the policy's 1-based level number
    target: Level
    due: datetime  # when it is due, snooze included

    @property
    def position(self) -> tuple[int, int]:
        return (self.round, self.level)


@dataclass(frozen=True)
class Firing:
    step: Step
    delayed: bool
    skipped: int  # due steps passed over for this one


def clock_for(calendar: BusinessCalendar, severity: BlockerSeverity | str) -> BusinessCalendar:
    """The calendar a ladder counts in: critical blockers ignore business hours."""
    return ALWAYS_OPEN if severity == BlockerSeverity.CRITICAL else calendar


def offsets(
    policy: Policy, calendar: BusinessCalendar, state: LadderState
) -> tuple[list[tuple[int, Level, timedelta]], timedelta]:
    """The effective levels with their business-time offsets from the anchor, and the length
    of one round."""
    # A "day" is the area's working day even for critical blockers: they count every hour,
    # but "1d" still means as many hours as a working day has.
    day = calendar.day_length
    levels = effective_levels(policy, state.severity)
    raw: list[tuple[int, Level, timedelta]] = []
    for number, level in levels:
        offset = level.after.business(day)
        if raw and offset <= raw[-1][2]:
            # Checked against another day length than this area's (the workspace default).
            offset = raw[-1][2] + timedelta(minutes=1)
        raw.append((number, level, offset))
    shift = timedelta(0)
    if state.acknowledged or state.severity == BlockerSeverity.CRITICAL:
        shift = raw[0][2]  # the first effective level fires at the anchor
    shifted = [(number, level, offset - shift) for number, level, offset in raw]
    length = raw[-1][2]
    if shift == timedelta(0) and shifted[0][2] == timedelta(0):
        # The first level is immediate: wait as long as the last gap before repeating.
        gap = shifted[-1][2] - shifted[-2][2] if len(shifted) > 1 else DEFAULT_REPEAT_GAP
        length += gap
    return shifted, length


def steps(policy: Policy, calendar: BusinessCalendar, state: LadderState) -> Iterator[Step]:
    """Every step of every round after the current position, in order."""
    clock = clock_for(calendar, state.severity)
    levels, length = offsets(policy, calendar, state)
    for round_ in range(policy.repeat + 1):
        if round_ < state.round:
            continue
        for number, level, offset in levels:
            if (round_, number) <= (state.round, state.level):
                continue
            due = clock.add(state.anchor, round_ * length + offset)
            if state.snoozed_until is not None and due < state.snoozed_until:
                due = state.snoozed_until
            yield Step(round_, number, level, due)


def next_step(policy: Policy, calendar: BusinessCalendar, state: LadderState) -> Step | None:
    """The next step to fire, or None when the ladder is over."""
    return next(steps(policy, calendar, state), None)


def due(
    policy: Policy, calendar: BusinessCalendar, state: LadderState, now: datetime
) -> Firing | None:
    """The step to fire at ``now``: the highest one that is due, or None if none is."""
    last: Step | None = None
    count = 0
    for step in steps(policy, calendar, state):
        if step.due > now:
            break
        last = step
        count += 1
    if last is None:
        return None
    delayed = count > 1 or now - last.due > DELAY_TOLERANCE
    return Firing(last, delayed=delayed, skipped=count - 1)
