"""Blockers as tracked items: a reporter, an area (RACI), what it waits on, a severity, a status
(open, acknowledged, resolved or cancelled), a timeline and an age; one card per blocker kept up
to date in place; escalation (``escalation``, ``ladder``, ``policy``) in business time.

Modules: ``spec`` (the command), ``inputs`` (the add line, snooze times, the stats line),
``lookup`` (finding blockers, areas, people), ``service`` (every change, and who may make it),
``timeline`` (one entry per change, and its listeners), ``cards`` (the card and its buttons),
``dedupe`` (a standup blocker named again), ``standup`` (standup answers become blockers),
``stats`` (``/blocker stats``), ``commands`` (the handlers, buttons, forms and the shortcut).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core


def register(core: Core) -> None:
    """Add /blocker, its buttons and forms, the "Report as blocker" shortcut and the card's
    timeline listener."""
    from bot.features.blockers import commands

    commands.register(core)
