"""Business time: the hours an area works, in its own zone, without weekends and holidays.

An escalation step "after 4h" means four *business* hours: four hours in which the area is
open. A :class:`BusinessCalendar` knows when that is: the area's IANA zone, its working days
(ISO weekdays, 1 = Monday), its working hours (minutes after local midnight), the public
holidays of a country (and subdivision) from the ``holidays`` package, and custom dates.

Working hours are wall-clock times in the zone, so on a DST day a 00:00-06:00 window lasts
five or seven hours: the window is what the clock on the office wall says, and the arithmetic
counts the real hours in it. A start or end that falls in the spring-forward gap (02:30 on the
day clocks jump from 02:00 to 03:00) is read with the offset before the jump, and an ambiguous
time on the fall-back day as its first occurrence (``fold=0``).

All datetimes in and out are timezone-aware; results are in UTC (invariant 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import holidays

from bot.timezones import zone as _zone

if TYPE_CHECKING:
    from storage.raci import RaciArea

MINUTES_PER_DAY = 24 * 60
# A calendar whose every day is closed for this long (a typo in custom dates, a country whose
# every day is a holiday) is refused rather than searched forever.
_MAX_CLOSED_DAYS = 3 * 366


class CalendarError(ValueError):
    """A calendar that cannot work (bad hours, no working day, unknown country...)."""


@cache
def _country_holidays(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """The ``holidays`` table for the country, shared: it expands years lazily on lookup."""
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        known = holidays.list_supported_countries()
        if country.upper() in known and subdivision:
            subdivs = ", ".join(known[country.upper()][:30])
            raise CalendarError(
                f'Unknown subdivision "{subdivision}" for {country.upper()}; try one of {subdivs}'
            ) from exc
        raise CalendarError(
            f'Unknown holiday country "{country}"; use an ISO 3166 code such as DE, US, IN, AU'
        ) from exc


def check_holidays(country: str | None, subdivision: str | None) -> None:
    """Raise :class:`CalendarError` with a clear message for an unknown country/subdivision."""
    if country:
        _country_holidays(country.upper(), subdivision or None)
    elif subdivision:
        raise CalendarError("A holiday subdivision needs a country too (e.g. DE and BY)")


def parse_custom_dates(values: Iterable[str]) -> frozenset[date]:
    dates = set()
    for value in values:
        try:
            dates.add(date.fromisoformat(value.strip()))
        except ValueError as exc:
            raise CalendarError(f'Bad date "{value}"; write it as YYYY-MM-DD') from exc
    return frozenset(dates)


@dataclass(frozen=True)
class BusinessCalendar:
    """When an area works. ``start_minute``/``end_minute`` are minutes after local midnight
    (540 and 1020 for 09:00-17:00; ``end_minute`` may be 1440, midnight at the end of the day).
    ``custom`` holds extra closed dates (ISO strings or dates)."""

    zone: str = "UTC"
    work_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60
    country: str | None = None
    subdivision: str | None = None
    custom: frozenset[date] = field(default_factory=frozenset)

    def __init__(
        self,
        zone: str = "UTC",
        work_days: Iterable[int] = (1, 2, 3, 4, 5),
        start_minute: int = 9 * 60,
        end_minute: int = 17 * 60,
        country: str | None = None,
        subdivision: str | None = None,
        custom: Iterable[str | date] = (),
    ) -> None:
        days = frozenset(int(day) for day in work_days)
        if not days:
            raise CalendarError("Pick at least one working day")
        if not days <= set(range(1, 8)):
            raise CalendarError("Working days are ISO weekdays: 1 (Monday) to 7 (Sunday)")
        if not 0 <= start_minute < end_minute <= MINUTES_PER_DAY:
            raise CalendarError(
                "Working hours must start before they end, within one day (e.g. 09:00-17:00)"
            )
        try:
            _zone(zone)
        except Exception as exc:
            raise CalendarError(f'Unknown time zone "{zone}"') from exc
        country = country.upper() if country else None
        check_holidays(country, subdivision)
        dates = parse_custom_dates(v for v in custom if isinstance(v, str))
        dates |= {v for v in custom if isinstance(v, date)}
        object.__setattr__(self, "zone", zone)
        object.__setattr__(self, "work_days", days)
        object.__setattr__(self, "start_minute", start_minute)
        object.__setattr__(self, "end_minute", end_minute)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "subdivision", subdivision or None)
        object.__setattr__(self, "custom", frozenset(dates))

    @classmethod
    def for_area(cls, area: RaciArea) -> BusinessCalendar:
        return cls(
            zone=area.timezone or "UTC",
            work_days=area.work_days or (1, 2, 3, 4, 5),
            start_minute=area.day_start_minute,
            end_minute=area.day_end_minute,
            country=area.holiday_country,
            subdivision=area.holiday_subdivision,
            custom=area.custom_holidays or (),
        )

    def in_zone(self, zone: str) -> BusinessCalendar:
        """The same days, hours and holidays, read on the clocks of ``zone``: the area's working
        hours applied where a member lives (a notification waits for *their* 09:00)."""
        if zone == self.zone:
            return self
        _zone(zone)
        return replace(self, zone=zone)

    @property
    def day_length(self) -> timedelta:
        """One business day, for policies that count in days ("1d")."""
        return timedelta(minutes=self.end_minute - self.start_minute)

    def is_working_day(self, day: date) -> bool:
        if day.isoweekday() not in self.work_days or day in self.custom:
            return False
        return not (self.country and day in _country_holidays(self.country, self.subdivision))

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The open hours of a local ``day`` in UTC, or None on a closed day."""
        if not self.is_working_day(day):
            return None
        return self._wall(day, self.start_minute), self._wall(day, self.end_minute)

    def _wall(self, day: date, minute: int) -> datetime:
        naive = datetime.combine(day, time()) + timedelta(minutes=minute)
        # fold=0: a gap time reads with the offset before the jump; an ambiguous one is first.
        return naive.replace(tzinfo=_zone(self.zone)).astimezone(UTC)

    def _windows(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open windows ending after ``at``, in order (the one containing it first)."""
        day = _aware(at).astimezone(_zone(self.zone)).date() - timedelta(days=1)
        closed = 0
        while True:
            window = self.window(day)
            day += timedelta(days=1)
            if window is None or window[1] <= window[0]:
                closed += 1
                if closed > _MAX_CLOSED_DAYS:
                    raise CalendarError("This calendar has no working day in three years")
                continue
            closed = 0
            if window[1] > at:
                yield window

    def is_open(self, at: datetime) -> bool:
        start, _end = next(self._windows(_aware(at)))
        return start <= at

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when open, else the start of the next open window (UTC)."""
        at = _aware(at)
        start, _end = next(self._windows(at))
        return max(start, at).astimezone(UTC)

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The moment ``delta`` of business time after ``start``. Zero gives ``start`` itself;
        otherwise time before the next opening does not count, and the result is never in a
        closed period unless it is the very end of an open window."""
        start = _aware(start).astimezone(UTC)
        if delta < timedelta(0):
            raise CalendarError("Business time cannot go backwards")
        if delta == timedelta(0):
            return start
        left = delta
        for window_start, window_end in self._windows(start):
            begin = max(window_start, start)
            available = window_end - begin
            if left <= available:
                return begin + left
            left -= available
        raise AssertionError("unreachable: _windows never ends")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        a, b = _aware(a), _aware(b)
        if b < a:
            return -self.between(b, a)
        total = timedelta(0)
        for window_start, window_end in self._windows(a):
            if window_start >= b:
                break
            total += min(window_end, b) - max(window_start, a)
        return total

    def describe(self) -> str:
        """One line for humans: "Mon-Fri 09:00-17:00 Europe/Berlin, holidays DE-BY"."""
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = sorted(self.work_days)
        if days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
            day_text = f"{names[days[0] - 1]}-{names[days[-1] - 1]}"
        else:
            day_text = ",".join(names[d - 1] for d in days)
        hours = f"{_hhmm(self.start_minute)}-{_hhmm(self.end_minute)}"
        text = f"{day_text} {hours} {self.zone}"
        if self.country:
            region = f"{self.country}-{self.subdivision}" if self.subdivision else self.country
            text += f", holidays {region}"
        if self.custom:
            text += f", {len(self.custom)} custom closed day(s)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "work_days": sorted(self.work_days),
            "start_minute": self.start_minute,
            "end_minute": self.end_minute,
            "country": self.country,
            "subdivision": self.subdivision,
            "custom": sorted(d.isoformat() for d in self.custom),
        }


ALWAYS_OPEN = BusinessCalendar(work_days=range(1, 8), start_minute=0, end_minute=MINUTES_PER_DAY)
"""Every minute counts: critical blockers ignore business hours."""


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("business time needs timezone-aware datetimes (UTC in storage)")
    return at
