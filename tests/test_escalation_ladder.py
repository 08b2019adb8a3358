"""Escalation policies (parsing, validation, severity rules) and the pure ladder arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.features.blockers import ladder, policy
from bot.features.blockers.business_time import BusinessCalendar
from bot.features.blockers.ladder import LadderState
from bot.features.blockers.policy import DEFAULT_POLICY, Delay, PolicyError
from storage.models import BlockerSeverity

BERLIN = ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar("Europe/Berlin", country="DE")
H = timedelta(hours=1)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# -- policies -------------------------------------------------------------------------------


def test_the_default_policy_round_trips() -> None:
    data = DEFAULT_POLICY.to_json()
    assert data == {
        "levels": [
            {"target": "responsible", "after": "4h"},
            {"target": "accountable", "after": "1d"},
            {"target": "channel", "after": "2d"},
        ],
        "repeat": 0,
        "reack": "1d",
    }
    assert policy.parse(data) == DEFAULT_POLICY
    assert policy.parse(None) is DEFAULT_POLICY
    assert DEFAULT_POLICY.describe() == [
        "1. after 4 business hours: the area's Responsible",
        "2. after 1 business day: the area's Accountable",
        "3. after 2 business days: the area's channel",
        "An acknowledgement pauses escalation for 1 business day.",
    ]


def test_delays_and_targets() -> None:
    assert policy.parse_delay("30m", "x") == Delay(0, 30)
    assert policy.parse_delay(" 1d 4h ", "x") == Delay(1, 240)
    assert policy.parse_delay("90m", "x") == Delay(0, 90)
    assert str(Delay(1, 90)) == "1d 1h 30m"
    assert str(Delay(0, 0)) == "0m"
    assert Delay(1, 90).words() == "1 business day 1 hour 30 minutes"
    parsed = policy.parse_lines(
        "member:12 30m\nChannel:C0ABC 2h\nwebhook:3 1d\naccountable 2d", "2", "4h"
    )
    assert [lv.target for lv in parsed.levels] == [
        "member:12",
        "channel:C0ABC",
        "webhook:3",
        "accountable",
    ]
    assert [lv.kind for lv in parsed.levels] == ["member", "channel_id", "webhook", "accountable"]
    assert parsed.repeat == 2 and parsed.reack == Delay(0, 240)
    assert parsed.to_lines() == "member:12 30m\nchannel:C0ABC 2h\nwebhook:3 1d\naccountable 2d"
    assert policy.parse(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"levels": []}, "at least one level"),
        ({}, "at least one level"),
        ({"levels": [{"target": "responsible", "after": "-1h"}]}, '"-1h" is negative'),
        ({"levels": [{"target": "responsible", "after": "soon"}]}, "is not a delay"),
        ({"levels": [{"target": "boss", "after": "1h"}]}, 'unknown target "boss"'),
        ({"levels": [{"target": "member:abc", "after": "1h"}]}, 'needs a number after "member:"'),
        (
            {
                "levels": [
                    {"target": "responsible", "after": "4h"},
                    {"target": "accountable", "after": "4h"},
                ]
            },
            r"Level 2 \(4h\) must come after level 1 \(4h\)",
        ),
        (
            {
                "levels": [
                    {"target": "responsible", "after": "1d"},
                    {"target": "accountable", "after": "7h"},
                ]
            },
            "must come after level 1",
        ),
        ({"levels": [{"target": "responsible", "after": "1h"}], "repeat": 9}, "out of range"),
        (
            {"levels": [{"target": "responsible", "after": "1h"}], "repeat": "x"},
            "not a whole number",
        ),
        ({"levels": [{"target": "responsible", "after": "1h"}], "reack": "0m"}, "above zero"),
        ({"levels": [{"target": "responsible", "after": "1h"}], "when": 1}, "Unknown policy field"),
        (
            {"levels": [{"target": "responsible", "after": f"{n}h"} for n in range(1, 12)]},
            "at most 10",
        ),
    ],
)
def test_bad_policies_are_refused_with_what_to_fix(data: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy.parse(data)


def test_bad_form_lines() -> None:
    with pytest.raises(PolicyError, match="needs a target and a delay"):
        policy.parse_lines("responsible", "0", "1d")
    with pytest.raises(PolicyError, match="at least one level"):
        policy.parse_lines("  \n ", "0", "1d")
    # With 8-hour days 1d comes before 8h 30m; with the 9-hour days of an area, not.
    lines = "responsible 1d\naccountable 8h 30m"
    eight = policy.parse_lines(lines, "0", "1d")
    assert [lv.after for lv in eight.levels] == [Delay(1, 0), Delay(0, 510)]
    with pytest.raises(PolicyError, match="must come after"):
        policy.parse_lines(lines, "0", "1d", day_length=9 * H)


def test_severity_picks_the_levels() -> None:
    numbers = lambda sev: [n for n, _ in policy.effective_levels(DEFAULT_POLICY, sev)]  # noqa: E731
    assert numbers(BlockerSeverity.NORMAL) == [1, 2, 3]
    assert numbers(BlockerSeverity.HIGH) == [1, 2, 3]
    assert numbers(BlockerSeverity.CRITICAL) == [2, 3]
    assert numbers(BlockerSeverity.LOW) == [1]


# -- the ladder -----------------------------------------------------------------------------


def test_a_normal_ladder_in_business_time() -> None:
    opened = berlin(2026, 12, 4, 16)  # a Friday
    state = LadderState(anchor=opened)
    dues = [(s.level, s.due.astimezone(BERLIN)) for s in ladder.steps(DEFAULT_POLICY, CAL, state)]
    assert dues == [
        (1, berlin(2026, 12, 7, 12)),  # 4 business hours
        (2, berlin(2026, 12, 7, 16)),  # 1 business day (8 hours)
        (3, berlin(2026, 12, 8, 16)),  # 2 business days
    ]
    after_one = LadderState(anchor=opened, level=1)
    assert ladder.next_step(DEFAULT_POLICY, CAL, after_one).level == 2
    assert ladder.next_step(DEFAULT_POLICY, CAL, LadderState(anchor=opened, level=3)) is None
    assert ladder.due(DEFAULT_POLICY, CAL, state, berlin(2026, 12, 7, 11, 59)) is None
    firing = ladder.due(DEFAULT_POLICY, CAL, state, berlin(2026, 12, 7, 12, 0, 30))
    assert firing.step.level == 1 and not firing.delayed and firing.skipped == 0


def test_downtime_across_two_levels_fires_only_the_highest_once_delayed() -> None:
    state = LadderState(anchor=berlin(2026, 12, 4, 16))
    firing = ladder.due(DEFAULT_POLICY, CAL, state, berlin(2026, 12, 7, 16, 5))
    assert firing.step.level == 2 and firing.delayed and firing.skipped == 1
    # Having fired level 2, nothing is due until level 3.
    after = LadderState(anchor=state.anchor, level=2)
    assert ladder.due(DEFAULT_POLICY, CAL, after, berlin(2026, 12, 7, 16, 5)) is None
    # A single level fired very late is delayed too.
    late = ladder.due(DEFAULT_POLICY, CAL, state, berlin(2026, 12, 7, 13))
    assert late.step.level == 1 and late.delayed and late.skipped == 0


def test_repeats_run_the_ladder_again() -> None:
    twice = policy.parse({**DEFAULT_POLICY.to_json(), "repeat": 1})
    state = LadderState(anchor=berlin(2026, 12, 7, 9))
    got = [(s.round, s.level, s.due.astimezone(BERLIN)) for s in ladder.steps(twice, CAL, state)]
    # A round lasts 2 business days; the second starts with the Responsible 4h later.
    assert got == [
        (0, 1, berlin(2026, 12, 7, 13)),
        (0, 2, berlin(2026, 12, 7, 17)),
        (0, 3, berlin(2026, 12, 8, 17)),
        (1, 1, berlin(2026, 12, 9, 13)),
        (1, 2, berlin(2026, 12, 9, 17)),
        (1, 3, berlin(2026, 12, 10, 17)),
    ]
    resumed = LadderState(anchor=state.anchor, level=3, round=0)
    assert ladder.next_step(twice, CAL, resumed).position == (1, 1)


def test_critical_starts_at_the_second_level_at_once_and_ignores_business_hours() -> None:
    saturday_night = berlin(2026, 12, 5, 23)
    state = LadderState(anchor=saturday_night, severity=BlockerSeverity.CRITICAL)
    got = [(s.level, s.due) for s in ladder.steps(DEFAULT_POLICY, CAL, state)]
    # The Accountable at once, the channel one working day's length (8 hours) later.
    assert got == [(2, saturday_night), (3, saturday_night + 8 * H)]
    assert ladder.due(DEFAULT_POLICY, CAL, state, saturday_night).step.level == 2


def test_low_never_goes_past_the_first_level() -> None:
    state = LadderState(anchor=berlin(2026, 12, 7, 9), severity=BlockerSeverity.LOW)
    assert [s.level for s in ladder.steps(DEFAULT_POLICY, CAL, state)] == [1]
    far = ladder.due(DEFAULT_POLICY, CAL, state, berlin(2027, 1, 30, 12))
    assert far.step.level == 1
    assert (
        ladder.next_step(
            DEFAULT_POLICY,
            CAL,
            LadderState(anchor=state.anchor, level=1, severity=BlockerSeverity.LOW),
        )
        is None
    )


def test_an_acknowledgement_restarts_the_ladder_with_its_first_level_at_once() -> None:
    # Acknowledged Monday 10:00 with a 1-day pause: the ladder starts again Tuesday 10:00.
    resume = CAL.add(berlin(2026, 12, 7, 10), DEFAULT_POLICY.reack.business(CAL.day_length))
    assert resume == berlin(2026, 12, 8, 10)
    state = LadderState(anchor=resume, acknowledged=True)
    got = [(s.level, s.due.astimezone(BERLIN)) for s in ladder.steps(DEFAULT_POLICY, CAL, state)]
    assert got == [
        (1, berlin(2026, 12, 8, 10)),
        (2, berlin(2026, 12, 8, 14)),
        (3, berlin(2026, 12, 9, 14)),
    ]


def test_snooze_holds_every_step_until_it_ends() -> None:
    opened = berlin(2026, 12, 7, 9)
    until = berlin(2026, 12, 8, 12)
    state = LadderState(anchor=opened, snoozed_until=until)
    got = [(s.level, s.due) for s in ladder.steps(DEFAULT_POLICY, CAL, state)]
    assert got == [(1, until), (2, until), (3, berlin(2026, 12, 8, 17))]
    # At the end of the snooze only level 2 fires, and it is not "delayed".
    firing = ladder.due(DEFAULT_POLICY, CAL, state, until)
    assert firing.step.level == 2 and firing.skipped == 1


def test_an_immediate_first_level_repeats_after_the_last_gap() -> None:
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    only = policy.parse({"levels": [{"target": "responsible", "after": "0m"}], "repeat": 2})
    dues = [s.due for s in ladder.steps(only, BusinessCalendar(), LadderState(anchor=now))]
    assert dues == [now, now + H, now + 2 * H]
    two = policy.parse(
        {
            "levels": [
                {"target": "responsible", "after": "0m"},
                {"target": "accountable", "after": "2h"},
            ],
            "repeat": 1,
        }
    )
    dues = [s.due for s in ladder.steps(two, BusinessCalendar(), LadderState(anchor=now))]
    assert dues == [now, now + 2 * H, now + 4 * H, now + 6 * H]
