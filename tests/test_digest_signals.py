"""Each signal fires on the numbers its rule names, not one step short of them, and says which
numbers fired it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.features.digest.figures import (
    BlockerFigures,
    PulseFigures,
    Scope,
    StandupFigures,
    TeamFigures,
    Trend,
    weeks_before,
)
from bot.features.digest.signals import (
    participation_down,
    pulse_and_blockers,
    signals,
    stuck_dependencies,
)

END = datetime(2026, 3, 30, 7, tzinfo=UTC)
NONE5: tuple[float | None, ...] = (None,) * 5


def blockers(open_at_end: tuple[float | None, ...], pairs: tuple = ()) -> BlockerFigures:
    zero = Trend((0.0,) * 5)
    return BlockerFigures(
        opened=zero, resolved=zero, escalated=zero, open_at_end=Trend(open_at_end),
        median_hours_to_resolve=None, oldest=(), dependencies=(),
        pairs_by_week=pairs or (frozenset(),) * 5,
    )  # fmt: skip


def standups(
    rates: tuple[float | None, ...], asked: int = 30, answered: int = 10
) -> StandupFigures:
    return StandupFigures(
        asked=asked, answered=answered, rate=Trend(rates), asked_by_week=(), answered_by_week=(),
        silences=(), members=(), days=(), cells=(),
    )  # fmt: skip


def team(
    pulse: tuple[float | None, ...] = NONE5,
    open_at_end: tuple[float | None, ...] = (0.0,) * 5,
    rates: tuple[float | None, ...] = NONE5,
    pairs: tuple = (),
) -> TeamFigures:
    return TeamFigures(
        scope=Scope(1, "standup", 1, "Daily"),
        weeks=tuple(weeks_before(END, "UTC")),
        standups=standups(rates),
        blockers=blockers(open_at_end, pairs),
        pulse=PulseFigures(questions=(), index=Trend(pulse), held_back=0),
        kudos=None,
    )


@pytest.mark.parametrize(
    ("pulse", "open_at_end", "fires"),
    [
        ((4.0, 4.0, 4.0, 3.9, 3.5), (5, 5, 10, 11, 13), True),  # down 0.5, blockers +30%
        ((4.0, 4.0, 4.0, 3.9, 3.6), (5, 5, 10, 11, 13), False),  # down 0.4 only
        ((4.0, 4.0, 4.0, 3.9, 3.5), (5, 5, 10, 11, 12), False),  # blockers +20% only
        ((4.0, 4.0, 4.0, 4.5, 3.5), (5, 5, 0, 4, 13), False),  # no open blockers to compare
        ((4.0, 4.0, None, 3.9, 3.4), (5, 10, 10, 11, 13), True),  # two weeks back: 4.0
        ((4.0, 4.0, 4.0, 3.9, None), (5, 5, 10, 11, 20), False),  # no pulse this week
    ],
)
def test_pulse_down_while_open_blockers_rose(
    pulse: tuple[float | None, ...], open_at_end: tuple[float, ...], fires: bool
) -> None:
    fired = pulse_and_blockers(team(pulse, tuple(map(float, open_at_end))))
    assert (fired is not None) == fires
    if fired is not None:
        numbers = dict(fired.numbers)
        assert numbers["pulse_now"] == pulse[-1] and numbers["open_now"] == open_at_end[-1]
        assert "Pulse down" in fired.text and "open blockers rose" in fired.text


def test_the_pulse_signal_says_its_numbers() -> None:
    fired = pulse_and_blockers(team((4.0, 4.0, 4.0, 3.9, 3.5), (5.0, 5.0, 10.0, 11.0, 13.0)))
    assert fired is not None
    assert fired.text == (
        "Pulse down 0.5 over two weeks (4.0 to 3.5) while open blockers rose 30% (10 to 13)."
    )


@pytest.mark.parametrize(
    ("rates", "fires"),
    [
        ((0.9, 0.9, 0.9, 0.9, 0.6), True),  # exactly two thirds of 0.9
        ((0.9, 0.9, 0.9, 0.9, 0.61), False),
        ((0.9, None, 0.6, None, 0.5), True),  # mean of the weeks there are: 0.75
        ((None, None, None, None, 0.1), False),  # nothing to compare with
        ((0.9, 0.9, 0.9, 0.9, None), False),  # nobody asked this week
        ((0.0, 0.0, 0.0, 0.0, 0.0), False),
    ],
)
def test_participation_down_a_third(rates: tuple[float | None, ...], fires: bool) -> None:
    fired = participation_down(team(rates=rates))
    assert (fired is not None) == fires
    if fired is not None:
        assert dict(fired.numbers)["rate_now"] == rates[-1]
        assert f"{round(rates[-1] * 100)}% this week" in fired.text  # type: ignore[operator]


def test_a_dependency_pair_blocked_three_weeks_running() -> None:
    pair, other = ("Daily", "Labeling"), ("Data pipeline", "Labeling")
    weeks = (
        frozenset(),
        frozenset({other}),
        frozenset({pair, other}),
        frozenset({pair}),
        frozenset({pair, other}),
    )
    fired = stuck_dependencies(team(pairs=weeks))
    assert [s.text for s in fired] == [
        "Daily has been blocked on Labeling for 3 weeks running (a dependency open at the end "
        "of each of the last 3 weeks)."
    ]
    two_weeks = (frozenset(),) * 3 + (frozenset({pair}),) * 2
    assert stuck_dependencies(team(pairs=two_weeks)) == []
    gap = (frozenset({pair}),) * 2 + (frozenset(),) + (frozenset({pair}),) * 2
    assert stuck_dependencies(team(pairs=gap)) == []


def test_all_rules_together_and_none() -> None:
    quiet = team()
    assert signals(quiet) == []
    loud = team(
        pulse=(4.0, 4.0, 4.0, 3.9, 3.0),
        open_at_end=(1.0, 1.0, 2.0, 2.0, 4.0),
        rates=(0.8, 0.8, 0.8, 0.8, 0.2),
        pairs=(frozenset(),) * 2 + (frozenset({("Daily", "Ops")}),) * 3,
    )
    assert [s.rule for s in signals(loud)] == ["pulse-blockers", "participation", "dependency"]


def test_a_section_that_is_off_fires_nothing() -> None:
    figures = team()
    off = TeamFigures(figures.scope, figures.weeks, None, None, None, None)
    assert signals(off) == []
    assert date(2026, 3, 30) == END.date()
