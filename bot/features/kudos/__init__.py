"""Kudos: peers thank each other for their work, with the workspace's values, a daily quota
per giver (reset at the giver's midnight), a weekly cap per receiver, boards and history.

Modules: ``spec`` (the command), ``rules`` (settings, quota and caps in the giver's zone),
``give`` (the one-line syntax, the checks, saving and sending), ``render`` (the messages),
``board`` (boards and history), ``settings`` (``/kudos settings``), ``commands`` (handlers, the
form and the "Give kudos" user shortcut), ``export`` (``syncup export kudos``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core


def register(core: Core) -> None:
    """Add /kudos, its form and the "Give kudos" shortcut."""
    from bot.features.kudos import commands

    commands.register(core)
