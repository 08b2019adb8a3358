"""Milestones: a named date a team works towards, counted down in its channel and celebrated
when it is done (by hand, or by an inbound webhook rule's ``--milestone``).

Modules: ``spec`` (the subcommands, added to ``/milestone``), ``dates`` (dates as typed, the
countdown days), ``inputs`` (the add and edit lines), ``service`` (finding, who may change,
add, edit, done, cancel; the webhook hook point), ``celebrate`` (the post and its PNG card),
``render`` (the list, countdowns, the overdue DM), ``schedules`` (countdowns and the overdue DM,
exactly once), ``commands`` (handlers, forms, the cancel buttons). See docs/milestones.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core
    from bot.scheduling.scheduler import Scheduler


def register(core: Core, scheduler: Scheduler) -> None:
    """Extend ``/milestone`` (after the hooks feature registered it), book the countdowns and
    the overdue DMs, and let webhook rules mark milestones done."""
    from bot.features.hooks.service import MILESTONE_DONE
    from bot.features.milestones import commands, schedules, service

    commands.register(core)
    schedules.register(scheduler)
    if service.done_by_hook not in MILESTONE_DONE:  # one function for every app in the process
        MILESTONE_DONE.append(service.done_by_hook)
