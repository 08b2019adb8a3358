"""The RACI matrix (``/raci``): areas of work and who is Responsible, Accountable, Consulted and
Informed in each, with the business hours and keywords blockers and escalation use.

Modules: ``spec`` (the command), ``people`` (role holders, area lookup and suggestion: used by
blockers and escalation), ``fields`` (parsing and checking an area's settings, shared by the
form, the one-line options and CSV import), ``store`` (saving an area and its cells),
``render`` (the table, the chart, one area), ``commands`` (the handlers), ``csv_io`` (``syncup
raci import|export``).
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
