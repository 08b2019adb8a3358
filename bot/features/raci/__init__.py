"""The RACI matrix (``/raci``): areas of work and who is Responsible, Accountable, Consulted and
Informed in each, with the business hours and keywords blockers and escalation use.

Modules: ``spec`` (the command), ``people`` (role holders, area lookup and suggestion: used by
blockers and escalation), ``fields`` (an area's settings as typed, checked: the form and the
one-line options), ``cells`` (names of people, groups and channels resolved, the RACI rules),
``store`` (saving an area and its cells, deleting), ``render`` (the table, the charts, one
area), ``commands`` (the handlers), ``csv_io`` (``syncup raci import|export``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core


def register(core: Core) -> None:
    """Add /raci, its form and its confirm buttons. Register it before the features that
    extend it (``/raci policy``, ``/raci webhook``)."""
    from bot.features.raci import commands

    commands.register(core)
