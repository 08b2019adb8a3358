"""``syncup slack ...``: commands for setting the Slack app up."""

from __future__ import annotations

import click

from adapters.slack.manifest import manifest_json
from bot.config import ConfigError, load_settings


@click.group(help="Slack: the app manifest and setup helpers.")
def group() -> None:
    pass


@group.command("manifest")
@click.option(
    "--http-url",
    default=None,
    metavar="URL",
    help="Public base URL of syncup in HTTP mode (https://syncup.example.com); "
    "without it the manifest uses Socket Mode.",
)
@click.option("--config", "config_file", default=None, help="Config file (default: syncup.toml).")
@click.option("--name", default="syncup", show_default=True, help="The app's name in Slack.")
def manifest_command(http_url: str | None, config_file: str | None, name: str) -> None:
    """Print a Slack app manifest (JSON) to paste at api.slack.com/apps."""
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    url = http_url or (settings.slack.public_url or None)
    if url is not None and not url.startswith(("https://", "http://")):
        raise click.BadParameter(
            "use a full URL such as https://syncup.example.com", param_hint="--http-url"
        )
    click.echo(manifest_json(settings.slack, http_url=url, name=name))
