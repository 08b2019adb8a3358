"""A milestone's date as people type it, read as a calendar day in the milestone's zone, and
the countdown days (``14,7,1``).

Accepted: ``2027-01-15``, ``15 Jan`` / ``15 January [2027]``, ``Jan 15 [2027]`` (a comma and
``th`` allowed), ``today``, ``tomorrow``, a weekday (``friday``: the next one, never today),
``in 3 days``, ``in 3 weeks``, ``in 2 months`` (``in a week``). A day and month without a year
is the next such day: ``15 Jan`` typed in December is January next year.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from bot.errors import UserError

ACCEPTED = (
    '2027-01-15, "15 Jan", "Jan 15 2027", today, tomorrow, a weekday (friday), '
    '"in 3 days", "in 3 weeks" or "in 2 months"'
)
MAX_AHEAD_YEARS = 10
MAX_COUNTDOWNS = 10
MAX_COUNTDOWN_DAYS = 365
COUNTDOWN_HELP = (
    "The countdown is days before the date, 1 to 365, separated by commas, e.g. "
    "`--countdown 14,7,1` (`--countdown none` for no countdown)."
)

_MONTHS = {
    name.lower(): n
    for n in range(1, 13)
    for name in (calendar.month_name[n], calendar.month_abbr[n])
}
_MONTHS["sept"] = 9
_WEEKDAYS = {calendar.day_name[n].lower(): n for n in range(7)} | {
    calendar.day_abbr[n].lower(): n for n in range(7)
}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?(?:,?\s+(\d{4}))?$")
_MONTH_DAY = re.compile(r"^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")
_IN = re.compile(r"^in\s+(\d{1,3}|a|an|one)\s+(day|week|month)s?$")


def _clean(typed: str) -> str:
    return " ".join(typed.strip().strip("\"'").lower().replace(",", ", ").split()).replace(
        " ,", ","
    )


def parse_date(typed: str, today: date) -> date | None:
    """The day ``typed`` names (None when it is not one of the accepted forms); a
    :class:`UserError` for a form that names no real day (``2027-02-30``)."""
    words = _clean(typed)
    if not words:
        return None
    if words == "today":
        return today
    if words == "tomorrow":
        return today + timedelta(days=1)
    weekday = _WEEKDAYS.get(words.removeprefix("next "))
    if weekday is not None:
        ahead = (weekday - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead)
    if match := _IN.match(words):
        count = 1 if match.group(1) in ("a", "an", "one") else int(match.group(1))
        unit = match.group(2)
        if unit == "month":
            return _add_months(today, count)
        return today + timedelta(days=count * (7 if unit == "week" else 1))
    if match := _ISO.match(words):
        return _day(typed, int(match.group(1)), int(match.group(2)), int(match.group(3)))
    for pattern, day_first in ((_DAY_MONTH, True), (_MONTH_DAY, False)):
        match = pattern.match(words)
        if match is None:
            continue
        day_text, month_text = (
            (match.group(1), match.group(2)) if day_first else (match.group(2), match.group(1))
        )
        month = _MONTHS.get(month_text)
        if month is None:
            return None
        if match.group(3):
            return _day(typed, int(match.group(3)), month, int(day_text))
        found = _day(typed, today.year, month, int(day_text), leap_ok=True)
        if found is None or found < today:
            found = _day(typed, today.year + 1, month, int(day_text), leap_ok=True)
        if found is None:
            return _day(typed, _next_leap(today.year), month, int(day_text))
        return found
    return None


def _day(typed: str, year: int, month: int, day: int, *, leap_ok: bool = False) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        if leap_ok and month == 2 and day == 29:
            return None
        raise UserError(
            f'"{typed.strip()[:40]}" is not a day of the calendar (check the day and month); '
            f"type the date as {ACCEPTED}."
        ) from None


def _next_leap(year: int) -> int:
    year += 1
    while not calendar.isleap(year):
        year += 1
    return year


def _add_months(start: date, months: int) -> date:
    month = start.month - 1 + months
    year = start.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_date(typed: str, today: date, zone: str) -> date:
    """The milestone's date, checked: a real day, today or later (in ``zone``), and not absurdly
    far away; a :class:`UserError` that says the accepted forms otherwise."""
    found = parse_date(typed, today)
    if found is None:
        raise UserError(
            f'I can\'t read "{typed.strip()[:60]}" as a date. Type it as {ACCEPTED}.',
            field="date",
        )
    if found < today:
        raise UserError(
            f"{show_day(found)} is in the past (today is {show_day(today)} in {zone}); "
            "give a date from today on.",
            field="date",
        )
    if found.year > today.year + MAX_AHEAD_YEARS:
        raise UserError(
            f"{show_day(found)} is more than {MAX_AHEAD_YEARS} years away; give a nearer date.",
            field="date",
        )
    return found


def parse_countdown(typed: str) -> list[int]:
    """``14,7,1`` → ``[14, 7, 1]`` (largest first, each once); ``none`` → ``[]``."""
    words = typed.strip().strip("\"'").lower()
    if words in ("none", "off", "no"):
        return []
    parts = [p for p in re.split(r"[,\s]+", words) if p]
    days: set[int] = set()
    for part in parts:
        if not part.isdigit() or not 1 <= int(part) <= MAX_COUNTDOWN_DAYS:
            raise UserError(
                f'"{part[:20]}" is not a number of days. {COUNTDOWN_HELP}', field="countdown"
            )
        days.add(int(part))
    if not days:
        raise UserError(COUNTDOWN_HELP, field="countdown")
    if len(days) > MAX_COUNTDOWNS:
        raise UserError(
            f"At most {MAX_COUNTDOWNS} countdown days. {COUNTDOWN_HELP}", field="countdown"
        )
    return sorted(days, reverse=True)


def describe_countdown(days: list[int]) -> str:
    """``T-7 and T-1``; ``no countdown``."""
    if not days:
        return "no countdown"
    shown = [f"T-{d}" for d in sorted(days, reverse=True)]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def show_day(day: date) -> str:
    """``Fri 15 Jan 2027``."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def relative(day: date, today: date) -> str:
    """``today``, ``tomorrow``, ``in 5 days``, ``yesterday``, ``3 days ago``."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    if delta > 0:
        return f"in {delta} days"
    return f"{-delta} days ago"
