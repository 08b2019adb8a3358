"""Async standups: setup, prompts at each member's local time, answers, reports, reminders,
history and stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    from bot.features.standups import commands, runtime

    commands.register(core)
    runtime.register(core, scheduler)
