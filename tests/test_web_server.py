"""The core's one HTTP server: it runs on the console too (a newcomer can curl a webhook at it),
answers /healthz and /readyz, says in one line when its port is busy, stays off with [web]
enabled = false, and stops with the app."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adapters.console.adapter import ConsoleAdapter
from bot.app import App
from bot.config import (
    ConsoleSection,
    DatabaseSection,
    HttpSection,
    Settings,
    SlackSection,
    WebSection,
    public_base_url,
    web_address,
)
from bot.web.asgi import WebApp
from bot.web.guard import MAX_HEAD_BYTES
from bot.web.server import WebServer
from storage import migrate
from tests.hooks_world import release
from tests.test_console import START


def console_settings(tmp_path: Path, **web: object) -> Settings:
    return Settings.model_construct(
        database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
        console=ConsoleSection(member="alice", start=START, charts_dir=str(tmp_path)),
        web=WebSection.model_validate({"port": 0, **web}),
    )


class Typed:
    """The console's input, typed while the app runs: each line waits for its answer."""

    def __init__(self, adapter: ConsoleAdapter, out: io.StringIO) -> None:
        self.adapter = adapter
        self.out = out

    async def line(self, text: str, answer: str) -> None:
        """Type ``text``, then wait until ``answer`` is printed after it."""
        for _ in range(1000):  # the console starts reading once the app has started
            if self.adapter.reader._queue is not None:
                break
            await asyncio.sleep(0.01)
        queue = self.adapter.reader._queue
        assert queue is not None
        start = len(self.out.getvalue())
        queue.put_nowait(text)
        await self.printed(answer, start)

    async def printed(self, answer: str, start: int = 0) -> None:
        for _ in range(1000):
            if answer in self.out.getvalue()[start:]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{answer!r} never printed:\n{self.out.getvalue()}")


async def test_the_console_serves_health_checks_and_a_signed_github_release_posts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = console_settings(tmp_path)
    out = io.StringIO()
    adapter = ConsoleAdapter(settings, lines=[], out=out)
    # Lines are typed by the test while the app runs, not all given up front.
    monkeypatch.setattr(adapter.reader, "_lines", None)
    monkeypatch.setattr(
        type(adapter.reader), "start", lambda self: setattr(self, "_queue", asyncio.Queue())
    )
    app = App(settings, adapter)
    running = asyncio.create_task(app.run())
    while not app.web.running:
        assert not running.done(), out.getvalue()
        await asyncio.sleep(0.02)
    typed = Typed(adapter, out)
    base = f"http://127.0.0.1:{app.web.port}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(base + "/healthz")).json() == {"ok": True}
        ready = await http.get(base + "/readyz")
        assert ready.status_code == 200 and ready.json()["detail"] == "ready"
        await typed.line("/milestone hook add github ci", "Then add a rule")
        shown = out.getvalue()
        url = re.search(r"(http://\S+/hooks/github/[\w-]+)", shown)
        secret = re.search(r"shown only this once: (\S+)", shown)
        assert url is not None and secret is not None, shown
        assert url.group(1).startswith(base)
        await typed.line(
            "/milestone hook rule ci release #team 🚀 $repo $tag is out: $name", "Try it"
        )
        body = release(tag="v2.0.0", name="Faster checkout")
        signature = hmac.new(secret.group(1).encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-Hub-Signature-256": f"sha256={signature}",
            "X-GitHub-Event": "release",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        }
        answer = await http.post(url.group(1), content=body, headers=headers)
        assert answer.json() == {"ok": True, "outcome": "posted"}
        await typed.line("/milestone hook list", "release: posted")
        await typed.printed("is out: Faster checkout")  # printed once the worker posted it
    queue = adapter.reader._queue
    assert queue is not None
    queue.put_nowait(None)
    assert await running == 0
    output = out.getvalue()
    assert "#1 → #team:\n  🚀 acme/shop v2.0.0 is out: Faster checkout" in output, output
    assert "release: posted (1 post(s) queued)" in output
    assert output.count(secret.group(1)) == 1  # shown once, never listed
    assert not app.web.running


async def test_a_busy_port_is_one_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        settings = console_settings(tmp_path, port=port)
        code = await App(
            settings, ConsoleAdapter(settings, lines=["/help"], out=io.StringIO())
        ).run()
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("syncup:")] == [
        f"syncup: cannot listen on 127.0.0.1:{port} (Address already in use); set [web] port "
        "(SYNCUP_WEB_PORT) to a free port, or [web] enabled = false"
    ]


async def test_web_enabled_false_runs_without_a_server(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, enabled=False)
    out = io.StringIO()
    app = App(settings, ConsoleAdapter(settings, lines=["/milestone hook add github ci"], out=out))
    assert await app.run() == 0
    assert app.web.port == 0 and "Hook ci (github) added" in out.getvalue()


async def test_readyz_needs_a_started_app_and_the_newest_schema(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    app = App(settings, ConsoleAdapter(settings, lines=[], out=io.StringIO()))
    assert await app.readiness() == (False, "starting")
    await app.start()
    try:
        assert await app.readiness() == (True, "ready")
        await migrate.downgrade(app.db.engine, "0013")
        ready, detail = await app.readiness()
        assert not ready and detail.startswith("database schema at 0013")
    finally:
        await app.stop()


async def test_readyz_stays_ready_when_a_newer_release_migrates_under_it(tmp_path: Path) -> None:
    """Zero-downtime upgrades: migrations first, then a rolling restart; the replicas of the
    old release keep serving until each is replaced (a new start would refuse, see below)."""
    settings = console_settings(tmp_path)
    app = App(settings, ConsoleAdapter(settings, lines=[], out=io.StringIO()))
    await app.start()
    try:
        async with app.db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9001'"))
        ready, detail = await app.readiness()
        assert ready and detail.startswith("ready; database schema at 9001, newer than")
    finally:
        await app.stop()
    with pytest.raises(migrate.SchemaOutOfDate, match="which this syncup does not know"):
        await migrate.ensure_schema(app.db.engine, auto_migrate=False)


def test_older_slack_http_settings_still_choose_the_address() -> None:
    # (tests default [web] port to 0, see conftest; 8080 is the shipped default)
    web = Settings.model_construct(web=WebSection(port=8080), slack=SlackSection())
    assert web_address(web) == ("127.0.0.1", 8080)
    assert public_base_url(web) == "http://127.0.0.1:8080"
    old = Settings.model_construct(
        web=WebSection(port=8080), slack=SlackSection(http_host="0.0.0.0", http_port=3000)
    )
    assert web_address(old) == ("0.0.0.0", 3000)
    assert public_base_url(old, 3000) == "http://127.0.0.1:3000"
    public = Settings.model_construct(
        web=WebSection(public_url="https://syncup.example.com/"), slack=SlackSection()
    )
    assert public_base_url(public) == "https://syncup.example.com"


@pytest.fixture
async def bare_server() -> AsyncIterator[WebServer]:
    """The core's HTTP server with nothing mounted: it answers /healthz."""

    async def ready() -> tuple[bool, str]:
        return True, "ready"

    server = WebServer(WebApp(ready), HttpSection(), "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_request_head_over_the_cap_closes_the_connection(bare_server: WebServer) -> None:
    """llhttp bounds no header size of its own: the guard closes a connection whose head
    grows past MAX_HEAD_BYTES, while a large but bounded head is served."""
    server = bare_server
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    big = b"X-Filler: " + b"a" * 8000 + b"\r\n"
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: s\r\n" + big * 2 + b"\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: s\r\n")
    with contextlib.suppress(ConnectionError):
        for _ in range(MAX_HEAD_BYTES // len(big) + 2):  # headers that never end
            writer.write(big)
            await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, never answered
    writer.close()


async def test_answers_leave_at_once_without_waiting_for_the_clients_ack(
    bare_server: WebServer,
) -> None:
    """uvicorn writes a response's head and body separately. With Nagle's algorithm on, the
    body waits for the client's ACK of the head, which a client delays by up to 40 ms: every
    answer took 40 ms more (webhook senders, the dashboard, Slack's HTTP mode). asyncio turns
    Nagle off only on sockets made for TCP, so the listening socket must say IPPROTO_TCP;
    each accepted connection then has TCP_NODELAY."""
    server = bare_server
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    assert server._server is not None
    accepted = [
        connection.transport.get_extra_info("socket")
        for connection in server._server.server_state.connections
    ]
    assert len(accepted) == 1
    assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    writer.close()
