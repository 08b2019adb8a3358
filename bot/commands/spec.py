"""Commands as data, declared once.

Adapters register or parse them from these specs (Discord application commands, Slack
slash-command text, console lines), and help text is generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class OptionType(StrEnum):
    STRING = "string"
    TEXT = "text"  # the rest of the line, spaces included
    INTEGER = "integer"
    TIMEZONE = "timezone"
    MEMBER = "member"
    CHANNEL = "channel"
    CHOICE = "choice"


class Permission(IntEnum):
    """Who may run a subcommand; higher includes lower."""

    MEMBER = 0
    TEAM_LEAD = 1
    ADMIN = 2

    @property
    def label(self) -> str:
        return {0: "everyone", 1: "team leads and admins", 2: "admins"}[self.value]


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: OptionType
    description: str
    required: bool = True
    choices: tuple[str, ...] = ()

    def usage(self) -> str:
        shown = "|".join(self.choices) if self.choices else self.name.upper()
        if self.type is OptionType.TEXT:
            shown += "..."
        return f"<{shown}>" if self.required else f"[{shown}]"


@dataclass(frozen=True)
class SubcommandSpec:
    name: str
    description: str
    options: tuple[OptionSpec, ...] = ()
    permission: Permission = Permission.MEMBER
    example: str = ""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    description: str
    subcommands: tuple[SubcommandSpec, ...]
    # The subcommand that a typed line (Slack, the console) runs when it does not start with a
    # subcommand's name, and that an empty line runs: ``/poll "Ship Friday?" "Yes" "No"`` is
    # ``/poll create ...``. None: such a line is refused with the closest name. Discord's
    # application commands always name their subcommand, so it changes nothing there.
    default: str | None = None

    def __post_init__(self) -> None:
        if self.default is not None and self.subcommand(self.default) is None:
            raise ValueError(f"/{self.name}: default {self.default!r} is not a subcommand")

    def subcommand(self, name: str) -> SubcommandSpec | None:
        return next((s for s in self.subcommands if s.name == name), None)

    def usage(self, sub: SubcommandSpec) -> str:
        parts = [f"/{self.name}", sub.name, *(o.usage() for o in sub.options)]
        return " ".join(parts)
