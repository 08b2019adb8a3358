"""``syncup teams manifest``: the app package Teams takes (manifest.json and two icons in a zip),
its command suggestions from the same specs as help; and the [teams] checks of ``syncup run``."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from adapters.teams import check_config
from adapters.teams.manifest import (
    DESCRIPTION_LIMIT,
    MAX_COMMANDS,
    TITLE_LIMIT,
    feature_specs,
)
from bot.cli import cli
from bot.config import ConfigError, Settings, TeamsSection
from tests.cli_env import without_syncup_env

APP_ID = "00000000-0000-4000-8000-0000000a5e11"


def test_the_package_has_the_manifest_the_icons_and_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_syncup_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCUP_TEAMS_APP_ID", APP_ID)
    result = CliRunner().invoke(cli, ["teams", "manifest", "--out", "app.zip"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        data = json.loads(archive.read("manifest.json"))
        color = Image.open(io.BytesIO(archive.read("color.png")))
        outline = Image.open(io.BytesIO(archive.read("outline.png")))
    assert color.size == (192, 192) and outline.size == (32, 32)
    # The outline icon is white on transparent, as Teams asks.
    assert {p[:3] for p in outline.convert("RGBA").getdata() if p[3]} == {(255, 255, 255)}
    assert data["id"] == APP_ID and data["icons"] == {
        "color": "color.png",
        "outline": "outline.png",
    }
    (bot,) = data["bots"]
    assert bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    (commands,) = bot["commandLists"]
    titles = [c["title"] for c in commands["commands"]]
    names = {spec.name for spec in feature_specs()} - {"syncup"}
    assert set(titles) == names | {"help"}
    assert len(titles) <= MAX_COMMANDS
    for command in commands["commands"]:
        assert len(command["title"]) <= TITLE_LIMIT
        assert 0 < len(command["description"]) <= DESCRIPTION_LIMIT


def test_the_package_needs_the_app_id_and_an_https_website(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_syncup_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["teams", "manifest", "--out", "app.zip"])
    assert result.exit_code != 0 and "[teams] app_id is not set" in result.output
    monkeypatch.setenv("SYNCUP_TEAMS_APP_ID", APP_ID)
    result = CliRunner().invoke(cli, ["teams", "manifest", "--website", "http://x.example"])
    assert result.exit_code != 0 and "https://" in result.output
    assert not (tmp_path / "app.zip").exists()


def test_run_refuses_teams_without_the_app_id_or_secret() -> None:
    with pytest.raises(ConfigError, match=r"\[teams\] app_id is not set"):
        check_config(Settings(teams=TeamsSection()))
    with pytest.raises(ConfigError, match=r"\[teams\] app_password is not set"):
        check_config(Settings(teams=TeamsSection(app_id=APP_ID)))
    check_config(Settings(teams=TeamsSection(app_id=APP_ID, app_password="s3cret")))
    # With an app id, "auto" picks Teams.
    assert Settings(teams=TeamsSection(app_id=APP_ID)).platform() == "teams"
