"""The rows of :mod:`benchmarks.seed_year` besides people and standups: blockers with their
timelines, pulses and polls, kudos, milestones and celebrations, and the bulk writer.

:class:`Rituals` is a mix-in of :class:`benchmarks.seed_year.Seeder`: its methods use the
seeder's people, teams and areas (``self.persons``, ``self.team_people``, ``self.area_ids``...).
"""

from __future__ import annotations

import json
import math
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.features.blockers.timeline import Kind
from bot.features.pulse.bank import default_bank
from storage.celebrations import Celebration, CelebrationProfile
from storage.kudos import DEFAULT_VALUES, Kudos, KudosReceiver
from storage.milestones import Milestone, MilestoneContributor
from storage.models import Base, Blocker, BlockerEvent
from storage.polls import Poll, PollBallot, PollParticipant, Pulse, PulseRound

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


class Rituals:
    """Blockers, pulses, polls, kudos, milestones and celebrations (see the module)."""

    # mypy: the attributes come from the seeder
    b: Bulk
    rng: Any
    s: Any
    now: datetime
    today: date
    start: date

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
