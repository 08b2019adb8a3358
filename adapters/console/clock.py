"""The console's demo clock: real time plus an offset that only ever grows.

``/clock +2h`` (or ``+30m``, ``+1d``, ``+1h30m``), ``/clock 09:00`` (the next 09:00 in the acting
member's zone: today if still ahead, else tomorrow) and ``/clock 2026-03-08 09:00`` (in the
acting member's zone) move it forward. Moving it steps through every scheduled occurrence on the
way, in order, so a jump of a day shows each prompt of that day as if the time had passed with the
bot running, rather than as downtime (which the scheduler's missed-occurrence policy would skip).
After every step the scheduler reconciles and the console waits until the app has settled, so
all work the step caused is printed before the next input line is read.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

# The furthest one /clock may jump, and the most scheduled occurrences it steps through.
MAX_JUMP = timedelta(days=366)
MAX_STEPS = 1_000
SETTLE_TIMEOUT_SECONDS = 60.0

FORMATS_HINT = "Try /clock +30m, /clock +2h, /clock +1d, /clock 09:00 or /clock 2026-03-08 09:00."

_RELATIVE = re.compile(r"^([+-])\s*((?:\d+\s*[wdhm]\s*)+)$")
_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")
_DATE_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+|t)(\d{1,2}):(\d{2})$")


class ClockError(Exception):
    """A /clock request that cannot be honoured; the message says what to type instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _real_now() -> datetime:
    return datetime.now(UTC)


class DemoClock:
    """A :class:`bot.clock.Clock` that starts at ``start`` (or now) and can only move forward."""

    def __init__(
        self, start: datetime | None = None, *, real: Callable[[], datetime] = _real_now
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("the demo clock's start must be an aware datetime")
        self._real = real
        self._offset = (start - real()) if start is not None else timedelta(0)

    @property
    def offset(self) -> timedelta:
        """How far the demo clock is ahead of real time (negative when it started earlier)."""
        return self._offset

    def now(self) -> datetime:
        return (self._real() + self._offset).astimezone(UTC)

    def advance_to(self, when: datetime) -> timedelta:
        """Jump to ``when``; returns how far the clock moved. Never moves backwards."""
        if when.tzinfo is None:
            raise ValueError("advance_to needs an aware datetime")
        current = self.now()
        if when < current:
            raise ClockError(
                f"The demo clock only moves forward; it is already {current:%Y-%m-%d %H:%M} UTC."
            )
        self._offset += when - current
        return when - current


def describe(when: datetime, zone: ZoneInfo) -> str:
    """``Mon 9 Mar 2026 09:00 Europe/Berlin``."""
    local = when.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {zone.key}"


def parse_start(value: str, zone: ZoneInfo) -> datetime | None:
    """``[console] start``: an ISO date-time, naive ones in ``zone``; empty means real now."""
    value = value.strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)  # ValueError names the problem
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_target(arg: str, now: datetime, zone: ZoneInfo) -> datetime:
    """Where ``/clock ARG`` should move the clock to, given the time now and the acting
    member's zone; a :class:`ClockError` for anything unreadable or not in the future."""
    arg = arg.strip()
    compact = arg.lower()
    relative = _RELATIVE.match(compact)
    if relative:
        sign, body = relative.groups()
        delta = sum((_unit(unit) * int(count) for count, unit in _PART.findall(body)), timedelta(0))
        if sign == "-":
            raise ClockError(f"The demo clock only moves forward; it is {describe(now, zone)}.")
        if delta <= timedelta(0):
            raise ClockError(f'"{arg}" does not move the clock. {FORMATS_HINT}')
        return _checked(now + delta, now, zone, arg)
    time_of_day = _TIME_OF_DAY.match(compact)
    if time_of_day:
        at = _time(arg, int(time_of_day.group(1)), int(time_of_day.group(2)))
        today = now.astimezone(zone).date()
        candidate = _at(today, at, zone)
        if candidate <= now:
            candidate = _at(today + timedelta(days=1), at, zone)
        return _checked(candidate, now, zone, arg)
    date_time = _DATE_TIME.match(compact)
    if date_time:
        year, month, day, hour, minute = (int(g) for g in date_time.groups())
        try:
            day_ = date(year, month, day)
        except ValueError:
            raise ClockError(f'"{arg}" is not a real date. {FORMATS_HINT}') from None
        return _checked(_at(day_, _time(arg, hour, minute), zone), now, zone, arg)
    raise ClockError(f'I can\'t read "{arg}" as a time. {FORMATS_HINT}')


def _unit(unit: str) -> timedelta:
    return _UNITS.get(unit, timedelta(minutes=1))


def _time(arg: str, hour: int, minute: int) -> time:
    if hour > 23 or minute > 59:
        raise ClockError(f'"{arg}" is not a time of day (00:00 to 23:59). {FORMATS_HINT}')
    return time(hour, minute)


def _at(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _checked(target: datetime, now: datetime, zone: ZoneInfo, arg: str) -> datetime:
    if target <= now:
        raise ClockError(
            f"{describe(target, zone)} is not ahead: the demo clock is at "
            f"{describe(now, zone)} and only moves forward."
        )
    if target - now > MAX_JUMP:
        raise ClockError(f'"{arg}" is too far ahead; move the clock at most a year at a time.')
    return target


async def settle(app: App, patience: float = SETTLE_TIMEOUT_SECONDS) -> bool:
    """Wait until nothing is running or due (checked twice, a moment apart, so that a send
    that queues another, or a wake-up still on its way, is not mistaken for quiet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    quiet = 0
    while True:
        if await app.settled():
            quiet += 1
            if quiet >= 2:
                return True
        else:
            quiet = 0
        if loop.time() >= deadline:
            log.warning("the bot was still busy after %gs; reading on", patience)
            return False
        await asyncio.sleep(0.005 if quiet else 0.01)


async def move_clock(
    app: App,
    clock: DemoClock,
    target: datetime,
    *,
    on_step: Callable[[datetime], None] | None = None,
    settled: Callable[[], Awaitable[object]] | None = None,
) -> int:
    """Move ``clock`` forward to ``target``, stopping at each scheduled occurrence on the way
    (``on_step`` is told its time, ``settled`` awaited after it: by default :func:`settle`);
    returns how many stops were made before ``target``."""
    wait: Callable[[], Awaitable[object]] = settled or (lambda: settle(app))
    steps = 0
    while steps < MAX_STEPS:
        due = [when for _, when in app.scheduler.next_runs() if when <= target]
        if not due:
            break
        stop = min(due)
        if stop > clock.now():
            clock.advance_to(stop)
            app.worker.wake()  # retries that were waiting for this time are due now
        if on_step is not None:
            on_step(stop)
        await app.scheduler.reconcile()
        await wait()
        steps += 1
    else:
        log.warning("demo clock: more than %d scheduled stops; jumping to the end", MAX_STEPS)
    if target > clock.now():
        clock.advance_to(target)
        app.worker.wake()
    if on_step is not None:
        on_step(target)
    await app.scheduler.reconcile()
    await wait()
    return steps
