"""Only commands that have a feature are offered: in the Slack manifest, in the Discord command
list and in ``/syncup help`` (``/milestone`` comes back with its feature); and the README's
``/syncup help`` sample is the real output."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.console import ConsoleAdapter
from adapters.discord.commands import commands_payload
from adapters.slack.manifest import feature_specs, manifest
from bot.app import App
from bot.cli import cli
from bot.config import (
    DEFAULT_SLACK_COMMANDS,
    ConsoleSection,
    DatabaseSection,
    Settings,
    SlackSection,
)

ROOT = Path(__file__).resolve().parent.parent
NOT_YET: set[str] = set()
START = "2026-03-09T12:00:00+00:00"


def console_app(tmp_path: Path, lines: list[str]) -> tuple[App, io.StringIO]:
    settings = Settings.model_construct(
        database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
        console=ConsoleSection(member="alice", start=START, charts_dir=str(tmp_path / "charts")),
    )
    out = io.StringIO()
    return App(settings, ConsoleAdapter(settings, lines=lines, out=out)), out


@pytest.fixture
def features(tmp_path: Path) -> set[str]:
    """The commands the core registers: one per feature that exists."""
    app, _ = console_app(tmp_path, [])
    names = set(app.core.specs)
    asyncio.run(app.db.dispose())
    return names


def test_the_commands_with_a_feature_are_the_ones_the_core_registers(features: set[str]) -> None:
    assert features == {
        "standup",
        "poll",
        "pulse",
        "raci",
        "blocker",
        "kudos",
        "syncup",
        "milestone",
        "digest",
    }
    assert set(feature_specs()) == features
    assert set(DEFAULT_SLACK_COMMANDS) == features


def test_the_slack_manifest_offers_only_commands_with_a_feature(
    features: set[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = manifest(SlackSection())
    assert {c["command"] for c in default["features"]["slash_commands"]} == {
        f"/{n}" for n in features
    }
    # An older config that still names them: harmless, left out.
    older = SlackSection(commands={**DEFAULT_SLACK_COMMANDS, **{n: f"/{n}" for n in NOT_YET}})
    commands = manifest(older)["features"]["slash_commands"]
    assert {c["command"] for c in commands} == {f"/{n}" for n in features}
    assert all(c["description"] == feature_specs()[c["command"][1:]].description for c in commands)
    assert not re.search(r"blocker|milestone", default["display_information"]["description"])
    assert "kudos" in default["display_information"]["description"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)
    printed = CliRunner().invoke(cli, ["slack", "manifest"])
    assert printed.exit_code == 0, printed.output
    assert not any(f'"/{n}"' in printed.output for n in NOT_YET)
    for name in features:  # all of them, with their own descriptions
        assert f'"/{name}"' in printed.output
        assert feature_specs()[name].description in printed.output


def test_discord_registers_only_commands_with_a_feature(features: set[str], tmp_path: Path) -> None:
    app, _ = console_app(tmp_path, [])
    payload = commands_payload(app.core.specs.values())
    asyncio.run(app.db.dispose())
    assert {c["name"] for c in payload} == features


async def test_help_lists_only_commands_with_a_feature_as_the_readme_shows(
    features: set[str], tmp_path: Path
) -> None:
    app, out = console_app(tmp_path, ["/syncup help"])
    assert await app.run() == 0
    shown = out.getvalue()
    listed = set(re.findall(r"^\s*/(\w+): ", shown, re.MULTILINE))
    assert listed == features
    assert not any(f"/{n}" in shown for n in NOT_YET)
    # The README's sample is this output (lines compared without their indentation).
    readme = (ROOT / "README.md").read_text()
    sample = readme.split("$ printf '/syncup help\\n", 1)[1].split("```", 1)[0]
    block = sample.split("syncup commands\n", 1)[1].split("Details of one:", 1)[0]
    real = shown.split("syncup commands\n", 1)[1].split("Details of one:", 1)[0]
    assert [line.strip() for line in block.splitlines()] == [
        line.strip() for line in real.splitlines()
    ]
