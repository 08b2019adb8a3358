"""Settings: a TOML file plus ``SYNCUP_*`` environment overrides for every key.

The file is ``--config PATH``, else ``$SYNCUP_CONFIG``, else ``./syncup.toml`` when it exists.
Environment variables win over the file: ``SYNCUP_DATABASE_URL`` sets ``[database] url``,
``SYNCUP_SLACK_BOT_TOKEN`` sets ``[slack] bot_token`` (the first ``_`` after the section name
separates section and key).
"""

from __future__ import annotations

import base64
import difflib
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./syncup.db"


def is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        return False


def fernet_key_setting(value: SecretStr | None) -> SecretStr | None:
    """A validator's check of a Fernet key setting."""
    if value is not None and not is_fernet_key(value.get_secret_value()):
        raise ValueError(
            "not a Fernet key (44 characters of url-safe base64 encoding 32 bytes); make "
            'one with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())", or put back the key the stored '
            "secrets were encrypted with"
        )
    return value


class ConfigError(Exception):
    """Invalid configuration: one message that names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class BotSection(_Section):
    platform: Literal["auto", "console", "slack", "discord", "teams"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "json": one JSON object per line (time, level, logger, message, ids) for a log shipper.
    log_format: Literal["text", "json"] = "text"
    # Third-party loggers to show at log_level although they print payloads (slack_sdk,
    # slack_bolt, discord, ...: see bot.logs); tokens and secrets are still redacted.
    debug_loggers: list[str] = Field(default_factory=list)
    instance_name: str = ""
    # Benchmarks only (benchmarks/scale_day.py): a file holding how many seconds this
    # process's clock runs ahead of real time, re-read when it changes (bot.clock.OffsetFileClock).
    clock_offset_file: str = ""

    @field_validator("debug_loggers")
    @classmethod
    def _not_sealed(cls, value: list[str]) -> list[str]:
        for name in value:
            if name == "aiosqlite" or name.split(".")[0] in ("aiosqlite", "sqlalchemy"):
                raise ValueError(
                    f"{name!r} prints SQL parameters (ballots, secrets) and cannot be opened up; "
                    "use [database] echo = true to see statements"
                )
        return value


class DatabaseSection(_Section):
    url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool = True
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        for legacy in ("postgres://", "postgresql://"):
            if value.startswith(legacy):
                return "postgresql+asyncpg://" + value[len(legacy) :]
        if value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            return value
        if value.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + value[len("sqlite://") :]
        raise ValueError(
            "use sqlite+aiosqlite:///path/to/syncup.db or postgresql+asyncpg://user@host/db"
        )


class SchedulerSection(_Section):
    reconcile_interval_seconds: float = Field(60.0, gt=0)
    default_grace_minutes: int = Field(60, ge=0)


class RateSetting(_Section):
    rate: float = Field(gt=0, description="tokens per second")
    burst: int = Field(ge=1)


class DeliverySection(_Section):
    max_attempts: int = Field(8, ge=1, le=100)
    batch_size: int = Field(50, ge=1, le=1000)
    poll_interval_seconds: float = Field(1.0, gt=0)
    lease_seconds: float = Field(10.0, gt=0)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(600.0, gt=0)
    # Sends of one (workspace, method) bucket in flight at once, each to a different target
    # (channel, DM recipient); 1 sends them strictly one after another.
    max_in_flight_per_bucket: int = Field(8, ge=1, le=100)
    # Learn each bucket's rate from the platform's answers (docs/operations.md, "Pacing");
    # [delivery.rates] is then the ceiling.
    adaptive_rates: bool = True
    rates: dict[str, RateSetting] = Field(default_factory=dict)


class HttpSection(_Section):
    """Limits of the HTTP server (Slack's HTTP mode, OAuth installs, health checks)."""

    # Larger request bodies get 413 before they are read (Slack's own payloads are far smaller).
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # A client must send a request's headers within this time, then its body within the next.
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(20.0, gt=0)
    # Connections open at once; more are closed at once (the reverse proxy in front queues).
    max_connections: int = Field(200, ge=1)
    # OAuth installs started (GET /slack/install) per client address within the state's
    # lifetime (10 minutes); more get 429.
    installs_per_client: int = Field(20, ge=1)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (the client
    # address above, the scheme); "*" trusts any, which is only safe when nothing else can
    # reach the port.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])


class WebSection(_Section):
    """The one HTTP server (bot.web): health checks, inbound webhooks, Slack's HTTP mode."""

    # Off: no server at all (Slack's HTTP mode then refuses to start).
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # How the outside world reaches the server (https://syncup.example.com): the base of the
    # webhook URLs /milestone hook add prints. Empty: http://host:port.
    public_url: str = ""
    # Inbound webhook deliveries each hook accepts per minute; more get 429 with Retry-After.
    hook_rate_per_minute: int = Field(120, ge=1)
    # Set: /metrics answers only "Authorization: Bearer <token>" (Prometheus' authorization
    # credentials). Empty: /metrics is open; keep it off the public side of a proxy.
    metrics_token: SecretStr | None = None


class DashboardSection(_Section):
    """The web dashboard (bot.web.dashboard, docs/dashboard.md) under ``/`` of [web]."""

    enabled: bool = True
    # A signed-in session lasts this long (the cookie's lifetime and its signature's age).
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    # `syncup web login-link` links work once, within this many minutes.
    login_link_minutes: int = Field(15, ge=1, le=24 * 60)
    # Sign-in attempts (a login link, an OAuth callback) allowed per client address, and per
    # account, within ten minutes; more get 429.
    login_attempts_per_ip: int = Field(20, ge=1)
    login_attempts_per_account: int = Field(5, ge=1)
    # "Sign in with Slack" (OpenID Connect); the client id and secret default to [slack]'s.
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    # Slack's authorize page; the token and userInfo calls go to [slack] api_base_url.
    slack_authorize_url: str = "https://slack.com/openid/connect/authorize"
    # Discord OAuth2 (scope identify); the client id defaults to [discord] application_id.
    # The token and /users/@me calls go to [discord] api_base_url.
    discord_client_id: str | None = None
    discord_client_secret: SecretStr | None = None
    discord_authorize_url: str = "https://discord.com/oauth2/authorize"


class HousekeepingSection(_Section):
    retention_days: int = Field(30, ge=1)


# One per feature that exists (/milestone has its webhook hooks now; the milestones themselves
# extend it).
# A name without a feature in [slack] commands is harmless: left out of the manifest, and
# answered "syncup does not handle /x yet".
DEFAULT_SLACK_COMMANDS = {
    "standup": "/standup",
    "poll": "/poll",
    "pulse": "/pulse",
    "blocker": "/blocker",
    "raci": "/raci",
    "kudos": "/kudos",
    "syncup": "/syncup",
    "milestone": "/milestone",
    "digest": "/digest",
}


class SlackSection(_Section):
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    mode: Literal["socket", "http"] = "socket"
    api_base_url: str = "https://slack.com/api/"
    # Multi-workspace OAuth install (HTTP mode); without client_id, bot_token is used.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # Fernet key (urlsafe base64, 32 bytes) that encrypts stored tokens; required for OAuth.
    token_encryption_key: SecretStr | None = None
    token_rotation: bool = False
    # Older names of [web] host and port: when set, they win (prefer [web]).
    http_host: str = "0.0.0.0"
    http_port: int = Field(3000, ge=0, le=65535)
    # The public base URL Slack reaches (https://syncup.example.com), for the manifest.
    public_url: str = ""
    install_path: str = "/slack/install"
    redirect_path: str = "/slack/oauth_redirect"
    # Core command name -> slash command as registered in Slack.
    commands: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SLACK_COMMANDS))
    # After an uninstall, a workspace's data is deleted once this many days have passed.
    uninstall_grace_days: int = Field(7, ge=0, le=14)
    # How long a member's Slack profile (name, tz) is cached (seconds).
    profile_cache_seconds: float = Field(3600.0, ge=0)

    @field_validator("token_encryption_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        return fernet_key_setting(value)


class DiscordSection(_Section):
    token: SecretStr | None = None
    application_id: str | None = None
    api_base_url: str = "https://discord.com/api/v10"
    # Gateway sharding: total shards across every process, and the ones this process runs
    # (all of them when empty). DMs arrive on shard 0 only.
    shard_count: int | None = Field(None, ge=1)
    shard_ids: list[int] = Field(default_factory=list)
    # The privileged GUILD_MEMBERS intent: only needed for "#channel" (everyone in it) as
    # standup participants. Enable it in the Developer Portal first.
    members_intent: bool = False
    # `syncup discord sync-commands` registers commands in this guild (instant, for
    # development) instead of globally.
    guild_id: str | None = None

    @field_validator("shard_ids")
    @classmethod
    def _valid_shard_ids(cls, value: list[int]) -> list[int]:
        if any(shard < 0 for shard in value):
            raise ValueError("shard ids start at 0")
        return sorted(set(value))


class TeamsSection(_Section):
    """Microsoft Teams (adapters.teams, docs/teams.md): the Azure Bot's app registration."""

    app_id: str | None = None  # the Microsoft App ID (client id) of the Azure Bot
    app_password: SecretStr | None = None  # its client secret
    # The app registration's tenant for a single-tenant bot; unset for a multi-tenant one.
    tenant_id: str | None = None
    # Activities from other tenants are refused (401) when this is not empty.
    allowed_tenants: list[str] = Field(default_factory=list)
    # Where the connector is reached before any activity names one (proactive sends).
    service_url: str = "https://smba.trafficmanager.net/teams"
    # The Bot Framework's token endpoints; change only for a sovereign cloud (or a test).
    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    token_issuer: str = "https://api.botframework.com"
    login_endpoint: str = "https://login.microsoftonline.com"
    bot_name: str = "syncup"


class SecuritySection(_Section):
    # Fernet key that encrypts the secrets syncup keeps in its database (webhook secrets,
    # PagerDuty routing keys). Unset: [slack] token_encryption_key when set, else (SQLite) a key
    # file next to the database, made on first use; PostgreSQL needs one of the two settings.
    secret_key: SecretStr | None = None

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        return fernet_key_setting(value)


DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class WebhooksSection(_Section):
    """Outbound webhooks (bot.webhooks, docs/webhooks.md)."""

    # Let webhooks reach private, loopback and link-local addresses (and plain http): for a
    # receiver inside your own network, and for tests. Off, such URLs are refused.
    allow_private_targets: bool = False
    pagerduty_events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL
    # A receiver must answer within this many seconds, else the attempt is retried.
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class ConsoleSection(_Section):
    member: str = "alice"
    start: str = ""
    # Where the console writes the PNG of each chart it shows (created on first use).
    charts_dir: str = "./syncup-charts"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYNCUP_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        hide_input_in_errors=True,
        case_sensitive=False,
    )

    bot: BotSection = Field(default_factory=BotSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    housekeeping: HousekeepingSection = Field(default_factory=HousekeepingSection)
    http: HttpSection = Field(default_factory=HttpSection)
    web: WebSection = Field(default_factory=WebSection)
    dashboard: DashboardSection = Field(default_factory=DashboardSection)
    slack: SlackSection = Field(default_factory=SlackSection)
    discord: DiscordSection = Field(default_factory=DiscordSection)
    teams: TeamsSection = Field(default_factory=TeamsSection)
    security: SecuritySection = Field(default_factory=SecuritySection)
    webhooks: WebhooksSection = Field(default_factory=WebhooksSection)
    console: ConsoleSection = Field(default_factory=ConsoleSection)

    toml_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    def platform(self) -> str:
        """The platform to run: explicit, or the first one with a token, else the console."""
        if self.bot.platform != "auto":
            return self.bot.platform
        if self.slack.bot_token is not None:
            return "slack"
        if self.discord.token is not None:
            return "discord"
        if self.teams.app_id is not None:
            return "teams"
        return "console"


SECTIONS: dict[str, type[BaseModel]] = {
    name: field.default_factory  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("SYNCUP_CONFIG")
    if from_env:
        return Path(from_env)
    local = Path("syncup.toml")
    return local if local.exists() else None


def load_settings(config_file: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate; raise :class:`ConfigError` naming the key and the fix."""
    path = find_config_file(config_file)
    if path is not None and not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Fix the path, or leave it out.")

    class _Loaded(Settings):
        toml_path = path

    try:
        loaded = _Loaded()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except ValueError as exc:  # malformed TOML
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None
    return Settings.model_construct(**{k: getattr(loaded, k) for k in Settings.model_fields})


def _describe(exc: ValidationError, path: Path | None) -> str:
    """One line per problem: key, what is wrong, and how to fix it; never the value."""
    where = f" in {path}" if path else ""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        env = "SYNCUP_" + "_".join(loc[:2]).upper()
        if error["type"] == "extra_forbidden":
            lines.append(f"Unknown key {key}{where}. {_unknown_key_hint(loc)}")
            continue
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"Invalid {key}{where} (or ${env}): {message}.")
    return "Invalid configuration: " + " ".join(lines) + " See config.example.toml."


def _unknown_key_hint(loc: list[str]) -> str:
    if len(loc) == 1:
        known = list(SECTIONS)
        what = "sections"
    else:
        section = SECTIONS.get(loc[0])
        known = list(section.model_fields) if section else []
        what = f"keys of [{loc[0]}]"
    close = difflib.get_close_matches(loc[-1], known, n=1)
    if close:
        return f'Did you mean "{close[0]}"?'
    return f"Known {what}: {', '.join(known)}."


def adapter_module(settings: Settings) -> ModuleType:
    """The package of the platform to run (``adapters.<platform>``), imported by name so that
    nothing under ``bot/`` imports a platform SDK; a :class:`ConfigError` when this build lacks
    it."""
    platform = settings.platform()
    try:
        return importlib.import_module(f"adapters.{platform}")
    except ModuleNotFoundError as exc:
        if exc.name != f"adapters.{platform}":
            raise
        raise ConfigError(
            f"[bot] platform = {platform!r}: this build of syncup has no {platform} adapter yet. "
            'Use platform = "console", or remove the platform tokens.'
        ) from None


def check_platform(settings: Settings) -> None:
    """Every check ``syncup run`` makes of the settings before it starts, without starting
    anything: each adapter package exports ``check_config(settings)`` for its own keys."""
    check = getattr(adapter_module(settings), "check_config", None)
    if check is not None:
        check(settings)


def redact(settings: Settings) -> dict[str, Any]:
    """The settings as a dict, secrets shown as set/unset only."""
    return settings.model_dump(mode="json")


def web_address(settings: Settings) -> tuple[str, int]:
    """Where the HTTP server listens: ``[web] host, port``, unless the older ``[slack]
    http_host, http_port`` are set (they were the HTTP mode's own server before [web])."""
    host, port = settings.web.host, settings.web.port
    given = settings.slack.model_fields_set
    if "http_host" in given:
        host = settings.slack.http_host
    if "http_port" in given:
        port = settings.slack.http_port
    return host, port


def public_base_url(settings: Settings, port: int | None = None) -> str:
    """The base of the URLs given out (webhook URLs): ``[web] public_url``, else the address
    the server listens on."""
    if settings.web.public_url:
        return settings.web.public_url.rstrip("/")
    host, configured = web_address(settings)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port or configured}"
