"""Business-time arithmetic: weekends, public holidays, custom dates and both DST transitions,
in Europe/Berlin, America/New_York, Australia/Sydney and Asia/Kolkata."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.features.blockers.business_time import (
    ALWAYS_OPEN,
    BusinessCalendar,
    CalendarError,
)
from storage.raci import RaciArea

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")
H = timedelta(hours=1)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def test_friday_afternoon_in_berlin_continues_on_monday() -> None:
    cal = BusinessCalendar("Europe/Berlin", country="DE")
    friday = local(BERLIN, 2026, 12, 4, 16)
    # One hour on Friday (16-17), the rest from 09:00 on Monday.
    assert cal.add(friday, 4 * H) == local(BERLIN, 2026, 12, 7, 12)
    assert cal.add(friday, 3 * H) == local(BERLIN, 2026, 12, 7, 11)
    # The "Monday 11:00" for 4 hours holds for a 09:00-18:00 day.
    long_day = BusinessCalendar("Europe/Berlin", start_minute=540, end_minute=1080)
    assert long_day.add(friday, 4 * H) == local(BERLIN, 2026, 12, 7, 11)
    assert cal.between(friday, local(BERLIN, 2026, 12, 7, 12)) == 4 * H
    assert cal.add(friday, 4 * H).tzinfo == UTC


def test_christmas_in_berlin_skips_the_public_holidays() -> None:
    cal = BusinessCalendar("Europe/Berlin", country="DE")
    christmas_eve = local(BERLIN, 2026, 12, 24, 16)  # a Thursday
    # 25 and 26 December are holidays, then the weekend: Monday 28th.
    assert cal.add(christmas_eve, 4 * H) == local(BERLIN, 2026, 12, 28, 12)
    without_holidays = BusinessCalendar("Europe/Berlin")
    assert without_holidays.add(christmas_eve, 4 * H) == local(BERLIN, 2026, 12, 25, 12)
    assert not cal.is_open(local(BERLIN, 2026, 12, 25, 10))
    assert cal.next_open(local(BERLIN, 2026, 12, 25, 10)) == local(BERLIN, 2026, 12, 28, 9)
    # A whole business week over the holidays: 24th + 28th-31st = five days, then New Year.
    assert cal.add(local(BERLIN, 2026, 12, 24, 9), 5 * cal.day_length) == local(
        BERLIN, 2026, 12, 31, 17
    )
    assert cal.add(local(BERLIN, 2026, 12, 24, 9), 5 * cal.day_length + H) == local(
        BERLIN, 2027, 1, 4, 10
    )


def test_a_subdivision_has_its_own_holidays() -> None:
    bavaria = BusinessCalendar("Europe/Berlin", country="DE", subdivision="BY")
    berlin = BusinessCalendar("Europe/Berlin", country="de", subdivision="BE")
    tuesday = local(BERLIN, 2027, 1, 5, 16)
    # Epiphany (6 January) is a holiday in Bavaria, not in Berlin.
    assert bavaria.add(tuesday, 2 * H) == local(BERLIN, 2027, 1, 7, 10)
    assert berlin.add(tuesday, 2 * H) == local(BERLIN, 2027, 1, 6, 10)
    assert berlin.country == "DE"


def test_custom_dates_are_closed() -> None:
    cal = BusinessCalendar("America/New_York", custom=["2026-06-12", date(2026, 6, 15)])
    thursday = local(NEW_YORK, 2026, 6, 11, 15)
    # Friday 12th and Monday 15th off: Tuesday.
    assert cal.add(thursday, 3 * H) == local(NEW_YORK, 2026, 6, 16, 10)
    assert "2 custom closed day(s)" in cal.describe()


def test_berlin_working_hours_across_both_dst_transitions() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    # Clocks go forward on Sunday 29 March 2026: Friday 16:00 CET + 4h = Monday 12:00 CEST.
    spring = cal.add(local(BERLIN, 2026, 3, 27, 16), 4 * H)
    assert spring == local(BERLIN, 2026, 3, 30, 12)
    assert spring == datetime(2026, 3, 30, 10, tzinfo=UTC)
    # And back on Sunday 25 October: Monday 12:00 CET is 11:00 UTC.
    autumn = cal.add(local(BERLIN, 2026, 10, 23, 16), 4 * H)
    assert autumn == datetime(2026, 10, 26, 11, tzinfo=UTC)
    assert cal.between(local(BERLIN, 2026, 3, 27, 9), local(BERLIN, 2026, 3, 30, 17)) == 16 * H


def test_hours_spanning_the_jump_are_shorter_or_longer_that_day() -> None:
    nights = BusinessCalendar(
        "Europe/Berlin", work_days=range(1, 8), end_minute=6 * 60, start_minute=0
    )
    spring_day = local(BERLIN, 2026, 3, 29, 0)
    assert nights.between(spring_day, local(BERLIN, 2026, 3, 29, 6)) == 5 * H
    # Six hours from midnight: the five of that night, then one the next.
    assert nights.add(spring_day, 6 * H) == local(BERLIN, 2026, 3, 30, 1)
    autumn_day = local(BERLIN, 2026, 10, 25, 0)
    assert nights.between(autumn_day, local(BERLIN, 2026, 10, 25, 6)) == 7 * H
    assert nights.add(autumn_day, 7 * H) == local(BERLIN, 2026, 10, 25, 6)


def test_new_york_early_shift_on_both_transitions() -> None:
    early = BusinessCalendar(
        "America/New_York", work_days=range(1, 8), start_minute=60, end_minute=240
    )
    # 8 March 2026: 02:00 becomes 03:00, the 01:00-04:00 shift lasts two hours.
    march = local(NEW_YORK, 2026, 3, 8, 1)
    assert early.between(march, local(NEW_YORK, 2026, 3, 8, 4)) == 2 * H
    assert early.add(march, 2 * H + timedelta(minutes=30)) == local(NEW_YORK, 2026, 3, 9, 1, 30)
    # 1 November 2026: 01:00-02:00 happens twice, the shift lasts four hours.
    november = local(NEW_YORK, 2026, 11, 1, 1)
    assert early.between(november, local(NEW_YORK, 2026, 11, 1, 4)) == 4 * H
    assert early.add(november, 4 * H) == datetime(2026, 11, 1, 9, tzinfo=UTC)


def test_new_york_thanksgiving_and_observed_independence_day() -> None:
    cal = BusinessCalendar("America/New_York", country="US")
    # 4 July 2026 is a Saturday, observed on Friday 3rd.
    assert cal.add(local(NEW_YORK, 2026, 7, 2, 16), 2 * H) == local(NEW_YORK, 2026, 7, 6, 10)
    # Thanksgiving, Thursday 26 November 2026.
    assert cal.add(local(NEW_YORK, 2026, 11, 25, 16), 2 * H) == local(NEW_YORK, 2026, 11, 27, 10)


def test_sydney_days_around_both_transitions_and_australia_day() -> None:
    always = BusinessCalendar(
        "Australia/Sydney", work_days=range(1, 8), start_minute=0, end_minute=1440
    )
    # Daylight saving ends on 5 April 2026 (25-hour day), starts on 4 October (23 hours).
    april = local(SYDNEY, 2026, 4, 5, 0)
    assert always.between(april, local(SYDNEY, 2026, 4, 6, 0)) == 25 * H
    october = local(SYDNEY, 2026, 10, 4, 0)
    assert always.between(october, local(SYDNEY, 2026, 10, 5, 0)) == 23 * H
    assert always.add(october, 23 * H) == local(SYDNEY, 2026, 10, 5, 0)
    nsw = BusinessCalendar("Australia/Sydney", country="AU", subdivision="NSW")
    # Australia Day, Monday 26 January 2026.
    assert nsw.add(local(SYDNEY, 2026, 1, 23, 16), 2 * H) == local(SYDNEY, 2026, 1, 27, 10)
    # Working hours across the October change, then Labour Day (Monday 5 October in NSW):
    # Friday 16:00 AEST + 2h = Tuesday 10:00 AEDT (UTC+11).
    assert nsw.add(local(SYDNEY, 2026, 10, 2, 16), 2 * H) == datetime(2026, 10, 5, 23, tzinfo=UTC)


def test_kolkata_has_no_dst_and_its_own_holidays() -> None:
    cal = BusinessCalendar("Asia/Kolkata", country="IN", start_minute=570, end_minute=1110)
    # Gandhi Jayanti, Friday 2 October 2026; 09:30-18:30 (a 9-hour day).
    assert cal.add(local(KOLKATA, 2026, 10, 1, 17, 30), 2 * H) == local(
        KOLKATA, 2026, 10, 5, 10, 30
    )
    assert cal.day_length == 9 * H
    assert cal.add(local(KOLKATA, 2026, 3, 27, 17), 4 * H) == local(KOLKATA, 2026, 3, 30, 12)


def test_a_sunday_to_thursday_week() -> None:
    cal = BusinessCalendar("Asia/Kolkata", work_days=[7, 1, 2, 3, 4])
    thursday = local(KOLKATA, 2026, 6, 11, 16)
    assert cal.add(thursday, 2 * H) == local(KOLKATA, 2026, 6, 14, 10)
    assert cal.describe().startswith("Mon,Tue,Wed,Thu,Sun 09:00-17:00")


def test_add_and_between_agree_everywhere() -> None:
    """between(start, add(start, d)) == d for random starts and deltas in four zones."""
    rng = random.Random(12)
    calendars = [
        BusinessCalendar("Europe/Berlin", country="DE"),
        BusinessCalendar("America/New_York", country="US", start_minute=60, end_minute=240),
        BusinessCalendar(
            "Australia/Sydney", work_days=range(1, 8), start_minute=0, end_minute=1440
        ),
        BusinessCalendar("Asia/Kolkata", country="IN", work_days=[1, 3, 5]),
    ]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(400):
        cal = rng.choice(calendars)
        start = base + timedelta(minutes=rng.randrange(0, 366 * 24 * 60))
        delta = timedelta(minutes=rng.randrange(1, 60 * 60))
        end = cal.add(start, delta)
        assert end > start
        assert cal.between(start, end) == delta
        assert cal.between(end, start) == -delta
        # The result is open, or the very end of a window.
        assert cal.is_open(end) or cal.is_open(end - timedelta(minutes=1))


def test_is_open_and_next_open() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    saturday = local(BERLIN, 2026, 12, 5, 12)
    assert not cal.is_open(saturday)
    assert cal.next_open(saturday) == local(BERLIN, 2026, 12, 7, 9)
    tuesday = local(BERLIN, 2026, 12, 8, 12)
    assert cal.is_open(tuesday)
    assert cal.next_open(tuesday) == tuesday
    assert not cal.is_open(local(BERLIN, 2026, 12, 8, 17))
    assert cal.is_open(local(BERLIN, 2026, 12, 8, 9))
    assert cal.add(tuesday, timedelta(0)) == tuesday
    assert ALWAYS_OPEN.add(saturday, 5 * H) == saturday + 5 * H


def test_in_zone_reads_the_same_hours_on_another_clock() -> None:
    cal = BusinessCalendar("Europe/Berlin")
    in_new_york = cal.in_zone("America/New_York")
    # 15:00 in Berlin is 09:00 in New York: open in both.
    at = local(BERLIN, 2026, 12, 8, 16)
    assert cal.is_open(at)
    assert in_new_york.is_open(at)
    early = local(BERLIN, 2026, 12, 8, 10)
    assert not in_new_york.is_open(early)
    assert in_new_york.next_open(early) == local(NEW_YORK, 2026, 12, 8, 9)
    assert cal.in_zone("Europe/Berlin") is cal


def test_for_area_reads_the_area() -> None:
    area = RaciArea(
        name="Data",
        key="data",
        timezone="Europe/Berlin",
        work_days=[1, 2, 3, 4],
        day_start_minute=480,
        day_end_minute=960,
        holiday_country="DE",
        holiday_subdivision="BY",
        custom_holidays=["2026-12-31"],
    )
    cal = BusinessCalendar.for_area(area)
    assert (
        cal.describe()
        == "Mon-Thu 08:00-16:00 Europe/Berlin, holidays DE-BY, 1 custom closed day(s)"
    )
    assert cal.to_dict()["custom"] == ["2026-12-31"]
    assert cal.day_length == 8 * H


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"work_days": []}, "at least one working day"),
        ({"work_days": [0, 1]}, "ISO weekdays"),
        ({"start_minute": 1020, "end_minute": 540}, "start before they end"),
        ({"end_minute": 1500}, "within one day"),
        ({"zone": "Europe/Berln"}, 'Unknown time zone "Europe/Berln"'),
        ({"country": "XX"}, 'Unknown holiday country "XX"'),
        ({"country": "DE", "subdivision": "ZZ"}, 'Unknown subdivision "ZZ" for DE'),
        ({"subdivision": "BY"}, "needs a country"),
        ({"custom": ["2026-13-01"]}, 'Bad date "2026-13-01"'),
    ],
)
def test_bad_calendars_are_refused_with_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar(**kwargs)


def test_bad_arguments() -> None:
    cal = BusinessCalendar()
    with pytest.raises(CalendarError, match="backwards"):
        cal.add(datetime(2026, 1, 1, tzinfo=UTC), -H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(datetime(2026, 1, 1), H)
    closed_forever = BusinessCalendar(work_days=[1], custom=[])
    # A calendar that is open one day a week still works; one closed for years is refused.
    assert closed_forever.add(datetime(2026, 1, 1, tzinfo=UTC), H) == datetime(
        2026, 1, 5, 10, tzinfo=UTC
    )
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(200)]
    never = BusinessCalendar(work_days=[1], custom=mondays)
    with pytest.raises(CalendarError, match="no working day"):
        never.add(datetime(2026, 1, 1, tzinfo=UTC), H)
