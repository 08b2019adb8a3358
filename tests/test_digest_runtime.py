"""The weekly digest as it runs: exactly once across two schedulers and a restart, the missed
occurrence policy, the pulse section made of the pulse digest's shown results only (nothing under
the anonymity threshold, in the text or in a chart), one post per team and one DM per leader.
On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.chat import Chart, Reply
from bot.delivery.outbox import decode_message
from bot.events import Actor, CommandInvocation, Origin
from bot.features.digest.figures import Scope, pulse_figures, weeks_before
from bot.features.pulse.scores import compute_digest
from storage.db import Database
from storage.digest import Digest
from storage.models import OccurrenceClaim
from tests.test_digest_figures import build_core, make_digest_world
from tests.test_pulse_runtime import CHANNEL, LEAD, PLATFORM, ZONE, World, add_pulse, at, vote
from tests.test_pulse_scores import TWO, close_week, round_of_week
from tests.test_standup_runtime import render

_events = itertools.count(1)
MONDAY = date(2026, 3, 9)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    built = await make_digest_world(database)
    built.clock.set(at(date(2026, 3, 2), "12:00"))  # after Monday 2 March's digest hour
    try:
        yield built
    finally:
        await built.core.idle()
        await built.scheduler.stop()


async def digest(world: World, line: str, who: str = LEAD) -> Any:
    event = CommandInvocation(
        Origin(PLATFORM, "T1", f"d{next(_events)}", "Test", CHANNEL),
        Actor(who, who, world.zones[who]),
        "digest",
        text=line,
    )
    return await world.handle(event)


def words(response: Any) -> str:
    assert isinstance(response, Reply), response
    return render(json.loads(json.dumps(_dump(response.message))))


def _dump(message: Any) -> Any:
    from bot.chat import MESSAGE_ADAPTER

    return MESSAGE_ADAPTER.dump_python(message, mode="json")


async def posts(world: World) -> list[tuple[str, dict[str, Any], Any]]:
    return [
        (row.idempotency_key, row.target, decode_message(row.payload))
        for row in await world.outbox()
        if row.idempotency_key.startswith("digest:")
    ]


async def test_two_schedulers_and_a_restart_post_each_team_once(world: World) -> None:
    await world.add_standup(["alice", "bob", "carol"], name="Daily")
    await world.add_standup(["dana", "erin"], name="Ops")
    said = await digest(
        world,
        'setup "Leadership" --teams Daily, Ops --channel #platform --day mon --time 09:00 '
        f"--timezone {ZONE} --leaders @alice @bob",
    )
    assert "Created the digest Leadership: Daily (standup), Ops (standup)" in words(said)
    other_core, other = build_core(world.db, world.clock, "replica-2")
    await other.start()
    try:
        world.clock.set(at(MONDAY, "09:00"))
        await world.scheduler.reconcile()
        await other.reconcile()
        await world.scheduler.reconcile()
    finally:
        await other.stop()
    await world.scheduler.stop()
    world.clock.set(at(MONDAY, "09:05"))
    world.core, world.scheduler = build_core(world.db, world.clock, "restarted")
    await world.scheduler.start()
    sent = await posts(world)
    assert sorted(key for key, _, _ in sent) == sorted(
        f"digest:1@2026-03-09:standup:{sid}:{what}"
        for sid in (1, 2)
        for what in ("post", f"dm:{world.members['alice']}", f"dm:{world.members['bob']}")
    )
    channel = [m for _, target, m in sent if target.get("channel_id") == CHANNEL]
    assert [m.blocks[0].text for m in channel] == ["Weekly digest: Daily", "Weekly digest: Ops"]
    async with world.db.transaction() as session:
        claims = list(await session.scalars(select(OccurrenceClaim.key)))
    assert [k for k in claims if k.startswith("digest:")] == ["digest:1@2026-03-09"]
    del other_core


async def test_after_downtime_only_a_digest_younger_than_a_day_goes_out(world: World) -> None:
    await world.add_standup(["alice"], name="Daily")
    await digest(world, f'setup "L" --teams Daily --channel #platform --day mon --timezone {ZONE}')
    await world.scheduler.stop()
    # Down over Monday 9 March 09:00 until Tuesday 10:00: more than a day late, skipped.
    world.clock.set(at(MONDAY + timedelta(days=1), "10:00"))
    world.core, world.scheduler = build_core(world.db, world.clock, "back")
    await world.scheduler.start()
    assert await posts(world) == []
    # Down over the next Monday until 15:00: the latest missed one goes out, once.
    await world.scheduler.stop()
    world.clock.set(at(MONDAY + timedelta(days=7), "15:00"))
    world.core, world.scheduler = build_core(world.db, world.clock, "back-again")
    await world.scheduler.start()
    await world.scheduler.reconcile()
    assert [key for key, _, _ in await posts(world)] == ["digest:1@2026-03-16:standup:1:post"]


async def test_a_digest_set_up_after_its_hour_waits_for_the_next_week(world: World) -> None:
    await world.add_standup(["alice"], name="Daily")
    world.clock.set(at(MONDAY, "10:00"))
    await digest(world, f'setup "L" --teams Daily --channel #platform --day mon --timezone {ZONE}')
    await world.advance_to(at(MONDAY + timedelta(days=6), "23:00"))
    assert await posts(world) == []
    await world.advance_to(at(MONDAY + timedelta(days=7), "09:01"))
    assert len(await posts(world)) == 1


async def test_the_pulse_section_shows_only_results_over_the_threshold(world: World) -> None:
    pulse_id = await add_pulse(world, team="Daily", bank=TWO, questions_per_round=2)
    await world.add_standup(["alice", "bob"], name="Daily")
    await digest(
        world,
        f'setup "L" --teams Daily --channel #platform --day mon --timezone {ZONE} '
        "--sections pulse, signals",
    )
    pace, enps = await round_of_week(world, pulse_id, 0)
    for name in ("alice", "bob", "carol", "dana", "erin"):
        await vote(world, name, pace.id, 4)
        await vote(world, name, enps.id, 10)
    await close_week(world, 0)
    pace, enps = await round_of_week(world, pulse_id, 1)
    for name in ("alice", "bob"):  # two answers: under the threshold of 5
        await vote(world, name, pace.id, 1)
        await vote(world, name, enps.id, 0)
    await close_week(world, 1)
    await world.advance_to(at(date(2026, 3, 16), "09:01"))
    async with world.db.transaction() as session:
        end = at(date(2026, 3, 16), "09:00")
        scope = Scope(world.workspace_id, "standup", 1, "Daily")
        figures = await pulse_figures(session, scope, weeks_before(end, ZONE))
        shown = [
            (q.key, q.score.value if q.score else None)
            for week_end in (at(date(2026, 3, 9), "09:00"), end)
            for q in (await compute_digest(session, pulse_id, week_end)).questions
        ]
    # The same numbers as the pulse digest: week 0 shown (4.0, eNPS +100), week 1 held back.
    assert shown == [("pace", 4.0), ("enps", 100.0), ("pace", None), ("enps", None)]
    assert [(q.text, q.trend.values) for q in figures.questions] == [
        (TWO[0]["text"], (None, None, None, 4.0, None)),
        (TWO[1]["text"], (None, None, None, 100.0, None)),
    ]
    assert figures.index.values == (None, None, None, 4.0, None)
    assert figures.held_back == 2
    sent = [p for p in await posts(world) if p[0].endswith(":post")]
    assert [key for key, _, _ in sent] == [
        "digest:1@2026-03-09:standup:1:post",
        "digest:1@2026-03-16:standup:1:post",
    ]
    message = sent[-1][2]
    shown_text = render(_dump(message))
    assert "2 result(s) had fewer answers than their anonymity threshold" in shown_text
    assert "last 4.0 of 5" in shown_text and "last eNPS +100" in shown_text
    # Nothing of week 1's two answers (a 1 and a 0 each) anywhere: no 1.0, no -100.
    assert "1.0" not in shown_text and "-100" not in shown_text
    charts = [b for b in message.blocks if isinstance(b, Chart)]
    for chart in charts:
        for series in chart.series:
            assert 1.0 not in series.values and -100.0 not in series.values
        assert "1.0" not in chart.alt and "-100" not in chart.alt


async def test_deleting_a_digest_stops_it(world: World) -> None:
    await world.add_standup(["alice"], name="Daily")
    await digest(world, f'setup "L" --teams Daily --channel #platform --day mon --timezone {ZONE}')
    said = await digest(world, "delete L")
    assert "Deleted the digest L" in words(said)
    await world.advance_to(at(MONDAY, "09:30"))
    assert await posts(world) == []
    async with world.db.transaction() as session:
        assert list(await session.scalars(select(Digest))) == []
