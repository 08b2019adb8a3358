"""Group commit of inbound deliveries (bot.features.hooks.receiver.Batches) on both databases:
deliveries that arrive together are written in one transaction, a delivery id given twice in
one batch is acted on once, a batch that fails keeps nothing of itself and each delivery is
tried again alone (one that cannot be saved does not cost the others theirs), and the recent
deliveries kept per hook are pruned to the newest ones."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.features.hooks import service
from bot.features.hooks.receiver import Batches
from storage.db import Database
from storage.hooks import Hook, HookDelivery, HookSeen
from tests.hooks_world import HooksWorld, hooks_world, release

RULE = "hook rule {name} release #launches Released $tag of $repo"


async def hook_ids(world: HooksWorld, *names: str) -> dict[str, int]:
    for name in names:
        await world.add("github", name)
        await world.command(RULE.format(name=name))
    async with world.db.transaction() as session:
        return {h.name: h.id for h in await session.scalars(select(Hook))}


def arrival(world: HooksWorld, hook_id: int, delivery: str, tag: str) -> service.Arrival:
    headers = {"x-github-event": "release", "x-github-delivery": delivery}
    return service.Arrival(hook_id, world.workspace_id, "github", delivery, headers, release(tag))


async def at_once(batches: Batches, arrivals: list[service.Arrival]) -> list[object]:
    """Submitted together: all queued before the batch's transaction starts."""
    return await asyncio.gather(*(batches.submit(a) for a in arrivals), return_exceptions=True)


async def test_a_duplicate_delivery_id_in_one_batch_is_acted_on_once(database: Database) -> None:
    async with hooks_world(database) as world:
        ids = await hook_ids(world, "ci", "cd")
        batches = Batches(world.db, world.clock, None)
        outcomes = await at_once(
            batches,
            [
                arrival(world, ids["ci"], "d-1", "v1"),
                arrival(world, ids["ci"], "d-1", "v1"),  # GitHub redelivered at once
                arrival(world, ids["cd"], "d-1", "v1"),  # the same id, another hook: its own
                arrival(world, ids["ci"], "d-2", "v2"),
            ],
        )
        assert outcomes == ["posted", "duplicate", "posted", "posted"]
        assert batches.transactions == 1
        posts = await world.posts()
        assert sorted(p.idempotency_key.rsplit(":", 1)[0] for p in posts) == sorted(
            [f"hook:{ids['cd']}:d-1", f"hook:{ids['ci']}:d-1", f"hook:{ids['ci']}:d-2"]
        )
        assert [d.outcome for d in await world.deliveries()] == ["posted"] * 3


async def test_a_failing_delivery_does_not_lose_the_others_of_its_batch(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hooks_world(database) as world:
        ids = await hook_ids(world, "ci", "cd")
        await world.command("hook rule cd release #launches Boom $tag --milestone boom")

        async def milestone_done(
            session: AsyncSession, workspace_id: int, name: str, now: datetime
        ) -> str:
            raise RuntimeError("the milestones feature failed")

        monkeypatch.setattr(service, "MILESTONE_DONE", [milestone_done])
        batches = Batches(world.db, world.clock, None)
        outcomes = await at_once(
            batches,
            [
                arrival(world, ids["ci"], "d-1", "v1"),
                arrival(world, ids["cd"], "d-2", "v2"),  # its rule's milestone fails
                arrival(world, ids["ci"], "d-3", "v3"),
                arrival(world, ids["ci"], "d-1", "v1"),  # a duplicate, retried alone too
            ],
        )
        assert outcomes[0] == "posted" and outcomes[2] == "posted"
        assert isinstance(outcomes[1], RuntimeError)  # the receiver answers it 503
        assert outcomes[3] == "duplicate"
        posts = await world.posts()
        assert sorted(p.idempotency_key.rsplit(":", 1)[0] for p in posts) == [
            f"hook:{ids['ci']}:d-1",
            f"hook:{ids['ci']}:d-3",
        ]
        async with world.db.transaction() as session:
            seen = set(await session.execute(select(HookSeen.hook_id, HookSeen.delivery_id)))
        # The failed one is not marked seen: the sender's retry is acted on.
        assert seen == {(ids["ci"], "d-1"), (ids["ci"], "d-3")}
        monkeypatch.setattr(service, "MILESTONE_DONE", [])
        assert await batches.submit(arrival(world, ids["cd"], "d-2", "v2")) == "posted"


async def test_a_burst_over_http_is_written_in_few_transactions(database: Database) -> None:
    async with hooks_world(database, per_minute=1000) as world:
        from tests.hooks_world import github_headers

        path, secret = await world.add("github", "ci")
        await world.command(RULE.format(name="ci"))
        bodies = [(release(f"v{n}"), f"guid-{n}") for n in range(30)]
        answers = await asyncio.gather(
            *(
                world.post(path, body, github_headers(secret, body, "release", guid))
                for body, guid in bodies
            )
        )
        assert [a.json()["outcome"] for a in answers] == ["posted"] * 30
        assert len(await world.posts()) == 30
        assert world.receiver.batches.transactions < 30


async def test_only_the_newest_deliveries_of_each_hook_are_kept(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hooks_world(database) as world:
        ids = await hook_ids(world, "ci", "cd")
        monkeypatch.setattr(service, "PRUNE_CHANCE", 0.0)
        batches = Batches(world.db, world.clock, None)
        many = service.KEEP_DELIVERIES + 5
        await at_once(batches, [arrival(world, ids["ci"], f"c{n}", "v") for n in range(many)])
        await at_once(batches, [arrival(world, ids["cd"], f"d{n}", "v") for n in range(3)])
        async with world.db.transaction() as session:
            session.add(
                HookSeen(hook_id=ids["cd"], delivery_id="old", expires_at=world.clock.now())
            )
        world.clock.advance(timedelta(seconds=1))
        monkeypatch.setattr(service, "PRUNE_CHANCE", 1.0)
        await batches.submit(arrival(world, ids["cd"], "last", "v"))
        async with world.db.transaction() as session:
            kept = dict(
                (
                    await session.execute(
                        select(HookDelivery.hook_id, func.count()).group_by(HookDelivery.hook_id)
                    )
                ).all()
            )
            newest = await session.scalars(
                select(HookDelivery.delivery_id)
                .where(HookDelivery.hook_id == ids["ci"])
                .order_by(HookDelivery.id)
            )
            old = await session.scalar(
                select(func.count()).select_from(HookSeen).where(HookSeen.delivery_id == "old")
            )
        # The last batch touched cd only: ci keeps its 25 until a delivery of its own.
        assert kept == {ids["ci"]: many, ids["cd"]: 4}
        assert len(list(newest)) == many
        assert old == 0  # expired delivery ids are forgotten
        await batches.submit(arrival(world, ids["ci"], "again", "v"))
        async with world.db.transaction() as session:
            left = list(
                await session.scalars(
                    select(HookDelivery.delivery_id)
                    .where(HookDelivery.hook_id == ids["ci"])
                    .order_by(HookDelivery.id)
                )
            )
        assert left == [f"c{n}" for n in range(6, many)] + ["again"]


async def test_batches_written_at_once_act_on_each_delivery_id_once(database: Database) -> None:
    """On PostgreSQL several batches are written at once (Batches.WRITERS); copies of one id in
    batches written together are acted on once, as across replicas. On SQLite the writers
    take turns, with the same outcome."""
    async with hooks_world(database) as world:
        ids = await hook_ids(world, "ci", "cd")
        batches = Batches(world.db, world.clock, None, writers=3)

        async def spread(n: int) -> object:
            await asyncio.sleep(0.001 * (n % 7))  # arrive over several batches
            hook = ids["ci"] if n % 2 else ids["cd"]
            return await batches.submit(arrival(world, hook, f"d-{n % 10}", f"v{n % 10}"))

        outcomes = await asyncio.gather(*(spread(n) for n in range(60)))
        assert sorted(set(outcomes)) == ["duplicate", "posted"]
        assert outcomes.count("posted") == 10  # 5 ids for each of 2 hooks, each acted on once
        assert batches.transactions > 1
        posts = await world.posts()
        keys = [p.idempotency_key.rsplit(":", 1)[0] for p in posts]
        assert len(keys) == len(set(keys)) == 10
        async with world.db.transaction() as session:
            seen = await session.scalar(select(func.count()).select_from(HookSeen))
            kept = await session.scalar(select(func.count()).select_from(HookDelivery))
        assert seen == 10
        assert kept == 10
