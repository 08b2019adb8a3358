"""The report is refreshed after the answer's transaction: single-flight per run with a trailing
refresh, marks that survive a crash and are swept by the scheduler, two replicas that never
double-post, and marks that roll back with a refused change.

Harness: :class:`tests.test_standup_runtime.World` (the core and the scheduler on a FakeClock,
on SQLite and PostgreSQL, the outbox inspected directly).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.standups import answers, refresher, report, runtime, skips
from bot.features.standups.refresher import ReportRefresher
from bot.features.standups.schedules import REFRESH_HANDLER, SWEEP_AFTER
from storage.db import Database
from storage.models import (
    OccurrenceClaim,
    PromptStatus,
    StandupPrompt,
    StandupRun,
)
from tests.test_standup_runtime import (
    BERLIN_TEAM,
    World,
    local_nine,
    render,
    running_standups,
)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_standups(database) as built:
        yield built


def reports_of(core: Core) -> ReportRefresher:
    found = refresher.refresher_of(core)
    assert found is not None
    return found


async def marks(world: World) -> tuple[list[str], list[Any]]:
    """Who is marked report_dirty, and every run's report_dirty_since."""
    async with world.db.transaction() as session:
        prompts = await session.scalars(
            select(StandupPrompt.member_id).where(StandupPrompt.report_dirty.is_(True))
        )
        names = {v: k for k, v in world.members.items()}
        dirty = sorted(names[m] for m in prompts)
        since = list(await session.scalars(select(StandupRun.report_dirty_since)))
        return dirty, since


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the report's parent renders (each is O(team) work)."""
    renders: list[int] = []
    original = report.parent_message

    def counting(*args: Any, **kwargs: Any) -> Any:
        renders.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(report, "parent_message", counting)
    return renders


async def test_answers_during_a_refresh_are_covered_by_one_trailing_refresh(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.add_standup(list(BERLIN_TEAM))
    await world.advance_to(local_nine())
    renders = count_renders(monkeypatch)
    reports = reports_of(world.core)
    # The first refresh, once committed, is held "running" until the others have answered.
    committed, release = asyncio.Event(), asyncio.Event()
    original = ReportRefresher.refresh
    calls: list[int] = []

    async def held(self: ReportRefresher, run_id: int) -> bool:
        calls.append(run_id)
        sent = await original(self, run_id)
        if len(calls) == 1:
            committed.set()
            await release.wait()
        return sent

    monkeypatch.setattr(ReportRefresher, "refresh", held)
    first = await world.prompt("alice")
    await world.core.handle(_form(world, "alice", first.id, "a"))
    await asyncio.wait_for(committed.wait(), 30)
    assert reports.refreshes == 1 and reports.running()
    others = ["bob", "carol", "dana"]
    prompts = [await world.prompt(name) for name in others]
    await asyncio.gather(
        *(
            world.core.handle(_form(world, name, p.id, name[0]))
            for name, p in zip(others, prompts, strict=True)
        )
    )
    assert reports.refreshes == 1  # the three answers only asked for one more
    release.set()
    await world.core.idle()
    # Two refreshes in all, each rendering the parent once: one per batch, not per answer.
    assert reports.refreshes == 2 and len(calls) == 2
    assert len(renders) == 2
    posts = await world.posts()
    heads = [r for r in posts if r.depends_on_id is None or r.method == "update"]
    assert [r.method for r in heads] == ["post", "update"]
    assert "Heard from 1 of 4." in render(heads[0].payload)
    assert "Heard from 4 of 4." in render(heads[1].payload)
    replies = [r for r in posts if r.method == "post" and r.depends_on_id is not None]
    assert [render(r.payload).split("\n")[0] for r in replies] == ["alice", "bob", "carol", "dana"]
    assert await marks(world) == ([], [None])
    # Nothing is marked: another poke does no O(team) work at all.
    async with world.db.transaction() as session:
        run_id = await session.scalar(select(StandupRun.id))
    assert run_id is not None
    reports.poke(run_id)
    await world.core.idle()
    assert reports.refreshes == 3 and len(renders) == 2


async def test_a_run_left_dirty_by_a_crash_is_refreshed_by_the_scheduler(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.add_standup(["alice", "bob"])
    await world.advance_to(local_nine())
    # The process "dies" between the answer's commit and its refresh: no poke arrives.
    monkeypatch.setattr(ReportRefresher, "poke", lambda self, run_id: None)
    await world.answer("alice", "a1", "a2", "no")
    assert await world.posts() == []
    dirty, since = await marks(world)
    assert dirty == ["alice"] and since == [world.clock.now()]
    # A reconcile right away leaves it to the refresher that marked it (maybe still running).
    await world.scheduler.reconcile()
    assert await world.posts() == []
    # A little later, any replica's reconcile sweeps it.
    world.clock.set(world.clock.now() + SWEEP_AFTER + timedelta(seconds=1))
    await world.scheduler.reconcile()
    parent, reply = await world.posts()
    assert "Heard from 1 of 2." in render(parent.payload)
    assert render(reply.payload).startswith("alice\nWhat did you do?\na1")
    assert await marks(world) == ([], [None])
    async with world.db.transaction() as session:
        claims = list(
            await session.scalars(
                select(OccurrenceClaim.key).where(OccurrenceClaim.handler == REFRESH_HANDLER)
            )
        )
    assert len(claims) == 1
    # Swept once: later reconciles find nothing to do.
    before = len(await world.outbox())
    world.clock.set(world.clock.now() + timedelta(minutes=1))
    await world.scheduler.reconcile()
    assert len(await world.outbox()) == before


async def test_a_dirty_run_is_also_refreshed_by_the_close(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.add_standup(["alice", "bob"], report_mode="cutoff")
    await world.advance_to(local_nine())
    monkeypatch.setattr(ReportRefresher, "poke", lambda self, run_id: None)
    await world.answer("alice", "a1", "a2", "no")
    # Before the cutoff a sweep publishes nothing and only takes the marks.
    world.clock.set(world.clock.now() + SWEEP_AFTER + timedelta(seconds=1))
    await world.scheduler.reconcile()
    assert await world.posts() == []
    assert await marks(world) == ([], [None])
    await world.answer("bob", "b1", "b2", "no")
    assert (await marks(world))[0] == ["bob"]
    await world.advance_to(local_nine() + timedelta(hours=4))
    parent, *replies = await world.posts()
    assert "Heard from 2 of 2." in render(parent.payload)
    assert len(replies) == 2
    assert await marks(world) == ([], [None])


async def test_two_replicas_refreshing_one_run_post_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the two refreshes overlap and serialize on the run row; the second finds
    nothing marked. (On SQLite they serialize on the database.)"""
    await world.add_standup(["alice", "bob", "carol"])
    await world.advance_to(local_nine())
    monkeypatch.setattr(ReportRefresher, "poke", lambda self, run_id: None)
    await world.answer("alice", "a1", "a2", "no")
    await world.answer("bob", "b1", "b2", "no")
    async with world.db.transaction() as session:
        run_id = await session.scalar(select(StandupRun.id))
    assert run_id is not None
    other_db = Database(world.db.url)  # another replica: its own engine and connections
    try:
        one = ReportRefresher(world.core)
        two = ReportRefresher(Core(other_db, world.clock))
        sent = await asyncio.gather(one.refresh(run_id), two.refresh(run_id))
    finally:
        await other_db.dispose()
    assert sorted(sent) == [False, True]
    posts = await world.posts()
    assert [r.method for r in posts] == ["post", "post", "post"]  # parent and two replies
    assert "Heard from 2 of 3." in render(posts[0].payload)
    assert len({r.idempotency_key for r in posts}) == 3
    assert await marks(world) == ([], [None])


async def test_a_user_error_after_marking_leaves_nothing_marked(world: World) -> None:
    await world.add_standup(["alice", "bob"])
    await world.advance_to(local_nine())
    prompt = await world.prompt("alice")

    async def skip_then_refuse(ctx: Context, event: ActionInvocation) -> None:
        found = await answers.load_prompt(ctx.session, prompt.id)
        assert found is not None
        own, run, standup = found
        await skips.skip(ctx.session, standup, run, own, ctx.now, ctx)
        raise UserError("Changed my mind.")

    world.core.add_action("test-skip-then-refuse", skip_then_refuse)  # type: ignore[arg-type]
    reports = reports_of(world.core)
    said = await world.press("alice", "test-skip-then-refuse")
    assert said is not None
    assert await marks(world) == ([], [None])
    assert reports.refreshes == 0  # no poke: nothing committed
    assert PromptStatus((await world.prompt("alice")).status) == PromptStatus.PENDING
    # The real skip marks, commits and refreshes.
    await world.press("alice", f"standup-skip:{prompt.id}")
    assert PromptStatus((await world.prompt("alice")).status) == PromptStatus.SKIPPED
    assert await marks(world) == ([], [None])
    assert reports.refreshes == 1


def _form(world: World, name: str, prompt_id: int, tag: str) -> FormSubmission:
    return FormSubmission(
        world._origin(f"D-{name}"),
        world.actor(name),
        runtime.FORM_ID,
        {"q0": f"{tag}1", "q1": f"{tag}2", "q2": "no"},
        str(prompt_id),
    )


async def test_a_refresh_rendering_apart_yields_to_one_that_got_in_between(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh_apart renders outside the lock. If another refresh (here the sweep's, in its own
    transaction) takes the marks while it renders, it publishes nothing, puts its marks back, and
    the next refresh publishes: the report never shows an older picture after a newer one."""
    await world.add_standup(["alice", "bob", "carol"])
    await world.advance_to(local_nine())
    monkeypatch.setattr(ReportRefresher, "poke", lambda self, run_id: None)
    await world.answer("alice", "a1", "a2", "no")
    async with world.db.transaction() as session:
        run_id = await session.scalar(select(StandupRun.id))
    assert run_id is not None
    assert await report.refresh_apart(world.db, run_id, world.clock.now()) is report.Refreshed.SENT
    await world.answer("bob", "b1", "b2", "no")

    real_render = report._render
    interleaved: list[bool] = []

    async def render_while_another_refreshes(*args: Any, **kwargs: Any) -> Any:
        rendered = await real_render(*args, **kwargs)
        if interleaved:  # the other refresh's own rendering
            return rendered
        interleaved.append(False)
        # carol answers and another refresh takes the marks (hers) and publishes meanwhile.
        await world.answer("carol", "c1", "c2", "no")
        async with world.db.transaction() as session:
            run = await session.get(StandupRun, run_id)
            standup = await session.get(report.Standup, run.standup_id)  # type: ignore[union-attr]
            assert run is not None and standup is not None
            interleaved[0] = await report.refresh_marked(session, standup, run, world.clock.now())
        return rendered

    monkeypatch.setattr(report, "_render", render_while_another_refreshes)
    outcome = await report.refresh_apart(world.db, run_id, world.clock.now())
    assert interleaved == [True]
    assert outcome is report.Refreshed.CONTENDED
    # bob's mark is back; the report says 3 of 3 (the other refresh), not our older 2 of 3.
    marked, _ = await marks(world)
    assert marked == ["bob"]
    parents = [r for r in await world.posts() if r.depends_on_id is None or r.method == "update"]
    assert "Heard from 3 of 3." in render(parents[-1].payload)
    monkeypatch.setattr(report, "_render", real_render)
    assert await report.refresh_apart(world.db, run_id, world.clock.now()) in (
        report.Refreshed.SENT,
        report.Refreshed.NOTHING,
    )
    assert (await marks(world))[0] == []
    last = [r for r in await world.posts() if r.depends_on_id is None or r.method == "update"][-1]
    assert "Heard from 3 of 3." in render(last.payload)
    replies = [r for r in await world.posts() if r.method == "post" and r.depends_on_id]
    assert sorted(render(r.payload).split("\n")[0] for r in replies) == ["alice", "bob", "carol"]
