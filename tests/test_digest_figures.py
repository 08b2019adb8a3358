"""The digest's figures against a recomputation from the raw rows: five weeks of standup prompts,
blockers (with areas, dependencies and escalations), kudos and milestones, written straight to
the database from a seeded generator, then counted again here in plain Python. On SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core import Core
from bot.features import digest as digest_feature
from bot.features import polls as polls_feature
from bot.features import pulse as pulse_feature
from bot.features.digest.figures import (
    Scope,
    blocker_figures,
    kudos_figures,
    standup_figures,
    team_figures,
    weeks_before,
)
from bot.scheduling.scheduler import Scheduler
from storage.celebrations import Celebration
from storage.db import Database
from storage.kudos import Kudos, KudosReceiver
from storage.milestones import Milestone, MilestoneContributor
from storage.models import (
    Blocker,
    BlockerEvent,
    BlockerStatus,
    PromptStatus,
    StandupPrompt,
    StandupRun,
)
from storage.raci import RaciArea, RaciAssignment
from tests.fakes.clock import FakeClock
from tests.test_pulse_runtime import ZONE, World, at, make_pulse_world

END = at(date(2026, 3, 30), "09:00")  # Monday 30 March 2026, 09:00 Berlin (summer time)
TEAM = ("alice", "bob", "carol", "dana", "erin")  # the standup; frank is in another team
STATUSES = [PromptStatus.ANSWERED] * 6 + [
    PromptStatus.PENDING,
    PromptStatus.UNREACHABLE,
    PromptStatus.SKIPPED,
    PromptStatus.AWAY,
]


def build_core(db: Database, clock: FakeClock, instance: str) -> tuple[Core, Scheduler]:
    core = Core(db, clock)
    scheduler = Scheduler(db, clock, instance=instance, reconcile_interval=3600)
    polls_feature.register(core, scheduler)
    pulse_feature.register(core, scheduler)
    digest_feature.register(core, scheduler, lambda: "")
    core.on_schedules_changed.append(scheduler.reconcile)
    return core, scheduler


async def make_digest_world(db: Database, start: datetime | None = None) -> World:
    world = await (make_pulse_world(db) if start is None else make_pulse_world(db, start=start))
    await world.scheduler.stop()
    world.core, world.scheduler = build_core(db, world.clock, "test")
    await world.scheduler.start()
    return world


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_digest_world(database)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


@dataclass
class Raw:
    """What was written, for the recomputation."""

    prompts: list[tuple[str, date, PromptStatus, datetime | None]] = field(default_factory=list)
    blockers: list[dict] = field(default_factory=list)
    escalations: list[tuple[int, datetime]] = field(default_factory=list)
    kudos: list[tuple[datetime, str | None, bool, tuple[str, ...]]] = field(default_factory=list)
    areas: dict[str, int] = field(default_factory=dict)


async def seed(world: World, standup_id: int, rnd: random.Random) -> Raw:
    raw = Raw()
    members = world.members
    async with world.db.transaction() as session:
        for name, key in (("Data pipeline", "data-pipeline"), ("Labeling", "labeling")):
            area = RaciArea(
                workspace_id=world.workspace_id, name=name, key=key, timezone=ZONE,
                created_at=END - timedelta(days=90), updated_at=END - timedelta(days=90),
            )  # fmt: skip
            session.add(area)
            await session.flush()
            raw.areas[name] = area.id
        session.add_all(
            [
                RaciAssignment(area_id=raw.areas["Data pipeline"], role="R", who="@dana",
                               member_id=members["dana"]),
                RaciAssignment(area_id=raw.areas["Data pipeline"], role="A", who="@erin",
                               member_id=members["erin"]),
                RaciAssignment(area_id=raw.areas["Labeling"], role="A", who="@vendor",
                               label="Vendor desk"),
            ]
        )  # fmt: skip
        # Standups: every weekday of six weeks before END (the oldest outside the window), and
        # one run on END's day that is still open (it counts nowhere yet).
        day = END.date() - timedelta(days=42)
        while day <= END.date():
            if day.isoweekday() <= 5:
                run = StandupRun(
                    standup_id=standup_id, run_date=day,
                    closes_at=at(day, "18:00") if day < END.date() else END + timedelta(hours=8),
                    created_at=at(day, "09:00"),
                )  # fmt: skip
                session.add(run)
                await session.flush()
                for name in TEAM:
                    status = rnd.choice(STATUSES)
                    answered = at(day, "10:00") if status == PromptStatus.ANSWERED else None
                    session.add(
                        StandupPrompt(
                            run_id=run.id, member_id=members[name], status=status,
                            answered_at=answered, updated_at=at(day, "10:00"),
                        )
                    )  # fmt: skip
                    if day < END.date():
                        raw.prompts.append((name, day, status, answered))
            day += timedelta(days=1)
        # Blockers over seven weeks before END, by the team and by frank (another team).
        area_ids = [None, raw.areas["Data pipeline"], raw.areas["Labeling"]]
        for n in range(70):
            created = END - timedelta(hours=rnd.randint(1, 24 * 49))
            reporter = rnd.choice([*TEAM, "frank"])
            area = rnd.choice(area_ids)
            waiting = rnd.choice([None, None, raw.areas["Labeling"], raw.areas["Data pipeline"]])
            end_state = rnd.choice(["open", "open", "resolved", "resolved", "cancelled", "later"])
            resolved = None
            status = BlockerStatus.OPEN
            if end_state in ("resolved", "cancelled", "later"):
                resolved = created + timedelta(hours=rnd.randint(1, 24 * 20))
                status = (
                    BlockerStatus.CANCELLED if end_state == "cancelled" else BlockerStatus.RESOLVED
                )
                if resolved >= END:  # resolved after the digest's time: not yet, at END
                    resolved, status = None, BlockerStatus.OPEN
            row = Blocker(
                workspace_id=world.workspace_id, member_id=members[reporter],
                text=f"blocker {n} " + "x" * rnd.randint(0, 200), status=status,
                created_at=created, resolved_at=resolved, area_id=area,
                waiting_on_area_id=waiting,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            raw.blockers.append(
                {"id": row.id, "created": created, "resolved": resolved, "status": status,
                 "reporter": reporter, "area": area, "waiting": waiting, "text": row.text}
            )  # fmt: skip
            for _ in range(rnd.choice([0, 0, 1, 2])):
                when = created + timedelta(hours=rnd.randint(1, 24 * 10))
                if when < END:
                    session.add(BlockerEvent(blocker_id=row.id, at=when, kind="escalated"))
                    raw.escalations.append((row.id, when))
        # Kudos: to the team, to frank, private ones.
        values = ["craft", "care", "courage", None]
        for n in range(60):
            given = END - timedelta(hours=rnd.randint(1, 24 * 40))
            to = tuple(sorted(set(rnd.sample([*TEAM, "frank"], rnd.randint(1, 2)))))
            value, private = rnd.choice(values), rnd.random() < 0.15
            kudos = Kudos(
                workspace_id=world.workspace_id, giver_id=members["lead"], reason=f"thanks {n}",
                value=value, private=private, given_at=given,
            )  # fmt: skip
            session.add(kudos)
            await session.flush()
            for name in to:
                session.add(KudosReceiver(kudos_id=kudos.id, receiver_id=members[name]))
            raw.kudos.append((given, value, private, to))
        # Milestones: met this week, due soon, overdue, far away, someone else's, cancelled.
        today = END.date()
        for name, owner, status, due, done in (
            ("Beta", "alice", "done", today - timedelta(days=2), END - timedelta(days=2)),
            ("Old launch", "alice", "done", today - timedelta(days=30), END - timedelta(days=20)),
            ("GA", "bob", "open", today + timedelta(days=10), None),
            ("Audit", None, "open", today - timedelta(days=3), None),
            ("Next year", "carol", "open", today + timedelta(days=200), None),
            ("Frank's", "frank", "open", today + timedelta(days=2), None),
            ("Dropped", "alice", "cancelled", today + timedelta(days=2), None),
        ):
            milestone = Milestone(
                workspace_id=world.workspace_id, name=name, due_on=due, timezone=ZONE,
                owner_id=members[owner] if owner else None, created_at=END - timedelta(days=60),
                status=status, done_at=done,
            )  # fmt: skip
            session.add(milestone)
            await session.flush()
            if name == "Audit":  # no owner: in the team through a contributor
                session.add(
                    MilestoneContributor(milestone_id=milestone.id, member_id=members["dana"])
                )
        session.add(
            Celebration(key="c1", workspace_id=world.workspace_id, member_id=members["bob"],
                        kind="birthday", posted_at=END - timedelta(days=1))
        )  # fmt: skip
        session.add(
            Celebration(key="c2", workspace_id=world.workspace_id, member_id=members["frank"],
                        kind="birthday", posted_at=END - timedelta(days=1))
        )  # fmt: skip
    return raw


def week_bounds() -> list[tuple[datetime, datetime, date, date]]:
    """Five weeks before END, recomputed by hand: Mondays 09:00 Berlin (the first of them in
    winter time, so 167 hours long across the 29 March change)."""
    out = []
    for k in range(5, 0, -1):
        first = END.date() - timedelta(days=7 * k)
        last = first + timedelta(days=7)
        out.append((at(first, "09:00"), at(last, "09:00"), first, last))
    return out


def test_weeks_are_wall_clock_weeks_across_dst() -> None:
    weeks = weeks_before(END, ZONE)
    assert [(w.start, w.end, w.first_day, w.last_day) for w in weeks] == week_bounds()
    assert weeks[-1].end - weeks[-1].start == timedelta(hours=167)


async def scope_of(world: World, standup_id: int) -> Scope:
    return Scope(world.workspace_id, "standup", standup_id, "Daily")


async def test_standup_figures_match_the_raw_prompts(world: World) -> None:
    standup_id = await world.add_standup(list(TEAM), name="Daily")
    raw = await seed(world, standup_id, random.Random(7))
    bounds = week_bounds()
    async with world.db.transaction() as session:
        weeks = weeks_before(END, ZONE)
        got = await standup_figures(session, await scope_of(world, standup_id), weeks)
    asked, answered = [0] * 5, [0] * 5
    for _, day, status, _ in raw.prompts:
        k = next((k for k, b in enumerate(bounds) if b[2] <= day < b[3]), None)
        if k is None or status in (PromptStatus.SKIPPED, PromptStatus.AWAY):
            continue
        asked[k] += 1
        answered[k] += status == PromptStatus.ANSWERED
    assert min(asked) > 10  # the data is there to count
    assert got.asked_by_week == tuple(asked)
    assert got.answered_by_week == tuple(answered)
    assert got.asked == asked[-1] and got.answered == answered[-1]
    assert got.rate.now == pytest.approx(answered[-1] / asked[-1])
    rates = [a / s for a, s in zip(answered[:4], asked[:4], strict=True)]
    assert got.rate.before == pytest.approx(sum(rates) / 4)
    # The heatmap: one row per participant (by name), one column per day of the week.
    assert got.members == TEAM
    assert got.days == tuple(bounds[-1][2] + timedelta(days=n) for n in range(7))
    mapping = {PromptStatus.ANSWERED: "answered", PromptStatus.PENDING: "missed",
               PromptStatus.UNREACHABLE: "missed", PromptStatus.SKIPPED: "off",
               PromptStatus.AWAY: "off"}  # fmt: skip
    expected = {(n, d): mapping[s] for n, d, s, _ in raw.prompts}
    for row, name in zip(got.cells, TEAM, strict=True):
        assert row == tuple(expected.get((name, d), "") for d in got.days)
    # Silences: the oldest last answers first, each with its days.
    last: dict[str, datetime] = {}
    for name, _, _, when in raw.prompts:
        if when is not None:
            last[name] = max(last.get(name, when), when)
    ordered = sorted(TEAM, key=lambda n: (n in last, last.get(n, END), n))
    want = [(n, (END - last[n]).days if n in last else None) for n in ordered]
    want = [(n, d) for n, d in want if d is None or d >= 1]
    assert [(s.name, s.days) for s in got.silences] == want[: len(got.silences)]
    assert len(got.silences) == min(5, len(want))


def _open_at(b: dict, t: datetime) -> bool:
    return b["created"] < t and (b["resolved"] is None or b["resolved"] >= t)


async def test_blocker_figures_match_the_raw_blockers(world: World) -> None:
    standup_id = await world.add_standup(list(TEAM), name="Daily")
    raw = await seed(world, standup_id, random.Random(11))
    bounds = week_bounds()
    async with world.db.transaction() as session:
        weeks = weeks_before(END, ZONE)
        by_team = await blocker_figures(session, await scope_of(world, standup_id), weeks)
        area = Scope(world.workspace_id, "area", raw.areas["Data pipeline"], "Data pipeline")
        by_area = await blocker_figures(session, area, weeks)
    for got, mine in (
        (by_team, lambda b: b["reporter"] in TEAM),
        (by_area, lambda b: b["reporter"] in ("dana", "erin") or b["area"] == area.id),
    ):
        ours = [b for b in raw.blockers if mine(b)]
        assert 10 < len(ours) < len(raw.blockers)  # the scope keeps some, not all

        def week(t: datetime | None) -> int | None:
            return next((k for k, (s, e, _, _) in enumerate(bounds) if t and s <= t < e), None)

        opened = Counter(week(b["created"]) for b in ours)
        resolved = Counter(week(b["resolved"]) for b in ours if b["status"] == "resolved")
        assert got.opened.values == tuple(float(opened[k]) for k in range(5))
        assert got.resolved.values == tuple(float(resolved[k]) for k in range(5))
        assert got.open_at_end.values == tuple(
            float(sum(_open_at(b, e) for b in ours)) for _, e, _, _ in bounds
        )
        ids = {b["id"] for b in ours}
        escalated = [{i for i, t in raw.escalations if i in ids and week(t) == k} for k in range(5)]
        assert got.escalated.values == tuple(float(len(s)) for s in escalated)
        hours = sorted(
            (b["resolved"] - b["created"]).total_seconds() / 3600
            for b in ours
            if b["status"] == "resolved" and week(b["resolved"]) == 4
        )
        median = hours[(len(hours) + 1) // 2 - 1] if hours else None
        assert got.median_hours_to_resolve == (pytest.approx(median) if hours else None)
        still = sorted(
            (b for b in ours if b["status"] == "open"), key=lambda b: (b["created"], b["id"])
        )
        assert [o.id for o in got.oldest] == [b["id"] for b in still[:5]]
        names = {raw.areas["Data pipeline"]: "erin", raw.areas["Labeling"]: "Vendor desk"}
        for shown in got.oldest:
            b = next(b for b in still if b["id"] == shown.id)
            assert shown.accountable == (names[b["area"]] if b["area"] else None)
            assert shown.days_open == (END - b["created"]).days
        deps = [b for b in still if b["waiting"] and b["waiting"] != b["area"]]
        assert [d.blocker_id for d in got.dependencies] == [b["id"] for b in deps[:5]]
        pair_names = {None: (got is by_team and "Daily") or "Data pipeline",
                      raw.areas["Data pipeline"]: "Data pipeline",
                      raw.areas["Labeling"]: "Labeling"}  # fmt: skip
        for k, (_, e, _, _) in enumerate(bounds):
            want = {
                (pair_names[b["area"]], pair_names[b["waiting"]])
                for b in ours
                if b["waiting"] and b["waiting"] != b["area"] and _open_at(b, e)
            }
            assert got.pairs_by_week[k] == frozenset(want)
        assert got.oldest and any(got.pairs_by_week) and sum(got.escalated.values) > 0


async def test_kudos_and_milestones_match_the_raw_rows(world: World) -> None:
    standup_id = await world.add_standup(list(TEAM), name="Daily")
    raw = await seed(world, standup_id, random.Random(5))
    bounds = week_bounds()
    async with world.db.transaction() as session:
        got = await kudos_figures(
            session, await scope_of(world, standup_id), weeks_before(END, ZONE), ZONE
        )
    ours = [k for k in raw.kudos if not k[2] and any(n in TEAM for n in k[3])]
    counts = [sum(1 for k in ours if s <= k[0] < e) for s, e, _, _ in bounds]
    assert sum(counts) > 10
    assert got.kudos.values == tuple(map(float, counts))
    values = Counter(k[1] for k in ours if k[1] and bounds[-1][0] <= k[0] < bounds[-1][1])
    assert got.top_values == tuple(sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    assert got.celebrations == 1  # bob's; frank is not in the team
    assert got.milestones_met == ("Beta",)
    assert [n for n, _ in got.due_soon] == ["GA"]
    assert [n for n, _ in got.overdue] == ["Audit"]


async def test_sections_that_are_off_are_not_computed_but_signals_need_theirs(
    world: World,
) -> None:
    standup_id = await world.add_standup(list(TEAM), name="Daily")
    await seed(world, standup_id, random.Random(3))
    scope = await scope_of(world, standup_id)
    async with world.db.transaction() as session:
        only_kudos = await team_figures(session, scope, END, ZONE, ["kudos"])
        signals = await team_figures(session, scope, END, ZONE, ["signals"])
    assert only_kudos.standups is None and only_kudos.blockers is None
    assert only_kudos.pulse is None and only_kudos.kudos is not None
    assert signals.standups is not None and signals.blockers is not None
    assert signals.pulse is not None and signals.kudos is None


def test_end_is_a_monday_in_summer_time() -> None:
    assert END == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
