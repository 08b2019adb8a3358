"""The blocker board: active blockers in columns by age, each with its escalation level and
area; filters by status, area, level and age in the query string (plain GET forms). Admins
get Acknowledge and Resolve buttons, which go through the blocker service like the chat
buttons (permissions, timeline, cards and outbound webhooks queued by its listeners)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import PermissionDenied
from bot.features.blockers import lookup, service
from bot.web.dashboard.access import Seat
from bot.web.dashboard.pages.context import PageContext
from storage.models import Blocker, BlockerStatus

# Columns of the board: (key, label, younger than).
AGES: tuple[tuple[str, str, timedelta | None], ...] = (
    ("day", "Under a day", timedelta(days=1)),
    ("week", "1 to 7 days", timedelta(days=7)),
    ("month", "1 to 4 weeks", timedelta(days=28)),
    ("older", "Older than 4 weeks", None),
)
STATUSES = {
    "active": (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED),
    "open": (BlockerStatus.OPEN,),
    "acknowledged": (BlockerStatus.ACKNOWLEDGED,),
    "resolved": (BlockerStatus.RESOLVED,),
}
SHOWN = 500  # cards at most; the filters narrow a larger board


class NoSuchBlocker(Exception):
    pass


@dataclass(frozen=True)
class Card:
    id: int
    text: str
    status: str
    severity: str
    level: int
    area: str
    reporter: str
    waiting_on: str
    age: str
    active: bool


def age_key(age: timedelta) -> str:
    for key, _, under in AGES:
        if under is None or age < under:
            return key
    return AGES[-1][0]


def age_text(age: timedelta) -> str:
    if age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)} min"
    if age < timedelta(days=1):
        return f"{int(age.total_seconds() // 3600)} h"
    return f"{age.days} d"


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    status = ctx.query.get("status", "active")
    if status not in STATUSES:
        status = "active"
    area_id = _int(ctx.query.get("area"))
    level = _int(ctx.query.get("level"))
    age = ctx.query.get("age", "")
    areas = await lookup.areas(ctx.db, ctx.workspace_id)
    query = select(Blocker).where(
        Blocker.workspace_id == ctx.workspace_id, Blocker.status.in_(STATUSES[status])
    )
    if area_id is not None:
        query = query.where(Blocker.area_id == area_id)
    if level is not None:
        query = query.where(Blocker.escalation_level >= level)
    rows = list(await ctx.db.scalars(query.order_by(Blocker.created_at).limit(SHOWN)))
    names = await ctx.names({b.member_id for b in rows} | {b.waiting_on_member_id for b in rows})
    area_names = {a.id: a.name for a in areas}
    columns: dict[str, list[Card]] = {key: [] for key, _, _ in AGES}
    for b in rows:
        since = (b.resolved_at if b.status == BlockerStatus.RESOLVED else None) or ctx.now
        b_age = max(since - b.created_at, timedelta(0))
        key = age_key(b_age)
        if age and key != age:
            continue
        waiting = ""
        if b.waiting_on_member_id is not None:
            waiting = "@" + names.get(b.waiting_on_member_id, "someone")
        elif b.waiting_on_area_id is not None:
            waiting = area_names.get(b.waiting_on_area_id, "another area")
        columns[key].append(
            Card(
                id=b.id,
                text=b.text,
                status=b.status.value,
                severity=b.severity.value,
                level=b.escalation_level,
                area=area_names.get(b.area_id or 0, "No area"),
                reporter=names.get(b.member_id, "someone"),
                waiting_on=waiting,
                age=age_text(b_age),
                active=b.status in service.ACTIVE,
            )
        )
    done = ctx.query.get("done")
    return "blockers.html", {
        "columns": [(key, label, columns[key]) for key, label, _ in AGES if not age or key == age],
        "areas": areas,
        "filters": {"status": status, "area": area_id, "level": level, "age": age},
        "statuses": list(STATUSES),
        "ages": [(key, label) for key, label, _ in AGES],
        "total": sum(len(c) for c in columns.values()),
        "done": done if done in ("acknowledged", "resolved") else None,
        "done_id": _int(ctx.query.get("id")),
        "can_act": ctx.seat.admin,
    }


async def act(
    db: AsyncSession, core: Any, seat: Seat, blocker_id: int, verb: str, now: datetime
) -> None:
    """Acknowledge or resolve, as an admin; raises what the service raises (the caller's
    transaction then rolls back), :class:`NoSuchBlocker` for another workspace's id."""
    if not seat.admin:
        raise PermissionDenied("Only admins can change blockers from the dashboard.")
    blocker = await db.scalar(
        select(Blocker)
        .where(Blocker.id == blocker_id, Blocker.workspace_id == seat.workspace.id)
        .execution_options(populate_existing=True)
        .with_for_update()
    )
    if blocker is None:
        raise NoSuchBlocker
    actor = service.Actor(db, core, seat.member, seat.permission, now)
    change = service.acknowledge if verb == "acknowledge" else service.resolve
    await change(actor, blocker)
