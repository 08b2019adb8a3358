"""``syncup teams ...``: setting the Teams app up."""

from __future__ import annotations

from pathlib import Path

import click

from bot.config import ConfigError, load_settings


@click.group(help="Microsoft Teams: the app package and setup helpers.")
def group() -> None:
    pass


@group.command("manifest")
@click.option(
    "--out",
    "out",
    default="syncup-teams.zip",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the app package (a zip: manifest.json and two icons).",
)
@click.option("--config", "config_file", default=None, help="Config file (default: syncup.toml).")
@click.option("--version", "version", default="1.0.0", show_default=True, help="App version.")
@click.option("--developer", default="syncup", show_default=True, help="Who publishes it.")
@click.option(
    "--website",
    default="https://github.com/syncup-bot/syncup",
    show_default=True,
    help="The developer's website (also used as the privacy and terms URLs; use https).",
)
def manifest_command(
    out: str, config_file: str | None, version: str, developer: str, website: str
) -> None:
    """Write the Teams app package to upload in Teams (Apps, Manage your apps, Upload)."""
    from adapters.teams.manifest import feature_specs, manifest, package

    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.teams.app_id:
        raise click.ClickException(
            "[teams] app_id is not set: set it (or SYNCUP_TEAMS_APP_ID) to the Azure Bot's "
            "Microsoft App ID first. See docs/teams.md."
        )
    if not website.startswith("https://"):
        raise click.BadParameter("Teams needs an https:// URL", param_hint="--website")
    data = manifest(
        settings.teams, feature_specs(), version=version, developer=developer, website=website
    )
    Path(out).write_bytes(package(data))
    click.echo(f"Wrote {out}: upload it in Teams (Apps, Manage your apps, Upload an app).")
