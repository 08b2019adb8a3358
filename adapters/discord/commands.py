"""Application (slash) commands generated from the core's command specs, and the typed options
of an invocation turned back into what the core expects.

Each :class:`CommandSpec` is one CHAT_INPUT command whose subcommands are Discord subcommands;
each core :class:`~bot.core.Shortcut` is a context-menu command (Apps menu of a message: type 3
MESSAGE; of a member: type 2 USER) named by its label, registered together with them;
option types map to Discord's (member -> USER, channel -> CHANNEL, integer -> INTEGER), a
``choice`` option lists its choices, and a ``timezone`` option is a string with autocomplete
(IANA names). Registration is explicit (``syncup discord sync-commands``), never on connect: a
bulk overwrite on every reconnect would burn the 200-creates-a-day budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from bot.commands.spec import CommandSpec, OptionSpec, OptionType
from bot.core import Shortcut
from bot.timezones import COMMON_ZONES, suggest

SUB_COMMAND, STRING, INTEGER, USER, CHANNEL = 1, 3, 4, 6, 7
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
CONTEXT_MENU_NAME = 32
GUILD_TEXT = 0
AUTOCOMPLETE_LIMIT = 25

_TYPES = {
    OptionType.STRING: STRING,
    OptionType.TEXT: STRING,
    OptionType.TIMEZONE: STRING,
    OptionType.CHOICE: STRING,
    OptionType.INTEGER: INTEGER,
    OptionType.MEMBER: USER,
    OptionType.CHANNEL: CHANNEL,
}


def _description(value: str) -> str:
    value = value.strip() or "-"
    return value if len(value) <= 100 else value[:99] + "\u2026"


def option_payload(option: OptionSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": _TYPES[option.type],
        "name": option.name.lower(),
        "description": _description(option.description),
        "required": option.required,
    }
    if option.type is OptionType.CHOICE and option.choices:
        out["choices"] = [{"name": c, "value": c} for c in option.choices[:25]]
    if option.type is OptionType.TIMEZONE:
        out["autocomplete"] = True
    if option.type is OptionType.CHANNEL:
        out["channel_types"] = [GUILD_TEXT]
    if option.type is OptionType.INTEGER:
        out["min_value"] = 0
    return out


def command_payload(spec: CommandSpec) -> dict[str, Any]:
    subcommands = []
    for sub in spec.subcommands:
        # Discord wants required options first; the specs already put them there, but a spec
        # that does not would be refused, so order them (names, not positions, carry values).
        options = sorted(sub.options, key=lambda o: not o.required)
        subcommands.append(
            {
                "type": SUB_COMMAND,
                "name": sub.name.lower(),
                "description": _description(sub.description),
                "options": [option_payload(o) for o in options],
            }
        )
    return {
        "type": CHAT_INPUT,
        "name": spec.name.lower(),
        "description": _description(spec.description),
        "options": subcommands,
        "contexts": [0, 1],  # in guilds and in the bot's DM
        "integration_types": [0],
    }


def shortcut_payload(shortcut: Shortcut) -> dict[str, Any]:
    """A context-menu command: no description, no options; its name is what the menu shows."""
    label = shortcut.label.strip()
    if not 1 <= len(label) <= CONTEXT_MENU_NAME:
        raise ValueError(
            f"shortcut {shortcut.shortcut_id}: Discord names a context-menu command in 1 to "
            f"{CONTEXT_MENU_NAME} characters; {label!r} has {len(label)}"
        )
    return {
        "type": MESSAGE_COMMAND if shortcut.on == "message" else USER_COMMAND,
        "name": label,
        "contexts": [0],  # in guilds: a shortcut acts on a server's message or member
        "integration_types": [0],
    }


def commands_payload(
    specs: Iterable[CommandSpec], shortcuts: Iterable[Shortcut] = ()
) -> list[dict[str, Any]]:
    commands = [command_payload(spec) for spec in sorted(specs, key=lambda s: s.name)]
    ordered = sorted(shortcuts, key=lambda s: (s.on, s.label))
    return commands + [shortcut_payload(shortcut) for shortcut in ordered]


def shortcut_named(shortcuts: Iterable[Shortcut], data: dict[str, Any]) -> str:
    """The shortcut id of a context-menu invocation (its name and type), or the name itself when
    no shortcut has it (the core then says it no longer does anything)."""
    name = str(data.get("name", ""))
    on = "message" if data.get("type") == MESSAGE_COMMAND else "user"
    found = next((s for s in shortcuts if s.label.strip() == name and s.on == on), None)
    return found.shortcut_id if found is not None else name


def jump_link(guild_id: str | None, channel_id: str, message_id: str) -> str:
    """The link Discord's "Copy Message Link" makes."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def message_text(message: dict[str, Any]) -> str:
    """What a message says: its content, else its embeds' titles and descriptions (a bot's
    message), then its attachments by name and link."""
    parts = [str(message.get("content") or "")]
    if not parts[0]:
        for embed in message.get("embeds") or []:
            parts.extend(str(embed.get(k) or "") for k in ("title", "description"))
    for attachment in message.get("attachments") or []:
        parts.append(f"{attachment.get('filename', 'file')} ({attachment.get('url', '')})")
    return "\n".join(p for p in parts if p)


def invocation_options(
    spec: CommandSpec | None, data: dict[str, Any]
) -> tuple[str | None, dict[str, Any], str | None]:
    """(subcommand, options for the core, the focused option's name) from an interaction's
    ``data``. Users and channels come as ids and are passed as ``<@id>`` / ``<#id>`` mentions,
    which the core's parser understands."""
    subcommand: str | None = None
    options = data.get("options") or []
    if options and options[0].get("type") == SUB_COMMAND:
        subcommand = options[0]["name"]
        options = options[0].get("options") or []
    kinds: dict[str, OptionType] = {}
    if spec is not None and subcommand is not None:
        sub = spec.subcommand(subcommand)
        if sub is not None:
            kinds = {o.name: o.type for o in sub.options}
    values: dict[str, Any] = {}
    focused: str | None = None
    for option in options:
        name, value = option.get("name"), option.get("value")
        if option.get("focused"):
            focused = name
        if option.get("type") == USER or kinds.get(name) is OptionType.MEMBER:
            value = f"<@{value}>"
        elif option.get("type") == CHANNEL or kinds.get(name) is OptionType.CHANNEL:
            value = f"<#{value}>"
        values[name] = value
    return subcommand, values, focused


def timezone_choices(typed: str) -> list[dict[str, str]]:
    """Up to 25 IANA zones for what was typed so far: prefix and city matches, then close ones."""
    wanted = typed.strip().lower().replace(" ", "_")
    if not wanted:
        return [{"name": z, "value": z} for z in COMMON_ZONES[:AUTOCOMPLETE_LIMIT]]
    zones = _zone_names()
    found: list[str] = []
    for key, name in sorted(zones.items()):
        city = key.rsplit("/", 1)[-1]
        if key.startswith(wanted) or city.startswith(wanted) or f"/{wanted}" in key:
            found.append(name)
    for name in suggest(typed, limit=5):
        if name not in found:
            found.append(name)
    return [{"name": z, "value": z} for z in found[:AUTOCOMPLETE_LIMIT]]


@cache
def _zone_names() -> dict[str, str]:
    """Lower-cased name -> IANA name, without legacy aliases (``US/Eastern``, ``Etc/...``)."""
    legacy = ("Etc/", "SystemV/", "US/", "posix", "right/")
    return {
        zone.lower(): zone
        for zone in available_timezones()
        if ("/" in zone and not zone.startswith(legacy)) or zone == "UTC"
    }
