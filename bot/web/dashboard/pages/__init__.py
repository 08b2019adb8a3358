"""The pages of a workspace: name in the URL -> renderer (template name and its values)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.web.dashboard.pages import blockers, celebrations, overview, pulse, raci, standups
from bot.web.dashboard.pages.context import PageContext

Render = Callable[[PageContext], Awaitable[tuple[str, dict[str, Any]]]]

PAGES: dict[str, Render] = {
    "overview": overview.render,
    "standups": standups.render,
    "blockers": blockers.render,
    "pulse": pulse.render,
    "celebrations": celebrations.render,
    "raci": raci.render,
}
# (path segment, label) in the navigation; "" is the overview at /w/<id>/.
NAV: tuple[tuple[str, str], ...] = (
    ("", "Overview"),
    ("standups", "Standups"),
    ("blockers", "Blockers"),
    ("pulse", "Pulse"),
    ("celebrations", "Kudos & milestones"),
    ("raci", "RACI"),
)
