"""Inbound webhooks through the core's HTTP server, on SQLite and PostgreSQL: each sender's
signature built from its documented algorithm (GitHub's published example, the Standard Webhooks
test vector, MLflow's own scheme), replays, duplicates, the size cap, unknown hooks, the rate
limit, ignored deliveries with their reason, and templates that cannot ping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from adapters.discord import render as discord_render
from adapters.slack import render as slack_render
from bot.config import DatabaseSection, Settings
from bot.delivery.outbox import decode_message
from bot.errors import UserError
from bot.features.hooks import service, sources, templates
from bot.features.hooks.receiver import MAX_BODY_BYTES
from bot.webhooks.keys import NO_KEY
from storage.db import Database
from storage.hooks import Hook
from tests.hooks_world import (
    KEY,
    github_headers,
    gitlab_headers,
    hooks_world,
    mlflow_headers,
    post_text,
    release,
    said,
    standard_headers,
)

# GitHub's documented example ("Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
# The Standard Webhooks specification's test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
RULE = "hook rule ci release #launches Released $tag ($name) of $repo by $author"


# --- signature schemes against their published vectors -------------------------------------------


def test_github_signature_matches_githubs_documented_example() -> None:
    headers = {"x-hub-signature-256": GITHUB_SIGNATURE, "x-github-delivery": "d1"}
    when = sources.datetime.now(sources.UTC)
    assert sources.verify("github", GITHUB_SECRET, headers, GITHUB_BODY, when) == "d1"
    with pytest.raises(sources.BadSignature):
        sources.verify("github", GITHUB_SECRET, headers, GITHUB_BODY + b" ", when)


def test_standard_webhooks_signature_matches_the_specification_vector() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": f"v1,bogus= {VECTOR_SIGNATURE}",  # any one of several may match
    }
    at = sources.datetime.fromtimestamp(VECTOR_TIMESTAMP + 60, sources.UTC)
    assert sources.verify("standard", VECTOR_SECRET, headers, VECTOR_BODY, at) == VECTOR_ID
    late = at + timedelta(minutes=5)
    with pytest.raises(sources.BadSignature, match="5 minutes"):
        sources.verify("standard", VECTOR_SECRET, headers, VECTOR_BODY, late)


def test_mlflow_signature_is_mlflows_scheme() -> None:
    body = b'{"entity": "model_version", "action": "created"}'
    by_hand = mlflow_headers("s3cret", body, "dlv-1", 1_700_000_000)["X-MLflow-Signature"]
    assert sources.mlflow_signature("s3cret", "dlv-1", "1700000000", body) == by_hand
    assert by_hand.startswith("v1,")


# --- end to end --------------------------------------------------------------------------------


async def test_a_signed_github_release_posts_once_and_a_redelivery_does_nothing(
    database: Database,
) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        assert said(await world.command(RULE)).startswith("Rule 1 added to ci")
        body = release()
        headers = github_headers(secret, body, "release", "guid-1")
        first = await world.post(path, body, headers)
        assert first.status_code == 200 and first.json()["outcome"] == "posted"
        again = await world.post(path, body, headers)  # GitHub's "Redeliver"
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        (post,) = await world.posts()
        assert post.target == {"channel_id": "C-launch"}
        assert post_text(post) == "Released v1.4.0 (Checkout) of acme/shop by octocat"
        listed = said(await world.command("hook list"))
        assert "release: posted (1 post(s) queued)" in listed and "guid-1" in listed
        async with database.transaction() as session:
            stored = (await session.scalars(sources_select())).one()
        assert secret not in stored.secret and KEY not in stored.secret  # encrypted at rest


async def raw_status(port: int, path: str, size: int, *, chunked: bool = False) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: s\r\n{length}\r\n\r\n".encode())
    if chunked:
        block = b"x" * 65536
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent <= size:
                writer.write(b"%x\r\n%s\r\n" % (len(block), block))
                await writer.drain()
                sent += len(block)
    status = await reader.readline()
    writer.close()
    return int(status.split()[1])


def sources_select():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(Hook)


async def test_bad_signatures_unknown_hooks_and_oversized_bodies(database: Database) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE)
        body = release()
        wrong = github_headers("not the secret", body, "release", "g1")
        assert (await world.post(path, body, wrong)).status_code == 401
        unsigned = {"X-GitHub-Event": "release", "X-GitHub-Delivery": "g2"}
        assert (await world.post(path, body, unsigned)).status_code == 401
        # Unknown token, and a real token under another source: the same 404.
        token = path.rsplit("/", 1)[1]
        good = github_headers(secret, body, "release", "g3")
        missing = await world.post("/hooks/github/no-such-hook", body, good)
        elsewhere = await world.post(f"/hooks/gitlab/{token}", body, good)
        assert missing.status_code == elsewhere.status_code == 404
        assert missing.content == elsewhere.content
        assert (await world.post(f"/hooks/nosuch/{token}", body, good)).status_code == 404
        # Just over 1 MiB: 413 from the declared length, before the body is sent; and as a
        # chunked body streams past the cap.
        assert await raw_status(world.server.port, path, MAX_BODY_BYTES + 1) == 413
        assert await raw_status(world.server.port, path, MAX_BODY_BYTES + 1, chunked=True) == 413
        exact = b" " * (MAX_BODY_BYTES - len(body)) + body
        ok = await world.post(path, exact, github_headers(secret, exact, "release", "g5"))
        assert ok.status_code == 200 and ok.json()["outcome"] == "posted"
        assert len(await world.posts()) == 1


async def test_old_timestamps_are_refused_as_replays(database: Database) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("mlflow", "registry")
        await world.command(
            "hook rule registry model_version_alias.created #launches "
            "$model v$version is now @$alias --alias champion"
        )
        body = json.dumps(
            {
                "entity": "model_version_alias",
                "action": "created",
                "timestamp": "t",
                "data": {"name": "fraud-model", "alias": "champion", "version": "12"},
            }
        ).encode()
        stale = mlflow_headers(secret, body, "d-old", world.now - 301)
        assert (await world.post(path, body, stale)).status_code == 401
        future = mlflow_headers(secret, body, "d-future", world.now + 301)
        assert (await world.post(path, body, future)).status_code == 401
        fresh = mlflow_headers(secret, body, "d-ok", world.now - 290)
        assert (await world.post(path, body, fresh)).json()["outcome"] == "posted"
        (post,) = await world.posts()
        assert post_text(post) == "fraud-model v12 is now @champion"


async def test_wrong_events_and_bad_payloads_are_200_and_ignored_with_a_reason(
    database: Database,
) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE)
        await world.command(
            "hook rule ci pull_request.merged #launches Merged #$number $title --branch main "
            "--labels release,hotfix"
        )
        cases = [
            (b"not json", "release", "the body is not JSON"),
            (b'{"action": "published"}', "release", "lacks a field"),
            (release(action="created"), "release", "release created, not published"),
            (release(), "issues", "GitHub event issues is not one syncup celebrates"),
            (pr(base="dev", labels=["release"]), "pull_request", "no rule matches"),
            (pr(base="main", labels=["docs"]), "pull_request", "no rule matches"),
        ]
        for n, (body, event, _) in enumerate(cases):
            got = await world.post(path, body, github_headers(secret, body, event, f"x{n}"))
            assert got.status_code == 200 and got.json()["outcome"] == "ignored"
        reasons = [d.reason for d in await world.deliveries()]
        for (_, _, reason), kept in zip(cases, reasons, strict=True):
            assert reason in kept
        ping = b'{"zen": "Keep it simple.", "repository": {"full_name": "acme/shop"}}'
        got = await world.post(path, ping, github_headers(secret, ping, "ping", "p1"))
        assert got.json()["outcome"] == "ping"
        merged = pr(base="main", labels=["Hotfix"])
        got = await world.post(path, merged, github_headers(secret, merged, "pull_request", "m1"))
        assert got.json()["outcome"] == "posted"
        (post,) = await world.posts()
        assert post_text(post) == "Merged #7 Faster checkout"


def pr(*, base: str, labels: list[str]) -> bytes:
    return json.dumps(
        {
            "action": "closed",
            "pull_request": {
                "number": 7,
                "title": "Faster checkout",
                "merged": True,
                "base": {"ref": base},
                "labels": [{"name": x} for x in labels],
                "html_url": "https://gh/pr/7",
                "user": {"login": "ana"},
            },
            "repository": {"full_name": "acme/shop"},
        }
    ).encode()


async def test_gitlab_token_and_standard_webhooks_deliveries(database: Database) -> None:
    async with hooks_world(database) as world:
        lab, token = await world.add("gitlab", "lab")
        await world.command(
            "hook rule lab deployment.success #launches $repo is live on $environment "
            "--environment production"
        )
        body = json.dumps(
            {
                "object_kind": "deployment",
                "status": "success",
                "environment": "production",
                "ref": "main",
                "project": {"path_with_namespace": "acme/api", "name": "api"},
                "user": {"username": "ana"},
            }
        ).encode()
        assert (
            await world.post(lab, body, gitlab_headers("nope", "Deployment Hook", "u0"))
        ).status_code == 401
        got = await world.post(lab, body, gitlab_headers(token, "Deployment Hook", "u1"))
        assert got.json()["outcome"] == "posted"
        std, whsec = await world.add("standard", "std")
        assert whsec.startswith("whsec_")
        await world.command("hook rule std deploy.finished #launches Shipped ${data.service}!")
        event = json.dumps(
            {"type": "deploy.finished", "timestamp": "t", "data": {"service": "billing"}}
        ).encode()
        got = await world.post(std, event, standard_headers(whsec, event, "msg_1", world.now))
        assert got.json()["outcome"] == "posted"
        assert [post_text(p) for p in await world.posts()] == [
            "acme/api is live on production",
            "Shipped billing!",
        ]


async def test_a_hook_over_its_rate_gets_429_with_retry_after(database: Database) -> None:
    async with hooks_world(database, per_minute=3) as world:
        path, secret = await world.add("github", "ci")
        body = release()
        answers = [
            await world.post(path, body, github_headers(secret, body, "release", f"r{n}"))
            for n in range(4)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert int(answers[3].headers["retry-after"]) >= 1


async def test_concurrent_copies_of_one_delivery_act_once(database: Database) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE)
        body = release()
        headers = github_headers(secret, body, "release", "same")
        answers = await asyncio.gather(*(world.post(path, body, headers) for _ in range(8)))
        outcomes = sorted(a.json()["outcome"] for a in answers)
        assert outcomes == ["duplicate"] * 7 + ["posted"]
        assert len(await world.posts()) == 1


# --- templates -----------------------------------------------------------------------------------


async def test_a_payload_cannot_ping_anyone(database: Database) -> None:
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE)
        body = release(tag="<!channel>", name="@everyone <@U123> [x](https://evil)")
        await world.post(path, body, github_headers(secret, body, "release", "evil"))
        (post,) = await world.posts()
        parts = [part for block in post.payload["blocks"] for part in block["text"]["parts"]]
        assert {part["kind"] for part in parts} == {"plain"}  # no mention, link or markup token
        assert "<!channel>" in "".join(p["text"] for p in parts)
        shown = decode_message(post.payload).blocks[0].text  # type: ignore[union-attr]
        slack = slack_render.mrkdwn(shown)
        assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack and "<@U123>" not in slack
        users: list[str] = []
        discord = discord_render.inline(shown, users)
        assert "@everyone" not in discord and users == []
        assert discord_render.allowed_mentions(users)["parse"] == []


def test_templates_are_checked_when_saved_and_never_evaluate() -> None:
    allowed = sources.placeholders("github", "release")
    with pytest.raises(UserError, match=r'"\$secret", which this event has not'):
        templates.check("Released $secret", allowed)
    with pytest.raises(UserError, match="starts no placeholder"):
        templates.check("Cost: $5", allowed)
    with pytest.raises(UserError, match="empty"):
        templates.check("  ", allowed)
    templates.check("Released ${tag}, $$5 off", allowed)
    shown = templates.render("${tag} {0.__class__} $$", {"tag": "{tag.__init__}"})
    assert shown.plain() == "{tag.__init__} {0.__class__} $"
    with pytest.raises(UserError, match=r"data\.KEY"):
        templates.check("$name", None)


async def test_bad_rules_and_commands_are_refused_with_nothing_saved(database: Database) -> None:
    async with hooks_world(database) as world:
        refusals = {
            "hook add bitbucket": "Say which sender",
            "hook rule nosuch release #launches x": 'No hook is named "nosuch"',
        }
        await world.add("github", "ci")
        refusals |= {
            "hook add github ci": "already",
            "hook rule ci release #launches Released $nope": '"$nope", which this event has not',
            "hook rule ci push #launches x": 'no event "push"',
            "hook rule ci release #launches x --branch main": "cannot be filtered by --branch",
            "hook rule ci release #launches": "EVENT #channel TEMPLATE",
            "hook rule ci release #nowhere hi": "#nowhere",
            "hook unrule ci 99": "has no rule 99",
            "hook test ci": "no rules to test",
        }
        for line, expected in refusals.items():
            answer = said(await world.command(line))
            assert expected in answer and "added" not in answer, (line, answer)
        assert said(await world.command("hook list", by="bob")) == "Only admins can do that."
        assert "no rules yet" in said(await world.command("hook list"))


async def test_a_hook_without_a_key_for_its_secret_is_refused_in_one_line(
    database: Database,
) -> None:
    """On PostgreSQL there is no key file next to the database: without [security] secret_key
    a hook cannot store its secret, and the admin is told what to set; nothing is saved."""
    no_key = Settings.model_construct(
        database=DatabaseSection(url="postgresql+asyncpg://postgres@127.0.0.1/syncup")
    )
    async with hooks_world(database, settings=no_key) as world:
        answer = said(await world.command("hook add github ci"))
        assert answer == NO_KEY
        assert "[security] secret_key" in answer and "added" not in answer
        async with database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(Hook)) == 0


async def test_hook_test_remove_and_help(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the milestones feature (an app built earlier in this process registers it).
    monkeypatch.setattr(service, "MILESTONE_DONE", [])
    async with hooks_world(database) as world:
        path, secret = await world.add("github", "ci")
        await world.command(RULE + ' --milestone "Launch v2"')
        assert "example post(s) on their way" in said(await world.command("hook test ci"))
        (post,) = await world.posts()
        assert post_text(post) == "(test) Released v1.4.0 (v1.4.0) of acme/shop by octocat"
        body = release()
        got = await world.post(path, body, github_headers(secret, body, "release", "m"))
        assert got.json()["outcome"] == "posted"
        assert 'milestone "Launch v2" kept for when milestones arrive' in (
            (await world.deliveries())[-1].reason
        )
        assert "removed" in said(await world.command("hook unrule ci 1"))
        assert "removed" in said(await world.command("hook remove ci"))
        assert (
            await world.post(path, body, github_headers(secret, body, "release", "n"))
        ).status_code == 404
        helped = said(await world.command("help"))
        assert "/milestone hook" in helped and "A hook is a URL" in helped
        assert "A milestone is a named date" in helped and "(with milestones)" not in helped


def test_github_example_by_hand() -> None:
    digest = hmac.new(GITHUB_SECRET.encode(), GITHUB_BODY, hashlib.sha256).hexdigest()
    assert f"sha256={digest}" == GITHUB_SIGNATURE
