"""No secret in the logs, at DEBUG with statements echoed: an OAuth install into the fake Slack
(the real slack-bolt and slack_sdk), token rotation, a standup day, a poll and attacker
requests, and then every token, refresh token, the client and signing secrets, the encryption
key and the database password are searched for in the whole log."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from bot.config import BotSection, DatabaseSection
from bot.logs import Redactor, setup_logging
from storage.db import Database
from tests.fakes.slack import payloads
from tests.fakes.slack.harness import SlackWorld, settings_for, team_slack, text_of
from tests.fakes.slack.server import FakeSlack
from tests.test_security_logs import restore_logging  # noqa: F401 (a fixture)

START = datetime(2026, 3, 9, 7, tzinfo=UTC)
KEY = Fernet.generate_key().decode()
CLIENT_SECRET = "client-secret-9f8e7d6c"
DB_PASSWORD = "db-pw-4b3a2918"
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("restore_logging"),
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        yield slack


def with_password(url: str) -> str:
    """PostgreSQL here trusts local connections, so a password in the URL is carried (and
    could be logged) but never checked; SQLite has none."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=DB_PASSWORD).render_as_string(hide_password=False)


async def test_a_debug_log_of_an_install_and_a_day_holds_no_secret(
    fake: FakeSlack, database: Database
) -> None:
    url = with_password(database.url)
    settings = settings_for(
        fake,
        url,
        "http",
        bot_token=None,
        app_token=None,
        client_id="111.222",
        client_secret=CLIENT_SECRET,
        token_encryption_key=KEY,
    )
    settings.bot = BotSection(platform="slack", log_level="DEBUG")
    settings.database = DatabaseSection(url=url, echo=True)
    out = io.StringIO()
    setup_logging(settings, out)
    world = SlackWorld(fake, settings, START)
    await world.start()
    try:
        await day(world)
    finally:
        await world.stop()

    log = out.getvalue()
    assert " DEBUG " in log  # DEBUG was on
    assert "SELECT" in log  # and statements were echoed
    refreshes = [str(c.args.get("refresh_token")) for c in fake.calls_of("oauth.v2.access")]
    secrets = {
        "client secret": [CLIENT_SECRET],
        "signing secret": [settings.slack.signing_secret.get_secret_value()],  # type: ignore[union-attr]
        "encryption key": [KEY],
        "bot tokens": [t for t in fake.tokens if t != "xoxb-test"],
        "refresh tokens": list(fake.refresh_tokens) + [r for r in refreshes if r != "None"],
        "database password": [DB_PASSWORD] if "@" in url and DB_PASSWORD in url else [],
    }
    assert len(secrets["bot tokens"]) >= 2 and len(secrets["refresh tokens"]) >= 2, secrets
    found = {kind: [v for v in values if v in log] for kind, values in secrets.items()}
    assert found == {kind: [] for kind in secrets}
    # Encrypted tokens are not logged either (they are parameters; and Fernet-shaped).
    assert not re.search(r"gAAAAA[A-Za-z0-9_=-]{20,}", log)
    # Every handler any logger has carries the redaction filter.
    for lg in [logging.getLogger()] + [
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    ]:
        for handler in lg.handlers:
            if handler.__class__.__name__ != "LogCaptureHandler":  # pytest's own
                assert any(isinstance(f, Redactor) for f in handler.filters), (lg.name, handler)


async def day(world: SlackWorld) -> None:
    fake = world.fake
    # An attacker first: unsigned, with a token-shaped string in the body.
    raw = b'{"type":"event_callback","token":"xoxb-attacker-0000","event":{}}'
    ack = await world.post_raw(raw, {"Content-Type": "application/json"})
    assert ack.status == 401

    # The install, with token rotation (so refresh tokens go back and forth).
    status, page = await world.get("/slack/install")
    assert status == 200
    state = re.search(r"state=([\w\-]+)", page)
    assert state is not None
    fake.grant_code("code-T1", "T1", rotating=True, expires_in=600)
    status, page = await world.get(
        f"/slack/oauth_redirect?code=code-T1&state={state[1]}", {"Cookie": world.last_cookie}
    )
    assert status == 200 and "syncup is installed" in page

    # A standup, its day, a DM answer, a poll with votes.
    await world.command("UALICE", "/standup setup")
    await world.submit(
        "UALICE",
        {"name": "Daily", "channel": "#team", "participants": "@alice @bob", "reminder": "off"},
    )
    await world.move_to(datetime(2026, 3, 9, 8, 1, tzinfo=UTC))
    await world.dm("UALICE", "Shipped the login page")
    await world.command("UALICE", '/poll "Lunch?" Pizza Sushi --anonymous')
    poll = [m for m in fake.posts("CTEAM") if "Lunch?" in text_of(m.blocks)]
    assert poll, [text_of(m.blocks) for m in fake.posts("CTEAM")]
    await world.press("UBOB", poll[-1], "Sushi")
    await world.move_to(datetime(2026, 3, 9, 13, 1, tzinfo=UTC))
    await world.dm("UBOB", "Fixed the alerts")
    await world.move_to(datetime(2026, 3, 9, 20, 0, tzinfo=UTC))
    body = payloads.event_callback({"type": "app_home_opened", "user": "UBOB"}, event_id="Ev-h")
    assert (await world.send("events_api", body)).status == 200
