"""Keys checked at start: ``syncup run`` with a token_encryption_key that is not the one the
stored tokens were encrypted with, or that is not a Fernet key at all, stops with one line and
exit code 2 (not a ready server that fails every request, not a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack.oauth import SqlInstallationStore, TokenCipher
from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
OLD_KEY = Fernet.generate_key().decode()


def run_syncup(db_url: str, key: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SYNCUP_CONFIG": str(tmp_path / "none.toml"),
        "SYNCUP_DATABASE_URL": db_url,
        "SYNCUP_BOT_PLATFORM": "slack",
        "SYNCUP_SLACK_MODE": "http",
        "SYNCUP_SLACK_HTTP_HOST": "127.0.0.1",
        "SYNCUP_SLACK_HTTP_PORT": "0",
        "SYNCUP_SLACK_API_BASE_URL": "http://127.0.0.1:9/api/",
        "SYNCUP_SLACK_CLIENT_ID": "111.222",
        "SYNCUP_SLACK_CLIENT_SECRET": "client-secret-value",
        "SYNCUP_SLACK_SIGNING_SECRET": "signing-secret-value",
        "SYNCUP_SLACK_TOKEN_ENCRYPTION_KEY": key,
        "SYNCUP_BOT_LOG_LEVEL": "WARNING",
    }
    (tmp_path / "none.toml").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def installed(database: Database) -> None:
    store = SqlInstallationStore(database, TokenCipher(OLD_KEY), "111.222")
    await store.async_save(
        Installation(
            app_id="A1",
            team_id="T1",
            team_name="Team",
            bot_token="xoxb-1-stored-token",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="chat:write",
            user_id="UADMIN",
            installed_at=datetime(2026, 3, 1, tzinfo=UTC).timestamp(),
        )
    )


async def test_another_valid_key_stops_the_start(database: Database, tmp_path: Path) -> None:
    await installed(database)
    done = run_syncup(database.url, Fernet.generate_key().decode(), tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("syncup: [slack] token_encryption_key does not decrypt")
    assert "T1" in lines[0] and "Traceback" not in done.stderr
    assert OLD_KEY not in done.stderr


@pytest.mark.parametrize(
    "key",
    ["not-a-key", "c2hvcnQ=", Fernet.generate_key().decode()[:-2]],
    ids=["not-base64", "too-short", "truncated"],  # the same ids in every pytest-xdist worker
)
def test_a_malformed_key_is_a_configuration_error(key: str, tmp_path: Path) -> None:
    done = run_syncup(f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}", key, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "token_encryption_key" in lines[0], done.stderr
    assert key not in done.stderr
