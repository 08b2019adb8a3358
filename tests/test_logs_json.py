"""``[bot] log_format = "json"``: every line is one JSON object (time, level, logger, message,
the ids a call gave, a traceback), redacted like the text lines, on SQLite and PostgreSQL with
an anonymous poll run at DEBUG; a bad value is one line at start."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import BotSection, DatabaseSection, Settings, SlackSection
from bot.logs import REDACTED, Redactor, setup_logging
from storage import migrate
from storage.db import Database
from tests.test_polls_create import START, running_world
from tests.test_security_logs import Parameters, restore_logging

__all__ = ["restore_logging"]  # the fixture, used by name

SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


def json_log(url: str, log_level: str = "DEBUG") -> io.StringIO:
    out = io.StringIO()
    settings = Settings(
        bot=BotSection(log_level=log_level, log_format="json"),  # type: ignore[arg-type]
        database=DatabaseSection(url=url),
        slack=SlackSection(signing_secret=SIGNING_SECRET),  # type: ignore[arg-type]
    )
    setup_logging(settings, out)
    return out


def lines(out: io.StringIO) -> list[dict[str, object]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def test_an_anonymous_poll_logs_json_lines_without_ballots(
    db_url: str, restore_logging: None
) -> None:
    out = json_log(db_url)
    db = Database(db_url)
    try:
        await migrate.upgrade(db.engine)
        seen = Parameters(db)
        async with running_world(db) as world:
            choice = await world.create('"Ship it?" Yes No --anonymous --closes 1h')
            for n, name in enumerate(("alice", "bob", "carol", "dana", "erin")):
                await world.vote(name, choice, n % 2)
            await world.command("nosuchsubcommand")
            await world.advance_to(START + timedelta(hours=2))
    finally:
        await db.dispose()
    records = lines(out)
    assert len(records) > 5
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        when = datetime.fromisoformat(str(record["time"]))
        assert when.utcoffset() == timedelta(0)
    assert any(r["level"] == "DEBUG" for r in records)
    assert any(r["message"] == "poll 1 closed (generation 0)" for r in records), records
    assert any("user error in /poll" in str(r["message"]) for r in records), records
    log = out.getvalue()
    assert seen.values
    assert sorted(v for v in seen.values if v in log) == []


def test_ids_tracebacks_and_secrets(restore_logging: None) -> None:
    out = json_log("sqlite+aiosqlite:///x.db", "INFO")
    log = logging.getLogger("bot.test")
    log.info(
        "delivery %s to hook %d",
        "d-1",
        7,
        extra={"hook_id": 7, "workspace": "T1", "note": f"signing {SIGNING_SECRET}", "obj": []},
    )
    try:
        raise RuntimeError(f"failed with token xoxb-123-456-abcDEF and {SIGNING_SECRET}")
    except RuntimeError:
        log.exception("handler failed (ref %s)", "abc123")
    log.warning("Authorization: Bearer sekrit-value-123")
    first, failed, warned = lines(out)
    assert first["message"] == "delivery d-1 to hook 7"
    assert first["logger"] == "bot.test" and first["level"] == "INFO"
    assert first["hook_id"] == 7 and first["workspace"] == "T1"
    assert first["note"] == f"signing {REDACTED}"
    assert "obj" not in first  # only scalars: ids, never a request's data
    assert failed["level"] == "ERROR" and failed["message"] == "handler failed (ref abc123)"
    exception = str(failed["exception"])
    assert exception.startswith("Traceback") and "RuntimeError" in exception
    assert "xoxb-" not in exception and SIGNING_SECRET not in exception
    assert "sekrit-value-123" not in str(warned["message"])
    assert SIGNING_SECRET not in out.getvalue()


def test_text_stays_the_default(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging(Settings(database=DatabaseSection(url="sqlite+aiosqlite:///x.db")), out)
    logging.getLogger("bot.test").warning("plain")
    line = out.getvalue().strip()
    assert line.endswith(" WARNING bot.test: plain")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_bad_log_format_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "syncup.toml").write_text('[bot]\nlog_format = "yaml"\n')
    done = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "syncup: Invalid configuration: Invalid bot.log_format in syncup.toml (or "
        "$SYNCUP_BOT_LOG_FORMAT): Input should be 'text' or 'json'. See config.example.toml."
    ]


def test_a_record_another_redactor_saw_first_is_still_redacted() -> None:
    """A handler guarded by an earlier set-up (other settings, other secrets) may see a record
    first; this set-up's secrets are still taken out of it (the message and the traceback)."""
    try:
        raise RuntimeError(f"failed with {SIGNING_SECRET}")
    except RuntimeError:
        record = logging.LogRecord(
            "bot.test", logging.ERROR, __file__, 1, f"with {SIGNING_SECRET}", None, sys.exc_info()
        )
    Redactor(["an-older-secret"]).filter(record)
    Redactor([SIGNING_SECRET]).filter(record)
    assert SIGNING_SECRET not in record.getMessage()
    assert record.exc_text and SIGNING_SECRET not in record.exc_text
