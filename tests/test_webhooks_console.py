"""Webhooks through the whole app on the console: the composition root routes webhook rows to
the sender, the key comes from a key file next to the SQLite database, and a receiver on
127.0.0.1 verifies what arrives with the secret the console printed once."""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from adapters.console.adapter import ConsoleAdapter
from bot.app import App
from bot.config import ConsoleSection, DatabaseSection, Settings, WebhooksSection
from bot.delivery.admin import list_messages
from storage.db import Database
from tests.fakes.webhooks import WebhookReceiver
from tests.test_console import START, Run


async def test_console_adds_a_webhook_and_the_app_delivers_its_test_event(
    tmp_path: Path,
) -> None:
    async with WebhookReceiver() as hooks:
        lines = [
            f"/raci webhook add ops {hooks.base}/ops --events opened,resolved",
            "/raci webhook test ops",
            "/raci webhook list",
            "/as bob",
            "/raci webhook list",
        ]
        settings = Settings.model_construct(
            database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
            console=ConsoleSection(member="alice", start=START, charts_dir=str(tmp_path)),
            webhooks=WebhooksSection(allow_private_targets=True),
        )
        out = io.StringIO()
        code = await App(settings, ConsoleAdapter(settings, lines=lines, out=out)).run()
        run = Run(out.getvalue(), code, settings.database.url)
        assert run.code == 0, run.output
        (got,) = await hooks.wait_for(1)
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", run.output)
    assert secret is not None, run.output
    event = Webhook(secret.group(0)).verify(got.body, got.headers)
    assert event["type"] == "webhook.test"
    assert event["data"]["requested_by"]["id"] == "alice"
    assert f"ops (id 1, standard): {hooks.base}/ops; events: opened, resolved" in run.output
    assert run.output.count("whsec_") == 1  # shown once, never listed
    assert (
        run.after("bob> /raci webhook list").splitlines()[2].strip() == "Only admins can do that."
    )
    key_file = tmp_path / "syncup.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    db = Database(run.url)
    try:
        assert await list_messages(db) == []  # sent, nothing pending or dead
    finally:
        await db.dispose()
