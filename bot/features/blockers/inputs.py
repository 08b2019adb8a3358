"""What people type: the ``/blocker add`` line, a snooze's UNTIL, the ``stats`` line.

UNTIL is read in the member's time zone: ``tomorrow``, a weekday (``monday``: the next one,
never today), ``next business day`` (the blocker's area's working days and public holidays;
without an area Monday to Friday), optionally followed by ``HH:MM``; ``YYYY-MM-DD`` and
``YYYY-MM-DD HH:MM``; ``HH:MM`` (today); or a duration (``2h``, ``3d``, ``30m``). A day without a
time means the start of the working day (the area's, else 09:00). A time in the past is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import UserError
from bot.features.blockers.business_time import BusinessCalendar
from bot.features.blockers.lookup import local
from storage.raci import RaciArea

FLAGS = ("area", "waiting-on", "severity")
_FLAG = re.compile(r"(?:^|\s)--([A-Za-z][\w-]*)(?=\s|$)")
UNTIL_HELP = 'tomorrow, monday, next business day, YYYY-MM-DD, "YYYY-MM-DD HH:MM", HH:MM or 2h'
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class AddLine:
    text: str
    area: str | None = None
    waiting_on: str | None = None
    severity: str | None = None


def parse_add(line: str) -> AddLine:
    """``TEXT [--area AREA] [--waiting-on @who|AREA] [--severity S]``: a flag's value runs to
    the next flag (area names have spaces)."""
    matches = list(_FLAG.finditer(line))
    body = line[: matches[0].start()] if matches else line
    values: dict[str, str] = {}
    for n, match in enumerate(matches):
        name = match.group(1).lower()
        if name not in FLAGS:
            raise UserError(
                f"Unknown option --{match.group(1)}; use --area, --waiting-on or --severity."
            )
        end = matches[n + 1].start() if n + 1 < len(matches) else len(line)
        value = line[match.end() : end].strip().strip("\"'")
        if not value:
            raise UserError(f"--{name} needs a value, e.g. --{name} {_EXAMPLES[name]}.")
        if name in values:
            raise UserError(f"--{name} is given twice; give it once.")
        values[name] = value
    return AddLine(
        body.strip(), values.get("area"), values.get("waiting-on"), values.get("severity")
    )


_EXAMPLES = {"area": "data pipeline", "waiting-on": "@dana", "severity": "high"}


def calendar(area: RaciArea | None, zone: str) -> BusinessCalendar:
    """The area's business calendar; without an area, Monday to Friday 09:00-17:00 in
    ``zone``."""
    if area is not None:
        return BusinessCalendar.for_area(area)
    return BusinessCalendar(zone)


def _start_minute(area: RaciArea | None) -> int:
    return area.day_start_minute if area is not None else 540


def parse_until(raw: str, now: datetime, zone: str, area: RaciArea | None) -> datetime:
    value = " ".join(raw.strip().strip("\"'").lower().split())
    if not value:
        raise UserError(f"Say until when: {UNTIL_HELP}.")
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)[0]
        step = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}.get(
            unit, timedelta(weeks=1)
        )
        return _future(now + amount * step, now, zone)
    if value in ("next business day", "next working day", "business day"):
        cal = calendar(area, zone)
        tomorrow = datetime.combine(today + timedelta(days=1), time(0), tz).astimezone(UTC)
        return _future(cal.next_open(tomorrow), now, zone)
    day_word, _, clock = value.partition(" ")
    at: time | None = _clock(clock) if clock else None
    day: date | None = None
    if day_word == "today":
        day = today
    elif day_word == "tomorrow":
        day = today + timedelta(days=1)
    elif day_word in _WEEKDAYS or any(
        w.startswith(day_word) and len(day_word) >= 3 for w in _WEEKDAYS
    ):
        wanted = next(i for i, w in enumerate(_WEEKDAYS) if w.startswith(day_word))
        ahead = (wanted - today.weekday()) % 7 or 7
        day = today + timedelta(days=ahead)
    elif _CLOCK.match(day_word) and not clock:
        day, at = today, _clock(day_word)
    else:
        try:
            day = date.fromisoformat(day_word)
        except ValueError:
            raise UserError(
                f'I can\'t read "{raw.strip()}" as a time; use {UNTIL_HELP} (your time, {zone}).'
            ) from None
    if at is None:
        minute = _start_minute(area)
        at = time(minute // 60, minute % 60)
    return _future(datetime.combine(day, at, tz).astimezone(UTC), now, zone)


def _clock(raw: str) -> time:
    match = _CLOCK.match(raw.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise UserError(f'"{raw}" is not a time of day; use HH:MM, e.g. 14:30.')
    return time(int(match.group(1)), int(match.group(2)))


def _future(when: datetime, now: datetime, zone: str) -> datetime:
    when = when.replace(microsecond=0)
    if when <= now:
        raise UserError(
            f"{local(when, zone)} ({zone}) is in the past; snooze until a later time "
            f"({UNTIL_HELP})."
        )
    if when - now > timedelta(days=366):
        raise UserError("Snooze for a year at most.")
    return when


@dataclass(frozen=True)
class StatsLine:
    area: str | None
    weeks: int


def parse_stats(line: str | None) -> StatsLine:
    line = (line or "").strip()
    weeks = 4
    match = re.search(r"(?:^|\s)--weeks(?:\s+|=)(\S+)", line)
    if match:
        raw = match.group(1)
        if not raw.isdigit() or not 1 <= int(raw) <= 520:
            raise UserError(f'--weeks must be a whole number of weeks from 1 to 520, not "{raw}".')
        weeks = int(raw)
        line = (line[: match.start()] + line[match.end() :]).strip()
    if "--" in line:
        raise UserError("`/blocker stats` takes an area's name and --weeks N, nothing else.")
    return StatsLine(line or None, weeks)
