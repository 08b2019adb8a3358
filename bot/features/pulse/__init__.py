"""Team pulse checks: recurring anonymous questions from a bank, pooled results for small teams,
and the weekly digest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    """Add /pulse, the round, reminder, close and digest schedules."""
    from bot.features.pulse import commands, runtime

    commands.register(core)
    runtime.register(scheduler)
