"""The operator's command line: --version, --help everywhere, db and outbox subcommands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import __version__
from bot.cli import cli
from tests.cli_env import cli_on_sqlite


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    cli_on_sqlite(tmp_path, monkeypatch, "cli.db")
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"syncup, version {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["run"],
        ["db"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["db", "current"],
        ["outbox"],
        ["outbox", "list"],
        ["outbox", "retry"],
        ["config"],
        ["config", "check"],
        ["export"],
        ["export", "standups"],
    ],
)
def test_help_on_every_command(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: syncup" in result.output


def test_db_upgrade_current_downgrade(runner: CliRunner) -> None:
    before = runner.invoke(cli, ["db", "current"])
    assert before.exit_code == 0, before.output
    assert "current: none (empty database)" in before.output
    assert "run `syncup db upgrade`" in before.output

    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    after = runner.invoke(cli, ["db", "current"])
    assert "up to date" in after.output

    down = runner.invoke(cli, ["db", "downgrade", "base"])
    assert down.exit_code == 0, down.output
    assert "current: none" in runner.invoke(cli, ["db", "current"]).output


def test_run_refuses_an_old_schema_without_auto_migrate(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCUP_DATABASE_AUTO_MIGRATE", "false")
    result = runner.invoke(cli, ["run"], input="")
    assert result.exit_code == 1
    assert "Run `syncup db upgrade`" in result.output


def test_discord_without_a_token_is_a_config_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every platform [bot] platform accepts now has an adapter; a missing token is what an
    # operator gets wrong, and it is a config error that names the variable to set.
    monkeypatch.setenv("SYNCUP_BOT_PLATFORM", "discord")
    result = runner.invoke(cli, ["run"])
    assert result.exit_code == 2
    assert "SYNCUP_DISCORD_TOKEN" in result.output


def test_run_with_a_discord_token_loads_the_adapter_and_fails_clearly_offline(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCUP_DISCORD_TOKEN", "a-token")
    monkeypatch.setenv("SYNCUP_DISCORD_API_BASE_URL", "http://127.0.0.1:9/api/v10")
    result = runner.invoke(cli, ["run"])
    assert result.exit_code == 1
    assert "cannot reach Discord at http://127.0.0.1:9/api/v10" in result.output


def test_outbox_list_and_retry(runner: CliRunner, tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from bot.chat import message
    from bot.delivery.outbox import enqueue
    from bot.port import Method, Target
    from storage.db import Database
    from storage.models import OutboxMessage, OutboxStatus, Workspace

    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    assert "No pending or dead messages." in runner.invoke(cli, ["outbox", "list"]).output
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    now = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)

    async def seed() -> None:
        db = Database(url)
        async with db.transaction() as session:
            ws = Workspace(platform="test", external_id="W1", name="", created_at=now)
            session.add(ws)
            await session.flush()
            for key in ("a", "b"):
                await enqueue(
                    session,
                    workspace_id=ws.id,
                    method=Method.POST,
                    target=Target(channel_id="C1"),
                    message=message(key),
                    key=key,
                    now=now,
                )
            dead = await session.get(OutboxMessage, 2)
            assert dead is not None
            dead.status, dead.attempts, dead.last_error = OutboxStatus.DEAD, 8, "channel_not_found"
        await db.dispose()

    asyncio.run(seed())
    listed = runner.invoke(cli, ["outbox", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["id", "status", "method", "tries", "next", "try", "(UTC)", "error"]
    assert lines[1].split()[:4] == ["1", "pending", "post", "0"]
    assert lines[2].split()[:4] == ["2", "dead", "post", "8"]
    assert lines[2].endswith("channel_not_found")
    only_dead = runner.invoke(cli, ["outbox", "list", "--status", "dead"]).output
    assert "pending" not in only_dead and "channel_not_found" in only_dead

    assert runner.invoke(cli, ["outbox", "retry"]).exit_code == 2  # names nothing
    retried = runner.invoke(cli, ["outbox", "retry", "1", "2", "99"])
    # 2 is retried; 1 is pending and left alone; 99 does not exist, so the command fails.
    assert retried.exit_code == 1, retried.output
    assert "1 message(s) queued again." in retried.output
    assert "left alone: 1\n" in retried.output
    assert "No message 99 in the outbox" in retried.output
    after = runner.invoke(cli, ["outbox", "list", "--status", "dead"]).output
    assert after.strip() == "No dead messages."
