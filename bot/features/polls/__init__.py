"""Polls: single or multiple choice, 1-5 scales, eNPS and open answers, named or anonymous,
with deadlines, reminders and results (see ballots.py for what keeps anonymous ones anonymous).

Modules: ``spec`` (the command), ``options`` (the one-line syntax and the form, checked),
``render`` (messages, vote controls, results), ``ballots`` (votes and the anonymity mechanics),
``service`` (a poll's life: create, vote, close, reopen, remind), ``live`` (debounced live
results), ``schedules`` (closes and reminders, exactly once), ``commands`` (the handlers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    """Add /poll, its actions and forms, and the close and reminder schedules."""
    from bot.features.polls import commands, live, schedules

    commands.register(core)
    live.install(core)
    schedules.register(core, scheduler)
