"""Migration 0009 (runs by hand) undone on a database that has them: the runs by hand go with
their prompts and answers, scheduled runs stay, and upgrading again works (SQLite and
PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select, text

from bot.features.standups import commands
from storage import migrate
from storage.db import Database
from storage.models import StandupPrompt, StandupRun
from tests.test_standup_manual_runs import MONDAY, SUNDAY_NIGHT, ZONES, run_by_hand
from tests.test_standup_runtime import local_nine, make_world


async def test_undoing_0009_drops_runs_by_hand_and_keeps_scheduled_ones(database: Database) -> None:
    world, scheduler = await make_world(database, ZONES, start=SUNDAY_NIGHT)
    commands.register(world.core)
    try:
        await world.add_standup(list(ZONES))
        await run_by_hand(world)
        prompt = await world.prompt("kenji", SUNDAY_NIGHT.date())
        await world.submit("kenji", prompt.id, {"q0": "a", "q1": "b", "q2": "stuck on CI"})
        await world.advance_to(local_nine("Asia/Kolkata", MONDAY))
    finally:
        await world.core.idle()
        await scheduler.stop()
    async with database.transaction() as session:
        kinds = sorted(r.occasion != "" for r in await session.scalars(select(StandupRun)))
    assert kinds == [False, True]

    await migrate.downgrade(database.engine, "0009")  # undo 0010 (runs by hand)
    async with database.engine.connect() as conn:
        runs = (await conn.execute(text("SELECT run_date FROM standup_runs"))).all()
        prompts = await conn.scalar(text("SELECT count(*) FROM standup_prompts"))
        answers = await conn.scalar(text("SELECT count(*) FROM standup_answers"))
        linked = await conn.scalar(
            text("SELECT count(*) FROM blockers WHERE standup_answer_id IS NOT NULL")
        )
    assert [str(r[0]) for r in runs] == [MONDAY.isoformat()]
    assert (prompts, answers, linked) == (2, 0, 0)  # chandra's and kenji's Monday prompts

    await migrate.upgrade(database.engine)  # SQLite copies the table: nothing may cascade
    async with database.transaction() as session:
        occasions = list(await session.scalars(select(StandupRun.occasion)))
        assert occasions == [""]
        assert await session.scalar(select(func.count()).select_from(StandupPrompt)) == 2
