"""``/milestone hook`` on Slack, end to end: the real slack-bolt app against the fake Slack
(Socket Mode and HTTP mode, SQLite and PostgreSQL). An admin adds a hook (its URL and secret
shown once, ephemerally) and a rule; a signed GitHub ``release`` delivery POSTed to the app's
own HTTP server posts the celebration in the channel, where nothing in the payload pings
``@channel`` or ``@everyone``; a member who is not an admin is refused privately."""

from __future__ import annotations

import httpx
import pytest

from tests import test_slack_inbound as inbound
from tests.fakes.slack.harness import SlackWorld
from tests.hooks_world import KEY, SECRET_IN_REPLY, URL_IN_REPLY, github_headers, release
from tests.test_kudos_slack import last_answer, shown

fake = inbound.fake
world = inbound.world


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hook secrets are encrypted at rest; PostgreSQL has no key file beside it."""
    monkeypatch.setenv("SYNCUP_SECURITY_SECRET_KEY", KEY)


async def test_an_admin_adds_a_hook_and_a_signed_release_is_celebrated(
    secret_key: None, world: SlackWorld
) -> None:
    fake = world.fake
    await world.app.web.start()  # Socket Mode: `syncup run` starts it; HTTP mode already has
    await world.command("UALICE", "/milestone hook add github ci")
    added = last_answer(world)  # ephemeral: only alice sees the secret
    url, secret = URL_IN_REPLY.search(added), SECRET_IN_REPLY.search(added)
    assert url is not None and secret is not None, added
    assert fake.posts("CTEAM") == []
    rule = "/milestone hook rule ci release <#CTEAM|team> 🚀 $repo $tag: $name"
    await world.command("UALICE", rule)
    assert "Rule *1* added to *ci*" in last_answer(world)

    body = release("v2.0.0", "Faster <!channel> @everyone checkout")
    path = "/hooks/" + url.group(1) + "/" + url.group(2)
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"http://127.0.0.1:{world.app.web.port}{path}",
            content=body,
            headers=github_headers(secret.group(1), body, "release", "guid-slack-1"),
        )
    assert answer.status_code == 200 and answer.json()["outcome"] == "posted"
    await world.settle()  # the delivery worker sends the queued post
    [post] = fake.posts("CTEAM")
    text = shown(post)
    assert "acme/shop v2.0.0: Faster" in text
    assert "<!channel>" not in text and "<!everyone>" not in text

    await world.command("UBOB", "/milestone hook add github mine")
    refused = last_answer(world)
    assert "admin" in refused.lower() and "secret" not in refused.lower()
    await world.settle()
    assert len(fake.posts("CTEAM")) == 1
