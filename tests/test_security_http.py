"""The internet-facing HTTP server of Slack's HTTP mode, attacked without credentials: oversized
bodies get 413 before they are read and leave the log small, unsigned or malformed bodies get
401/400 with one log line, slow clients are cut off, connections are capped, installs per client
are capped and their expired states purged, and the OAuth state cookie is SameSite=Lax and
cleared after the install."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.config import BotSection, HttpSection
from bot.logs import setup_logging
from bot.scheduling.housekeeping import Housekeeping
from bot.scheduling.scheduler import Scheduler
from storage.db import Database
from storage.slack_installs import SlackOAuthState
from tests.fakes.clock import FakeClock
from tests.fakes.slack import payloads
from tests.fakes.slack.harness import SIGNING_SECRET, SlackWorld, settings_for, team_slack
from tests.fakes.slack.server import FakeSlack
from tests.test_security_logs import restore_logging  # noqa: F401 (a fixture)

START = datetime(2026, 3, 9, 7, tzinfo=UTC)
KEY = Fernet.generate_key().decode()
GUARD = 15.0  # seconds a test waits before calling a hang a failure (never a measurement)
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.usefixtures("restore_logging"),
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with team_slack() as slack:
        yield slack


@pytest.fixture
def log() -> io.StringIO:
    """The bot's log at INFO, as `syncup run` sets it up (by :func:`oauth_world`)."""
    return io.StringIO()


@asynccontextmanager
async def oauth_world(
    fake: FakeSlack, db_url: str, out: io.StringIO | None = None, **http: Any
) -> AsyncIterator[SlackWorld]:
    settings = settings_for(
        fake,
        db_url,
        "http",
        bot_token=None,
        app_token=None,
        client_id="111.222",
        client_secret="client-secret-value",
        token_encryption_key=KEY,
    )
    settings.http = HttpSection(**http)
    settings.bot = BotSection(platform="slack", log_level="INFO")
    if out is not None:
        setup_logging(settings, out)
    world = SlackWorld(fake, settings, START)
    await world.start()
    try:
        yield world
    finally:
        await world.stop()


async def exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send raw bytes and read until the server closes; (status, whole response)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), GUARD)
    finally:
        writer.close()
    match = re.match(rb"HTTP/1\.1 (\d+)", data)
    return (int(match[1]) if match else 0), data


def post_head(length: int | None, content_type: str = "application/json", **extra: str) -> bytes:
    lines = ["POST /slack/events HTTP/1.1", "Host: syncup", f"Content-Type: {content_type}"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def stream_then_read(port: int, head: bytes, chunks: Iterator[bytes]) -> int:
    """Send the head and as many chunks as the server takes, then read its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in chunks:
            if reader.at_eof() or writer.is_closing():
                break
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                break
        data = await asyncio.wait_for(reader.read(), GUARD)
    except ConnectionError:
        data = b""
    finally:
        writer.close()
    match = re.match(rb"HTTP/1\.1 (\d+)", data)
    return int(match[1]) if match else 0


async def test_a_burst_of_oversized_unsigned_bodies_gets_413_and_a_small_log(
    fake: FakeSlack, sqlite_database: Database, log: io.StringIO
) -> None:
    size = 3 * 1024 * 1024
    async with oauth_world(fake, sqlite_database.url, log) as world:
        port = world.adapter.http_port
        # Declared too large: answered before a byte of the body is sent.
        status, answer = await exchange(port, post_head(size))
        assert status == 413 and b"too large" in answer

        def body() -> Iterator[bytes]:
            for _ in range(size // 65536):
                yield b"A" * 65536

        # A burst, each sending its whole body: the Content-Length ones, and chunked ones
        # (no length: cut off as the body streams past the limit).
        def chunked() -> Iterator[bytes]:
            for block in body():
                yield b"%x\r\n%s\r\n" % (len(block), block)
            yield b"0\r\n\r\n"

        statuses = await asyncio.gather(
            *(stream_then_read(port, post_head(size), body()) for _ in range(4)),
            *(stream_then_read(port, post_head(None), chunked()) for _ in range(4)),
        )
        # 0: the client was still sending when the server answered and closed (a reset).
        assert all(s in (413, 0) for s in statuses), statuses
        # The server still answers, and a signed request of normal size gets through.
        raw, ctype = payloads.http_body(
            "events_api",
            payloads.event_callback({"type": "app_home_opened", "user": "UBOB"}, event_id="Ev-ok"),
        )
        ack = await world.post_raw(
            raw, {"Content-Type": ctype, **payloads.sign(SIGNING_SECRET, raw)}
        )
        assert ack.status == 200
    text = log.getvalue()
    assert "AAAA" not in text
    assert len(text) < 9 * 400, text  # one short line per refused request
    assert text.count("over 1048576 bytes") == 9  # each one refused


async def test_the_body_limit_is_a_setting(fake: FakeSlack, sqlite_database: Database) -> None:
    async with oauth_world(fake, sqlite_database.url, max_body_bytes=4096) as world:
        port = world.adapter.http_port
        assert (await exchange(port, post_head(5000), b"x" * 5000))[0] == 413
        status, _ = await exchange(port, post_head(3000), b"x" * 3000)
        assert status == 401  # within the limit: on to the signature check
        # Every route bolt serves reads its body: a GET with one is limited too.
        for path in ("/slack/install", "/slack/oauth_redirect?code=x&state=y"):
            head = f"GET {path} HTTP/1.1\r\nHost: s\r\nContent-Length: 5000\r\n\r\n"
            assert (await exchange(port, head.encode(), b"x" * 5000))[0] == 413


async def test_unsigned_or_malformed_json_gets_401_or_400_and_one_line(
    fake: FakeSlack, sqlite_database: Database, log: io.StringIO
) -> None:
    async with oauth_world(fake, sqlite_database.url, log) as world:
        port = world.adapter.http_port
        started = len(log.getvalue())
        garbage = b'{"type": "event_callback", "token": "xoxb-not-closed'
        status, _ = await exchange(port, post_head(len(garbage)), garbage)
        assert status == 401
        lines = log.getvalue()[started:].splitlines()
        assert len(lines) == 1 and "without a valid signature" in lines[0], lines
        signed = {k.replace("-", "_"): v for k, v in payloads.sign(SIGNING_SECRET, garbage).items()}
        status, _ = await exchange(port, post_head(len(garbage), **signed), garbage)
        assert status == 400
        form = b"payload=%7Bnot+json"
        signed = {k.replace("-", "_"): v for k, v in payloads.sign(SIGNING_SECRET, form).items()}
        head = post_head(len(form), "application/x-www-form-urlencoded", **signed)
        assert (await exchange(port, head, form))[0] == 400
        stale = payloads.sign(SIGNING_SECRET, garbage, timestamp=1)
        signed = {k.replace("-", "_"): v for k, v in stale.items()}
        assert (await exchange(port, post_head(len(garbage), **signed), garbage))[0] == 401
        bad_stamp = {"X_Slack_Request_Timestamp": "soon", "X_Slack_Signature": "v0=00"}
        assert (await exchange(port, post_head(len(garbage), **bad_stamp), garbage))[0] == 401
        text = log.getvalue()[started:]
    assert "Traceback" not in text and "xoxb-not-closed" not in text
    assert len(text.splitlines()) == 5, text


async def test_slow_headers_and_slow_bodies_are_cut_off(
    fake: FakeSlack, sqlite_database: Database
) -> None:
    limits = {"header_timeout_seconds": 0.3, "body_timeout_seconds": 0.3}
    async with oauth_world(fake, sqlite_database.url, **limits) as world:
        port = world.adapter.http_port
        for partial in (
            b"POST /slack/events HTTP/1.1\r\nHost: syncup\r\n",  # headers never end
            post_head(100)[:-2].replace(b"Connection: close\r\n", b"") + b"\r\n" + b"{" * 10,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(partial)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), GUARD)  # closed by the server
            writer.close()
            assert b"200" not in data
        # A kept-alive connection that starts a second request and stalls is cut off too.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: syncup\r\n\r\n")
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b'{"ok": true}'), GUARD)
        assert first.startswith(b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: sync")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), GUARD) == b""
        writer.close()


async def test_connections_over_the_cap_are_closed(
    fake: FakeSlack, sqlite_database: Database
) -> None:
    async with oauth_world(fake, sqlite_database.url, max_connections=3) as world:
        port = world.adapter.http_port
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: syncup\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), GUARD) == b""  # closed, not served
        writer.close()
        for _, w in held:
            w.close()
        await asyncio.sleep(0.2)  # let the server see them go
        status, _ = await exchange(
            port, b"GET /healthz HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
        )
        assert status == 200


async def test_installs_per_client_are_capped(fake: FakeSlack, sqlite_database: Database) -> None:
    async with oauth_world(fake, sqlite_database.url, installs_per_client=3) as world:
        answers = [(await world.get("/slack/install"))[0] for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        async with sqlite_database.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(SlackOAuthState)) == 3


async def test_the_state_cookie_is_samesite_lax_and_cleared_after_the_install(
    fake: FakeSlack, sqlite_database: Database
) -> None:
    async with oauth_world(fake, sqlite_database.url) as world:
        base = f"http://127.0.0.1:{world.adapter.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/slack/install", allow_redirects=False) as answer:
                page = await answer.text()
                cookie = answer.headers["Set-Cookie"]
            assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Secure" in cookie
            state = re.search(r"state=([\w\-]+)", page)
            assert state is not None
            fake.grant_code("code-1", "T1")
            redirect = f"{base}/slack/oauth_redirect?code=code-1&state={state[1]}"
            headers = {"Cookie": cookie.split(";", 1)[0]}
            async with http.get(redirect, headers=headers, allow_redirects=False) as answer:
                assert answer.status == 200, await answer.text()
                cleared = answer.headers.get("Set-Cookie", "")
        assert cleared.startswith("slack-app-oauth-state=deleted")
        assert "Expires=Thu, 01 Jan 1970" in cleared and "SameSite=Lax" in cleared


async def test_housekeeping_purges_expired_states(database: Database) -> None:
    now = datetime(2026, 3, 10, 3, 20, tzinfo=UTC)  # just after the daily 03:17 run
    async with database.transaction() as session:
        session.add_all(
            [
                SlackOAuthState(state="expired", expire_at=now - timedelta(hours=1)),
                SlackOAuthState(state="live", expire_at=now + timedelta(minutes=5)),
            ]
        )
    scheduler = Scheduler(database, FakeClock(now), instance="a", reconcile_interval=3600)
    Housekeeping(retention_days=7).register(scheduler)
    await scheduler.start()
    try:
        async with database.transaction() as session:
            left = list(await session.scalars(select(SlackOAuthState.state)))
    finally:
        await scheduler.stop()
    assert left == ["live"]
