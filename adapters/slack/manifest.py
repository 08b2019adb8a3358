"""The Slack app manifest: paste it at api.slack.com/apps -> Create New App -> From a manifest.

It lists the configured slash commands whose feature exists (a name in ``[slack] commands``
without a feature, such as one kept from an older config, is left out until its feature lands),
the shortcuts the features register (message shortcuts, and user shortcuts as global ones:
:mod:`adapters.slack.shortcuts`), the bot scopes syncup uses, the events it subscribes to and
interactivity (which shortcuts arrive through, with ``commands`` as their scope). Socket Mode
when no URL is given; with ``--http-url`` every request URL points at ``<url>/slack/events`` and the
OAuth redirect at ``<url>/slack/oauth_redirect``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapters.slack.shortcuts import manifest_entries
from bot.commands.spec import CommandSpec
from bot.config import SlackSection
from bot.core import Shortcut

# chat:write (post), chat:write.public (report channels the bot was not invited to), im:write
# (conversations.open), im:history (read DM answers), commands, users:read (names, time zones),
# channels:read / groups:read (channel names, members, whether the bot is in them), files:write
# (charts: a self-hosted bot has no public URL for an image block, so the PNG is uploaded),
# usergroups:read (a user group as Responsible, Consulted or Informed in the RACI matrix).
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
    "usergroups:read",
)
BOT_EVENTS: tuple[str, ...] = (
    "message.im",
    "app_home_opened",
    "app_uninstalled",
    "tokens_revoked",
    "team_join",
    "user_change",
)


def feature_specs() -> dict[str, CommandSpec]:
    """The command specs of the features syncup has, by core name (what the core registers;
    a test keeps the two the same)."""
    from bot.features.account import SYNCUP
    from bot.features.blockers.spec import BLOCKER
    from bot.features.digest.spec import DIGEST
    from bot.features.hooks.commands import MILESTONE
    from bot.features.kudos.spec import KUDOS
    from bot.features.polls.spec import POLL
    from bot.features.pulse.spec import PULSE
    from bot.features.raci.spec import RACI
    from bot.features.standups.spec import STANDUP

    specs = (STANDUP, POLL, PULSE, RACI, BLOCKER, KUDOS, SYNCUP, MILESTONE, DIGEST)
    return {spec.name: spec for spec in specs}


def feature_shortcuts() -> list[Shortcut]:
    """The shortcuts the features register, read from a core built as the bot builds it (it
    connects to nothing: the manifest is made before Slack has given syncup a token)."""
    from adapters.slack.port import SlackPort, StaticTokens
    from bot.app import App
    from bot.config import DatabaseSection, Settings

    class Declarations:
        port = SlackPort(StaticTokens(""))

        def clock(self) -> None:
            return None

        async def run(self, app: App) -> int:  # pragma: no cover - never run
            return 0

    settings = Settings.model_construct(database=DatabaseSection(url="sqlite+aiosqlite://"))
    app = App(settings, Declarations())
    return list(app.core.shortcuts.values())


def manifest(
    config: SlackSection,
    specs: Mapping[str, CommandSpec] | None = None,
    *,
    shortcuts: list[Shortcut] | None = None,
    http_url: str | None = None,
    name: str = "syncup",
) -> dict[str, Any]:
    base = (http_url or "").rstrip("/")
    specs = feature_specs() if specs is None else specs
    shortcuts = feature_shortcuts() if shortcuts is None else shortcuts
    commands: list[dict[str, Any]] = []
    for core_name, slash in config.commands.items():
        spec = specs.get(core_name)
        if spec is None:
            continue  # no feature behind it (yet)
        command: dict[str, Any] = {
            "command": slash,
            "description": spec.description[:100],
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
            "description": "Async standups, polls, pulse checks and kudos.",
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
            **({"shortcuts": manifest_entries(shortcuts)} if shortcuts else {}),
        },
        "oauth_config": oauth,
        "settings": settings,
    }


def manifest_json(config: SlackSection, **kwargs: Any) -> str:
    return json.dumps(manifest(config, **kwargs), indent=2)
