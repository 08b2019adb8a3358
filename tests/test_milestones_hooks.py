"""A webhook rule with ``--milestone`` marks the milestone done: a signed GitHub release through
the core's HTTP server, the rule's post and the milestone's celebration (with its card) queued in
the delivery's transaction, once, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from bot.chat import Chart
from bot.delivery.outbox import decode_message
from bot.features import milestones
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.milestones import Milestone
from tests.hooks_world import github_headers, hooks_world, post_text, release, said


async def test_a_release_webhook_marks_the_milestone_done_once(database: Database) -> None:
    async with hooks_world(database) as world:
        milestones.register(
            world.core, Scheduler(database, world.clock, instance="a", reconcile_interval=3600)
        )
        added = said(await world.command('add "Launch v2" 2026-12-20 #launches'))
        assert "Milestone Launch v2 added: due Sun 20 Dec 2026, in 13 days." in added
        assert "The date is in UTC (UTC: syncup doesn't know your zone" in added
        path, secret = await world.add("github", "ci")
        answer = said(
            await world.command(
                'hook rule ci release #launches Shipped $tag --milestone "launch v2"'
            )
        )
        assert 'marks "launch v2" done' in answer
        await world.command('hook rule ci release #launches Also $tag --milestone "Nope"')
        body = release("v2.0.0")
        got = await world.post(path, body, github_headers(secret, body, "release", "d-1"))
        assert got.status_code == 200 and got.json()["outcome"] == "posted"
        [delivery] = await world.deliveries()
        assert delivery.reason == (
            '2 post(s) queued; milestone "Launch v2" marked done; no open milestone "Nope"'
        )
        async with database.transaction() as session:
            found = await session.scalar(select(Milestone))
            assert found is not None
            assert (found.status, found.done_source, found.done_by_id) == ("done", "hook", None)
            assert found.done_at == world.clock.now()
        posts = await world.posts()
        texts = [post_text(p) for p in posts]
        assert "Shipped v2.0.0" in texts and "Also v2.0.0" in texts
        [celebration] = [p for p in posts if p.idempotency_key == f"milestone:{found.id}:done"]
        assert celebration.target["channel_id"] == "C-launch"
        shown = post_text(celebration)
        assert shown.startswith("🎉 Milestone done: Launch v2\n")
        assert "Who was involved: @admin (owner)" in shown
        assert shown.endswith("Marked done by a webhook.")
        [card] = [b for b in decode_message(celebration.payload).blocks if isinstance(b, Chart)]
        assert card.style == "card" and card.title == "Launch v2" and card.rows == ("admin",)
        # Another release: its posts, but no second celebration.
        body = release("v2.0.1")
        got = await world.post(path, body, github_headers(secret, body, "release", "d-2"))
        assert got.json()["outcome"] == "posted"
        assert 'milestone "Launch v2" was already done' in (await world.deliveries())[-1].reason
        keys = [p.idempotency_key for p in await world.posts()]
        assert sum(k.endswith(":done") for k in keys) == 1 and len(keys) == 5
        again = said(await world.command("done Launch v2"))
        assert again.startswith('"Launch v2" was already marked done by a webhook on Mon 7 Dec')
