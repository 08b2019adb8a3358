"""A year of a big workspace, written through the real schema, for ``benchmarks/dashboard.py``.

One Slack workspace of MEMBERS members in eight time zones, in TEAMS teams (100 of 50 by
default), each team with:

* a standup on weekdays at 09:00 in each member's zone (three questions, the third the blocker
  question), a run per local date with one prompt per member (answered, skipped, away for an
  absence, unreachable, or left pending) and the answers of those who answered; a few members
  fall silent for weeks, a few teams answer less in the last six weeks;
* a weekly pulse (Wednesdays, three questions of the default bank in rotation, anonymous,
  threshold 5): rounds and their polls, who answered (``poll_participants``) and ballots stored
  the way a close leaves them (random keys, no member id, no time); some teams answer too
  little to meet the threshold alone, and the real :func:`publish_round` then decides the pools;
* a monthly ad-hoc poll (named or anonymous), kudos (about 150 a weekday), milestones (done,
  cancelled, overdue, due soon) with contributors, birthdays and work anniversaries;

and BLOCKERS blockers across RACI areas (an area per team group, with R, A, C and I), three
fifths from standup answers (linked to their answer, named again in later standups while open),
the rest from ``/blocker`` or a reported message, each with its timeline: opened, reported
again, escalated along the default ladder (responsible, accountable, channel) until someone
acknowledged or resolved it, notes, severity changes, resolved or cancelled. Old ones are mostly
closed; the open ones are mostly recent, with a tail of stale ones. A fifth wait on another area
(a few area pairs much more often than the rest).

Rows are written in bulk: ``COPY`` through asyncpg on PostgreSQL, executemany on SQLite, with
ids chosen here (the sequences are moved past them at the end). What is not written: outbox
rows (the reports', cards' and DMs' messages; their ``*_outbox_id`` columns stay empty) and
pulse rounds still open (a round is written only once it closed).

Run alone (a fresh database next to the one named, kept, its URL printed)::

    .venv/bin/python benchmarks/seed_year.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/seed_year.py --database-url sqlite+aiosqlite:////tmp/year.db \
        --members 500 --teams 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.seed_rituals import (  # noqa: E402
    AREA_NAMES,
    DID,
    FIRST,
    LAST,
    NEXT,
    NO_BLOCKER,
    THINGS,
    ZONES,
    Bulk,
    Person,
    Rituals,
)
from benchmarks.standup_fanout import scratch_database  # noqa: E402
from bot.features.blockers.timeline import Kind  # noqa: E402
from bot.features.pulse.scores import publish_round  # noqa: E402
from bot.features.standups.schedules import EDIT_PERIOD  # noqa: E402
from bot.features.standups.settings import DEFAULT_QUESTIONS  # noqa: E402
from storage import migrate  # noqa: E402
from storage.celebrations import CelebrationSettings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import (  # noqa: E402
    Absence,
    BlockerEvent,
    Channel,
    ChannelMember,
    Member,
    RoleAssignment,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
    Team,
    TeamMember,
    Workspace,
)
from storage.polls import Pulse, PulseRound  # noqa: E402
from storage.raci import RaciArea, RaciAssignment  # noqa: E402


@dataclass
class Shape:
    members: int = 5000
    teams: int = 100
    days: int = 365
    blockers: int = 10_000
    seed: int = 14


@dataclass
class Seeded:
    """What the benchmark needs to find its way in the data."""

    workspace_id: int
    admin_id: int  # a platform admin (sees everything)
    member_id: int  # a plain member of the first team
    team_ids: list[int]
    counts: Counter[str]
    seconds: float


class Seeder(Rituals):
    def __init__(self, bulk: Bulk, shape: Shape, now: datetime) -> None:
        self.b = bulk
        self.s = shape
        self.now = now
        self.rng = random.Random(shape.seed)
        self.today = now.date()
        self.start = self.today - timedelta(days=shape.days - 1)
        self.nine: dict[tuple[str, date], datetime] = {}

    def at(self, zone: str, day: date, hour: int = 9, minute: int = 0) -> datetime:
        key = (f"{zone}@{hour}:{minute}", day)
        if key not in self.nine:
            local = datetime.combine(day, clock_time(hour, minute), tzinfo=ZoneInfo(zone))
            self.nine[key] = local.astimezone(UTC)
        return self.nine[key]

    def thing(self) -> str:
        return self.rng.choice(THINGS)

    # -- people, teams, channels, areas ---------------------------------------------------------

    async def people(self) -> None:
        s, rng, b = self.s, self.rng, self.b
        self.created = self.now - timedelta(days=s.days + 30)
        self.ws = b.next_id(Workspace)
        await b.add(
            Workspace,
            id=self.ws,
            platform="slack",
            external_id="T0YEAR",
            name="Year Corp",
            created_at=self.created,
            uninstalled_at=None,
        )
        size = s.members // s.teams
        self.team_zone = [ZONES[i % len(ZONES)] for i in range(s.teams)]
        self.team_rate = [rng.uniform(0.72, 0.97) for _ in range(s.teams)]
        # A few teams answer less lately (the digest's "participation down a third").
        self.fading = set(rng.sample(range(s.teams), max(1, s.teams // 20)))
        self.persons: list[Person] = []
        self.team_people: list[list[Person]] = [[] for _ in range(s.teams)]
        for i in range(s.members):
            team = min(i // size, s.teams - 1)
            zone = self.team_zone[team] if rng.random() < 0.8 else rng.choice(ZONES)
            mid = b.next_id(Member)
            silent = None
            if rng.random() < 0.03:
                begin = self.start + timedelta(days=rng.randrange(s.days))
                silent = (begin, begin + timedelta(days=rng.randint(14, 56)))
            elif rng.random() < 0.01:
                silent = (self.today - timedelta(days=rng.randint(10, 30)), self.today)
            p = Person(
                mid,
                team,
                zone,
                min(0.99, max(0.3, rng.gauss(self.team_rate[team], 0.08))),
                silent,
                unreachable=rng.random() < 0.003,
            )
            for _ in range(rng.choice((1, 2, 2, 3))):
                begin = self.start + timedelta(days=rng.randrange(s.days))
                p.away.append((begin, begin + timedelta(days=rng.randint(2, 12))))
            self.persons.append(p)
            self.team_people[team].append(p)
            name = f"{FIRST[i % 20]}.{LAST[(i // 20) % 20]}{i // 400 or ''}"
            await b.add(
                Member,
                id=mid,
                workspace_id=self.ws,
                platform_user_id=f"U{mid:08d}",
                display_name=name,
                timezone=zone,
                timezone_set_by_member=False,
                is_platform_admin=mid == 1,
                dm_channel_id=f"D{mid:08d}",
                created_at=self.created,
                updated_at=self.created,
            )
            for begin, end in p.away:
                await b.add(
                    Absence,
                    id=b.next_id(Absence),
                    member_id=mid,
                    standup_id=None,
                    start_date=begin,
                    end_date=end,
                    created_at=datetime.combine(begin, clock_time(), tzinfo=UTC)
                    - timedelta(days=7),
                )
        self.admin = 1
        await b.add(
            RoleAssignment,
            id=b.next_id(RoleAssignment),
            workspace_id=self.ws,
            member_id=1,
            role="admin",
            team_id=None,
            granted_at=self.created,
        )
        self.team_ids: list[int] = []
        self.team_channel: list[tuple[int, str]] = []
        self.leads: list[int] = []
        for t in range(s.teams):
            cid = b.next_id(Channel)
            ext = f"C{cid:08d}"
            await b.add(
                Channel,
                id=cid,
                workspace_id=self.ws,
                external_id=ext,
                name=f"team-{t:03d}",
                created_at=self.created,
            )
            tid = b.next_id(Team)
            self.team_ids.append(tid)
            self.team_channel.append((cid, ext))
            await b.add(
                Team,
                id=tid,
                workspace_id=self.ws,
                name=f"Team {t:03d}",
                channel_id=cid,
                timezone=self.team_zone[t],
                created_at=self.created,
            )
            lead = self.team_people[t][0].id
            self.leads.append(lead)
            await b.add(
                RoleAssignment,
                id=b.next_id(RoleAssignment),
                workspace_id=self.ws,
                member_id=lead,
                role="team_lead",
                team_id=tid,
                granted_at=self.created,
            )
            for p in self.team_people[t]:
                await b.add(TeamMember, team_id=tid, member_id=p.id)
                await b.add(ChannelMember, channel_id=cid, member_id=p.id)
        await b.add(
            CelebrationSettings,
            workspace_id=self.ws,
            streaks=True,
            birthdays=True,
            anniversaries=True,
            streak_length=20,
            channel_id=self.team_channel[0][1],
            updated_at=self.created,
        )

    async def areas(self) -> None:
        s, rng, b = self.s, self.rng, self.b
        count = max(1, min(len(AREA_NAMES), s.teams * 2 // 5))
        self.area_ids: list[int] = []
        self.area_r: list[list[int]] = []
        self.area_a: list[int] = []
        for a in range(count):
            aid = b.next_id(RaciArea)
            self.area_ids.append(aid)
            name = AREA_NAMES[a].replace("-", " ")
            owners = list(range(a, s.teams, count))
            zone = self.team_zone[owners[0]] if owners else "UTC"
            await b.add(
                RaciArea,
                id=aid,
                workspace_id=self.ws,
                name=name,
                key=name.lower(),
                channel_id=f"C9{a:07d}",
                timezone=zone,
                work_days=[1, 2, 3, 4, 5],
                day_start_minute=540,
                day_end_minute=1020,
                holiday_country={"America/New_York": "US", "Europe/Berlin": "DE"}.get(zone),
                holiday_subdivision=None,
                custom_holidays=[],
                keywords=[name.lower()],
                policy=None,
                created_at=self.created,
                updated_at=self.created,
            )
            responsible = [self.leads[t] for t in owners][:3] or [self.admin]
            accountable = rng.choice(self.persons).id
            consulted = [p.id for p in rng.sample(self.persons, 2)]
            self.area_r.append(responsible)
            self.area_a.append(accountable)
            cells = [("R", m) for m in responsible] + [("A", accountable)]
            cells += [("C", m) for m in consulted if m not in responsible and m != accountable]
            for role, m in cells:
                await b.add(
                    RaciAssignment,
                    id=b.next_id(RaciAssignment),
                    area_id=aid,
                    role=role,
                    who=f"member:{m}",
                    member_id=m,
                    label="",
                )
            await b.add(
                RaciAssignment,
                id=b.next_id(RaciAssignment),
                area_id=aid,
                role="I",
                who=f"channel:C9{a:07d}",
                member_id=None,
                label=f"#{name.lower().replace(' ', '-')}",
            )
        # Some areas depend on one other area much more than on the rest.
        self.partner = {
            a: rng.randrange(count) for a in range(count) if count > 1 and rng.random() < 0.35
        }
        self.partner = {a: p for a, p in self.partner.items() if p != a}

    # -- standups --------------------------------------------------------------------------------

    async def standups(self) -> None:
        s, rng, b = self.s, self.rng, self.b
        questions = []
        for line in DEFAULT_QUESTIONS:
            tag, sep, rest = line.partition(":")
            blocker = bool(sep) and tag == "blocker"
            questions.append(
                {
                    "text": rest.strip() if blocker else line,
                    "kind": "text",
                    "choices": [],
                    "blocker": blocker,
                }
            )
        monday = self.start - timedelta(days=self.start.weekday())
        holidays = [d.isoformat() for d in (date(self.today.year - 1, 12, 25),)]
        self.standup_ids: list[int] = []
        for t in range(s.teams):
            sid = b.next_id(Standup)
            self.standup_ids.append(sid)
            await b.add(
                Standup,
                id=sid,
                workspace_id=self.ws,
                name=f"Team {t:03d} daily",
                owner_id=self.leads[t],
                report_channel_id=self.team_channel[t][0],
                participants_channel_id=None,
                questions=questions,
                days=[1, 2, 3, 4, 5],
                every_weeks=1,
                anchor_date=monday,
                time_of_day="09:00",
                team_timezone=None,
                reminder_minutes=120,
                window_minutes=240,
                report_mode="each",
                report_layout="thread",
                group_by="person",
                tag_missing=False,
                channel_nudge=False,
                holidays=holidays,
                paused=False,
                created_at=self.created,
                updated_at=self.created,
            )
            for p in self.team_people[t]:
                await b.add(StandupParticipant, standup_id=sid, member_id=p.id)
        self.holidays = set(holidays)
        answered = s.members * s.days * 5 / 7 * 0.82
        self.p_blocker = 0.6 * s.blockers / max(1.0, answered)
        self.open_by_member: dict[int, tuple[int, str, datetime | None]] = {}
        self.blocker_count = 0
        day = self.start
        while day <= self.today + timedelta(days=1):
            if day.isoweekday() <= 5 and day.isoformat() not in self.holidays:
                for t in range(s.teams):
                    await self._run(t, day)
            day += timedelta(days=1)
        del rng

    async def _run(self, t: int, day: date) -> None:
        b, rng, now = self.b, self.rng, self.now
        opens = self.at(self.team_zone[t], day)
        if min(self.at(p.zone, day) for p in self.team_people[t]) > now:
            return
        run_id = b.next_id(StandupRun)
        rows: list[dict[str, Any]] = []
        answered: list[tuple[Person, int, datetime]] = []
        late = (self.today - day).days < 42 and t in self.fading
        for p in self.team_people[t]:
            prompted = self.at(p.zone, day)
            if prompted > now:
                continue
            remind = prompted + timedelta(minutes=120)
            pid = b.next_id(StandupPrompt)
            row: dict[str, Any] = {
                "id": pid,
                "run_id": run_id,
                "member_id": p.id,
                "status": "pending",
                "prompted_at": prompted,
                "remind_at": remind,
                "reminded_at": remind if remind <= now else None,
                "answered_at": None,
                "step": None,
                "report_outbox_id": None,
                "report_version": 0,
                "report_dirty": False,
                "updated_at": prompted,
            }
            roll = rng.random()
            rate = p.rate * (0.55 if late else 1.0)
            if any(a <= day <= e for a, e in p.away):
                row.update(status="away", prompted_at=None, remind_at=None, reminded_at=None)
            elif p.unreachable:
                row.update(status="unreachable", remind_at=None, reminded_at=None)
            elif p.silent and p.silent[0] <= day <= p.silent[1]:
                pass
            elif roll < rate:
                at = prompted + timedelta(minutes=min(600.0, rng.lognormvariate(3.2, 0.9)))
                if at <= now:
                    row.update(
                        status="answered",
                        answered_at=at,
                        updated_at=at,
                        report_version=1,
                        reminded_at=remind if remind < at else None,
                    )
                    answered.append((p, pid, at))
            elif roll < rate + 0.02:
                row.update(status="skipped", remind_at=None, reminded_at=None)
            if row["status"] == "pending" and day >= self.today - timedelta(days=1):
                row["step"] = 0  # the newest prompt holds the DM conversation
            rows.append(row)
        await b.add(
            StandupRun,
            id=run_id,
            standup_id=self.standup_ids[t],
            run_date=day,
            occasion="",
            report_outbox_id=None,
            report_version=len(answered),
            report_dirty_since=None,
            report_generation=len(answered),
            closes_at=opens + max(EDIT_PERIOD, timedelta(minutes=240)),
            created_at=opens,
        )
        for row in rows:
            await b.add(StandupPrompt, **row)
        for p, pid, at in answered:
            await self._answers(p, pid, at)

    async def _answers(self, p: Person, prompt_id: int, at: datetime) -> None:
        b, rng = self.b, self.rng
        did = rng.choice(DID).format(t=self.thing(), n=rng.randint(2, 9))
        nxt = rng.choice(NEXT).format(t=self.thing())
        ids = [b.next_id(StandupAnswer) for _ in range(3)]
        blocker_text = rng.choice(NO_BLOCKER)
        still = self.open_by_member.get(p.id)
        new_blocker = False
        if still is not None and (still[2] is None or still[2] > at) and rng.random() < 0.5:
            blocker_text = still[1]
            await b.add(
                BlockerEvent,
                id=b.next_id(BlockerEvent),
                blocker_id=still[0],
                at=at,
                actor_id=p.id,
                kind=Kind.REPORTED_AGAIN,
                detail={"text": blocker_text, "answer_id": ids[2]},
            )
        elif self.blocker_count < self.s.blockers and rng.random() < self.p_blocker:
            blocker_text = self._blocked_text(p.team)
            new_blocker = True
        for i, value in enumerate((did, nxt, blocker_text)):
            await b.add(StandupAnswer, id=ids[i], prompt_id=prompt_id, question_index=i, text=value)
        if new_blocker:
            bid, until = await self.blocker(p, at, "standup", blocker_text, ids[2])
            self.open_by_member[p.id] = (bid, blocker_text, until)


async def _analyze(db: Database) -> None:
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def seed(db: Database, shape: Shape, *, now: datetime | None = None, log=print) -> Seeded:  # type: ignore[no-untyped-def]
    """Fill ``db`` (migrated, empty) with a year of ``shape``."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        bulk = Bulk(conn, db.dialect == "postgresql")
        seeder = Seeder(bulk, shape, now)
        for step in (
            seeder.people,
            seeder.areas,
            seeder.standups,
            seeder.more_blockers,
            seeder.pulses,
            seeder.kudos,
            seeder.milestones,
            seeder.celebrations,
        ):
            mark = time.perf_counter()
            await step()
            await bulk.flush()
            log(f"  {step.__name__:<14} {time.perf_counter() - mark:6.1f} s")
        await bulk.finish()
        await conn.execute(
            text(
                "UPDATE blockers SET last_reported_at = (SELECT max(e.at) FROM blocker_events e "
                "WHERE e.blocker_id = blockers.id AND e.kind = 'reported_again')"
            )
        )
        if db.dialect != "postgresql":
            await conn.commit()
    # Which answers each shown pulse result contains: decided by the product's own code, a
    # round at a time and in order, as each round's close does.
    mark = time.perf_counter()
    by_pulse: dict[int, list[int]] = defaultdict(list)
    for pulse_id, round_id in seeder.rounds:
        by_pulse[pulse_id].append(round_id)
    for pulse_id, round_ids in by_pulse.items():
        async with db.transaction() as session:
            pulse = await session.get(Pulse, pulse_id)
            rounds = {
                r.id: r
                for r in await session.scalars(
                    select(PulseRound).where(PulseRound.pulse_id == pulse_id)
                )
            }
            for round_id in round_ids:
                await publish_round(session, pulse, rounds[round_id])  # type: ignore[arg-type]
    log(f"  {'publish_round':<14} {time.perf_counter() - mark:6.1f} s")
    mark = time.perf_counter()
    await _analyze(db)
    log(f"  {'analyze':<14} {time.perf_counter() - mark:6.1f} s")
    return Seeded(
        workspace_id=seeder.ws,
        admin_id=seeder.admin,
        member_id=seeder.team_people[0][1].id,
        team_ids=seeder.team_ids,
        counts=bulk.counts,
        seconds=time.perf_counter() - started,
    )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL: a fresh database is made next to this one; SQLite: this file (empty)",
    )
    ap.add_argument("--members", type=int, default=Shape.members)
    ap.add_argument("--teams", type=int, default=Shape.teams)
    ap.add_argument("--days", type=int, default=Shape.days)
    ap.add_argument("--blockers", type=int, default=Shape.blockers)
    ap.add_argument("--seed", type=int, default=Shape.seed)
    return ap


def shape_of(args: argparse.Namespace) -> Shape:
    if args.members < args.teams * 5 or args.teams < 1 or args.days < 28:
        raise SystemExit("Give at least 5 members per team, 1 team and 28 days.")
    return Shape(args.members, args.teams, args.days, args.blockers, args.seed)


async def fresh(url: str) -> tuple[Database, str]:
    """A migrated empty database: a new one next to ``url`` on PostgreSQL, ``url`` on SQLite."""
    target, _ = await scratch_database(url)
    db = Database(target)
    await migrate.upgrade(db.engine)
    return db, target


def print_counts(counts: Counter[str]) -> None:
    shown = ", ".join(f"{n:,} {name}" for name, n in counts.most_common() if n >= 1000)
    print(f"rows                 {shown}")


async def main() -> int:
    args = parser().parse_args()
    shape = shape_of(args)
    db, url = await fresh(args.database_url)
    try:
        print(f"database             {make_url(url).render_as_string(hide_password=True)}")
        print(f"shape                {shape}")
        seeded = await seed(db, shape)
        print_counts(seeded.counts)
        print(f"seeded in            {seeded.seconds:.1f} s")
    finally:
        await db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
