"""Escalation timers at their edges (issue 17, the gaps mutation testing found): business time
whatever the server's own zone, the working window lost in a spring-forward gap, the exact
three-year limit on a closed calendar, the words an operator reads about a calendar; the
ladder's boundaries; the sweep's timeline entries, held DMs and stopping rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.features.blockers import ladder, policy
from bot.features.blockers.business_time import BusinessCalendar, CalendarError
from bot.features.blockers.ladder import LadderState
from bot.features.blockers.policy import DEFAULT_POLICY
from storage.raci import RaciArea

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
THREE_YEARS = 3 * 366  # closed days a calendar may have in a row before it is refused


# -- business time ----------------------------------------------------------------------------


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set the zone of the process itself (``TZ``), as a server configured elsewhere has it."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_business_time_is_in_utc_and_the_areas_zone_whatever_the_servers_zone(
    host_zone: Callable[[str], None],
) -> None:
    # A server in Kiritimati (UTC+14) is more than a day ahead of Pago Pago (UTC-11).
    host_zone("Pacific/Kiritimati")
    berlin = BusinessCalendar("Europe/Berlin")
    saturday = datetime(2026, 12, 5, 12, tzinfo=BERLIN)
    monday_9 = datetime(2026, 12, 7, 8, tzinfo=UTC)
    for result, expected in [
        (berlin.add(saturday, H), monday_9 + H),  # from the window's start
        (berlin.add(saturday, timedelta(0)), saturday),  # the start itself
        (berlin.add(datetime(2026, 12, 7, 10, tzinfo=BERLIN), H), monday_9 + 2 * H),
        (berlin.next_open(saturday), monday_9),
        (berlin.next_open(datetime(2026, 12, 7, 12, tzinfo=BERLIN)), monday_9 + 3 * H),
    ]:
        assert result == expected
        assert result.utcoffset() == timedelta(0), result
    # An evening shift in Pago Pago, 18:00-24:00: at 23:30 there (00:30 two days later on the
    # server's clock) it is under way, and half an hour of it is left.
    evening = BusinessCalendar("Pacific/Pago_Pago", start_minute=18 * 60, end_minute=24 * 60)
    late = datetime(2026, 12, 8, 23, 30, tzinfo=ZoneInfo("Pacific/Pago_Pago"))
    assert evening.is_open(late)
    assert evening.next_open(late) == late
    assert evening.add(late, timedelta(minutes=30)) == datetime(2026, 12, 9, 11, tzinfo=UTC)


def test_a_working_window_lost_in_the_spring_forward_gap_is_no_opening() -> None:
    # 02:00-03:00 every day in Berlin: on 29 March 2026 02:00 does not exist and the window
    # has no length (02:00 read before the jump is 01:00 UTC, and so is 03:00 after it).
    gap = BusinessCalendar("Europe/Berlin", work_days=range(1, 8), start_minute=120, end_minute=180)
    sunday_night = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert not gap.is_open(sunday_night)
    # The next opening is Monday's 02:00 (CEST, 00:00 UTC), not the vanished Sunday one.
    assert gap.next_open(sunday_night) == datetime(2026, 3, 30, 0, tzinfo=UTC)
    assert gap.add(sunday_night, H) == datetime(2026, 3, 30, 1, tzinfo=UTC)
    assert gap.between(sunday_night, datetime(2026, 3, 30, 0, tzinfo=UTC)) == timedelta(0)


def test_no_business_time_passes_between_a_moment_and_itself() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    for at in (datetime(2026, 12, 8, 12, tzinfo=BERLIN), datetime(2026, 12, 5, 12, tzinfo=BERLIN)):
        assert cal.between(at, at) == timedelta(0)


def _closed(first: date, days: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(days)]


def test_a_closure_of_exactly_three_years_is_waited_out_and_one_day_more_is_refused() -> None:
    """Closed days count in a row from the day before the start (in the area's zone); a
    calendar with 3 x 366 of them is searched through, one with a day more is refused."""
    start = datetime(2026, 1, 10, 12, tzinfo=UTC)  # in a closure that began days before
    opened = date(2026, 1, 9) + timedelta(days=THREE_YEARS)  # the first day open again
    every_day = range(1, 8)
    closure = _closed(date(2026, 1, 4), (opened - date(2026, 1, 4)).days)
    cal = BusinessCalendar(work_days=every_day, custom=closure)
    assert cal.add(start, H) == datetime.combine(opened, datetime.min.time(), UTC) + 10 * H
    assert cal.next_open(start).date() == opened
    longer = BusinessCalendar(work_days=every_day, custom=[*closure, opened])
    with pytest.raises(CalendarError) as refused:
        longer.add(start, H)
    assert str(refused.value) == "This calendar has no working day in three years"


def test_the_three_years_start_again_after_every_open_day() -> None:
    # Open on Friday 9 January, then closed for exactly three years, then open again: a delay
    # longer than Friday's hours is counted on across the closure.
    friday = date(2026, 1, 9)
    opened = friday + timedelta(days=THREE_YEARS + 1)
    cal = BusinessCalendar(
        work_days=range(1, 8), custom=_closed(friday + timedelta(days=1), THREE_YEARS)
    )
    start = datetime(2026, 1, 9, 9, tzinfo=UTC)
    assert cal.add(start, 9 * H) == datetime.combine(opened, datetime.min.time(), UTC) + 10 * H
    assert cal.between(start, cal.add(start, 9 * H)) == 9 * H


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"work_days": []}, "Pick at least one working day"),
        ({"work_days": [7, 8]}, "Working days are ISO weekdays: 1 (Monday) to 7 (Sunday)"),
        (
            {"start_minute": 540, "end_minute": 540},
            "Working hours must start before they end, within one day (e.g. 09:00-17:00)",
        ),
        ({"subdivision": "BY"}, "A holiday subdivision needs a country too (e.g. DE and BY)"),
    ],
)
def test_a_bad_calendar_is_refused_with_these_words(kwargs: dict, message: str) -> None:
    with pytest.raises(CalendarError) as refused:
        BusinessCalendar(**kwargs)
    assert str(refused.value) == message


def test_the_arithmetic_refuses_to_go_backwards_or_guess_a_zone_with_these_words() -> None:
    cal = BusinessCalendar()
    with pytest.raises(CalendarError) as backwards:
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), -H)
    assert str(backwards.value) == "Business time cannot go backwards"
    with pytest.raises(ValueError) as naive:
        cal.is_open(datetime(2026, 1, 1))
    assert str(naive.value) == "business time needs timezone-aware datetimes (UTC in storage)"


def test_an_area_without_its_own_zone_or_days_works_monday_to_friday_in_utc() -> None:
    area = RaciArea(name="Ops", key="ops", day_start_minute=540, day_end_minute=1020)
    cal = BusinessCalendar.for_area(area)
    assert cal.describe() == "Mon-Fri 09:00-17:00 UTC"
    assert cal.is_open(datetime(2026, 12, 7, 9, tzinfo=UTC))  # a Monday
    assert not cal.is_open(datetime(2026, 12, 5, 12, tzinfo=UTC))  # a Saturday
    area.timezone, area.work_days = "", []
    assert BusinessCalendar.for_area(area) == cal


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"work_days": [5, 6]}, "Fri,Sat 09:00-17:00 UTC"),
        ({"work_days": [1, 2, 3]}, "Mon-Wed 09:00-17:00 UTC"),
        ({"work_days": [1, 2, 3, 4, 5, 6]}, "Mon-Sat 09:00-17:00 UTC"),
        ({"work_days": [1, 5], "end_minute": 1440}, "Mon,Fri 09:00-24:00 UTC"),
        (
            {"zone": "Europe/Berlin", "country": "DE"},
            "Mon-Fri 09:00-17:00 Europe/Berlin, holidays DE",
        ),
    ],
)
def test_a_calendar_describes_itself_in_one_line(kwargs: dict, text: str) -> None:
    assert BusinessCalendar(**kwargs).describe() == text


def test_a_calendar_as_a_dict_names_every_setting() -> None:
    cal = BusinessCalendar(
        "Europe/Berlin",
        work_days=[4, 1, 2],
        start_minute=480,
        end_minute=960,
        country="de",
        subdivision="BY",
        custom=["2026-12-31", date(2026, 12, 30)],
    )
    assert cal.to_dict() == {
        "zone": "Europe/Berlin",
        "work_days": [1, 2, 4],
        "start_minute": 480,
        "end_minute": 960,
        "country": "DE",
        "subdivision": "BY",
        "custom": ["2026-12-30", "2026-12-31"],
    }


# -- the ladder ---------------------------------------------------------------------------------

UTC_DAY = BusinessCalendar()  # Mon-Fri 09:00-17:00 UTC
MONDAY_9 = datetime(2026, 12, 7, 9, tzinfo=UTC)


def _policy(*afters: str, repeat: int = 0) -> policy.Policy:
    targets = ["responsible", "accountable", "channel", "member:7"]
    return policy.parse(
        {
            "levels": [
                {"target": t, "after": a}
                for t, a in zip(targets[: len(afters)], afters, strict=True)
            ],
            "repeat": repeat,
        }
    )


@pytest.mark.parametrize("second", ["9h", "8h 30m"])
def test_a_level_that_a_longer_working_day_puts_at_or_before_the_one_above_fires_a_minute_after_it(
    second: str,
) -> None:
    # Checked with 8-hour days (a workspace default), "1d" comes before 9h and 8h 30m; in an
    # area working 09:00-18:00 a day is 9 hours, and the second level keeps its place a minute
    # later rather than firing with the first (which would then never be sent).
    rule = _policy("1d", second)
    long_days = BusinessCalendar(start_minute=540, end_minute=1080)
    state = LadderState(anchor=MONDAY_9)
    dues = [(s.level, s.due) for s in ladder.steps(rule, long_days, state)]
    # 1d: Monday 18:00, the end of the day; a minute later: Tuesday 09:01.
    assert dues == [(1, MONDAY_9 + 9 * H), (2, datetime(2026, 12, 8, 9, 1, tzinfo=UTC))]
    firing = ladder.due(rule, long_days, state, MONDAY_9 + 9 * H)
    assert firing.step.level == 1 and firing.skipped == 0


def test_an_immediate_first_level_of_three_repeats_after_the_last_gap() -> None:
    rule = _policy("0m", "1h", "3h", repeat=1)
    dues = [s.due - MONDAY_9 for s in ladder.steps(rule, UTC_DAY, LadderState(anchor=MONDAY_9))]
    # A round is 3 hours plus the last gap (2 hours) before the first level again.
    assert dues == [timedelta(0), H, 3 * H, 5 * H, 6 * H, 8 * H]


def test_a_ladder_resumes_in_a_later_round_where_it_stopped() -> None:
    rule = _policy("4h", "1d", repeat=2)
    state = LadderState(anchor=MONDAY_9, round=1, level=1)
    left = [(s.position, s.due) for s in ladder.steps(rule, UTC_DAY, state)]
    # A round is one business day: round 1 level 2 on Tuesday 17:00, round 2 on Wednesday.
    assert left == [
        ((1, 2), datetime(2026, 12, 8, 17, tzinfo=UTC)),
        ((2, 1), datetime(2026, 12, 9, 13, tzinfo=UTC)),
        ((2, 2), datetime(2026, 12, 9, 17, tzinfo=UTC)),
    ]
    assert ladder.next_step(rule, UTC_DAY, state).position == (1, 2)


def test_each_step_names_whom_it_pages() -> None:
    rule = _policy("1h", "2h", "3h", "4h")
    steps = list(ladder.steps(rule, UTC_DAY, LadderState(anchor=MONDAY_9)))
    assert [s.target for s in steps] == list(rule.levels)
    assert [s.target.target for s in steps] == ["responsible", "accountable", "channel", "member:7"]


def test_a_step_fired_ten_minutes_late_is_on_time_and_a_moment_more_is_delayed() -> None:
    state = LadderState(anchor=MONDAY_9)
    due_at = MONDAY_9 + 4 * H
    on_time = ladder.due(DEFAULT_POLICY, UTC_DAY, state, due_at + ladder.DELAY_TOLERANCE)
    assert ladder.DELAY_TOLERANCE == timedelta(minutes=10)
    assert on_time.step.level == 1 and not on_time.delayed
    late = ladder.due(
        DEFAULT_POLICY, UTC_DAY, state, due_at + ladder.DELAY_TOLERANCE + timedelta(microseconds=1)
    )
    assert late.step.level == 1 and late.delayed and late.skipped == 0
