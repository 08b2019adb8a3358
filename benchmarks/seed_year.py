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
import json
import math
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import JSON, Table, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

from benchmarks.standup_fanout import scratch_database  # noqa: E402
from bot.features.blockers.timeline import Kind  # noqa: E402
from bot.features.pulse.bank import default_bank  # noqa: E402
from bot.features.pulse.scores import publish_round  # noqa: E402
from bot.features.standups.schedules import EDIT_PERIOD  # noqa: E402
from bot.features.standups.settings import DEFAULT_QUESTIONS  # noqa: E402
from storage import migrate  # noqa: E402
from storage.celebrations import Celebration, CelebrationProfile, CelebrationSettings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.kudos import DEFAULT_VALUES, Kudos, KudosReceiver  # noqa: E402
from storage.milestones import Milestone, MilestoneContributor  # noqa: E402
from storage.models import (  # noqa: E402
    Absence,
    Base,
    Blocker,
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
from storage.polls import Poll, PollBallot, PollParticipant, Pulse, PulseRound  # noqa: E402
from storage.raci import RaciArea, RaciAssignment  # noqa: E402

ZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
FIRST = (
    "ana ben chen dara eli fatima gus hana ivan jo kai lena marco nia omar priya quinn rosa".split()
)
FIRST += ["sam", "tara"]
LAST = "abe brun costa diaz eng fox garcia hill ito jain kim lopez moreau nagy okafor park".split()
LAST += ["rossi", "silva", "tan", "weber"]
AREA_NAMES = (
    "Platform Payments Search Mobile Web Data Billing Identity Infra Growth Checkout Messaging "
    "Analytics Security Compliance Support Onboarding Pricing Catalog Shipping Reporting Ads "
    "Recommendations Notifications Localization Accessibility Observability Storage Networking "
    "Release CI Design-System API-Gateway Partner-API Fraud Ledger Tax Inventory Warehouse Sync"
).split()
DID = (
    "Finished {t} review",
    "Fixed the flaky test in {t}",
    "Paired on {t} with the on-call",
    "Shipped {t} behind a flag",
    "Wrote the design doc for {t}",
    "Migrated {t} to the new client",
    "Triaged {n} tickets for {t}",
)
NEXT = (
    "Continue with {t}",
    "Start on {t}",
    "Roll out {t} to 10%",
    "Write tests for {t}",
    "Meet with design about {t}",
    "Clean up {t} dashboards",
)
THINGS = (
    "the export job",
    "login rate limits",
    "invoice PDFs",
    "search ranking",
    "the iOS build",
    "feature flags",
    "the billing webhook",
    "cache warm-up",
    "the onboarding flow",
    "SLO alerts",
    "the data backfill",
    "dark mode",
)
BLOCKED = (
    "Waiting on {a} for API access",
    "Need a review from {a} on the schema change",
    "Staging is down, can't test {t}",
    "{a} has not shipped the endpoint for {t}",
    "Blocked on credentials for {t}",
    "Flaky CI on {t}, can't merge",
    "Waiting for legal sign-off on {t}",
)
NO_BLOCKER = ("None", "no", "Nope", "-", "n/a", "Nothing")
KUDOS_REASONS = (
    "for jumping on the incident at 2am",
    "for the clearest design doc of the quarter",
    "for unblocking {t}",
    "for patient reviews on {t}",
    "for mentoring the new joiners",
    "for shipping {t} ahead of time",
)
CHUNK = 20_000
# The default escalation ladder (bot.features.blockers.policy), in wall-clock time as it
# works out on weekdays in business hours: responsible after 4h, accountable 1d, channel 2d.
LADDER = (
    ("responsible", timedelta(hours=10)),
    ("accountable", timedelta(days=1, hours=14)),
    ("channel", timedelta(days=3, hours=6)),
)


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


class Bulk:
    """Rows into tables with ids chosen here: COPY on PostgreSQL, executemany elsewhere.

    Buffers are written in the metadata's dependency order, so a row's parents are always in
    the database before it."""

    def __init__(self, conn: AsyncConnection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres
        self.ids: Counter[str] = Counter()
        self.buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self.order = [t.name for t in Base.metadata.sorted_tables]
        self.tables = {t.name: t for t in Base.metadata.sorted_tables}
        self.pending = 0

    def next_id(self, table: Table | type) -> int:
        name = table.__tablename__ if hasattr(table, "__tablename__") else table.name
        self.ids[name] += 1
        return self.ids[name]

    async def add(self, model: type, **row: Any) -> None:
        self.buffers[model.__tablename__].append(row)  # type: ignore[attr-defined]
        self.pending += 1
        if self.pending >= CHUNK:
            await self.flush()

    async def flush(self) -> None:
        for name in self.order:
            rows = self.buffers.pop(name, None)
            if rows:
                await self._write(self.tables[name], rows)
                self.counts[name] += len(rows)
        self.pending = 0

    async def _write(self, table: Table, rows: list[dict[str, Any]]) -> None:
        columns = list(rows[0])
        if not self.postgres:
            await self.conn.execute(insert(table), rows)
            await self.conn.commit()
            return
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        records = [
            tuple(json.dumps(r[c]) if c in json_columns else r[c] for c in columns) for r in rows
        ]
        raw = await self.conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=columns
        )

    async def finish(self) -> None:
        await self.flush()
        if self.postgres:
            for name, last in self.ids.items():
                await self.conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {last})")
                )


@dataclass
class Person:
    id: int
    team: int  # index into the teams
    zone: str
    rate: float  # how often they answer a standup
    silent: tuple[date, date] | None
    away: list[tuple[date, date]] = field(default_factory=list)
    unreachable: bool = False


class Seeder:
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

    def _blocked_text(self, team: int) -> str:
        other = AREA_NAMES[self.rng.randrange(len(self.area_ids))].replace("-", " ")
        return self.rng.choice(BLOCKED).format(a=other, t=self.thing())

    # -- blockers ------------------------------------------------------------------------------

    async def blocker(
        self, p: Person, at: datetime, source: str, text_: str, answer_id: int | None
    ) -> tuple[int, datetime | None]:
        """One blocker and its timeline; returns its id and when it closed (None: open)."""
        b, rng, now = self.b, self.rng, self.now
        self.blocker_count += 1
        bid = b.next_id(Blocker)
        areas = len(self.area_ids)
        own = p.team % areas
        area = (
            None if rng.random() < 0.06 else (own if rng.random() < 0.9 else rng.randrange(areas))
        )
        waiting_area = waiting_member = None
        if area is not None and rng.random() < 0.22:
            hot = self.partner.get(area)
            waiting_area = hot if hot is not None and rng.random() < 0.7 else rng.randrange(areas)
            if waiting_area == area:
                waiting_area = None
        elif rng.random() < 0.2:
            waiting_member = rng.choice(self.persons).id
        severity = rng.choices(("low", "normal", "high", "critical"), (15, 60, 20, 5))[0]
        # How long it stays open: hours to weeks, a few forgotten for months.
        hours = rng.lognormvariate(math.log(40), 1.4)
        if rng.random() < 0.09:
            hours = 24 * 365
        closes = at + timedelta(hours=hours)
        closed = closes <= now
        status = "open"
        acked_at = ack_by = None
        if rng.random() < (0.5 if closed else 0.3):
            acked_at = at + timedelta(hours=hours * rng.uniform(0.1, 0.6))
            if acked_at > now:
                acked_at = None
            else:
                ack_by = rng.choice(self.area_r[area]) if area is not None else self.leads[p.team]
                status = "acknowledged"
        resolved_by = None
        if closed:
            status = "resolved" if rng.random() < 0.9 else "cancelled"
            resolved_by = p.id if rng.random() < 0.6 else (ack_by or self.leads[p.team])
        events: list[tuple[datetime, int | None, str, dict[str, Any]]] = []
        detail: dict[str, Any] = {"source": source, "severity": severity}
        if area is not None:
            detail.update(area_id=self.area_ids[area], area_suggested=source == "standup")
        events.append((at, p.id, Kind.OPENED, detail))
        stop = min(x for x in (acked_at, closes if closed else None, now) if x is not None)
        level = 0
        if area is not None:
            for n, (target, after) in enumerate(LADDER, 1):
                when = at + after
                if when > stop:
                    break
                level = n
                targets = (
                    self.area_r[area]
                    if target == "responsible"
                    else [self.area_a[area]]
                    if target == "accountable"
                    else []
                )
                events.append(
                    (
                        when,
                        None,
                        Kind.ESCALATED,
                        {
                            "level": n,
                            "round": 0,
                            "targets": targets,
                            "target": target,
                            "label": f"@{target}" if targets else f"#{AREA_NAMES[area].lower()}",
                            "delayed": False,
                        },
                    )
                )
        generation = 0
        anchor = at
        if acked_at is not None:
            events.append((acked_at, ack_by, Kind.ACKNOWLEDGED, {}))
            generation, anchor, level = 1, acked_at + timedelta(days=1), 0
        if rng.random() < 0.1:
            events.append((at + (stop - at) / 2, p.id, Kind.NOTED, {"text": "Pinged them again"}))
        if closed:
            kind = Kind.RESOLVED if status == "resolved" else Kind.CANCELLED
            events.append((closes, resolved_by, kind, {}))
        next_at = None
        if not closed and area is not None and level < len(LADDER):
            next_at = anchor + LADDER[level][1]
        await b.add(
            Blocker,
            id=bid,
            workspace_id=self.ws,
            member_id=p.id,
            standup_answer_id=answer_id,
            text=text_,
            status=status,
            created_at=at,
            resolved_at=closes if closed else None,
            source=source,
            source_link=(
                f"https://yearcorp.slack.com/archives/{self.team_channel[p.team][1]}"
                f"/p{int(at.timestamp() * 1e6)}"
                if source == "message"
                else None
            ),
            area_id=self.area_ids[area] if area is not None else None,
            waiting_on_member_id=waiting_member,
            waiting_on_area_id=self.area_ids[waiting_area] if waiting_area is not None else None,
            severity=severity,
            updated_at=max(e[0] for e in events),
            last_reported_at=None,
            acknowledged_at=acked_at,
            acknowledged_by_id=ack_by,
            resolved_by_id=resolved_by,
            snoozed_until=None,
            card_outbox_id=None,
            card_version=len(events),
            next_escalation_at=next_at,
            escalation_level=level,
            escalation_round=0,
            escalation_generation=generation,
            escalation_anchor_at=anchor if area is not None else None,
            escalation_anchor_generation=generation if area is not None else -1,
        )
        for when, actor, kind, d in events:
            await b.add(
                BlockerEvent,
                id=b.next_id(BlockerEvent),
                blocker_id=bid,
                at=when,
                actor_id=actor,
                kind=kind,
                detail=d,
            )
        return bid, closes if closed else None

    async def more_blockers(self) -> None:
        """The rest of the blockers, raised with ``/blocker`` or from a reported message."""
        rng = self.rng
        while self.blocker_count < self.s.blockers:
            p = rng.choice(self.persons)
            at = self.now - timedelta(days=self.s.days * rng.random() ** 1.3)
            source = "message" if rng.random() < 0.12 else "command"
            await self.blocker(p, at, source, self._blocked_text(p.team), None)

    # -- pulses and polls ------------------------------------------------------------------------

    async def pulses(self) -> None:
        s, rng, b = self.s, self.rng, self.b
        bank = default_bank()
        per_round = 3
        first = self.start + timedelta(days=(2 - self.start.weekday()) % 7)  # a Wednesday
        self.rounds: list[tuple[int, int]] = []  # (pulse id, round id), oldest first per pulse
        for t in range(s.teams):
            quiet = rng.random() < 0.12  # answers too few to meet the threshold alone
            rate = rng.uniform(0.04, 0.12) if quiet else rng.uniform(0.45, 0.9)
            mood = rng.uniform(3.1, 4.2)
            dip = t in self.fading
            pulse_id = b.next_id(Pulse)
            weeks: list[tuple[date, datetime, datetime]] = []
            week = first
            while (sent := self.at(self.team_zone[t], week, 10)) + timedelta(days=4) <= self.now:
                weeks.append((week, sent, sent + timedelta(days=4)))
                week += timedelta(days=7)
            await b.add(
                Pulse,
                id=pulse_id,
                workspace_id=self.ws,
                team_id=self.team_ids[t],
                owner_id=self.leads[t],
                day_of_week=3,
                time_of_day="10:00",
                every_weeks=1,
                anchor_date=first - timedelta(days=2),
                open_days=4,
                questions_per_round=per_round,
                bank=bank,
                next_question=len(weeks) * per_round % len(bank),
                threshold=5,
                digest_day=1,
                digest_time="09:00",
                paused=False,
                created_at=self.created,
                updated_at=self.created,
            )
            asked = 0
            for week, sent, closes in weeks:
                round_id = b.next_id(PulseRound)
                self.rounds.append((pulse_id, round_id))
                await b.add(
                    PulseRound,
                    id=round_id,
                    pulse_id=pulse_id,
                    period_date=week,
                    sent_at=sent,
                    closes_at=closes,
                    closed_at=closes,
                )
                recent = dip and (self.today - week).days < 21
                for _ in range(per_round):
                    q = bank[asked % len(bank)]
                    asked += 1
                    centre = mood - (0.8 if recent else 0.0) + rng.gauss(0, 0.15)
                    await self._poll(
                        t, round_id, q["key"], q["text"], q["kind"], sent, closes, rate, centre
                    )
        # A monthly ad-hoc poll per team, named or anonymous.
        for t in range(s.teams):
            day = self.start + timedelta(days=rng.randrange(28))
            while day < self.today - timedelta(days=7):
                opens = self.at(self.team_zone[t], day, 11)
                await self._poll(
                    t, None, None, "Which day suits the offsite?", "single", opens,
                    opens + timedelta(days=2), rng.uniform(0.3, 0.9), 0.0,
                    anonymous=rng.random() < 0.5,
                )  # fmt: skip
                day += timedelta(days=rng.randint(24, 36))

    async def _poll(
        self,
        t: int,
        round_id: int | None,
        key: str | None,
        question: str,
        kind: str,
        opens: datetime,
        closes: datetime,
        rate: float,
        centre: float,
        anonymous: bool = True,
    ) -> None:
        b, rng = self.b, self.rng
        poll_id = b.next_id(Poll)
        options = ["Mon", "Wed", "Fri"] if kind == "single" else []
        await b.add(
            Poll,
            id=poll_id,
            workspace_id=self.ws,
            team_id=self.team_ids[t],
            round_id=round_id,
            question_key=key,
            channel_id=self.team_channel[t][0],
            creator_id=None if round_id else self.leads[t],
            question=question,
            kind=kind,
            options=options,
            max_choices=1,
            anonymous=anonymous,
            results="closed",
            threshold=5,
            opens_at=opens,
            closes_at=closes,
            closed_at=closes,
            close_generation=0,
            remind_at=None,
            result_pool_id=None,
            message_outbox_id=None,
            live_outbox_id=None,
            live_posted_at=None,
            results_version=1,
            published_voters=None,
            created_at=opens,
            updated_at=closes,
        )
        ballots = []
        for p in self.team_people[t]:
            voted = rng.random() < rate
            await b.add(PollParticipant, poll_id=poll_id, member_id=p.id, voted=voted, final=voted)
            if not voted:
                continue
            if kind == "scale":
                choice = min(5, max(1, round(rng.gauss(centre, 0.9))))
            elif kind == "enps":
                choice = min(10, max(0, round(rng.gauss(centre * 2, 2.0))))
            else:
                choice = rng.randrange(len(options))
            # Anonymous: random keys written at close, nothing that names the voter.
            who = secrets.token_hex(32) if anonymous else f"m{p.id}"
            ballots.append((choice, who, None if anonymous else p.id))
        for choice, who, member in sorted(ballots):
            await b.add(
                PollBallot,
                poll_id=poll_id,
                voter_key=who,
                choice=choice,
                text=None,
                member_id=member,
            )

    # -- kudos, milestones, celebrations ----------------------------------------------------------

    async def kudos(self) -> None:
        rng, b = self.rng, self.b
        values = list(DEFAULT_VALUES)
        day = self.start
        while day <= self.today:
            if day.isoweekday() <= 5:
                for _ in range(int(rng.gauss(self.s.members * 0.03, 10))):
                    giver = rng.choice(self.persons)
                    at = self.at(giver.zone, day, rng.randint(9, 17), rng.randrange(60))
                    if at > self.now:
                        continue
                    mates = self.team_people[giver.team] if rng.random() < 0.8 else self.persons
                    receivers = {r.id for r in rng.sample(mates, rng.choice((1, 1, 1, 2, 3)))} - {
                        giver.id
                    }
                    if not receivers:
                        continue
                    private = rng.random() < 0.1
                    kid = b.next_id(Kudos)
                    await b.add(
                        Kudos,
                        id=kid,
                        workspace_id=self.ws,
                        giver_id=giver.id,
                        reason=rng.choice(KUDOS_REASONS).format(t=self.thing()),
                        value=rng.choice(values) if rng.random() < 0.7 else None,
                        private=private,
                        channel_id=None if private else self.team_channel[giver.team][1],
                        given_at=at,
                    )
                    for r in sorted(receivers):
                        await b.add(KudosReceiver, kudos_id=kid, receiver_id=r)
            day += timedelta(days=1)

    async def milestones(self) -> None:
        rng, b = self.rng, self.b
        for t in range(self.s.teams):
            for n in range(rng.randint(8, 14)):
                due = self.start + timedelta(days=rng.randint(20, self.s.days + 60))
                zone = self.team_zone[t]
                created = self.at(zone, due - timedelta(days=rng.randint(14, 90)), 12)
                if created > self.now:
                    continue
                status, done_at, done_by, source, cancelled = "open", None, None, None, None
                owner = rng.choice(self.team_people[t]).id
                if due < self.today:
                    roll = rng.random()
                    if roll < 0.8:
                        status = "done"
                        done_at = self.at(zone, due - timedelta(days=rng.randint(-3, 5)), 15)
                        done_at = min(done_at, self.now)
                        done_by = owner
                        source = "hand" if rng.random() < 0.6 else "hook:github-release"
                    elif roll < 0.86:
                        status, cancelled = "cancelled", created + (self.now - created) / 2
                name = f"Team {t:03d} release {n + 1}.0"
                mid = b.next_id(Milestone)
                await b.add(
                    Milestone,
                    id=mid,
                    workspace_id=self.ws,
                    name=name,
                    name_key=None if status == "cancelled" else name.casefold(),
                    description=f"Ship {self.thing()}",
                    due_on=due,
                    timezone=zone,
                    channel_id=self.team_channel[t][1],
                    area_id=self.area_ids[t % len(self.area_ids)],
                    owner_id=owner,
                    created_by_id=self.leads[t],
                    created_at=created,
                    countdown_days=[7, 1],
                    status=status,
                    done_at=done_at,
                    done_by_id=done_by,
                    done_source=source,
                    cancelled_at=cancelled,
                    overdue_notified_at=(
                        self.at(zone, due + timedelta(days=1))
                        if status == "open" and due < self.today
                        else None
                    ),
                )
                for m in {owner} | {p.id for p in rng.sample(self.team_people[t], 3)}:
                    await b.add(MilestoneContributor, milestone_id=mid, member_id=m)

    async def celebrations(self) -> None:
        rng, b = self.rng, self.b
        for p in self.persons:
            if rng.random() > 0.7:
                continue
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            started = self.today - timedelta(days=rng.randint(60, 6 * 365))
            started = started.replace(day=min(started.day, 28))
            await b.add(
                CelebrationProfile,
                member_id=p.id,
                workspace_id=self.ws,
                birthday_month=month,
                birthday_day=day,
                started_on=started,
                opted_out=False,
                updated_at=self.created,
            )
            for kind, when in (
                ("birthday", date(self.today.year, month, day)),
                ("anniversary", started.replace(year=self.today.year)),
            ):
                if when > self.today:
                    when = when.replace(year=when.year - 1)
                if when < self.start or (kind == "anniversary" and when.year == started.year):
                    continue
                await b.add(
                    Celebration,
                    id=b.next_id(Celebration),
                    key=f"{kind}:{p.id}:{when.year}",
                    workspace_id=self.ws,
                    member_id=p.id,
                    kind=kind,
                    posted_at=self.at(p.zone, when),
                )


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
