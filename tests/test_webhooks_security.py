"""Webhook signing, the private-address guard, bad input, and secrets at rest.

The signature is checked against the Standard Webhooks specification's published test vector and
recomputed here by hand (HMAC-SHA256 over ``id.timestamp.body``); the guard refuses private,
loopback, link-local and IPv6 local targets at add time and again at send time (a DNS answer
that changed in between); every bad command line is refused privately with nothing saved; the
database never holds a secret in clear (the SQLite file is read byte by byte).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import (
    DatabaseSection,
    SecuritySection,
    Settings,
    SlackSection,
)
from bot.errors import UserError
from bot.features.blockers.timeline import Kind
from bot.logs import Redactor
from bot.webhooks.commands import parse_flags
from bot.webhooks.events import parse_events
from bot.webhooks.formats import sign, standard_request
from bot.webhooks.keys import NO_KEY, KeyUnavailable, SecretBox, find_key, key_file_path
from bot.webhooks.sender import MAX_RETRY_AFTER_SECONDS, retry_after
from bot.webhooks.targets import (
    ResolutionFailed,
    TargetRefused,
    check_target,
    parse_url,
    pinned_request,
)
from storage.db import Database
from storage.webhooks import WebhookEndpoint
from tests.fakes.webhooks import KEY, WebhookReceiver, WebhookWorld, said, webhook_world

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# --- signing -------------------------------------------------------------------------------------


def test_signature_matches_the_specification_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def by_hand(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def test_each_attempt_is_signed_over_its_own_timestamp() -> None:
    event = {"type": "blocker.opened", "timestamp": "2026-12-07T09:00:00Z", "data": {"x": "é"}}
    first, body = standard_request(event, "msg_1", VECTOR_SECRET, 1_700_000_000)
    second, again = standard_request(event, "msg_1", VECTOR_SECRET, 1_700_000_060)
    assert body == again and first["webhook-id"] == second["webhook-id"] == "msg_1"
    assert first["webhook-signature"] != second["webhook-signature"]
    for headers in (first, second):
        expected = by_hand(VECTOR_SECRET, "msg_1", headers["webhook-timestamp"], body)
        assert headers["webhook-signature"] == expected


def test_retry_after_seconds_dates_and_caps() -> None:
    assert retry_after("7", 0.0) == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480.0) == 30.0
    assert retry_after("99999999", 0.0) == MAX_RETRY_AFTER_SECONDS
    assert retry_after("soon", 0.0) == retry_after(None, 0.0) > 0


def test_event_filter_words() -> None:
    assert parse_events("opened, blocker.resolved", "standard") == [
        "blocker.opened",
        "blocker.resolved",
    ]
    assert "blocker.cancelled" in parse_events("all", "standard")
    assert parse_events(None, "pagerduty") == [
        "blocker.acknowledged",
        "blocker.escalated",
        "blocker.resolved",
    ]
    with pytest.raises(UserError, match='Unknown event "opend"; events: opened, acknowledged'):
        parse_events("opend", "standard")


# --- the private-address guard ---------------------------------------------------------------


def resolver_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.1.2.3/hook", "a private address"),
        ("https://192.168.0.10/hook", "a private address"),
        ("https://127.0.0.1:8080/hook", "a loopback address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://[::1]/hook", "a loopback address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://[fd00::1]/hook", "a private address"),
        ("https://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://0.0.0.0/hook", "not a public address"),
    ],
)
async def test_private_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        await check_target(parse_url(url, allow_private=False), allow_private=False)


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    url = parse_url("https://localhost/hook", allow_private=False)
    with pytest.raises(TargetRefused, match=r"localhost resolves to .*a loopback address"):
        await check_target(url, allow_private=False)
    # One private answer among public ones is enough to refuse.
    mixed = resolver_to("93.184.215.14", "10.0.0.7")
    url = parse_url("https://hooks.example.com/x", allow_private=False)
    with pytest.raises(TargetRefused, match=r"10\.0\.0\.7, a private address"):
        await check_target(url, allow_private=False, resolver=mixed)
    checked = await check_target(url, allow_private=False, resolver=resolver_to("93.184.215.14"))
    target, headers, extensions = pinned_request(checked)
    assert str(target) == "https://93.184.215.14/x"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("http://hooks.example.com/x", "must use https://"),
        ("ftp://hooks.example.com/x", "is not a web address"),
        ("hooks.example.com/x", "is not a web address"),
        ("https://user:pw@hooks.example.com/x", "no user name or password"),
        ("https:///x", "has no host"),
        ("https://hooks.example.com/x#frag", "#fragment"),
        ("https://[::1/x", "is not a valid URL"),
        ("https://h/" + "a" * 2100, "longer than 2000"),
        ("", "missing"),
    ],
)
def test_malformed_urls_are_refused(raw: str, message: str) -> None:
    with pytest.raises(TargetRefused, match=message):
        parse_url(raw, allow_private=False)


def test_allowing_private_targets_also_allows_http() -> None:
    assert parse_url("<http://127.0.0.1:8080/hook>", allow_private=True).port == 8080


async def test_an_unresolvable_host() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    url = parse_url("https://nowhere.invalid/x", allow_private=False)
    with pytest.raises(ResolutionFailed, match="Cannot resolve"):
        await check_target(url, allow_private=False, resolver=fail)


# --- commands: bad input, permissions, nothing saved ------------------------------------------


@pytest.fixture
async def world(database: Database, db_url: str) -> AsyncIterator[WebhookWorld]:
    async with webhook_world(database, db_url) as made:
        yield made


async def count(world: WebhookWorld, model: type) -> int:  # type: ignore[type-arg]
    async with world.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("webhook add", "Name the webhook"),
        ("webhook add ops", "Give the webhook's URL"),
        ("webhook add 'bad name' https://h/x", "cannot be a webhook name"),
        ("webhook add ops ftp://h/x", "is not a web address"),
        ("webhook add ops https://h/x --format slack", 'Unknown format "slack"'),
        ("webhook add ops https://h/x --events opened,nope", 'Unknown event "nope"'),
        ("webhook add ops https://h/x --colour red", 'Unknown option "--colour"'),
        ("webhook add ops https://h/x --events", "--events needs a value"),
        ("webhook add ops https://h/x extra", 'did not expect "extra"'),
        ("webhook add ops notakey --format pagerduty", "not a PagerDuty routing key"),
        ("webhook test nope", 'No webhook named "nope"; webhooks: none yet'),
        ("webhook remove nope", 'No webhook named "nope"'),
        ("webhook list ops", "takes no NAME"),
        ("webhook frobnicate", "ACTION must be one of add, list, test, remove, disable, enable"),
    ],
)
async def test_bad_input_is_refused_with_nothing_saved(
    world: WebhookWorld, line: str, message: str
) -> None:
    reply = said(await world.command(line))
    assert message in reply, reply
    assert await count(world, WebhookEndpoint) == 0


async def test_only_admins_manage_webhooks(world: WebhookWorld) -> None:
    reply = said(await world.command("webhook add ops https://h/x", by="carol"))
    assert "Only admins can do that." in reply
    assert "Only admins" in said(await world.command("webhook list", by="carol"))
    assert await count(world, WebhookEndpoint) == 0


async def test_private_target_refused_at_add_time(database: Database, db_url: str) -> None:
    async with webhook_world(database, db_url, allow_private=False) as world:
        for url, why in [
            ("https://127.0.0.1/x", "a loopback address"),
            ("https://localhost/x", "a loopback address"),
            ("https://[::1]/x", "a loopback address"),
            ("https://169.254.169.254/x", "a link-local address"),
            ("http://hooks.example.com/x", "must use https://"),
        ]:
            reply = said(await world.command(f"webhook add ops {url}"))
            assert why in reply and "allow_private_targets" in reply, reply
        assert await count(world, WebhookEndpoint) == 0


async def test_dns_that_changes_after_add_is_refused_at_send_time(
    database: Database, db_url: str
) -> None:
    answers = ["93.184.215.14"]

    async def dns(host: str, port: int) -> list[str]:
        return list(answers)

    async with webhook_world(database, db_url, allow_private=False, resolver=dns) as world:
        assert await world.add("ops", "https://hooks.example.com/syncup")
        answers[:] = ["127.0.0.1"]  # rebinding: the name now points inside
        await world.blocker()
        async with world.worker():
            (dead,) = await world.wait_dead(1)
        assert dead.error.startswith("PermanentDeliveryError: webhook 'ops': hooks.example.com")
        assert "127.0.0.1, a loopback address" in dead.error


async def test_discord_style_typed_options(world: WebhookWorld) -> None:
    async with WebhookReceiver() as hooks:
        reply = said(
            await world.options(
                action="add", name="ops", url=f"{hooks.base}/ops", options="--events resolved"
            )
        )
        assert "added" in reply and "events: resolved" in reply
        assert "whsec_" in reply


# --- secrets at rest ---------------------------------------------------------------------------


async def test_secrets_are_never_in_the_database_in_clear(world: WebhookWorld, db_url: str) -> None:
    async with WebhookReceiver() as hooks:
        secret = await world.add("ops", f"{hooks.base}/ops")
        routing_key = "R0123456789abcdef0123456789abcde"
        await world.add("pager", routing_key, "--format", "pagerduty")
    assert secret is not None
    async with world.db.transaction() as session:
        stored = {e.name: e.secret for e in await session.scalars(select(WebhookEndpoint))}
    assert SecretBox(KEY).open(stored["ops"]) == secret
    assert SecretBox(KEY).open(stored["pager"]) == routing_key
    for value in stored.values():
        assert "whsec_" not in value and routing_key not in value
    if world.db.dialect == "sqlite":
        path = key_file_path(db_url)
        assert path is not None
        raw = database_bytes(str(path).removesuffix(".key"))
        assert secret.encode() not in raw and routing_key.encode() not in raw
        assert secret.removeprefix("whsec_").encode() not in raw
        assert stored["ops"].encode() in raw  # the sealed form is what is there


def database_bytes(database: str) -> bytes:
    """The SQLite file and its WAL, as they are on disk."""
    files = [Path(database + suffix) for suffix in ("", "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_no_key_on_postgresql_is_refused_in_one_line(tmp_path: Path) -> None:
    pg = Settings.model_construct(database=DatabaseSection(url="postgresql+asyncpg://h/db"))
    with pytest.raises(KeyUnavailable) as caught:
        find_key(pg)
    assert str(caught.value) == NO_KEY and "\n" not in NO_KEY
    memory = Settings.model_construct(database=DatabaseSection(url="sqlite+aiosqlite://"))
    with pytest.raises(KeyUnavailable):
        find_key(memory)


def test_key_order_setting_then_slack_key_then_key_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
    other = "u0Qb2Zl6x2mJ8j3Ckq2O5bS1nJ7f1pV9mD4sW0rT6yE="
    slack = SlackSection.model_validate({"token_encryption_key": other})
    both = Settings.model_construct(
        database=DatabaseSection(url=url),
        security=SecuritySection.model_validate({"secret_key": KEY}),
        slack=slack,
    )
    assert find_key(both) == KEY
    assert find_key(Settings.model_construct(database=DatabaseSection(url=url), slack=slack)) == (
        other
    )
    plain = Settings.model_construct(database=DatabaseSection(url=url))
    made = find_key(plain)
    path = tmp_path / "syncup.db.key"
    assert path.read_text().strip() == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert find_key(plain) == made  # read back, not made again
    os.chmod(path, 0o644)
    assert find_key(plain) == made and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not a key\n")
    with pytest.raises(KeyUnavailable, match="is not a Fernet key file"):
        find_key(plain)
    assert [p.name for p in tmp_path.iterdir()] == ["syncup.db.key"]  # no temporary left


async def test_console_without_a_key_setting_uses_the_key_file(
    sqlite_database: Database, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"
    async with webhook_world(sqlite_database, url, key=None) as world:
        async with WebhookReceiver() as hooks:
            assert await world.add("ops", f"{hooks.base}/ops")
    assert (tmp_path / "syncup.db.key").exists()


async def test_a_changed_key_dead_letters_with_the_reason(database: Database, db_url: str) -> None:
    async with webhook_world(database, db_url) as world, WebhookReceiver() as hooks:
        await world.add("ops", f"{hooks.base}/ops")
        other = SecuritySection.model_validate(
            {"secret_key": "u0Qb2Zl6x2mJ8j3Ckq2O5bS1nJ7f1pV9mD4sW0rT6yE="}
        )
        world.settings.security = other
        world.keys._box = None  # as after a restart with the new key
        await world.blocker()
        async with world.worker():
            (dead,) = await world.wait_dead(1)
        assert "does not decrypt with the current key" in dead.error
        assert hooks.received == []


def test_logs_never_show_a_secret() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redactor())
    log = logging.getLogger("test.webhooks.redaction")
    log.addHandler(handler)
    try:
        log.warning("sent %s with %s", VECTOR_SECRET, '{"routing_key": "R0123456789abcdef0123"}')
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in out and "R0123456789abcdef0123" not in out


async def test_timeouts_are_retried(world: WebhookWorld) -> None:
    """A receiver that does not answer in time: a retry, then dead after max attempts."""

    class Slow(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Slow.calls += 1
            raise httpx.ReadTimeout("slow", request=request)

    from bot.webhooks import sender as sender_module

    async with WebhookReceiver() as hooks:
        await world.add("ops", f"{hooks.base}/ops")
    await world.blocker()
    original = sender_module.httpx.AsyncClient

    def client(**kwargs: object) -> httpx.AsyncClient:
        return original(**{**kwargs, "transport": Slow()})  # type: ignore[arg-type]

    sender_module.httpx.AsyncClient = client  # type: ignore[assignment,misc]
    try:
        async with world.worker(max_attempts=2):
            (dead,) = await world.wait_dead(1)
    finally:
        sender_module.httpx.AsyncClient = original  # type: ignore[misc]
    assert Slow.calls == 2
    assert dead.error == "DeliveryError: webhook 'ops': no answer within 10s"


async def test_the_timeline_listener_ignores_kinds_that_are_no_events(world: WebhookWorld) -> None:
    async with WebhookReceiver() as hooks:
        await world.add("ops", f"{hooks.base}/ops", "--events", "all")
    blocker = await world.blocker()
    for kind in (Kind.NOTED, Kind.SNOOZED, Kind.REPORTED_AGAIN, Kind.SEVERITY):
        await world.record(blocker, kind, {"note": "x"})
    assert [row.payload["event"]["type"] for row in await world.outbox()] == ["blocker.opened"]


def test_flags_in_any_order_and_lists_with_spaces() -> None:
    assert parse_flags("https://x", "--events opened, resolved --format=standard") == (
        "https://x",
        {"events": "opened,resolved", "format": "standard"},
    )
    assert parse_flags("--format", "pagerduty KEY") == ("KEY", {"format": "pagerduty"})
    assert parse_flags(None, None) == (None, {})
