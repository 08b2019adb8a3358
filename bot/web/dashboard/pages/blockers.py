"""The blocker board: active blockers in columns by age, each with its escalation level and
area; filters by status, area, level and age in the query string (plain GET forms), 50 cards
a page, the oldest first, with links that keep the filters. Admins
get Acknowledge and Resolve buttons, which go through the blocker service like the chat
buttons (permissions, timeline, cards and outbound webhooks queued by its listeners)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import PermissionDenied
from bot.features.blockers import lookup, service
from bot.web.dashboard.access import Seat
from bot.web.dashboard.http import BadRequest
from bot.web.dashboard.pages.context import NotFound, PageContext
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
PAGE = 50  # cards a page, the oldest first; links lead to the next ones


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


def page_number(raw: str | None) -> int:
    """``?page=`` as a page number from 1; anything else is a request to fix, not a guess."""
    if raw is None or raw == "":
        return 1
    found = _int(raw)
    if found is None or found < 1:
        raise BadRequest(f"page must be a whole number from 1, not {raw[:20]!r}.")
    return found


def _bounds(key: str) -> tuple[timedelta | None, timedelta | None]:
    """A column's ages: at least the previous column's bound, under its own."""
    i = next(n for n, (k, _, _) in enumerate(AGES) if k == key)
    return (AGES[i - 1][2] if i else None), AGES[i][2]


def _within(ctx: PageContext, resolved: bool, key: str) -> Any:
    """A column as a condition in SQL. An active blocker's age is ``now`` less its creation: a
    range of ``created_at`` (an index range scan). A resolved one's is the time it took, in
    days (PostgreSQL's interval, SQLite's julian days)."""
    young, old = _bounds(key)
    where = []
    if not resolved:
        if young is not None:
            where.append(Blocker.created_at <= ctx.now - young)
        if old is not None:
            where.append(Blocker.created_at > ctx.now - old)
    else:
        if ctx.db.get_bind().dialect.name == "sqlite":
            took: Any = func.julianday(Blocker.resolved_at) - func.julianday(Blocker.created_at)
        else:
            took = func.extract("epoch", Blocker.resolved_at - Blocker.created_at) / 86400
        if young is not None:
            where.append(took >= young / timedelta(days=1))
        if old is not None:
            where.append(took < old / timedelta(days=1))
    return and_(*where) if where else true()


async def _age_counts(ctx: PageContext, query: Select[Any], resolved: bool) -> dict[str, int]:
    """Cards per column of the whole filtered board, counted in SQL."""
    column = case(
        *[(_within(ctx, resolved, key), key) for key, _, _ in AGES[:-1]],
        else_=AGES[-1][0],
    )
    # Grouped by the label of a subquery: PostgreSQL would not match a GROUP BY repeating
    # the CASE with its own bound parameters.
    sub = query.with_only_columns(column.label("col")).order_by(None).subquery()
    rows = await ctx.db.execute(select(sub.c.col, func.count()).group_by(sub.c.col))
    return {key: int(n) for key, n in rows.all()}


async def render(ctx: PageContext) -> tuple[str, dict[str, Any]]:
    status = ctx.query.get("status", "active")
    if status not in STATUSES:
        status = "active"
    area_id = _int(ctx.query.get("area"))
    level = _int(ctx.query.get("level"))
    age = ctx.query.get("age", "")
    if age not in {key for key, _, _ in AGES}:
        age = ""
    page = page_number(ctx.query.get("page"))
    areas = await lookup.areas(ctx.db, ctx.workspace_id)
    query = select(Blocker).where(
        Blocker.workspace_id == ctx.workspace_id, Blocker.status.in_(STATUSES[status])
    )
    if area_id is not None:
        query = query.where(Blocker.area_id == area_id)
    if level is not None:
        query = query.where(Blocker.escalation_level >= level)
    query = query.order_by(Blocker.created_at, Blocker.id)
    resolved = status == "resolved"
    counts = await _age_counts(ctx, query, resolved)
    total = counts.get(age, 0) if age else sum(counts.values())
    pages = max(1, -(-total // PAGE))
    if page > pages:
        raise NotFound(f"There is no page {page} of this board: it has {pages}.")
    if age:
        query = query.where(_within(ctx, resolved, age))
    rows = list(await ctx.db.scalars(query.offset((page - 1) * PAGE).limit(PAGE)))
    names = await ctx.names({b.member_id for b in rows} | {b.waiting_on_member_id for b in rows})
    area_names = {a.id: a.name for a in areas}
    columns: dict[str, list[Card]] = {key: [] for key, _, _ in AGES}
    for b in rows:
        since = (b.resolved_at if b.status == BlockerStatus.RESOLVED else None) or ctx.now
        b_age = max(since - b.created_at, timedelta(0))
        key = age_key(b_age)
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
    filters = {"status": status, "area": area_id, "level": level, "age": age}
    kept = {k: v for k, v in filters.items() if v not in (None, "")}
    return "blockers.html", {
        "columns": [
            (key, label, columns[key], counts.get(key, 0))
            for key, label, _ in AGES
            if not age or key == age
        ],
        "areas": areas,
        "filters": filters,
        "statuses": list(STATUSES),
        "ages": [(key, label) for key, label, _ in AGES],
        "total": total,
        "page": page,
        "pages": pages,
        "shown": len(rows),
        "page_link": lambda n: "?" + urlencode({**kept, "page": n}),
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
