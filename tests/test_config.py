"""Configuration: file, environment overrides, one clear message for bad values, no secrets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.config import SECTIONS, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SYNCUP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_file() -> None:
    settings = load_settings()
    assert settings.database.url == "sqlite+aiosqlite:///./syncup.db"
    assert settings.database.auto_migrate is True
    assert settings.platform() == "console"


def test_example_file_documents_every_key_with_its_default() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    defaults = Settings.model_construct().model_dump()
    for section, model in SECTIONS.items():
        documented = set(example.get(section, {}))
        text = (ROOT / "config.example.toml").read_text()
        for key in model.model_fields:
            assert key in documented or f"# {key} = " in text, f"{section}.{key} undocumented"
            if (section, key) == ("web", "port"):  # 0 in tests (conftest); 8080 shipped
                assert example[section][key] == 8080
                continue
            if key in example.get(section, {}) and key != "rates":
                assert example[section][key] == defaults[section][key], f"{section}.{key}"
    assert load_settings(ROOT / "config.example.toml").platform() == "console"


def test_local_syncup_toml_and_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "syncup.toml").write_text('[database]\nurl = "sqlite:///file.db"\n')
    assert load_settings().database.url == "sqlite+aiosqlite:///file.db"
    monkeypatch.setenv("SYNCUP_DATABASE_URL", "postgresql://syncup@db/syncup")
    monkeypatch.setenv("SYNCUP_SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("SYNCUP_DELIVERY_MAX_ATTEMPTS", "3")
    settings = load_settings()
    assert settings.database.url == "postgresql+asyncpg://syncup@db/syncup"
    assert settings.slack.bot_token is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-from-env"
    assert settings.delivery.max_attempts == 3
    assert settings.platform() == "slack"


def test_syncup_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[bot]\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("SYNCUP_CONFIG", str(path))
    assert load_settings().bot.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[database]\nurl = "mysql://x/y"\n', "database.url"),
        ("[delivery]\nmax_attempts = 0\n", "delivery.max_attempts"),
        ('[slack]\nbot_tokne = "x"\n', 'Did you mean "bot_token"?'),
        ('[bot]\nplatform = "mattermost"\n', "bot.platform"),
        ("[nonsense]\nx = 1\n", "Unknown key nonsense"),
        ("[database\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)


def test_missing_explicit_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("nope.toml")


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[slack]\nbot_token = "xoxb-super-secret"\nmode = "carrier-pigeon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "slack.mode" in str(info.value)
    assert "xoxb-super-secret" not in str(info.value)
    assert "carrier-pigeon" not in str(info.value)


def test_config_check_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["config", "check"])
    assert ok.exit_code == 0, ok.output
    assert "Configuration is valid. Platform: console" in ok.output

    monkeypatch.setenv("SYNCUP_DATABASE_URL", "postgresql://user:hunter2@db/x")
    shown = runner.invoke(cli, ["config", "check"])
    assert shown.exit_code == 0
    assert "hunter2" not in shown.output

    bad = tmp_path / "bad.toml"
    bad.write_text('[slack]\nbot_token = "xoxb-secret-value"\n[delivery]\nbatch_size = -1\n')
    result = runner.invoke(cli, ["--config", str(bad), "config", "check"])
    assert result.exit_code == 2
    assert "delivery.batch_size" in result.output
    assert "xoxb-secret-value" not in result.output


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nauto_migrate = 'perhaps'\n")
    result = CliRunner().invoke(cli, ["--config", str(bad), "run"])
    assert result.exit_code == 2
    assert "database.auto_migrate" in result.output


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"SYNCUP_CONSOLE_START": "yesterday"}, "console.start"),
        ({"SYNCUP_CONSOLE_MEMBER": "zed"}, "console.member"),
        ({"SYNCUP_BOT_PLATFORM": "discord"}, "SYNCUP_DISCORD_TOKEN"),
        (
            {"SYNCUP_SLACK_BOT_TOKEN": "xoxb-secret-value", "SYNCUP_SLACK_MODE": "socket"},
            "app_token",
        ),
        (
            {
                "SYNCUP_BOT_PLATFORM": "slack",
                "SYNCUP_SLACK_CLIENT_ID": "1.2",
                "SYNCUP_SLACK_CLIENT_SECRET": "s",
                "SYNCUP_SLACK_SIGNING_SECRET": "s",
                "SYNCUP_SLACK_MODE": "http",
                "SYNCUP_SLACK_TOKEN_ENCRYPTION_KEY": "not-a-fernet-key",
            },
            "token_encryption_key",
        ),
    ],
)
def test_config_check_refuses_what_run_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], key: str
) -> None:
    """`config check` makes every check `run` makes, adapters' own included, and both say the
    same one line with exit code 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCUP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    checked = runner.invoke(cli, ["config", "check"])
    ran = runner.invoke(cli, ["run"], input="")
    for result in (checked, ran):
        assert result.exit_code == 2, result.output
        assert key in result.stderr
        assert "Traceback" not in result.output
        assert "xoxb-secret-value" not in result.output
    assert checked.stderr == ran.stderr
    assert not (tmp_path / "c.db").exists()  # neither touched the database
