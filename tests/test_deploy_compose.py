"""deploy/compose.yaml, deploy/Caddyfile and deploy/env.example agree with each other and with
syncup: every syncup service's configuration passes `syncup config check`, the migrate service's
command upgrades a real PostgreSQL database, and Caddy balances over exactly the replicas, on
their port, checking /readyz. (Docker itself is not run here: the images come from Docker Hub.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from bot.cli import cli
from migrations import versions
from tests.cli_env import without_syncup_env
from tests.conftest import drop_pg_database, fresh_pg_database, pg_base_url

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
IMAGE = "syncup:local"
REQUIRED = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def filled_in() -> dict[str, str]:
    """deploy/.env as an operator fills it in."""
    values = env_example()
    values.update(
        POSTGRES_PASSWORD="s3cret",
        SYNCUP_SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5",
        SYNCUP_SLACK_BOT_TOKEN="xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        SYNCUP_SECURITY_SECRET_KEY=Fernet.generate_key().decode(),
    )
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    return REQUIRED.sub(lambda m: env[m.group(1)], value)


def syncup_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("image") == IMAGE}


def replicas() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in syncup_services().items() if s["command"] == ["run"]}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container sees: the env_file, then the service's environment over it."""
    dotenv = filled_in()
    assert service["env_file"] == ".env"
    env = dict(dotenv)
    env.update({k: interpolate(str(v), dotenv) for k, v in service["environment"].items()})
    return env


def test_env_example_names_every_variable_compose_requires() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    needed = {m.group(1) for m in REQUIRED.finditer(text)}
    assert needed <= set(env_example()), needed - set(env_example())


def test_every_syncup_service_passes_config_check(monkeypatch: pytest.MonkeyPatch) -> None:
    without_syncup_env(monkeypatch)
    services = syncup_services()
    assert set(services) == {"migrate", "syncup-1", "syncup-2"}
    for name, service in services.items():
        env = environment(service)
        result = CliRunner().invoke(cli, ["config", "check"], env=env)
        assert result.exit_code == 0, (name, result.output)
        assert "Configuration is valid. Platform: slack." in result.output
        assert service["command"][0] in cli.commands  # type: ignore[attr-defined]
        # Only the migrate service changes the schema.
        assert env["SYNCUP_DATABASE_AUTO_MIGRATE"] == "false"
        assert env["SYNCUP_SLACK_MODE"] == "http"


def test_replicas_have_their_own_names_and_wait_for_the_migration() -> None:
    found = replicas()
    assert len(found) >= 2
    names = [environment(s)["SYNCUP_BOT_INSTANCE_NAME"] for s in found.values()]
    assert sorted(names) == sorted(found)  # each named after its service, so none alike
    for service in found.values():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    migrate = compose()["services"]["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"


async def test_the_migrate_service_upgrades_an_empty_postgresql_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = pg_base_url()
    if base is None:
        pytest.skip("PostgreSQL tests need SYNCUP_TEST_DATABASE_URL")
    url = await fresh_pg_database(base)
    try:
        without_syncup_env(monkeypatch)
        env = environment(compose()["services"]["migrate"])
        deployed = make_url(env["SYNCUP_DATABASE_URL"])
        assert deployed.drivername == "postgresql+asyncpg" and deployed.host == "db"
        env["SYNCUP_DATABASE_URL"] = url  # this machine's server in place of the db service
        runner = CliRunner()
        # The CLI runs its own event loop: on a thread of its own, as in a container.
        upgraded = await asyncio.to_thread(runner.invoke, cli, ["db", "upgrade"], env=env)
        assert upgraded.exit_code == 0, upgraded.output
        current = await asyncio.to_thread(runner.invoke, cli, ["db", "current"], env=env)
        assert current.exit_code == 0, current.output
        head = max(p.stem.split("_")[0] for p in Path(versions.__file__).parent.glob("0*.py"))
        assert head in current.output
    finally:
        await drop_pg_database(base, url)


def caddy_block() -> str:
    text = (DEPLOY / "Caddyfile").read_text()
    return "\n".join(line.split("#", 1)[0].rstrip() for line in text.splitlines())


def test_caddy_balances_over_every_replica_and_checks_readyz() -> None:
    text = caddy_block()
    (upstreams,) = re.findall(r"^\s*to (.+)$", text, re.M)
    found = replicas()
    ports = {environment(s)["SYNCUP_WEB_PORT"] for s in found.values()}
    (port,) = ports
    assert set(upstreams.split()) == {f"{name}:{port}" for name in found}
    assert re.search(r"^\s*health_uri /readyz$", text, re.M)
    assert re.search(r"^\s*lb_policy round_robin$", text, re.M)
    # The container's own health check asks the same port the same question.
    for service in found.values():
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in probe
    # Probes and metrics are not published through the proxy.
    (internal,) = re.findall(r"^\s*@internal path (.+)$", text, re.M)
    assert {"/healthz", "/readyz", "/metrics"} <= set(internal.split())


def test_only_caddy_is_a_trusted_proxy() -> None:
    services = compose()
    caddy = services["services"]["caddy"]["networks"]["syncup"]["ipv4_address"]
    (subnet,) = [c["subnet"] for c in services["networks"]["syncup"]["ipam"]["config"]]
    assert ipaddress.ip_address(caddy) in ipaddress.ip_network(subnet)
    for service in replicas().values():
        assert environment(service)["SYNCUP_HTTP_TRUSTED_PROXIES"] == f'["{caddy}"]'
    # Nothing but Caddy publishes a port.
    published = [name for name, s in services["services"].items() if s.get("ports")]
    assert published == ["caddy"]


# Migrations from this one on keep the previous release running on the new schema (a rolling
# upgrade runs the old replicas on it until each is replaced): they add, never drop or change
# what a query of the previous release names. (An index may go: queries still work without it.)
ADDITIVE_FROM = "0019"
NOT_ADDITIVE = re.compile(
    r"\b(drop_table|drop_column|drop_constraint|alter_column|rename_table|batch_alter_table)\("
)


def test_migrations_since_rolling_upgrades_only_add() -> None:
    folder = Path(versions.__file__).parent
    checked = 0
    for path in sorted(folder.glob("0*.py")):
        if path.stem.split("_")[0] < ADDITIVE_FROM:
            continue
        source = path.read_text()
        upgrade = source[source.index("def upgrade") : source.index("def downgrade")]
        assert not NOT_ADDITIVE.findall(upgrade), (
            f"{path.name}: a rolling upgrade runs the previous release on this schema; add "
            "tables, nullable columns and indexes, and drop or change things a release later"
        )
        checked += 1
    assert checked >= 1
