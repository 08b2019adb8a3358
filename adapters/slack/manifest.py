"""The Slack app manifest: paste it at api.slack.com/apps -> Create New App -> From a manifest.

It lists every configured slash command, the bot scopes syncup uses, the events it subscribes to
and interactivity. Socket Mode when no URL is given; with ``--http-url`` every request URL points
at ``<url>/slack/events`` and the OAuth redirect at ``<url>/slack/oauth_redirect``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.commands.spec import CommandSpec
from bot.config import SlackSection

# chat:write (post), chat:write.public (report channels the bot was not invited to), im:write
# (conversations.open), im:history (read DM answers), commands, users:read (names, time zones),
# channels:read / groups:read (channel names, members, whether the bot is in them), files:write
# (charts: a self-hosted bot has no public URL for an image block, so the PNG is uploaded).
BOT_SCOPES: tuple[str, ...] = (
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",
    "im:write",
    "im:history",
    "users:read",
    "channels:read",
    "groups:read",
)
BOT_EVENTS: tuple[str, ...] = (
    "message.im",
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "team_join",
    "user_change",
)
DESCRIPTIONS: Mapping[str, str] = {
    "standup": "Async standups: DMs at each member's local time, reports in a channel.",
    "poll": "Polls: named or anonymous, with deadlines.",
    "pulse": "Recurring anonymous team pulse checks and the weekly digest.",
    "blocker": "Raise and track a blocker.",
    "kudos": "Thank a teammate.",
    "milestone": "Celebrate shipped work.",
    "raci": "Who is Responsible, Accountable, Consulted, Informed.",
    "syncup": "syncup help, settings and roles.",
}


def manifest(
    config: SlackSection,
    specs: Mapping[str, CommandSpec] | None = None,
    *,
    http_url: str | None = None,
    name: str = "syncup",
) -> dict[str, Any]:
    base = (http_url or "").rstrip("/")
    commands: list[dict[str, Any]] = []
    for core_name, slash in config.commands.items():
        spec = (specs or {}).get(core_name)
        description = spec.description if spec else DESCRIPTIONS.get(core_name, core_name)
        command: dict[str, Any] = {
            "command": slash,
            "description": description[:100],
            "usage_hint": "help",
            "should_escape": True,  # @bob and #team arrive as <@U..> / <#C..> ids
        }
        if base:
            command["url"] = f"{base}/slack/events"
        commands.append(command)
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": not base,
        "token_rotation_enabled": config.token_rotation,
    }
    if base:
        settings["event_subscriptions"]["request_url"] = f"{base}/slack/events"
        settings["interactivity"]["request_url"] = f"{base}/slack/events"
    oauth: dict[str, Any] = {"scopes": {"bot": list(BOT_SCOPES)}}
    if base:
        oauth["redirect_urls"] = [f"{base}{config.redirect_path}"]
    return {
        "display_information": {
            "name": name,
            "description": "Async standups, pulse polls, blockers and kudos.",
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": False,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": oauth,
        "settings": settings,
    }


def manifest_json(config: SlackSection, **kwargs: Any) -> str:
    return json.dumps(manifest(config, **kwargs), indent=2)
