"""``syncup discord ...``: register the application commands, print the invite link.

Commands are registered here, on purpose, and never when the bot connects: ``on_ready`` runs on
every reconnect, and a bulk overwrite each time would spend Discord's 200 command creates a day
per guild for nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import click

from bot.config import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
SCOPES = ("bot", "applications.commands")
# What syncup needs in a channel: see it, post, embed, attach files (the PNG charts of poll and
# pulse results go with their message: without it Discord refuses the whole message), read
# history (to edit its reports), and start and post in the threads that hold a standup's answers.
PERMISSIONS = {
    "View Channels": 1 << 10,
    "Send Messages": 1 << 11,
    "Embed Links": 1 << 14,
    "Attach Files": 1 << 15,
    "Read Message History": 1 << 16,
    "Create Public Threads": 1 << 35,
    "Send Messages in Threads": 1 << 38,
}
PERMISSIONS_INTEGER = sum(PERMISSIONS.values())


def _settings(ctx: click.Context) -> Settings:
    config = (ctx.find_root().obj or {}).get("config")
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    if settings.discord.token is None:
        click.echo(
            "syncup: [discord] token is not set: set SYNCUP_DISCORD_TOKEN (see docs/discord.md).",
            err=True,
        )
        ctx.exit(EXIT_CONFIG)
    return settings


def invite_url(application_id: str) -> str:
    query = urlencode(
        {
            "client_id": application_id,
            "permissions": str(PERMISSIONS_INTEGER),
            "scope": " ".join(SCOPES),
            "integration_type": "0",
        }
    )
    return f"https://discord.com/oauth2/authorize?{query}"


async def _application_id(settings: Settings) -> str:
    if settings.discord.application_id:
        return settings.discord.application_id
    from adapters.discord.rest import DiscordRest

    token = settings.discord.token.get_secret_value() if settings.discord.token else ""
    rest = DiscordRest(settings.discord.api_base_url, token)
    try:
        app: dict[str, Any] = await rest.request("GET", "/oauth2/applications/@me")
    finally:
        await rest.close()
    return str(app["id"])


async def sync(settings: Settings, guild_id: str | None) -> list[dict[str, Any]]:
    """Register every command the core declares (global, or in one guild); returns them."""
    from adapters.discord.adapter import DiscordAdapter
    from adapters.discord.commands import commands_payload
    from adapters.discord.rest import DiscordRest
    from bot.app import App

    app = App(settings, DiscordAdapter(settings.discord))
    try:
        payload = commands_payload(app.core.specs.values(), app.core.shortcuts.values())
    finally:
        await app.db.dispose()
    application_id = await _application_id(settings)
    token = settings.discord.token.get_secret_value() if settings.discord.token else ""
    rest = DiscordRest(settings.discord.api_base_url, token)
    path = f"/applications/{application_id}/commands"
    if guild_id:
        path = f"/applications/{application_id}/guilds/{guild_id}/commands"
    try:
        registered: list[dict[str, Any]] = await rest.request("PUT", path, json_body=payload)
    finally:
        await rest.close()
    return registered


@click.group(name="discord")
def group() -> None:
    """Discord: register slash commands, print the invite link."""


@group.command("sync-commands")
@click.option(
    "--guild",
    "guild",
    help="Register in this guild only (instant; for development). Default: [discord] guild_id, "
    "else globally (may take up to an hour to show everywhere).",
)
@click.option("--print", "print_only", is_flag=True, help="Print the commands; register nothing.")
@click.pass_context
def sync_commands(ctx: click.Context, guild: str | None, print_only: bool) -> None:
    """Register syncup's slash and context-menu commands with Discord (run after an upgrade,
    not on every start)."""
    settings = _settings(ctx)
    if print_only:
        from adapters.discord.adapter import DiscordAdapter
        from adapters.discord.commands import commands_payload
        from bot.app import App

        app = App(settings, DiscordAdapter(settings.discord))
        try:
            payload = commands_payload(app.core.specs.values(), app.core.shortcuts.values())
        except ValueError as exc:  # a shortcut Discord cannot name
            click.echo(f"syncup: {exc}", err=True)
            ctx.exit(1)
        finally:
            asyncio.run(app.db.dispose())
        click.echo(json.dumps(payload, indent=2))
        return
    from adapters.discord.rest import DiscordHTTPError

    target = guild or settings.discord.guild_id
    try:
        registered = asyncio.run(sync(settings, target))
    except DiscordHTTPError as exc:
        click.echo(f"syncup: Discord refused the commands: {exc}", err=True)
        ctx.exit(1)
    except ValueError as exc:  # a shortcut Discord cannot name: nothing was registered
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(1)
    except OSError as exc:
        click.echo(f"syncup: cannot reach {settings.discord.api_base_url}: {exc}", err=True)
        ctx.exit(1)
    where = f"in guild {target}" if target else "globally"
    names = ", ".join(_shown(c) for c in registered)
    click.echo(f"Registered {len(registered)} commands {where}: {names}.")


def _shown(command: dict[str, Any]) -> str:
    """``/standup``; a context-menu command by its menu entry: ``"Report as blocker" (on
    messages)``."""
    kind = command.get("type", 1)
    if kind == 1:
        return f"/{command['name']}"
    return f'"{command["name"]}" (on {"messages" if kind == 3 else "members"})'


@group.command("invite-url")
@click.pass_context
def invite(ctx: click.Context) -> None:
    """Print the link that adds the bot to a server (scopes bot + applications.commands)."""
    settings = _settings(ctx)
    from adapters.discord.rest import DiscordHTTPError

    try:
        application_id = asyncio.run(_application_id(settings))
    except (DiscordHTTPError, OSError) as exc:
        click.echo(
            f"syncup: cannot read the application id ({exc}); set [discord] application_id.",
            err=True,
        )
        ctx.exit(1)
    click.echo(invite_url(application_id))
    wanted = ", ".join(PERMISSIONS)
    click.echo(f"Permissions ({PERMISSIONS_INTEGER}): {wanted}.", err=True)
