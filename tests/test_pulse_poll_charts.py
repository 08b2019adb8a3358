"""The charts that polls and pulse checks post: what each Chart carries for matplotlib to draw
(team, period, answers, headline, counts, the scale), from the data and through the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.chat import Chart
from bot.features.polls import render
from bot.features.polls.ballots import Tally
from bot.features.pulse import digest
from bot.features.pulse.scores import QuestionResult, Score
from storage.db import Database
from storage.polls import Poll, PollKind
from tests.test_polls_create import START as POLL_START
from tests.test_polls_create import PollWorld, running_world
from tests.test_pulse_runtime import (
    TEAM,
    WED,
    World,
    add_pulse,
    at,
    channel_posts,
    make_pulse_world,
    polls_of,
    rounds,
    vote,
)

OPENED = datetime(2026, 3, 9, 8, tzinfo=UTC)
CLOSED = datetime(2026, 3, 13, 16, tzinfo=UTC)
LONG_QUESTION = (
    "Over the last two weeks, how often did you feel that the team's priorities were clear "
    "enough for you to decide on your own what to work on next?"
)


def poll(kind: PollKind, *, closed: bool = True, options: list[str] | None = None) -> Poll:
    return Poll(
        id=7,
        question="How sustainable was this week's pace?",
        kind=kind.value,
        options=options or [],
        opens_at=OPENED,
        closed_at=CLOSED if closed else None,
        threshold=5,
        max_choices=1,
        anonymous=True,
    )


def test_a_scale_poll_chart_leads_with_its_average_and_counts_every_value() -> None:
    tally = Tally(counts={1: 1, 2: 2, 3: 8, 4: 6, 5: 3}, voters=20, eligible=24)
    chart = render.chart(render.Results(poll(PollKind.SCALE), tally, place="Platform"), "UTC")
    assert chart is not None
    assert (chart.team, chart.period, chart.answers) == ("Platform", "9 Mar to 13 Mar 2026", 20)
    assert chart.headline == "Average 3.4 of 5"
    assert chart.series[0].values == (5.0, 10.0, 40.0, 30.0, 15.0)
    assert chart.series[0].counts == (1, 2, 8, 6, 3)
    assert "Average 3.4 of 5" in chart.alt


def test_an_enps_poll_chart_leads_with_its_score_even_when_it_is_zero() -> None:
    tally = Tally(counts={3: 5, 8: 10, 10: 5}, voters=20, eligible=20)
    chart = render.chart(render.Results(poll(PollKind.ENPS), tally, place="#general"), "UTC")
    assert chart is not None
    assert chart.headline == "eNPS +0" and "eNPS +0" in chart.alt
    assert chart.labels == ("Detractors (0-6)", "Passives (7-8)", "Promoters (9-10)")
    assert chart.series[0].counts == (5, 10, 5)
    assert chart.team == "#general"


def test_an_open_poll_chart_says_so_far_and_dates_are_local() -> None:
    tally = Tally(counts={0: 3, 1: 2}, voters=5, eligible=9)
    results = render.Results(poll(PollKind.SINGLE, closed=False, options=["Yes", "No"]), tally)
    chart = render.chart(results, "Pacific/Auckland")  # 9 Mar 08:00 UTC is 9 Mar 21:00 there
    assert chart is not None
    assert chart.period == "since 9 Mar 2026, so far" and chart.headline == ""
    assert chart.series[0].counts == (3, 2) and chart.answers == 5
    late = render.chart(results, "America/Los_Angeles")  # 9 Mar 01:00 there
    assert late is not None and late.period == "since 9 Mar 2026, so far"
    early = poll(PollKind.SINGLE, options=["Yes", "No"])
    early.opens_at = datetime(2025, 12, 30, 12, tzinfo=UTC)
    spanning = render.chart(render.Results(early, tally), "UTC")
    assert spanning is not None and spanning.period == "30 Dec 2025 to 13 Mar 2026"


def result(
    text: str, kind: str, score: Score | None, trend: tuple[tuple[date, Score], ...] = ()
) -> QuestionResult:
    return QuestionResult(
        poll_id=1,
        key=text[:10],
        text=text,
        kind=kind,
        period=date(2026, 3, 11),
        voters=score.answers if score else 2,
        eligible=12,
        threshold=5,
        score=score,
        pooled_askings=1 if score else 0,
        pool_start=date(2026, 3, 11) if score else None,
        span_rounds=1 if score else 0,
        pending=0 if score else 2,
        previous=None,
        previous_period=None,
        trend=trend,
    )


def test_pulse_bar_charts_run_over_their_whole_scale_with_full_questions() -> None:
    scale = Score("scale", 8, {3: 4, 4: 4})
    zero = Score("enps", 6, {9: 2, 6: 2, 7: 2})
    results = [
        result(LONG_QUESTION, "scale", scale),
        result("Recommend us?", "enps", zero),
        result("Clear goals?", "scale", None),
    ]
    bars = digest.charts(results, 1, team="Platform", period="round of Wed 11 Mar")
    assert [c.title for c in bars] == ["Pulse scores (1-5)", "eNPS"]
    scores, enps = bars
    assert scores.scale == (1.0, 5.0) and enps.scale == (-100.0, 100.0)
    assert scores.labels == (LONG_QUESTION, "Clear goals?")  # whole: the chart wraps it
    assert scores.series[0].values == (3.5, None) and scores.series[0].counts == (8, None)
    assert enps.series[0].values == (0.0,) and enps.series[0].counts == (6,)
    assert {(c.team, c.period) for c in bars} == {("Platform", "round of Wed 11 Mar")}


def test_the_pulse_trend_is_a_line_per_question_over_the_rounds() -> None:
    weeks = [date(2026, 2, 25), date(2026, 3, 4), date(2026, 3, 11)]
    pace = (
        (weeks[0], Score("scale", 6, {3: 6})),
        (weeks[2], Score("scale", 8, {3: 4, 4: 4})),
    )
    mood = ((weeks[1], Score("scale", 5, {2: 5})), (weeks[2], Score("scale", 5, {4: 5})))
    results = [
        result("Pace?", "scale", pace[-1][1], pace),
        result("Mood?", "scale", mood[-1][1], mood),
        result("Once?", "scale", mood[-1][1], mood[-1:]),  # one point: no trend yet
    ]
    (trend,) = digest.trend_charts(results, team="Platform")
    assert trend.style == "line" and trend.scale == (1.0, 5.0)
    assert trend.labels == ("25 Feb", "4 Mar", "11 Mar")
    assert trend.period == "Wed 25 Feb to Wed 11 Mar"
    assert [s.name for s in trend.series] == ["Pace?", "Mood?"]
    assert trend.series[0].values == (3.0, None, 3.5)
    assert trend.series[1].values == (None, 2.0, 4.0)
    assert trend.series[0].counts == (6, None, 8)
    assert "3.0 on Wed 25 Feb (6 answers)" in trend.alt
    assert digest.trend_charts(results[2:], team="Platform") == []


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_pulse_world(database)
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


async def test_a_closing_round_posts_scores_on_their_scale_and_the_trend(world: World) -> None:
    bank = [{"key": "pace", "text": "How sustainable was this week's pace?", "kind": "scale"}]
    pulse_id = await add_pulse(world, bank=bank, questions_per_round=1)
    for week, answer in enumerate((3, 4, 5)):
        wednesday = WED + timedelta(weeks=week)
        await world.advance_to(at(wednesday, "10:00"))
        (found,) = [r for r in await rounds(world, pulse_id) if r.period_date == wednesday]
        (pace,) = await polls_of(world, found.id)
        for name in list(TEAM)[:5]:
            await vote(world, name, pace.id, answer)
        await world.advance_to(at(wednesday + timedelta(days=4), "10:00"))
    posted = [b for b in (await channel_posts(world))[-1].blocks if isinstance(b, Chart)]
    bars, trend = posted  # decoded from the outbox: every field made the round trip
    last = WED + timedelta(weeks=2)
    assert bars.title == "Pulse scores (1-5)" and bars.scale == (1.0, 5.0)
    assert (bars.team, bars.period) == ("Platform", f"round of {digest.day(last)}")
    assert bars.series[0].values == (5.0,) and bars.series[0].counts == (5,)
    assert bars.series[1].values == (4.0,)  # the previous result
    assert trend.style == "line" and trend.series[0].values == (3.0, 4.0, 5.0)
    assert trend.series[0].counts == (5, 5, 5)
    assert trend.labels == tuple(
        f"{d.day} {d:%b}" for d in (WED + timedelta(weeks=w) for w in range(3))
    )


@pytest.fixture
async def poll_world(database: Database) -> AsyncIterator[PollWorld]:
    async with running_world(database) as built:
        yield built


async def test_a_closed_polls_chart_names_its_channel_dates_and_counts(
    poll_world: PollWorld,
) -> None:
    world = poll_world
    poll_id = await world.create('"Ship Friday?" Yes No "Not sure" --closes 2h --results closed')
    for name, choice in (("alice", 0), ("bob", 0), ("carol", 1), ("dana", 0), ("erin", 2)):
        await world.vote(name, poll_id, choice)
    await world.advance_to(POLL_START + timedelta(hours=3))
    results = next(r for r in await world.outbox() if r.idempotency_key.endswith(":results"))
    chart = results.payload["blocks"][-1]
    assert chart["kind"] == "chart"
    assert chart["team"] == "#team" and chart["answers"] == 5
    assert chart["period"] == "9 Mar 2026"  # opened and closed that day, Europe/Berlin
    assert chart["series"][0]["counts"] == [3, 1, 1]
    assert chart["headline"] == ""
