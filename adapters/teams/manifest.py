"""The Teams app package: ``manifest.json`` and two icons, zipped, ready to upload (Teams admin
center, or Teams: Apps, Manage your apps, Upload an app).

The bot's command suggestions (``commandLists``) come from the same command specs as help and
the Slack and Discord commands: one entry per command (Teams shows at most 10 a list), in the
personal, team and group-chat scopes. The icons are drawn here: a 192x192 colour icon and a
32x32 outline (white on transparent), as the manifest schema asks.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from PIL import Image, ImageDraw

from bot.commands.spec import CommandSpec
from bot.config import TeamsSection
from bot.port import Delivery, Method, PermanentDeliveryError, RateLimit, Receipt

SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
MANIFEST_VERSION = "1.17"
ACCENT = "#4F6BED"
MAX_COMMANDS = 10
TITLE_LIMIT = 32
DESCRIPTION_LIMIT = 128
SCOPES = ("personal", "team", "groupChat")


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def command_list(specs: Iterable[CommandSpec]) -> list[dict[str, str]]:
    commands = [{"title": "help", "description": "What syncup can do, and how to ask it."}]
    for spec in specs:
        if spec.name == "syncup":
            continue
        subs = ", ".join(s.name for s in spec.subcommands[:6])
        described = f"{spec.description} ({subs})" if subs else spec.description
        commands.append(
            {
                "title": _cut(spec.name, TITLE_LIMIT),
                "description": _cut(described, DESCRIPTION_LIMIT),
            }
        )
    if len(commands) > MAX_COMMANDS:
        raise ValueError(f"Teams shows at most {MAX_COMMANDS} commands; syncup has more")
    return commands


def manifest(
    config: TeamsSection,
    specs: Iterable[CommandSpec],
    *,
    version: str,
    developer: str,
    website: str,
) -> dict[str, Any]:
    if not config.app_id:
        raise ValueError("[teams] app_id is not set: the manifest names the bot by it")
    name = config.bot_name
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": config.app_id,
        "developer": {
            "name": developer,
            "websiteUrl": website,
            "privacyUrl": website,
            "termsOfUseUrl": website,
        },
        "name": {"short": _cut(name, 30), "full": f"{name}: standups, pulse polls and kudos"},
        "description": {
            "short": "Async standups, anonymous pulse polls, blockers and kudos.",
            "full": (
                f"{name} runs a team's rituals in Teams: async standups with prompts at each "
                "member's local time and a report in the channel, anonymous pulse polls, "
                "blocker escalation, milestones and kudos. Type help to the bot, or mention "
                f"@{name} in a channel."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": ACCENT,
        "bots": [
            {
                "botId": config.app_id,
                "scopes": list(SCOPES),
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": list(SCOPES), "commands": command_list(specs)}],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
    }


def _icon(size: int, *, outline: bool) -> bytes:
    """A rounded square with a check mark: on the accent colour, or white on transparent."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    white = (255, 255, 255, 255)
    inset = size // 16
    box = (inset, inset, size - inset - 1, size - inset - 1)
    if outline:
        draw.rounded_rectangle(box, radius=size // 5, outline=white, width=max(1, size // 16))
    else:
        draw.rounded_rectangle(box, radius=size // 5, fill=ACCENT)
    width = max(2, size // 10)
    points = [(size * 0.28, size * 0.52), (size * 0.44, size * 0.68), (size * 0.72, size * 0.34)]
    draw.line(points, fill=white, width=width, joint="curve")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def package(data: dict[str, Any]) -> bytes:
    """The zip Teams takes: the manifest and its icons at the top level."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(data, indent=2, ensure_ascii=False))
        archive.writestr("color.png", _icon(192, outline=False))
        archive.writestr("outline.png", _icon(32, outline=True))
    return out.getvalue()


class DeclarationsPort:
    """The port of the core built for :func:`feature_specs`: the core registers its commands
    with it and never sends (the Teams SDK need not be installed to write the package)."""

    platform = "teams"

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        return {}

    def channel_rate_limit(self) -> RateLimit | None:
        return None

    async def deliver(self, delivery: Delivery) -> Receipt:  # pragma: no cover - never sends
        raise PermanentDeliveryError("writing the Teams app package sends nothing")


def feature_specs() -> list[CommandSpec]:
    """The command specs as the bot registers them, from a core built as the bot builds it
    (it connects to nothing: the package is made before the bot runs)."""
    from bot.app import App
    from bot.config import DatabaseSection, Settings

    class Declarations:
        port = DeclarationsPort()

        def clock(self) -> None:
            return None

        async def run(self, app: App) -> int:  # pragma: no cover - never run
            return 0

    settings = Settings.model_construct(database=DatabaseSection(url="sqlite+aiosqlite://"))
    app = App(settings, Declarations())
    return list(app.core.specs.values())
