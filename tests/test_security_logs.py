"""Nothing secret in the logs: an anonymous poll voted on and closed at DEBUG (and with
``[database] echo``) on SQLite and PostgreSQL logs none of the ballots' parameters, the poll's
secret or the answers; a statement that fails logs no parameters; the redaction filter rewrites
every kind of secret; libraries' loggers stay quiet unless named."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from bot.config import BotSection, ConfigError, DatabaseSection, Settings, load_settings
from bot.features.polls import render
from bot.logs import REDACTED, Redactor, secrets_of, setup_logging
from storage import migrate
from storage.db import Database
from tests.test_polls_create import START, running_world, said


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: put the levels and handlers back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: lg.level
        for name, lg in logging.Logger.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.setLevel(levels.get(name, logging.NOTSET))


def debug_log(url: str, *, echo: bool = False, **bot: Any) -> io.StringIO:
    out = io.StringIO()
    bot.setdefault("log_level", "DEBUG")
    setup_logging(
        Settings(bot=BotSection(**bot), database=DatabaseSection(url=url, echo=echo)), out
    )
    return out


class Parameters:
    """Every parameter value sent with a statement on the poll tables: what must never show."""

    def __init__(self, db: Database) -> None:
        self.values: set[str] = set()
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "poll" not in statement.lower():
            return
        rows = params if isinstance(params, list) else [params]
        for row in rows:
            values = row.values() if isinstance(row, dict) else row or ()
            for value in values:
                self._add(value)

    def _add(self, value: Any) -> None:
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            self.values.update({raw.hex(), repr(raw)[2:-1][:40]})
        elif isinstance(value, str) and len(value) >= 12:
            self.values.add(value)


@pytest.fixture(params=[False, True], ids=["debug", "debug+echo"])
async def echo(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_an_anonymous_poll_at_debug_logs_no_ballot_and_no_secret(
    db_url: str, echo: bool, restore_logging: None
) -> None:
    out = debug_log(db_url, echo=echo)
    db = Database(db_url, echo=echo)
    try:
        await migrate.upgrade(db.engine)
        seen = Parameters(db)
        async with running_world(db) as world:
            poll_id = await world.create('"What should we stop doing?" --text --anonymous')
            answers = {}
            for n, name in enumerate(("alice", "bob", "carol", "dana", "erin")):
                opened = await world.press(name, f"{render.ANSWER_ACTION}:{poll_id}")
                form = opened.form  # type: ignore[union-attr]
                answers[name] = f"Stop the {name} meetings #{n} zebra"
                reply = await world.submit(
                    name, form.form_id, {"answer": answers[name]}, form.state
                )
                assert said(reply).startswith("Your answer is in"), said(reply)
            choice = await world.create('"Ship it?" Yes No --anonymous --closes 1h')
            for n, name in enumerate(("alice", "bob", "carol", "dana", "erin")):
                await world.vote(name, choice, n % 2)
                await world.vote(name, choice, (n + 1) % 2)  # a changed vote
            await world.command(f"close {poll_id}")
            await world.advance_to(START + timedelta(hours=2))
    finally:
        await db.dispose()
    log = out.getvalue()
    assert seen.values, "no poll parameters were recorded"
    assert "DEBUG" in log  # syncup's own debug lines are there
    if echo:
        assert "INSERT INTO poll" in log  # statements are shown...
        assert "[SQL parameters hidden due to hide_parameters=True]" in log
    leaked = sorted(v for v in seen.values if v in log)
    assert leaked == []  # ...never their parameters
    for answer in answers.values():
        assert answer not in log


async def test_a_failing_statement_logs_no_parameters(db_url: str, restore_logging: None) -> None:
    out = debug_log(db_url, log_level="INFO")
    db = Database(db_url)
    marker = "voter-key-5f2a9c77e1b04d and the answer"
    try:
        await migrate.upgrade(db.engine)
        with pytest.raises(Exception) as caught:
            async with db.transaction() as session:
                await session.execute(
                    text("INSERT INTO no_such_table (voter_key, text) VALUES (:k, :t)"),
                    {"k": marker, "t": "answer\x00with a NUL"},
                )
        logging.getLogger("bot.core").error("vote failed", exc_info=caught.value)
    finally:
        await db.dispose()
    log = out.getvalue()
    assert "vote failed" in log and "no_such_table" in log
    assert marker not in log and "with a NUL" not in log
    assert marker not in str(caught.value)


def test_sealed_loggers_cannot_be_opened() -> None:
    with pytest.raises(ValueError, match="prints SQL parameters"):
        BotSection(debug_loggers=["aiosqlite"])
    with pytest.raises(ValueError, match="prints SQL parameters"):
        BotSection(debug_loggers=["sqlalchemy.engine"])
    assert BotSection(debug_loggers=["slack_sdk"]).debug_loggers == ["slack_sdk"]


def test_payload_loggers_are_quiet_unless_named(restore_logging: None) -> None:
    debug_log("sqlite+aiosqlite:///x.db")
    assert logging.getLogger("slack_sdk.web.async_base_client").getEffectiveLevel() > logging.DEBUG
    assert logging.getLogger("slack_bolt.App").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("aiosqlite").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("sqlalchemy.engine.Engine").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("bot.core").getEffectiveLevel() == logging.DEBUG
    debug_log("sqlite+aiosqlite:///x.db", debug_loggers=["slack_sdk"], echo=True)
    assert logging.getLogger("slack_sdk.web").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("slack_bolt").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("sqlalchemy.engine.Engine").getEffectiveLevel() == logging.INFO


def test_the_redactor_rewrites_every_kind_of_secret() -> None:
    fernet_key = "q0uT3-Zl5Hs0b9QwU8n1X2y3Z4a5B6c7D8e9F0g1H2I="
    redactor = Redactor(["plain-signing-secret", "short"])
    samples = {
        "token xoxb-123-456-abcDEF": "xoxb-123-456-abcDEF",
        "refresh xoxe-1-abcdef0123": "xoxe-1-abcdef0123",
        "rotated xoxe.xoxb-1-MTIz-abc": "xoxe.xoxb-1-MTIz-abc",
        "app xapp-1-A111-222-abc": "xapp-1-A111-222-abc",
        "discord MTA5ODc2NTQzMjEwOTg3NjU0.GxYz12.abcdefghijklmnopqrstuvwxyz012345": (
            "MTA5ODc2NTQzMjEwOTg3NjU0.GxYz12.abcdefghijklmnopqrstuvwxyz012345"
        ),
        f"key {fernet_key}": fernet_key,
        "stored gAAAAABnXyZ_abcdefghijklmnopqrstuvwxyz0123456789": "gAAAAABnXyZ_abcdef",
        "POST https://hooks.slack.com/services/T1/B2/sEcReTpArT": "sEcReTpArT",
        "POST https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb24": "aW50ZXJhY3Rpb24",
        "POST https://discord.com/api/v10/interactions/99/aW50ZXJhY3Rpb24/callback": (
            "aW50ZXJhY3Rpb24"
        ),
        "url postgresql+asyncpg://syncup:hunter2pw@db/syncup": "hunter2pw",
        "headers {'Authorization': 'Bearer abc.def-ghi'}": "abc.def-ghi",
        "body client_secret=topsecret99&code=1": "topsecret99",
        "{'refresh_token': 'r3fr3sh-value'}": "r3fr3sh-value",
        "the plain-signing-secret leaked": "plain-signing-secret",
    }
    for line, secret in samples.items():
        redacted = redactor.redact(line)
        assert secret not in redacted, (line, redacted)
        assert REDACTED in redacted
    assert redactor.redact("short and plain") == "short and plain"  # too short to be a secret
    assert redactor.redact("poll 12 closed with 5 answers") == "poll 12 closed with 5 answers"


def test_the_filter_redacts_arguments_and_tracebacks(restore_logging: None) -> None:
    out = debug_log("sqlite+aiosqlite:///x.db")
    log = logging.getLogger("bot.test")
    log.info("installed %s", "xoxb-9-9-secretvalue")
    try:
        raise RuntimeError("bad token xoxp-1-2-3-secretvalue")
    except RuntimeError:
        log.exception("failed")
    log.warning("broken %s %s", "only-one-arg")  # bad arguments: still one line, no crash
    text_ = out.getvalue()
    assert "secretvalue" not in text_
    assert text_.count(REDACTED) >= 2
    assert "broken %s %s (arguments not shown)" in text_


def test_secrets_of_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "syncup.toml"
    config.write_text('[database]\nurl = "postgresql+asyncpg://syncup:pw-in-url@db/syncup"\n')
    monkeypatch.setenv("SYNCUP_SLACK_SIGNING_SECRET", "sig-secret-123")
    monkeypatch.setenv("SYNCUP_DISCORD_TOKEN", "discord-token-456")
    found = secrets_of(load_settings(config))
    assert {"pw-in-url", "sig-secret-123", "discord-token-456"} <= set(found)


def test_a_malformed_encryption_key_is_a_configuration_error(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCUP_SLACK_TOKEN_ENCRYPTION_KEY", "not-a-fernet-key")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "token_encryption_key" in str(caught.value)
    assert "not-a-fernet-key" not in str(caught.value)


async def test_an_answer_the_database_refuses_is_logged_without_it(
    db_url: str, restore_logging: None
) -> None:
    """PostgreSQL refuses a NUL in text; the failure's log line names neither the answer nor
    the voter key (SQLite stores it, which is just as quiet)."""
    out = debug_log(db_url, log_level="INFO")
    db = Database(db_url)
    secret_words = "confidential zebra remark"
    try:
        await migrate.upgrade(db.engine)
        seen = Parameters(db)
        async with running_world(db) as world:
            poll_id = await world.create('"What should we stop doing?" --text --anonymous')
            opened = await world.press("bob", f"{render.ANSWER_ACTION}:{poll_id}")
            form = opened.form  # type: ignore[union-attr]
            await world.submit("bob", form.form_id, {"answer": f"a\x00{secret_words}"}, form.state)
    finally:
        await db.dispose()
    log = out.getvalue()
    assert secret_words not in log
    assert sorted(v for v in seen.values if v in log) == []
