"""Polls: single or multiple choice, 1-5 scales, eNPS and open answers, named or anonymous,
with deadlines, reminders and results (see ballots.py for what keeps anonymous ones anonymous)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    """Add /poll, its actions and forms, and the close and reminder schedules."""
