"""``syncup discord sync-commands`` and ``syncup discord invite-url`` against the fake Discord
(run in a thread of its own, since the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from adapters.discord.cli import PERMISSIONS_INTEGER
from bot.cli import cli
from tests.fakes.discord.server import FakeDiscord


@pytest.fixture
def fake_in_thread() -> Iterator[FakeDiscord]:
    loop = asyncio.new_event_loop()
    fake = FakeDiscord()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def env(fake_in_thread: FakeDiscord, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("SYNCUP_DISCORD_TOKEN", fake_in_thread.token)
    monkeypatch.setenv("SYNCUP_DISCORD_API_BASE_URL", fake_in_thread.api_base)
    monkeypatch.setenv("SYNCUP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/syncup.db")
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)


def test_sync_commands_registers_every_command(fake_in_thread: FakeDiscord, env: None) -> None:
    result = CliRunner().invoke(cli, ["discord", "sync-commands", "--guild", "123"])
    assert result.exit_code == 0, result.output
    assert "in guild 123" in result.output
    registered = fake_in_thread.guild_commands["123"]
    assert {"standup", "syncup"} <= {c["name"] for c in registered}
    result = CliRunner().invoke(cli, ["discord", "sync-commands"])
    assert result.exit_code == 0, result.output
    assert "globally" in result.output
    assert fake_in_thread.global_commands
    puts = [c for c in fake_in_thread.calls if c.method == "PUT"]
    assert len(puts) == 2 and all(c.status == 200 for c in puts)


def test_invite_url(fake_in_thread: FakeDiscord, env: None) -> None:
    result = CliRunner().invoke(cli, ["discord", "invite-url"])
    assert result.exit_code == 0, result.output
    url = next(line for line in result.output.splitlines() if line.startswith("https://"))
    query = parse_qs(urlparse(url).query)
    assert query["client_id"] == [fake_in_thread.application_id]
    assert query["scope"] == ["bot applications.commands"]
    assert query["permissions"] == [str(PERMISSIONS_INTEGER)]


def test_discord_commands_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCUP_DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["discord", "invite-url"])
    assert result.exit_code == 2
    assert "SYNCUP_DISCORD_TOKEN" in result.output
