"""Pulse scores, pooling and the weekly digest (issue items 3-5; invariant 6).

* Scores: the mean of a 1-5 question with its distribution; eNPS as % promoters minus %
  detractors; the change against the previous shown result; participation "5 of 6".
* Pooling: a small team's answers pooled over consecutive rounds until the answers and the
  different people reach the threshold ("last 3 weeks"); "Not enough answers to show yet (3 of
  the 5 needed)" when they never do; shown results never overlap, so none can be subtracted
  from another to reveal a smaller group.
* The digest: Monday 09:00 team time, once per week, with scores, changes, participation, a
  chart and the team's polls that closed that week, within their visibility and threshold.
* :func:`compute_digest` against a plain-Python recomputation on random data.

SQLite and PostgreSQL; the World harness of :mod:`tests.test_pulse_runtime`.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.chat import Chart, Divider
from bot.features.polls.ballots import cast, close_poll, create_poll
from bot.features.pulse import runtime
from bot.features.pulse.digest import poll_outcome
from bot.features.pulse.scores import (
    POOL_PERIODS,
    PollLine,
    Score,
    compute_digest,
    week_start_of,
)
from storage.db import Database
from storage.models import Team
from storage.polls import Poll, Pulse
from tests.test_pulse_runtime import (
    TEAM,
    WED,
    World,
    add_pulse,
    at,
    build_core,
    channel_posts,
    claim_keys,
    command,
    make_pulse_world,
    polls_of,
    rendered,
    restart,
    rounds,
    vote,
)

TWO = [
    {"key": "pace", "text": "How sustainable was this week's pace?", "kind": "scale"},
    {"key": "enps", "text": "Would you recommend this team to a friend?", "kind": "enps"},
]


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_pulse_world(database)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


def wednesday(week: int) -> date:
    return WED + timedelta(weeks=week)


async def round_of_week(world: World, pulse_id: int, week: int) -> list[Poll]:
    """Run the clock to the week's Wednesday 10:00 and return the round's polls."""
    await world.advance_to(at(wednesday(week), "10:00"))
    found = [r for r in await rounds(world, pulse_id) if r.period_date == wednesday(week)]
    assert len(found) == 1
    return await polls_of(world, found[0].id)


async def close_week(world: World, week: int) -> str:
    """Run the clock past the week's Sunday 10:00 close; the results post, rendered."""
    await world.advance_to(at(wednesday(week) + timedelta(days=4), "10:00"))
    return rendered((await channel_posts(world))[-1])


def lines(shown: str, question: str) -> str:
    """The line under a question in a rendered results post."""
    rows = shown.splitlines()
    return rows[rows.index(question) + 1]


# -- scores -------------------------------------------------------------------------------------


def test_enps_is_promoters_minus_detractors() -> None:
    score = Score("enps", 5, {10: 2, 9: 1, 7: 1, 3: 1})
    assert score.value == pytest.approx(40.0)
    assert (score.promoters, score.passives, score.detractors) == (3, 1, 1)
    assert Score("enps", 4, {6: 2, 9: 2}).value == 0
    assert Score("enps", 3, {0: 3}).value == -100
    assert Score("scale", 4, {1: 1, 5: 3}).value == pytest.approx(4.0)


async def test_change_against_last_week_and_enps(world: World) -> None:
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    pace, enps = await round_of_week(world, pulse_id, 0)
    for name, p, e in zip(
        ("alice", "bob", "carol", "dana", "erin"), (3, 3, 3, 3, 3), (10, 10, 9, 7, 3), strict=True
    ):
        await vote(world, name, pace.id, p)
        await vote(world, name, enps.id, e)
    first = await close_week(world, 0)
    assert lines(first, TWO[0]["text"]) == "3.0 of 5 · 5 of 6 answered"
    assert lines(first, TWO[1]["text"]) == (
        "eNPS +40 (promoters 60%, passives 20%, detractors 20%) · 5 of 6 answered"
    )
    pace, enps = await round_of_week(world, pulse_id, 1)
    for name, e in zip(
        ("alice", "bob", "carol", "dana", "erin", "frank"), (10, 8, 6, 5, 9, 0), strict=True
    ):
        await vote(world, name, pace.id, 4)
        await vote(world, name, enps.id, e)
    second = await close_week(world, 1)
    assert lines(second, TWO[0]["text"]) == "4.0 of 5 · ▲ 1.0 vs last week · 6 of 6 answered"
    # (2 promoters - 3 detractors) / 6 = -17: down 57 points.
    assert lines(second, TWO[1]["text"]) == (
        "eNPS -17 (promoters 33%, passives 17%, detractors 50%) · ▼ 57 vs last week · "
        "6 of 6 answered"
    )


def test_a_digest_week_is_a_week_on_the_team_wall_clock() -> None:
    # Berlin springs forward on Sunday 29 March: that week has 167 hours, the October one 169.
    spring = week_start_of(datetime(2026, 3, 30, 7, tzinfo=UTC), "Europe/Berlin")
    assert spring == datetime(2026, 3, 23, 8, tzinfo=UTC)  # Monday 09:00 winter time
    fall = week_start_of(datetime(2026, 10, 26, 8, tzinfo=UTC), "Europe/Berlin")
    assert fall == datetime(2026, 10, 19, 7, tzinfo=UTC)  # Monday 09:00 summer time


# -- pooling ------------------------------------------------------------------------------------


async def test_a_small_team_is_pooled_over_three_weeks(world: World) -> None:
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    question = TWO[0]["text"]
    weeks = [
        [("alice", 4), ("bob", 2)],
        [("carol", 5), ("dana", 3)],
        [("erin", 4)],
        [("alice", 3), ("bob", 3), ("carol", 3)],
        [("dana", 5), ("erin", 5)],
    ]
    shown: list[str] = []
    for week, votes in enumerate(weeks):
        pace, _ = await round_of_week(world, pulse_id, week)
        for name, choice in votes:
            await vote(world, name, pace.id, choice)
        shown.append(lines(await close_week(world, week), question))
    assert shown[0] == "Not enough answers to show yet (2 of the 5 needed) · 2 of 6 answered"
    assert shown[1] == "Not enough answers to show yet (4 of the 5 needed) · 2 of 6 answered"
    assert shown[2] == "3.6 of 5 over the last 3 weeks (5 answers) · 1 of 6 answered"
    # Week 4 does not reuse weeks 1-3 (they were shown): pooling starts afresh.
    assert shown[3] == "Not enough answers to show yet (3 of the 5 needed) · 3 of 6 answered"
    assert shown[4] == (
        "3.8 of 5 over the last 2 weeks (5 answers) · ▲ 0.2 vs 2 weeks ago · 2 of 6 answered"
    )


async def test_a_pool_never_takes_answers_already_shown(world: World) -> None:
    """The rule that keeps a group under the threshold from being worked out by subtraction:
    a round of 6 answers is shown alone; the next round's single answer is not pooled with it
    (that pool minus the first result would be that one person's answer)."""
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    pace, _ = await round_of_week(world, pulse_id, 0)
    for name in TEAM:
        await vote(world, name, pace.id, 4)
    assert lines(await close_week(world, 0), TWO[0]["text"]).startswith("4.0 of 5")
    pace, _ = await round_of_week(world, pulse_id, 1)
    await vote(world, "alice", pace.id, 1)
    assert lines(await close_week(world, 1), TWO[0]["text"]) == (
        "Not enough answers to show yet (1 of the 5 needed) · 1 of 6 answered"
    )
    async with world.db.transaction() as session:
        assert (await session.get(Poll, pace.id)).result_pool_id is None  # type: ignore[union-attr]


async def test_the_same_few_people_are_never_enough(world: World) -> None:
    """Five answers from one person over five weeks are not five people: nothing is shown,
    and the run of rounds looked at stops at eight."""
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    question = TWO[1]["text"]
    shown = []
    for week in range(POOL_PERIODS + 2):
        _, enps = await round_of_week(world, pulse_id, week)
        await vote(world, "alice", enps.id, 9)
        shown.append(lines(await close_week(world, week), question))
    assert shown[2] == "Not enough answers to show yet (3 of the 5 needed) · 1 of 6 answered"
    assert shown[4] == (
        "Not enough answers to show yet (they came from fewer than the 5 different people "
        "needed) · 1 of 6 answered"
    )
    assert all("eNPS" not in line for line in shown)
    async with world.db.transaction() as session:
        pooled = await session.scalars(select(Poll.id).where(Poll.result_pool_id.is_not(None)))
        assert list(pooled) == []
        digest = await compute_digest(
            session, pulse_id, at(wednesday(POOL_PERIODS + 1) + timedelta(days=5), "09:00")
        )
    [enps_result] = [q for q in digest.questions if q.kind == "enps"]
    assert enps_result.score is None and enps_result.pending == POOL_PERIODS


# -- the digest -----------------------------------------------------------------------------------


async def add_team_poll(
    world: World,
    pulse_id: int,
    question: str,
    votes: Sequence[int],
    *,
    kind: str = "single",
    options: Sequence[str] = ("Yes", "No"),
    results: str = "closed",
    closed_at: datetime,
    by_channel: bool = False,
) -> int:
    """A poll of the team (by team id, or only by being in its channel), voted and closed."""
    names = list(TEAM)
    async with world.db.transaction() as session:
        pulse = await session.get(Pulse, pulse_id)
        assert pulse is not None
        poll = Poll(
            workspace_id=world.workspace_id,
            team_id=None if by_channel else pulse.team_id,
            channel_id=world.channel_id,
            creator_id=world.members["alice"],
            question=question,
            kind=kind,
            options=list(options),
            max_choices=1,
            anonymous=True,
            results=results,
            threshold=3,
            opens_at=closed_at - timedelta(days=1),
            closes_at=closed_at,
            close_generation=0,
            results_version=0,
            created_at=closed_at - timedelta(days=1),
        )
        await create_poll(session, poll, [world.members[n] for n in names], now=poll.opens_at)
        for name, choice in zip(names, votes, strict=False):
            await cast(session, poll, world.members[name], [choice])
        await close_poll(session, poll, closed_at)
        return poll.id


async def test_the_weekly_digest_on_monday_at_nine_team_time(world: World) -> None:
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    for week, choice in ((0, 2), (1, 4)):
        pace, enps = await round_of_week(world, pulse_id, week)
        for name in TEAM:
            await vote(world, name, pace.id, choice)
        for name in ("alice", "bob"):
            await vote(world, name, enps.id, 10)
        await close_week(world, week)
    monday = wednesday(1) + timedelta(days=5)
    sunday = at(monday - timedelta(days=1), "12:00")
    await add_team_poll(world, pulse_id, "Lunch on Friday?", [0, 0, 0, 1], closed_at=sunday)
    await add_team_poll(
        world,
        pulse_id,
        "Which retro format?",
        [1, 1, 0],
        options=("Sailboat", "Starfish"),
        closed_at=sunday,
        by_channel=True,
    )
    await add_team_poll(
        world, pulse_id, "Salary review ok?", [0, 0, 0], results="creator", closed_at=sunday
    )
    await add_team_poll(world, pulse_id, "Move the standup?", [0, 1], closed_at=sunday)
    await add_team_poll(
        world, pulse_id, "Last month's poll", [0, 0, 0], closed_at=sunday - timedelta(days=9)
    )
    before = len(await channel_posts(world))
    await world.advance_to(at(monday, "08:59"))
    assert len(await channel_posts(world)) == before
    # Two processes at 09:00 and a restart: one digest.
    _, other = build_core(world.db, world.clock, "replica-2")
    world.clock.set(at(monday, "09:00"))
    await other.start()
    await world.scheduler.reconcile()
    await other.stop()
    posts = await channel_posts(world)
    assert len(posts) == before + 1
    digest = posts[-1]
    shown = rendered(digest)
    assert shown.splitlines()[0] == "Weekly digest: Platform"
    assert "Mon 9 Mar 09:00 to Mon 16 Mar 09:00 (Europe/Berlin)." in shown
    assert lines(shown, TWO[0]["text"]) == "4.0 of 5 · ▲ 2.0 vs last week · 6 of 6 answered"
    assert lines(shown, TWO[1]["text"]) == (
        "Not enough answers to show yet (4 of the 5 needed) · 2 of 6 answered"
    )
    assert "• Lunch on Friday?: Yes 75% (4 of 6 answered)" in shown
    assert "• Which retro format?: Starfish 67% (3 of 6 answered)" in shown
    assert "• Salary review ok?: results went to its creator (3 of 6 answered)" in shown
    assert "• Move the standup?: not enough answers to show (2 of the 3 needed)" in shown
    assert "Last month's poll" not in shown
    chart, trend = [b for b in digest.blocks if isinstance(b, Chart)]
    assert trend.style == "line" and trend.series[0].values == (2.0, 4.0)  # week by week
    assert chart.labels == (TWO[0]["text"],)
    assert [s.name for s in chart.series] == ["This week", "Previous result"]
    assert chart.series[0].values == (4.0,) and chart.series[1].values == (2.0,)
    assert "4.0" in chart.alt and "previous 2.0" in chart.alt
    assert any(isinstance(b, Divider) for b in digest.blocks)
    # (2 March: the clock started at that digest's time; with nothing to say it posted nothing.)
    assert await claim_keys(world, f"pulse:{pulse_id}:digest@") == [
        f"pulse:{pulse_id}:digest@2026-03-02",
        f"pulse:{pulse_id}:digest@2026-03-09",
        f"pulse:{pulse_id}:digest@2026-03-16",
    ]
    # The next one a week later, not before.
    await world.advance_to(at(monday + timedelta(days=6), "12:00"))
    assert len(await channel_posts(world)) == before + 2  # the next round's close
    await world.advance_to(at(monday + timedelta(days=7), "09:00"))
    assert len(await channel_posts(world)) == before + 3
    assert "Weekly digest" in rendered((await channel_posts(world))[-1])


async def test_a_missed_digest_is_posted_within_a_day_only(world: World) -> None:
    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    pace, _ = await round_of_week(world, pulse_id, 0)
    for name in TEAM:
        await vote(world, name, pace.id, 5)
    await close_week(world, 0)
    monday = wednesday(0) + timedelta(days=5)
    await restart(world, at(monday, "20:00"))  # down over 09:00, back the same day
    assert "Weekly digest" in rendered((await channel_posts(world))[-1])
    count = len(await channel_posts(world))
    # A poll of the team closes that week, so the next digest has something to say...
    await add_team_poll(
        world, pulse_id, "Lunch on Friday?", [0, 0, 0], closed_at=at(monday + timedelta(4), "12:00")
    )
    # ...but syncup is down over the next Monday and back on Tuesday afternoon: that digest
    # is not sent late.
    await restart(world, at(monday + timedelta(days=8), "15:00"))
    posts = await channel_posts(world)
    assert not any("Weekly digest" in rendered(p) for p in posts[count:])
    async with world.db.transaction() as session:
        missed = await compute_digest(session, pulse_id, at(monday + timedelta(days=7), "09:00"))
    assert [p.question for p in missed.polls] == ["Lunch on Friday?"]


async def test_digest_now_and_results_commands(world: World) -> None:
    team = ["alice", "bob", "carol", "dana", "erin"]
    pulse_id = await add_pulse(world, team, bank=TWO, questions_per_round=2)
    none_yet = await command(world, "results Platform", who="alice")
    assert "No round of the Platform pulse has closed yet" in rendered(none_yet.message)
    nothing = await command(world, "digest Platform")
    assert "Nothing for a Platform digest" in rendered(nothing.message)
    pace, _ = await round_of_week(world, pulse_id, 0)
    for name in team:
        await vote(world, name, pace.id, 3)
    await close_week(world, 0)
    mine = await command(world, "results platform", who="bob")
    assert lines(rendered(mine.message), TWO[0]["text"]) == "3.0 of 5 · 5 of 5 answered"
    lead = await command(world, "results Platform")
    assert "3.0 of 5" in rendered(lead.message)
    outsider = await command(world, "results Platform", who="frank")
    assert rendered(outsider.message) == (
        "The Platform pulse results are for its members, team leads and admins."
    )
    before = len(await channel_posts(world))
    posted = await command(world, "digest Platform")
    assert "Posted the Platform digest" in rendered(posted.message)
    assert len(await channel_posts(world)) == before + 1
    assert "Weekly digest: Platform" in rendered((await channel_posts(world))[-1])
    refused = await command(world, "digest Platform", who="bob")
    assert "Only the one who set up" in rendered(refused.message)


def test_poll_outcomes_respect_visibility_and_threshold() -> None:
    def line(**kw: object) -> str:
        values: dict = {
            "poll_id": 1,
            "question": "Q?",
            "kind": "single",
            "options": ("A", "B", "C"),
            "results": "closed",
            "anonymous": True,
            "threshold": 3,
            "voters": 4,
            "eligible": 5,
            "counts": {0: 2, 1: 2},
        }
        values.update(kw)
        from bot.chat import text

        return text(*poll_outcome(PollLine(**values))).plain()

    assert line() == "A and B 50% each (4 of 5 answered)"
    five = ("A", "B", "C", "D", "E")
    tie = {i: 1 for i in range(5)}
    assert (
        line(options=five, counts=tie, voters=5) == "A, B, C and 2 more 20% each (5 of 5 answered)"
    )
    assert line(counts={2: 3, 0: 1}) == "C 75% (4 of 5 answered)"
    assert line(counts={}, voters=3) == "no votes (3 of 5 answered)"
    assert line(kind="scale", counts={1: 2, 5: 2}) == "average 3.0 of 5 (4 of 5 answered)"
    assert line(kind="enps", counts={10: 3, 0: 1}) == "eNPS +50 (4 of 5 answered)"
    assert line(kind="text", counts={0: 4}) == "4 open answers (4 of 5 answered)"
    assert line(voters=2) == "not enough answers to show (2 of the 3 needed)"
    assert line(results="creator") == "results went to its creator (4 of 5 answered)"


# -- compute_digest against a plain recomputation --------------------------------------------------


@dataclass
class Asking:
    index: int  # round number
    key: str
    kind: str
    choices: list[int] = field(default_factory=list)
    voters: set[int] = field(default_factory=set)
    eligible: int = 0
    pool: list[Asking] | None = None  # set on the head of a shown result
    shown_in: Asking | None = None


def simulate(askings: list[Asking], threshold: int) -> None:
    """The pooling rule, written out plainly: at each close, walk back this question's askings
    over at most POOL_PERIODS rounds, stop at one already shown, and show the shortest run that
    reaches the threshold in answers and in different people."""
    for current in sorted(askings, key=lambda a: a.index):
        run: list[Asking] = []
        for earlier in sorted(
            (a for a in askings if a.key == current.key and a.index <= current.index),
            key=lambda a: -a.index,
        ):
            if earlier.index <= current.index - POOL_PERIODS or earlier.shown_in is not None:
                break
            run.append(earlier)
            answers = sum(len(a.choices) for a in run)
            people = set().union(*(a.voters for a in run))
            if answers >= threshold and len(people) >= threshold:
                current.pool = list(run)
                for a in run:
                    a.shown_in = current
                break


def value_of(kind: str, choices: list[int]) -> float:
    if kind == "enps":
        return 100 * (sum(c >= 9 for c in choices) - sum(c <= 6 for c in choices)) / len(choices)
    return sum(choices) / len(choices)


@pytest.mark.parametrize("seed", [7, 2026])
async def test_compute_digest_matches_a_python_recomputation(database: Database, seed: int) -> None:
    rng = random.Random(seed)
    names = [f"m{i}" for i in range(rng.randint(5, 9))]
    world = await make_pulse_world(database, {n: "Asia/Tokyo" for n in names})
    try:
        threshold = rng.randint(3, 5)
        bank = [
            {"key": "a", "text": "A?", "kind": "scale"},
            {"key": "b", "text": "B?", "kind": "enps"},
            {"key": "c", "text": "C?", "kind": "scale"},
        ]
        pulse_id = await add_pulse(
            world, names, zone="Asia/Tokyo", bank=bank, questions_per_round=2, threshold=threshold
        )
        await world.scheduler.stop()  # rounds are driven by hand here
        askings: list[Asking] = []
        by_poll: dict[int, Asking] = {}
        ends: list[datetime] = []
        start = datetime(2026, 1, 7, 1, tzinfo=UTC)  # Wednesday 10:00 in Tokyo
        for index in range(12):
            sent = start + timedelta(weeks=index)
            closes = sent + timedelta(days=4)
            async with world.db.transaction() as session:
                pulse = await session.get(Pulse, pulse_id)
                assert pulse is not None
                team = await session.get(Team, pulse.team_id)
                assert team is not None
                round_ = await runtime.start_round(
                    session,
                    pulse,
                    team,
                    period=sent.date(),
                    now=sent,
                    closes_at=closes,
                    key_prefix=f"r{index}",
                )
                assert round_ is not None
                polls = list(await session.scalars(select(Poll).where(Poll.round_id == round_.id)))
                share = rng.choice([0.15, 0.3, 0.6, 0.9])
                for poll in polls:
                    asking = Asking(index, poll.question_key or "", poll.kind, eligible=len(names))
                    for name in names:
                        if rng.random() < share:
                            choice = (
                                rng.randint(1, 5) if poll.kind == "scale" else rng.randint(0, 10)
                            )
                            await cast(session, poll, world.members[name], [choice])
                            asking.choices.append(choice)
                            asking.voters.add(world.members[name])
                    askings.append(asking)
                    by_poll[poll.id] = asking
                round_id = round_.id
            async with world.db.transaction() as session:
                assert await runtime.close_round(session, round_id, closes)
            ends.append(closes + timedelta(days=1))
        simulate(askings, threshold)
        compared = shown = pooled_count = 0
        for index, week_end in enumerate(ends):
            async with world.db.transaction() as session:
                digest = await compute_digest(session, pulse_id, week_end)
            assert {by_poll[q.poll_id].index for q in digest.questions} == {index}
            for result in digest.questions:
                asking = by_poll[result.poll_id]
                compared += 1
                assert (result.voters, result.eligible) == (len(asking.voters), asking.eligible)
                if asking.pool is None:
                    assert result.score is None
                    run_answers = 0
                    for earlier in sorted(
                        (a for a in askings if a.key == asking.key and a.index <= index),
                        key=lambda a: -a.index,
                    ):
                        if earlier.index <= index - POOL_PERIODS or (
                            earlier.shown_in is not None and earlier.shown_in.index <= index
                        ):
                            break
                        run_answers += len(earlier.choices)
                    assert result.pending == run_answers
                    continue
                shown += 1
                pooled_count += len(asking.pool) > 1
                pooled = [c for a in asking.pool for c in a.choices]
                assert result.score is not None
                assert result.score.answers == len(pooled) >= threshold
                assert result.score.value == pytest.approx(value_of(asking.kind, pooled))
                assert result.pooled_askings == len(asking.pool)
                first = min(a.index for a in asking.pool)
                assert result.span_rounds == index - first + 1
                heads = [
                    a
                    for a in askings
                    if a.key == asking.key and a.pool is not None and a.index < first
                ]
                if heads:
                    previous = max(heads, key=lambda a: a.index)
                    before = [c for a in previous.pool or [] for c in a.choices]
                    assert result.previous is not None
                    assert result.previous.value == pytest.approx(value_of(asking.kind, before))
                    assert result.change == pytest.approx(
                        value_of(asking.kind, pooled) - value_of(asking.kind, before)
                    )
                else:
                    assert result.previous is None and result.change is None
                assert not math.isnan(result.score.value)
        # The seeds give hidden, shown and pooled results alike.
        assert compared == 24 and compared > shown > pooled_count > 0
    finally:
        await world.core.idle()


async def test_compute_digest_reads_a_bounded_number_of_statements(world: World) -> None:
    """However many rounds and ballots: the digest is a fixed handful of statements (no query
    per poll, no loop over ballots)."""
    from sqlalchemy import event

    pulse_id = await add_pulse(world, bank=TWO, questions_per_round=2)
    for week in range(3):
        pace, enps = await round_of_week(world, pulse_id, week)
        for name in TEAM:
            await vote(world, name, pace.id, 4)
            await vote(world, name, enps.id, 9)
        await close_week(world, week)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = world.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with world.db.transaction() as session:
            digest = await compute_digest(
                session, pulse_id, at(wednesday(2) + timedelta(days=5), "09:00")
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [q.score is not None for q in digest.questions] == [True, True]
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in selects if "poll_ballots" in s]) == 1  # one GROUP BY for all polls
    assert len(selects) <= 8
