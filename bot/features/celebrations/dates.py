"""Birthdays and start dates: reading what members type, and when a yearly day falls.

A birthday is a month and a day (``03-14``): a year typed with it is refused, never stored.
The 29th of February is celebrated on the 28th in years without one (the last day of February
either way, and never skipped for three years).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger

from bot.errors import UserError
from bot.timezones import zone as zone_info

# What a celebration's day looks like locally: the post goes out at this time.
POST_AT = time(9, 0)
MONTHS = tuple(calendar.month_name)
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})$")
_WITH_YEAR = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$|^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$"
)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
OLDEST_START = date(1900, 1, 1)


def parse_birthday(raw: str) -> tuple[int, int]:
    """``MM-DD`` as (month, day); a :class:`UserError` that says what to type otherwise."""
    value = raw.strip()
    if _WITH_YEAR.match(value):
        raise UserError(
            "Only the month and the day, please: syncup never needs, stores or shows the year "
            "you were born. Try `/syncup birthday 03-14`."
        )
    found = _MONTH_DAY.match(value)
    if found is None:
        raise UserError(
            f'"{value}" is not a birthday: give the month and the day as MM-DD, e.g. '
            "`/syncup birthday 03-14` (or `off` to remove yours)."
        )
    month, day = int(found.group(1)), int(found.group(2))
    if not 1 <= month <= 12:
        raise UserError(
            f'"{value}": there is no month {month}. Give the month first, then the day '
            "(MM-DD), e.g. `/syncup birthday 03-14`."
        )
    longest = 29 if month == 2 else calendar.monthrange(2001, month)[1]
    if not 1 <= day <= longest:
        raise UserError(
            f'"{value}": {MONTHS[month]} has no day {day} (it has {longest} days). '
            "Give the month first, then the day (MM-DD)."
        )
    return month, day


def parse_start(raw: str, today: date) -> date:
    """``YYYY-MM-DD``, not after ``today``; a :class:`UserError` otherwise."""
    value = raw.strip()
    found = _ISO_DATE.match(value)
    example = "`/syncup started 2021-09-01`"
    if found is None:
        raise UserError(
            f'"{value}" is not a date: give the day you started as YYYY-MM-DD, e.g. {example} '
            "(or `off` to remove it)."
        )
    try:
        started = date(*(int(g) for g in found.groups()))
    except ValueError:
        raise UserError(f'"{value}" is not a real date. Example: {example}.') from None
    if started > today:
        raise UserError(
            f"{started.isoformat()} is in the future (today is {today.isoformat()}): give the "
            "day you started, once it has come."
        )
    if started < OLDEST_START:
        raise UserError(f"{started.isoformat()} is too long ago to be a start date.")
    return started


def day_in(year: int, month: int, day: int) -> date:
    """The day of ``month``/``day`` in ``year``: the 29th of February is the 28th in a year
    without one."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, month, day)


def describe_day(month: int, day: int) -> str:
    """``14 March``; never a year."""
    return f"{day} {MONTHS[month]}"


class YearlyTrigger(BaseTrigger):
    """09:00 (:data:`POST_AT`) in ``zone`` on ``month``/``day`` every year (see :func:`day_in`),
    not before the year ``first_year``."""

    def __init__(self, month: int, day: int, zone: str, first_year: int = 1) -> None:
        self.month, self.day = month, day
        self.zone = zone
        self.first_year = first_year

    def fire_time(self, year: int) -> datetime:
        local = datetime.combine(day_in(year, self.month, self.day), POST_AT, zone_info(self.zone))
        return local.astimezone(UTC)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        after = previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now
        year = max(self.first_year, after.astimezone(zone_info(self.zone)).year - 1)
        for candidate in range(year, year + 3):
            fire = self.fire_time(candidate)
            if fire >= after:
                return fire.astimezone(zone_info(self.zone))
        return None

    def __str__(self) -> str:
        return f"yearly {self.month:02d}-{self.day:02d} {POST_AT:%H:%M} {self.zone}"
