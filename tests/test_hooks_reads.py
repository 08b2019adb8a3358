"""How the receiver reads hooks (bot.features.hooks.receiver.HookReceiver), on both databases:
the hooks a burst asks for while none is being read are read in one query, with their rules (a
token under another source and an unknown one in that same query, both 404); a delivery acts on
the rules read with its hook, and a rule added or removed here applies to the next delivery at
once, one added by another replica once the hook is read again. The HTTP server moves start-up's
objects out of the garbage collector's way once it listens."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping

import pytest
from sqlalchemy import select

from bot.features.hooks import receiver as receiver_module
from bot.features.hooks.receiver import HookReceiver, Known
from storage.db import Database
from storage.hooks import Hook, HookRule
from tests.hooks_world import github_headers, hooks_world, post_text, release

RULE = "hook rule {name} release #launches Released $tag of $repo"


def count_reads(receiver: HookReceiver, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The keys of each query the receiver makes for hooks."""
    reads: list[list[str]] = []
    load = receiver._load

    async def counted(wanted: Mapping[str, tuple[str, str]]) -> dict[str, Known | None]:
        reads.append(sorted(wanted))
        return await load(wanted)

    monkeypatch.setattr(receiver, "_load", counted)
    return reads


async def test_a_burst_to_hooks_not_in_memory_reads_them_in_one_query(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hooks_world(database, per_minute=1000) as world:
        hooks = {}
        for name in ("ci", "cd", "qa"):
            hooks[name] = await world.add("github", name)
            await world.command(RULE.format(name=name))
        reads = count_reads(world.receiver, monkeypatch)
        sends = []
        for n in range(12):
            path, secret = hooks[("ci", "cd", "qa")[n % 3]]
            body = release(f"v{n}")
            sends.append((path, body, github_headers(secret, body, "release", f"g{n}")))
        ci_token = hooks["ci"][0].rsplit("/", 1)[1]
        body = release("v99")
        headers = github_headers(hooks["ci"][1], body, "release", "g99")
        answers = await asyncio.gather(
            *(world.post(path, body, headers) for path, body, headers in sends),
            world.post(f"/hooks/gitlab/{ci_token}", body, headers),  # another source
            world.post("/hooks/github/no-such-token", body, headers),
        )
        assert [a.json()["outcome"] for a in answers[:12]] == ["posted"] * 12
        assert [a.status_code for a in answers[12:]] == [404, 404]
        assert len(reads) == 1  # three hooks, a token under another source, an unknown one
        assert len(reads[0]) == 5
        assert len(await world.posts()) == 12
        # In memory now: the next deliveries read nothing.
        body = release("v100")
        path, secret = hooks["cd"]
        answer = await world.post(path, body, github_headers(secret, body, "release", "g100"))
        assert answer.json()["outcome"] == "posted"
        assert len(reads) == 1


async def test_a_rule_changed_here_applies_to_the_next_delivery(database: Database) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        body = release("v1")
        first = await world.post(path, body, github_headers(secret, body, "release", "g1"))
        assert first.json()["outcome"] == "ignored"  # no rule yet; the hook is in memory now
        await world.command(RULE.format(name="ci"))
        body = release("v2")
        second = await world.post(path, body, github_headers(secret, body, "release", "g2"))
        assert second.json()["outcome"] == "posted"
        [post] = await world.posts()
        assert "Released v2 of acme/shop" in post_text(post)
        async with world.db.transaction() as session:
            rule_id = await session.scalar(select(HookRule.id))
        await world.command(f"hook unrule ci {rule_id}")
        body = release("v3")
        third = await world.post(path, body, github_headers(secret, body, "release", "g3"))
        assert third.json()["outcome"] == "ignored"
        assert len(await world.posts()) == 1


async def test_a_rule_added_by_another_replica_applies_once_the_hook_is_read_again(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE.format(name="ci"))
        body = release("v1")
        await world.post(path, body, github_headers(secret, body, "release", "g1"))
        async with world.db.transaction() as session:  # as another replica's /milestone would
            hook = await session.scalar(select(Hook))
            assert hook is not None
            session.add(
                HookRule(
                    hook_id=hook.id,
                    event="release",
                    filters={},
                    channel_id="C-launch",
                    template="Also $tag",
                    created_at=world.clock.now(),
                )
            )
        monkeypatch.setattr(receiver_module, "CACHE_SECONDS", 0.0)  # the cache has expired
        body = release("v2")
        answer = await world.post(path, body, github_headers(secret, body, "release", "g2"))
        assert answer.json()["outcome"] == "posted"
        texts = [post_text(p) for p in await world.posts()]
        assert len(texts) == 3
        assert any("Also v2" in t for t in texts)


async def test_the_http_server_freezes_start_up_objects_once(database: Database) -> None:
    async with hooks_world(database):
        assert gc.get_freeze_count() > 0
