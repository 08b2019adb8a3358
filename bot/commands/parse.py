"""Turning a command line (Slack's slash-command text, a console line) or typed options
(Discord) into checked values, against the spec."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.commands.spec import CommandSpec, OptionSpec, OptionType, SubcommandSpec
from bot.errors import UsageError, UserError
from bot.timezones import validate_timezone

_QUOTES = ('"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "\u201e")
_TOKEN = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|“([^”]*)”|(\S+))""")
_USER_REF = re.compile(r"^<@([UWB]?[A-Z0-9]+)(?:\|[^>]*)?>$|^<@!?(\d+)>$")
_CHANNEL_REF = re.compile(r"^<#([A-Z0-9]+|\d+)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class MemberRef:
    """A member as typed: a platform mention (``user_id``) or a name; resolved by the core."""

    raw: str
    user_id: str | None = None

    @property
    def name(self) -> str:
        return self.raw.removeprefix("@")


@dataclass(frozen=True)
class ChannelRef:
    raw: str
    channel_id: str | None = None

    @property
    def name(self) -> str:
        return self.raw.removeprefix("#")


def member_ref(raw: str) -> MemberRef:
    """``<@U123>``, ``<@U123|bob>``, ``<@123>`` (a platform mention) or ``@bob`` / ``bob``."""
    raw = raw.strip()
    match = _USER_REF.match(raw)
    if match:
        return MemberRef(raw, match.group(1) or match.group(2))
    return MemberRef(raw)


def channel_ref(raw: str) -> ChannelRef:
    """``<#C123|team>`` (a platform mention) or ``#team`` / ``team``."""
    raw = raw.strip()
    match = _CHANNEL_REF.match(raw)
    return ChannelRef(raw, match.group(1) if match else None)


def split_tokens(line: str, limit: int | None = None) -> tuple[list[str], str]:
    """Up to ``limit`` tokens (quotes group words) and the untouched rest of the line."""
    tokens: list[str] = []
    pos = 0
    while limit is None or len(tokens) < limit:
        match = _TOKEN.match(line, pos)
        if match is None or match.end() == pos:
            break
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return tokens, line[pos:].strip()


def pick_subcommand(spec: CommandSpec, line: str) -> tuple[SubcommandSpec | None, str]:
    """The subcommand the line starts with and the rest of it.

    An empty line gives the spec's default subcommand (None without one). A line that does not
    start with a subcommand's name is refused with the closest name, unless the spec has a
    default: then the whole line belongs to the default (a quoted first word is never a
    subcommand's name there, so ``/poll "list" ...`` asks about lists)."""
    default = spec.subcommand(spec.default) if spec.default else None
    tokens, rest = split_tokens(line, 1)
    if not tokens:
        return default, ""
    name = tokens[0].lower()
    sub = spec.subcommand(name)
    if default is not None and (sub is None or line.lstrip().startswith(_QUOTES)):
        return default, line.strip()
    if sub is None:
        close = _closest_name(name, [s.name for s in spec.subcommands])
        hint = f" Did you mean `/{spec.name} {close}`?" if close else ""
        raise UsageError(
            f"Unknown command `/{spec.name} {tokens[0]}`.{hint} "
            f"Type `/{spec.name} help` to see what it can do."
        )
    return sub, rest


def _closest_name(word: str, names: list[str]) -> str | None:
    """A typo (``timezon``), a prefix (``time``) or an abbreviation (``tz``) of a name."""
    close = difflib.get_close_matches(word, names, n=1)
    if close:
        return close[0]
    for name in names:
        letters = iter(name)
        if name.startswith(word[:1]) and all(char in letters for char in word):
            return name
    return None


def parse_line(spec: CommandSpec, sub: SubcommandSpec, line: str) -> dict[str, Any]:
    """Positional options in spec order; a TEXT option takes the rest of the line."""
    values: dict[str, str] = {}
    options = list(sub.options)
    takes_rest = bool(options) and options[-1].type is OptionType.TEXT
    positional = options[:-1] if takes_rest else options
    tokens, rest = split_tokens(line, len(positional) if takes_rest else None)
    if not takes_rest and len(tokens) > len(positional):
        extra = " ".join(tokens[len(positional) :])
        raise _usage(spec, sub, f'I did not expect "{extra}".')
    for option, token in zip(positional, tokens, strict=False):
        values[option.name] = token
    if takes_rest and rest:
        values[options[-1].name] = rest
    return convert(spec, sub, values)


def convert(spec: CommandSpec, sub: SubcommandSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """Check presence and type of every option; unknown names are refused."""
    known = {o.name for o in sub.options}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _usage(spec, sub, f"Unknown option {unknown[0]}.")
    result: dict[str, Any] = {}
    for option in sub.options:
        value = raw.get(option.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if option.required:
                raise _usage(spec, sub, f"{option.name.upper()} is missing.")
            result[option.name] = None
            continue
        result[option.name] = _convert_one(spec, sub, option, value)
    return result


def _convert_one(spec: CommandSpec, sub: SubcommandSpec, option: OptionSpec, value: Any) -> Any:
    if option.type in (OptionType.STRING, OptionType.TEXT):
        return str(value).strip()
    if option.type is OptionType.INTEGER:
        try:
            return int(value)
        except (TypeError, ValueError):
            problem = f'{option.name.upper()} must be a whole number, not "{value}".'
            raise _usage(spec, sub, problem) from None
    if option.type is OptionType.TIMEZONE:
        return validate_timezone(str(value))
    if option.type is OptionType.CHOICE:
        wanted = str(value).strip().lower()
        for choice in option.choices:
            if choice.lower() == wanted:
                return choice
        raise _usage(
            spec, sub, f"{option.name.upper()} must be one of {', '.join(option.choices)}."
        )
    if option.type is OptionType.MEMBER:
        return member_ref(str(value))
    if option.type is OptionType.CHANNEL:
        return channel_ref(str(value))
    raise AssertionError(f"unhandled option type {option.type}")


def _usage(spec: CommandSpec, sub: SubcommandSpec, problem: str) -> UsageError:
    example = f" Example: `{sub.example}`." if sub.example else ""
    return UsageError(f"{problem} Usage: `{spec.usage(sub)}`.{example}")


def option_values(
    chunks: list[str],
    fields: Sequence[str],
    aliases: Mapping[str, str],
    command: str,
    values: dict[str, str],
) -> dict[str, str]:
    """``--key value`` chunks (a line split before each option) into ``values``: each key
    through ``aliases``, an unknown one refused with the closest known (``Type `/command
    help`.``), one given twice refused."""
    for chunk in chunks:
        word, _, value = chunk.partition(" ")
        key = word.strip().lower()
        key = aliases.get(key, key)
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean --{close[0]}?" if close else ""
            raise UserError(f"Unknown option --{word.strip()}.{hint} Type `/{command} help`.")
        if key in values and key != "name":
            raise UserError(f"--{key} is given twice; give it once.")
        values[key] = value.strip()
    return values
