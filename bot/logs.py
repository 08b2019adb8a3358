"""Logging: one handler on stderr, a redaction filter on every handler, and the third-party
loggers that print payloads kept quiet.

``[bot] log_level = "DEBUG"`` turns on syncup's own debug lines, not everyone's: slack_sdk,
slack-bolt, discord.py, websockets and httpx print whole requests and replies at DEBUG (an
``oauth.v2.access`` reply holds a new bot token; a signature failure, the request body), so they
stay at a floor unless ``[bot] debug_loggers`` names them. ``aiosqlite`` (every statement with its
parameters: ballots, a poll's secret) and SQLAlchemy's engine below INFO (every row read) are
never opened up; ``[database] echo`` shows statements, their parameters hidden
(``hide_parameters`` in :mod:`storage.db`).

Whatever still gets through, the :class:`Redactor` on every handler rewrites: anything shaped
like a Slack or Discord token, a Fernet key or token, a webhook or interaction URL's secret
part, a Standard Webhooks ``whsec_`` secret or a PagerDuty ``routing_key``, a password in a
URL, an ``Authorization`` header, ``*_secret=``/``*token=`` pairs, and
every secret value of the settings, verbatim.

``[bot] log_format = "json"`` writes one JSON object per line (:class:`JsonFormatter`): the
time in UTC, the level, the logger, the message (redacted as above), the traceback if any, and
the ids a call passed with ``extra=`` (scalars only); nothing else of a request.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import BaseModel, SecretStr

from bot.config import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"

# The lowest level each payload-printing library logs at unless [bot] debug_loggers names it.
FLOORS: dict[str, int] = {
    "slack_bolt": logging.WARNING,  # INFO: "Invalid request signature detected (... body: ...)"
    "slack_sdk": logging.INFO,  # DEBUG: every Web API request and reply (tokens)
    "discord": logging.INFO,  # DEBUG: REST bodies, gateway payloads
    "websockets": logging.INFO,
    "aiohttp": logging.INFO,
    "httpx": logging.WARNING,  # INFO: each request's URL (webhook URLs carry their token)
    "httpcore": logging.INFO,
    "asyncio": logging.INFO,
    "uvicorn": logging.INFO,
    "urllib3": logging.INFO,
    "matplotlib": logging.INFO,
    "PIL": logging.INFO,
}
# Their INFO lines (every job added, every migration plugin) drown ours below DEBUG.
CHATTY = ("apscheduler", "alembic")
# Never opened up, whatever the settings: they print SQL parameters and rows.
SEALED: dict[str, int] = {"aiosqlite": logging.WARNING, "sqlalchemy": logging.WARNING}
SQL_STATEMENTS = "sqlalchemy.engine"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Slack: xoxb-/xoxp-/xoxa-/xoxe-/xoxe.xoxb- tokens, app-level xapp- tokens.
    (re.compile(r"\b(?:xox[a-z]|xapp)[.-][A-Za-z0-9.\-]+"), REDACTED),
    # Discord bot tokens (and JWT-shaped strings): three dot-separated base64url parts.
    (re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{5,8}\.[A-Za-z0-9_-]{20,}"), REDACTED),
    # Fernet tokens (encrypted Slack tokens) and Fernet keys (32 bytes, base64url).
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}"), REDACTED),
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}="), REDACTED),
    # Standard Webhooks signing secrets (outbound webhooks, bot.webhooks).
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), REDACTED),
    # PagerDuty routing keys in key=value or JSON form.
    (re.compile(r"(?i)(routing_key['\"]?\s*[=:]\s*['\"]?)[^\s&'\",}]+"), r"\1" + REDACTED),
    # Capability URLs: Slack incoming webhooks and response_urls, Discord webhooks and
    # interaction callbacks (the token is the path).
    (re.compile(r"(hooks\.slack(?:-gov)?\.com/)[^\s'\"<>]+"), r"\1" + REDACTED),
    (re.compile(r"(/webhooks/\d+/)[^\s/'\"<>?]+"), r"\1" + REDACTED),
    (re.compile(r"(/interactions/\d+/)[^\s/'\"<>?]+"), r"\1" + REDACTED),
    # user:password@ in URLs (database URLs, proxies).
    (re.compile(r"(://[^:/@\s'\"]+:)[^@\s'\"]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|bot|basic)\s+)?[^\s'\",}]+"
        ),
        r"\1" + REDACTED,
    ),
    (
        re.compile(
            r"(?i)\b([a-z_]*(?:token|secret|password|passwd)['\"]?\s*[=:]\s*['\"]?)[^\s&'\",}]+"
        ),
        r"\1" + REDACTED,
    ),
]
_EXCEPTIONS = logging.Formatter()
# What every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "_syncup_redacted_by",
}


class Redactor(logging.Filter):
    """Rewrites a record's message, traceback and stack in place, before any handler formats it;
    a record is never dropped."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        # Each redactor once per record: a handler set up earlier (another settings' secrets,
        # a library's handler guarded then) may have passed it first; redacting again is safe.
        # (The redactors themselves are kept: an id could be a dead one's, reused.)
        done: list[Redactor] = record.__dict__.setdefault("_syncup_redacted_by", [])
        if any(r is self for r in done):
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: keep the template, drop the arguments
            message = f"{record.msg} (arguments not shown)"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        done.append(self)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Runs after the :class:`Redactor` (a handler's filters come
    before its formatter); the ``extra=`` values, which the redactor does not see, are
    redacted here."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key in line or key.startswith("_"):
                continue
            if isinstance(value, str):
                line[key] = self.redactor.redact(value)
            elif value is None or isinstance(value, bool | int | float):
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redactor.redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def sealed(name: str) -> bool:
    """A logger that no setting may open up (it would print SQL parameters or rows)."""
    return any(name == s or name.startswith(s + ".") for s in SEALED)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings, and the database URL's password."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    from sqlalchemy.engine import make_url

    try:
        password = make_url(settings.database.url).password
    except Exception:
        password = None
    if password:
        found.append(str(password))
    return [s for s in found if s]


def setup_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger for ``settings``; calling it again replaces what the previous
    call installed. Returns the handler (tests read its stream)."""
    level = logging.getLevelName(settings.bot.log_level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_syncup", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    redactor = Redactor(secrets_of(settings))
    json_lines = settings.bot.log_format == "json"
    handler.setFormatter(JsonFormatter(redactor) if json_lines else logging.Formatter(FORMAT))
    handler.addFilter(redactor)
    handler._syncup = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)

    named = set(settings.bot.debug_loggers)
    for name, floor in FLOORS.items():
        logging.getLogger(name).setLevel(level if name in named else max(level, floor))
    for name in CHATTY:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    for name, floor in SEALED.items():
        logging.getLogger(name).setLevel(max(level, floor))
    # [database] echo: statements at INFO, whatever the level; never DEBUG (rows).
    statements = logging.INFO if settings.database.echo else max(level, logging.WARNING)
    logging.getLogger(SQL_STATEMENTS).setLevel(statements)
    for name in named - set(FLOORS) - set(CHATTY):
        if not sealed(name):
            logging.getLogger(name).setLevel(level)
    guard_handlers(redactor)
    return handler


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Whatever ``sys.stderr`` is when a line is written (as logging's last resort does), not
    the one at set-up, which a test runner or a daemonizer may have replaced and closed since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def guard_handlers(redactor: Redactor) -> None:
    """Put the redactor on every handler any logger has (libraries add their own)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, Redactor) for f in handler.filters):
                handler.addFilter(redactor)
