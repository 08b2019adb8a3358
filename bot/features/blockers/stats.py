"""``/blocker stats [AREA] [--weeks N]``: opened and resolved in the last N weeks, the median
and 90th percentile time to acknowledge and to resolve in business hours (each blocker counted
in its own area's calendar: working days, hours and holidays; without an area Monday to Friday
09:00-17:00 UTC), the oldest open ones, and the same per area and per dependency pair (area A
waiting on area B)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Bold, Header, Response, Section, reply, text
from bot.core import Context
from bot.features.blockers import lookup
from bot.features.blockers.business_time import BusinessCalendar
from bot.features.blockers.inputs import calendar, parse_stats
from bot.features.blockers.service import ACTIVE
from storage.models import Blocker, BlockerStatus
from storage.raci import RaciArea

OLDEST_SHOWN = 5


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.5: the median; 0.9: p90); None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def hours(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}h"


@dataclass
class Tally:
    opened: int = 0
    resolved: int = 0
    open_now: int = 0
    to_ack: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"opened {self.opened}, resolved {self.resolved}, open now {self.open_now}; "
            f"to acknowledge median {hours(percentile(self.to_ack, 0.5))} "
            f"p90 {hours(percentile(self.to_ack, 0.9))}; "
            f"to resolve median {hours(percentile(self.to_resolve, 0.5))} "
            f"p90 {hours(percentile(self.to_resolve, 0.9))}"
        )


@dataclass
class Report:
    total: Tally
    by_area: dict[str, Tally]
    by_pair: dict[tuple[str, str], Tally]
    oldest: list[Blocker]


def _business_hours(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    return cal.between(start, end) / timedelta(hours=1)


async def gather(
    session: AsyncSession,
    workspace_id: int,
    since: datetime,
    now: datetime,
    area: RaciArea | None = None,
) -> Report:
    """Blockers opened or resolved since ``since`` (of ``area``, or that wait on it)."""
    query = select(Blocker).where(
        Blocker.workspace_id == workspace_id,
        or_(Blocker.created_at >= since, Blocker.resolved_at >= since, Blocker.status.in_(ACTIVE)),
    )
    if area is not None:
        query = query.where(or_(Blocker.area_id == area.id, Blocker.waiting_on_area_id == area.id))
    blockers = list(await session.scalars(query.order_by(Blocker.created_at, Blocker.id)))
    areas = {a.id: a for a in await lookup.areas(session, workspace_id)}
    calendars: dict[int | None, BusinessCalendar] = {}

    def cal_of(blocker: Blocker) -> BusinessCalendar:
        key = blocker.area_id if blocker.area_id in areas else None
        if key not in calendars:
            calendars[key] = calendar(areas.get(key or 0), "UTC")
        return calendars[key]

    total = Tally()
    by_area: dict[str, Tally] = defaultdict(Tally)
    by_pair: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for blocker in blockers:
        home = areas.get(blocker.area_id or 0)
        tallies = [total, by_area[home.name if home else "(no area)"]]
        other = areas.get(blocker.waiting_on_area_id or 0)
        if other is not None and other.id != blocker.area_id:
            tallies.append(by_pair[(home.name if home else "(no area)", other.name)])
        cal = cal_of(blocker)
        for tally in tallies:
            _count(tally, blocker, cal, since)
    oldest = [b for b in blockers if b.status in ACTIVE][:OLDEST_SHOWN]
    return Report(total, dict(by_area), dict(by_pair), oldest)


def _count(tally: Tally, blocker: Blocker, cal: BusinessCalendar, since: datetime) -> None:
    if blocker.created_at >= since:
        tally.opened += 1
        if blocker.acknowledged_at is not None:
            tally.to_ack.append(_business_hours(cal, blocker.created_at, blocker.acknowledged_at))
    if blocker.status in ACTIVE:
        tally.open_now += 1
    if (
        blocker.status == BlockerStatus.RESOLVED
        and blocker.resolved_at is not None
        and blocker.resolved_at >= since
    ):
        tally.resolved += 1
        tally.to_resolve.append(_business_hours(cal, blocker.created_at, blocker.resolved_at))


async def command(ctx: Context, args: dict[str, Any]) -> Response:
    parsed = parse_stats(args.get("line"))
    area = await lookup.area(ctx.session, ctx.workspace.id, parsed.area) if parsed.area else None
    since = ctx.now - timedelta(weeks=parsed.weeks)
    report = await gather(ctx.session, ctx.workspace.id, since, ctx.now, area)
    scope = f" of {area.name}" if area is not None else ""
    weeks = "week" if parsed.weeks == 1 else f"{parsed.weeks} weeks"
    blocks: list[Any] = [
        Header(f"Blockers{scope}, last {weeks}"),
        Section(text(report.total.line() + " (business hours)")),
    ]
    if report.oldest:
        people = await lookup.members(ctx.session, {b.member_id for b in report.oldest})
        lines = [
            f"#{b.id} {lookup.span(ctx.now - b.created_at)} old, by "
            f"@{lookup.name_of(people.get(b.member_id))}: {b.text[:80]}"
            for b in report.oldest
        ]
        blocks.append(Section(text(Bold("Oldest open"), "\n" + "\n".join(lines))))
    if len(report.by_area) > 1 or (report.by_area and area is None):
        lines = [f"{name}: {tally.line()}" for name, tally in sorted(report.by_area.items())]
        blocks.append(Section(text(Bold("Per area"), "\n" + "\n".join(lines))))
    if report.by_pair:
        lines = [
            f"{a} waiting on {b}: {tally.line()}"
            for (a, b), tally in sorted(report.by_pair.items())
        ]
        blocks.append(Section(text(Bold("Cross-team dependencies"), "\n" + "\n".join(lines))))
    return reply(*blocks)
