"""Automatic celebrations: standup streaks, birthdays and work anniversaries.

Modules: ``spec`` (the ``/syncup`` subcommands), ``commands`` (their handlers), ``dates``
(reading dates, the yearly trigger, the leap-day rule), ``rules`` (settings and profiles with
their defaults), ``streaks`` (counting a streak), ``schedules`` (what is scheduled) and
``posts`` (the occurrences and their messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    """Add ``/syncup birthday|started|celebrations`` (after :mod:`bot.features.account`) and
    the celebrations' schedules."""
    from bot.features.celebrations import commands, posts, schedules, spec

    core.extend_command(
        "syncup",
        spec.SUBCOMMANDS,
        {
            "birthday": commands.set_birthday,
            "started": commands.set_started,
            "celebrations": commands.celebrations,
        },
    )
    scheduler.add_source(schedules.CelebrationSchedules())
    scheduler.add_handler(schedules.BIRTHDAY_HANDLER, posts.on_birthday)
    scheduler.add_handler(schedules.ANNIVERSARY_HANDLER, posts.on_anniversary)
    scheduler.add_handler(schedules.STREAK_HANDLER, posts.on_streak_check)
