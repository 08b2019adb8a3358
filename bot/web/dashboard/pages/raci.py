"""The RACI matrix: areas by people, each cell the roles held (R, A, C, I)."""

from __future__ import annotations

from typing import Any

from bot.features.raci.render import build_matrix
from bot.features.raci.store import matrix_of
from bot.web.dashboard.pages.context import PageContext

ROLE_NAMES = {"R": "Responsible", "A": "Accountable", "C": "Consulted", "I": "Informed"}


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    matrix = build_matrix(await matrix_of(ctx.db, ctx.workspace_id))
    rows = list(zip(matrix.areas, matrix.cells, strict=True))
    return "raci.html", {"matrix": matrix, "rows": rows, "role_names": ROLE_NAMES}
