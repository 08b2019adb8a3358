"""The one-line syntax of ``/milestone add`` and ``/milestone edit``.

``add NAME DATE [#channel] [--area AREA] [--owner @who] [--with @a @b] [--countdown 14,7,1]``:
the name and the date share the words before the first ``--option``; a quoted name is the name,
otherwise the date is the longest run of last words that reads as one (``Launch v2 Jan 15
2027``, ``Beta in 3 weeks``), and a last ``#channel`` is the channel. ``edit NAME [--date D]
[--name NEW] [--channel #c] ...``: the words before the first option are the name. An
option's value runs to the next option, so an area's name may have spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.commands.parse import ChannelRef, MemberRef, channel_ref, member_ref, split_tokens
from bot.errors import UserError
from bot.features.milestones.dates import ACCEPTED, parse_date

ADD_EXAMPLE = '/milestone add "Launch v2" 2027-01-15 #launches --owner @bob'
ADD_FLAGS = ("area", "owner", "with", "countdown", "channel")
EDIT_FLAGS = ("date", "name", "area", "owner", "with", "countdown", "channel")
MAX_NAME = 128
_FLAG = re.compile(r"(?<!\S)--([A-Za-z][\w-]*)(?:=|\s+|$)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019"
_MENTION = re.compile(r"<@!?[A-Za-z0-9]+(?:\|[^>]*)?>|@?[^\s,]+")


@dataclass(frozen=True)
class Changes:
    """What a line (or a form) says; None: not given."""

    name: str | None = None
    date: str | None = None
    channel: ChannelRef | None = None
    area: str | None = None
    owner: MemberRef | None = None
    with_: tuple[MemberRef, ...] | None = None
    countdown: str | None = None


def split_flags(line: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The words before the first ``--option``, and each option's value."""
    matches = list(_FLAG.finditer(line))
    head = line[: matches[0].start()] if matches else line
    flags: dict[str, str] = {}
    for n, match in enumerate(matches):
        flag = match.group(1).lower()
        if flag not in allowed:
            known = ", ".join(f"--{f}" for f in allowed)
            raise UserError(f"Unknown option --{flag[:30]}; the options are {known}.")
        if flag in flags:
            raise UserError(f"--{flag} is given twice; give it once.")
        end = matches[n + 1].start() if n + 1 < len(matches) else len(line)
        value = line[match.end() : end].strip()
        if not value:
            raise UserError(f"--{flag} needs a value, e.g. {_EXAMPLES[flag]}.")
        flags[flag] = value
    return head.strip(), flags


_EXAMPLES = {
    "area": "`--area data pipeline`",
    "owner": "`--owner @bob`",
    "with": "`--with @carol @dan`",
    "countdown": "`--countdown 14,7,1`",
    "channel": "`--channel #launches`",
    "date": "`--date 2027-02-01`",
    "name": '`--name "Launch v2.1"`',
}


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] in _QUOTES and value[-1] in _QUOTES:
        return value[1:-1].strip()
    return value


def check_name(name: str) -> str:
    name = " ".join(unquote(name).split())
    if not name:
        raise UserError(f"Give the milestone a name, e.g. `{ADD_EXAMPLE}`.", field="name")
    if len(name) > MAX_NAME:
        raise UserError(
            f"A milestone's name has at most {MAX_NAME} characters; this one has {len(name)}.",
            field="name",
        )
    if name.startswith(("#", "@", "<")):
        raise UserError(
            f'"{name[:40]}" looks like a channel or a person, not a name; put the name first: '
            f"`{ADD_EXAMPLE}`.",
            field="name",
        )
    return name


def people(value: str) -> tuple[MemberRef, ...]:
    """``@a @b``, ``@a, @b``: each once."""
    found: list[MemberRef] = []
    for raw in _MENTION.findall(value):
        ref = member_ref(raw)
        if ref.name and ref not in found:
            found.append(ref)
    return tuple(found)


def _common(flags: dict[str, str]) -> dict[str, object]:
    return {
        "area": unquote(flags["area"]) if "area" in flags else None,
        "owner": member_ref(flags["owner"]) if "owner" in flags else None,
        "with_": people(flags["with"]) if "with" in flags else None,
        "countdown": flags.get("countdown"),
        "channel": channel_ref(flags["channel"]) if "channel" in flags else None,
    }


def parse_add(line: str, today: date) -> Changes:
    """NAME and DATE (see the module), the channel and the options of an add line."""
    head, flags = split_flags(line, ADD_FLAGS)
    common = _common(flags)
    words = head.split()
    if words and words[-1].startswith(("#", "<#")):
        if common["channel"] is not None:
            raise UserError("Give the channel once: as #channel or as --channel.")
        common["channel"] = channel_ref(words[-1])
        head = head[: len(head) - len(words[-1])].strip()
    if not head:
        raise UserError(f"A milestone needs a NAME and a DATE: `{ADD_EXAMPLE}`.")
    if head[0] in _QUOTES:
        name_tokens, rest = split_tokens(head, 1)
        name, typed = name_tokens[0], rest
    else:
        name, typed = _split_name_date(head.split(), today)
    if not typed:
        raise UserError(
            f'When is "{check_name(name)[:60]}" due? Add its date after the name ({ACCEPTED}): '
            f"`{ADD_EXAMPLE}`.",
            field="date",
        )
    return Changes(name=check_name(name), date=typed, **common)  # type: ignore[arg-type]


def _split_name_date(words: list[str], today: date) -> tuple[str, str]:
    """The name and the longest run of last words that reads as a date; with none, the last
    word is taken for the date (its error says the accepted forms)."""
    for start in range(1, len(words)):
        typed = " ".join(words[start:])
        try:
            found = parse_date(typed, today)
        except UserError:
            found = today  # a real form with an impossible day: it is the date, refused later
        if found is not None:
            return " ".join(words[:start]), typed
    if len(words) == 1:
        return words[0], ""
    return " ".join(words[:-1]), words[-1]


def parse_edit(line: str) -> tuple[str, Changes]:
    """The milestone's name and what to change (nothing: open the form)."""
    head, flags = split_flags(line, EDIT_FLAGS)
    name = unquote(head)
    if not name:
        raise UserError(
            'Name the milestone to change first: `/milestone edit "Launch v2" --date 2027-02-01`.'
        )
    changes = Changes(
        name=check_name(flags["name"]) if "name" in flags else None,
        date=flags.get("date"),
        **_common(flags),  # type: ignore[arg-type]
    )
    return name, changes
