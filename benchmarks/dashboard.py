"""The web dashboard and the weekly digest over a year of a 5,000-member workspace.

The workspace is written by :mod:`benchmarks.seed_year` (100 teams of 50 in eight zones, a year
of weekday standups, weekly pulses, polls, 10,000 blockers with their timelines, kudos,
milestones) into a fresh PostgreSQL database next to ``--database-url`` (kept, its URL printed:
``--reuse URL`` times an already seeded one again without seeding).

(a) **pages**: each page of the dashboard over HTTP (httpx against the one ASGI app, signed in
    with a one-time link as a person is), as a platform admin (sees everything) and as a
    member: REPEATS requests after one (3 for a page that takes over a second): p50, p95, max.
(d) **digest**: ``team_figures`` and ``signals`` (every section), what a digest computes per
    team before it renders: one standup team, one RACI area, and every team of the workspace.
(q) **reads**: what the pages and the digest read, as plain queries and through the product's
    ``history.stats`` and ``compute_digest``, to find the slow ones (``--explain``: the plans).

Each figure line ends with the load average (the machine may be shared). Run from the
repository root::

    .venv/bin/python benchmarks/dashboard.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/dashboard.py --reuse postgresql+asyncpg://postgres@127.0.0.1:5432/syncup_bench_x
    .venv/bin/python benchmarks/dashboard.py --database-url sqlite+aiosqlite:////tmp/year.db \
        --members 250 --teams 5 --blockers 500 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import and_, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from benchmarks import seed_year  # noqa: E402
from benchmarks.standup_fanout import _percentile  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.features.digest.figures import Scope, team_figures  # noqa: E402
from bot.features.digest.signals import signals  # noqa: E402
from bot.features.pulse.scores import compute_digest  # noqa: E402
from bot.features.standups.history import stats  # noqa: E402
from bot.heap import settle_heap  # noqa: E402
from bot.web.asgi import WebApp  # noqa: E402
from bot.web.dashboard.app import Dashboard  # noqa: E402
from bot.web.dashboard.cli import make_link  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.digest import SECTIONS  # noqa: E402
from storage.kudos import Kudos, KudosReceiver  # noqa: E402
from storage.milestones import Milestone  # noqa: E402
from storage.models import (  # noqa: E402
    Blocker,
    BlockerEvent,
    Member,
    Standup,
    StandupAnswer,
    StandupPrompt,
    StandupRun,
    Team,
    TeamMember,
    Workspace,
)
from storage.polls import Pulse  # noqa: E402
from storage.raci import RaciArea, RaciAssignment  # noqa: E402

ACTIVE = ("open", "acknowledged")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


@dataclass
class Place:
    """Where in the seeded data the timed reads look."""

    workspace_id: int
    team_id: int
    standup_id: int
    pulse_id: int
    area_id: int
    pulse_ids: list[int]
    now: datetime
    admin_id: int
    member_id: int


async def place_of(db: Database) -> Place:
    async with db.read() as session:
        ws = await session.scalar(select(Workspace.id).order_by(Workspace.id).limit(1))
        team = await session.scalar(
            select(Team.id).where(Team.workspace_id == ws).order_by(Team.id)
        )
        standup = await session.scalar(select(Standup.id).where(Standup.workspace_id == ws))
        pulse = await session.scalar(select(Pulse.id).where(Pulse.team_id == team))
        area = await session.scalar(
            select(Blocker.area_id)
            .where(
                Blocker.workspace_id == ws,
                Blocker.status.in_(ACTIVE),
                Blocker.area_id.is_not(None),
            )
            .group_by(Blocker.area_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        pulses = list(await session.scalars(select(Pulse.id).where(Pulse.workspace_id == ws)))
        admin = await session.scalar(
            select(Member.id).where(Member.workspace_id == ws, Member.is_platform_admin)
        )
        member = await session.scalar(
            select(TeamMember.member_id)
            .where(TeamMember.team_id == team, TeamMember.member_id != admin)
            .order_by(TeamMember.member_id.desc())
        )
    assert ws and team and standup and pulse and admin and member
    return Place(ws, team, standup, pulse, area or 0, pulses, datetime.now(UTC), admin, member)


# -- what the pages read --------------------------------------------------------------------


async def heatmap(s: AsyncSession, p: Place) -> int:
    since = (p.now - timedelta(weeks=12)).date()
    rows = await s.execute(
        select(StandupPrompt.member_id, StandupRun.run_date, StandupPrompt.status)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(StandupRun.standup_id == p.standup_id, StandupRun.run_date >= since)
    )
    return len(rows.all())


async def participation(s: AsyncSession, p: Place) -> int:
    await stats(s, p.workspace_id, p.now, weeks=4)
    return 1


async def todays_answers(s: AsyncSession, p: Place) -> int:
    run = await s.scalar(
        select(StandupRun.id)
        .where(StandupRun.standup_id == p.standup_id)
        .order_by(StandupRun.run_date.desc())
        .limit(1)
    )
    rows = await s.execute(
        select(Member.display_name, StandupPrompt.status, StandupAnswer.question_index,
               StandupAnswer.text)
        .join(Member, Member.id == StandupPrompt.member_id)
        .outerjoin(StandupAnswer, StandupAnswer.prompt_id == StandupPrompt.id)
        .where(StandupPrompt.run_id == run)
    )  # fmt: skip
    return len(rows.all())


def _board(p: Place) -> Any:
    return (
        select(
            Blocker.id,
            Blocker.text,
            Blocker.created_at,
            Blocker.escalation_level,
            Blocker.severity,
            RaciArea.name,
            Member.display_name,
        )
        .join(Member, Member.id == Blocker.member_id)
        .outerjoin(RaciArea, RaciArea.id == Blocker.area_id)
        .where(Blocker.workspace_id == p.workspace_id, Blocker.status.in_(ACTIVE))
        .order_by(Blocker.created_at)
    )


async def board(s: AsyncSession, p: Place) -> int:
    return len((await s.execute(_board(p))).all())


async def board_area(s: AsyncSession, p: Place) -> int:
    return len((await s.execute(_board(p).where(Blocker.area_id == p.area_id))).all())


async def blocker_week(s: AsyncSession, p: Place) -> int:
    """The digest's blocker figures: opened, resolved, escalated and the resolve times of a
    week, and the open dependencies between areas by how long they have waited."""
    since = p.now - timedelta(days=7)
    ws = Blocker.workspace_id == p.workspace_id
    opened = await s.scalar(select(func.count()).where(ws, Blocker.created_at >= since))
    resolved = list(
        await s.execute(
            select(Blocker.created_at, Blocker.resolved_at).where(
                ws, Blocker.status == "resolved", Blocker.resolved_at >= since
            )
        )
    )
    escalated = await s.scalar(
        select(func.count())
        .select_from(BlockerEvent)
        .join(Blocker, Blocker.id == BlockerEvent.blocker_id)
        .where(ws, BlockerEvent.kind == "escalated", BlockerEvent.at >= since)
    )
    pairs = await s.execute(
        select(Blocker.area_id, Blocker.waiting_on_area_id, func.min(Blocker.created_at))
        .where(ws, Blocker.status.in_(ACTIVE), Blocker.waiting_on_area_id.is_not(None))
        .group_by(Blocker.area_id, Blocker.waiting_on_area_id)
    )
    return (opened or 0) + len(resolved) + (escalated or 0) + len(pairs.all())


async def silence(s: AsyncSession, p: Place) -> int:
    """The members of a team with the longest silence: their last answer."""
    rows = await s.execute(
        select(StandupPrompt.member_id, func.max(StandupPrompt.answered_at))
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(StandupRun.standup_id == p.standup_id)
        .group_by(StandupPrompt.member_id)
    )
    return len(rows.all())


async def pulse_team(s: AsyncSession, p: Place) -> int:
    digest = await compute_digest(s, p.pulse_id, p.now)
    return len(digest.questions)


async def pulse_all(s: AsyncSession, p: Place) -> int:
    n = 0
    for pulse_id in p.pulse_ids:
        n += len((await compute_digest(s, pulse_id, p.now)).questions)
    return n


async def kudos_timeline(s: AsyncSession, p: Place) -> int:
    since = p.now - timedelta(days=30)
    kudos = list(
        await s.execute(
            select(Kudos.id, Kudos.giver_id, Kudos.reason, Kudos.value, Kudos.given_at)
            .where(
                Kudos.workspace_id == p.workspace_id,
                Kudos.given_at >= since,
                Kudos.private.is_(False),
            )
            .order_by(Kudos.given_at.desc())
            .limit(100)
        )
    )
    receivers = await s.execute(
        select(KudosReceiver.kudos_id, KudosReceiver.receiver_id).where(
            KudosReceiver.kudos_id.in_([k.id for k in kudos])
        )
    )
    milestones = await s.execute(
        select(Milestone.id, Milestone.name, Milestone.due_on, Milestone.status).where(
            Milestone.workspace_id == p.workspace_id,
            and_(
                Milestone.due_on >= (p.now - timedelta(days=30)).date(),
                Milestone.due_on <= (p.now + timedelta(days=14)).date(),
            ),
        )
    )
    return len(kudos) + len(receivers.all()) + len(milestones.all())


async def raci(s: AsyncSession, p: Place) -> int:
    rows = await s.execute(
        select(RaciArea.name, RaciAssignment.role, RaciAssignment.who, RaciAssignment.label)
        .join(RaciAssignment, RaciAssignment.area_id == RaciArea.id)
        .where(RaciArea.workspace_id == p.workspace_id)
    )
    return len(rows.all())


Read = Callable[[AsyncSession, Place], Awaitable[int]]
QUERIES: dict[str, Read] = {
    "heatmap (team, 12 weeks)": heatmap,
    "participation (workspace, 4 wk)": participation,
    "today's answers (team)": todays_answers,
    "blocker board (workspace)": board,
    "blocker board (one area)": board_area,
    "blocker week (digest)": blocker_week,
    "longest silence (team)": silence,
    "pulse results (one team)": pulse_team,
    "kudos+milestones timeline": kudos_timeline,
    "RACI matrix": raci,
}
SLOW = {"pulse results (all teams)": pulse_all}


async def time_read(
    db: Database, read: Read, place: Place, repeats: int
) -> tuple[list[float], int]:
    timings: list[float] = []
    rows = 0
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        async with db.read() as session:
            rows = await read(session, place)
        if attempt:
            timings.append(time.perf_counter() - started)
    return timings, rows


def line(name: str, timings: list[float], extra: str = "") -> str:
    ms = [t * 1000 for t in timings]
    return (
        f"{name:<34} p50 {_percentile(ms, 50):7.1f} ms  p95 {_percentile(ms, 95):7.1f} ms  "
        f"max {max(ms):7.1f} ms  n={len(ms)}{extra}  ({load()})"
    )


async def queries(db: Database, place: Place, repeats: int) -> None:
    print(f"(q) reads, {repeats} runs each after one warm-up")
    for name, read in QUERIES.items():
        timings, rows = await time_read(db, read, place, repeats)
        print(line(name, timings, f"  rows={rows}"))
    for name, read in SLOW.items():
        timings, rows = await time_read(db, read, place, max(3, repeats // 10))
        print(line(name, timings, f"  questions={rows}"))


# -- the pages, over HTTP ---------------------------------------------------------------------

BASE = "http://dashboard.bench"
SLOW_PAGE = 1.0  # seconds


async def _ready() -> tuple[bool, str]:
    return True, "ready"


def site(db: Database) -> tuple[WebApp, Settings]:
    """The dashboard on the one ASGI app, as ``bot.app`` serves it (no platform adapter)."""
    settings = Settings(
        security={"secret_key": Fernet.generate_key().decode()}, web={"public_url": BASE}
    )
    dashboard = Dashboard(settings, db, SystemClock(), base_url=lambda: BASE)
    app = WebApp(_ready)
    app.fallback = dashboard
    return app, settings


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


async def signed_in(
    db: Database, app: WebApp, settings: Settings, member: str
) -> httpx.AsyncClient:
    """A client signed in the way a person is: a one-time link, its button, the cookie."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    link = await make_link(db, settings, member, None, datetime.now(UTC))
    page = await client.get(link.removeprefix(BASE))
    answer = await client.post("/login/link", data=_hidden(page.text))
    if answer.status_code != 303:
        raise SystemExit(f"signing in as {member} failed: {answer.status_code}")
    return client


def page_urls(p: Place) -> dict[str, str]:
    w = f"/w/{p.workspace_id}"
    return {
        "overview": f"{w}/",
        "standups": f"{w}/standups",
        "standups (another team)": f"{w}/standups?standup={p.standup_id + 37}",
        "blockers": f"{w}/blockers",
        "blockers (area, level 2+)": f"{w}/blockers?area={p.area_id}&level=2",
        "blockers (resolved)": f"{w}/blockers?status=resolved",
        "blockers (page 10)": f"{w}/blockers?page=10",
        "pulse": f"{w}/pulse",
        "celebrations": f"{w}/celebrations",
        "raci": f"{w}/raci",
    }


async def pages(db: Database, place: Place, repeats: int) -> None:
    app, settings = site(db)
    settle_heap()  # as the server does when it starts (bot.web.server)
    async with db.read() as session:
        query = select(Member.id, Member.platform_user_id).where(
            Member.id.in_([place.admin_id, place.member_id])
        )
        names = {mid: uid for mid, uid in (await session.execute(query)).all()}
    for who, member_id in (("admin", place.admin_id), ("member", place.member_id)):
        client = await signed_in(db, app, settings, names[member_id])
        print(f"(a) pages as {who} (member {member_id}), {repeats} requests each after one")
        try:
            for name, url in page_urls(place).items():
                timings: list[float] = []
                size = 0
                n = repeats
                for attempt in range(repeats + 1):
                    if attempt > n:
                        break
                    started = time.perf_counter()
                    answer = await client.get(url)
                    took = time.perf_counter() - started
                    if attempt:
                        timings.append(took)
                    elif took > SLOW_PAGE:
                        n = min(repeats, 3)  # seconds a request: a few tell enough
                    if answer.status_code != 200:
                        raise SystemExit(f"{url}: {answer.status_code}")
                    size = len(answer.content)
                print(line(name, timings, f"  {size // 1024} KiB"))
        finally:
            await client.aclose()


# -- the weekly digest ----------------------------------------------------------------------


async def scopes(db: Database, place: Place) -> tuple[list[Scope], list[Scope]]:
    async with db.read() as session:
        standups = [
            Scope(place.workspace_id, "standup", sid, name)
            for sid, name in await session.execute(
                select(Standup.id, Standup.name)
                .where(Standup.workspace_id == place.workspace_id)
                .order_by(Standup.id)
            )
        ]
        areas = [
            Scope(place.workspace_id, "area", aid, name)
            for aid, name in await session.execute(
                select(RaciArea.id, RaciArea.name)
                .where(RaciArea.workspace_id == place.workspace_id)
                .order_by(RaciArea.id)
            )
        ]
    return standups, areas


async def figures_of(db: Database, teams: list[Scope], now: datetime) -> int:
    fired = 0
    async with db.read() as session:
        for scope in teams:
            figures = await team_figures(session, scope, now, "Europe/Berlin", SECTIONS)
            fired += len(signals(figures))
    return fired


async def digest(db: Database, place: Place, repeats: int) -> None:
    """``team_figures`` and ``signals``: what ``bot.features.digest.runtime.compose`` computes
    for each team of a digest before it renders the message."""
    standups, areas = await scopes(db, place)
    cases = {
        "one standup team (50)": (standups[:1], repeats),
        "one RACI area": (areas[:1], repeats),
        f"workspace: {len(standups)} standups": (standups, max(3, repeats // 10)),
        f"workspace: {len(areas)} areas": (areas, max(3, repeats // 10)),
    }
    print(f"(d) digest figures, all sections ({', '.join(SECTIONS)})")
    for name, (teams, n) in cases.items():
        timings: list[float] = []
        fired = 0
        for attempt in range(n + 1):
            started = time.perf_counter()
            fired = await figures_of(db, teams, place.now)
            if attempt:
                timings.append(time.perf_counter() - started)
        print(line(name, timings, f"  signals={fired}"))


async def explain(db: Database, place: Place) -> None:
    """EXPLAIN ANALYZE of the plain queries (PostgreSQL)."""
    statements = {
        "heatmap": select(StandupPrompt.member_id, StandupRun.run_date, StandupPrompt.status)
        .join(StandupRun, StandupRun.id == StandupPrompt.run_id)
        .where(
            StandupRun.standup_id == place.standup_id,
            StandupRun.run_date >= (place.now - timedelta(weeks=12)).date(),
        ),
        "board": _board(place),
    }
    async with db.read() as session:
        for name, stmt in statements.items():
            compiled = stmt.compile(
                dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
            )
            plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
            print(f"-- {name}")
            for (row,) in plan:
                print(f"   {row}")


def parser() -> argparse.ArgumentParser:
    ap = seed_year.parser()
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("--reuse", help="an already seeded database's URL: time it, seed nothing")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--parts", default="adq", help="a: pages, d: digest, q: reads")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE (PostgreSQL)")
    return ap


async def main() -> int:
    args = parser().parse_args()
    if args.reuse:
        url = args.reuse
        db = Database(url)
    else:
        shape = seed_year.shape_of(args)
        db, url = await seed_year.fresh(args.database_url)
    try:
        print(f"database             {make_url(url).render_as_string(hide_password=True)}")
        if not args.reuse:
            print(f"shape                {shape}")
            seeded = await seed_year.seed(db, shape)
            seed_year.print_counts(seeded.counts)
            print(f"seeded in            {seeded.seconds:.1f} s  ({load()})")
        place = await place_of(db)
        if "a" in args.parts:
            await pages(db, place, args.repeats)
        if "d" in args.parts:
            await digest(db, place, args.repeats)
        if "q" in args.parts:
            await queries(db, place, args.repeats)
        if args.explain and db.dialect == "postgresql":
            await explain(db, place)
    finally:
        await db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
