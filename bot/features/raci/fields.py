"""An area's settings as people type them, checked: the form, the one-line options and the
CSV import all go through here, so one input means the same wherever it is typed.

Parsing here needs no database; names of people, groups and channels are only split into
references (:func:`refs`) and resolved against the workspace by :mod:`.cells`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from bot.chat import Form, TextField
from bot.commands.parse import option_values, split_tokens
from bot.errors import UserError
from bot.features.standups.settings import WEEKDAYS, parse_days, parse_holidays, parse_time
from bot.timezones import validate_timezone

FORM_ID = "raci"
MAX_NAME = 80
MAX_KEYWORDS = 30
MAX_KEYWORD = 40
ROLE_FIELDS = ("responsible", "accountable", "consulted", "informed")
# Each field of the form: name, label, whether it is required, default, placeholder.
_FORM: tuple[tuple[str, str, bool, str, str], ...] = (
    ("name", "Area name", True, "", "Data pipeline"),
    ("responsible", "Responsible: @people and/or @user-groups", True, "", "@ana @data-eng"),
    ("accountable", "Accountable: exactly one @person", True, "", "@bob"),
    ("consulted", "Consulted: @people, @groups or #channels", False, "", ""),
    ("informed", "Informed: @people, @groups or #channels", False, "", ""),
    ("channel", "Area channel (its blocker cards)", False, "", "#data-blockers"),
    ("timezone", "Time zone", True, "UTC", ""),
    ("days", "Working days", True, "mon-fri", ""),
    ("hours", "Working hours", True, "09:00-17:00", ""),
    ("holidays", "Public holidays: country [subdivision]", False, "", "DE BY"),
    ("dates", "Other days off (YYYY-MM-DD, comma separated)", False, "", "2026-12-24, 2026-12-31"),
    ("keywords", "Keywords that suggest this area for a blocker", False, "", "etl, airflow"),
)
# The one-line options are the fields' names (--name, --responsible, ...).
FIELDS = tuple(name for name, *_ in _FORM)
_HOURS = re.compile(r"^\s*(\d{1,2}(?::\d{2})?)\s*(?:-|–|to)\s*(\d{1,2}(?::\d{2})?)\s*$")


@dataclass
class AreaInput:
    """What a form or a line said about an area; None: not given (an edit keeps the value)."""

    name: str | None = None
    roles: dict[str, list[str]] = field(default_factory=dict)  # field name -> references
    channel: str | None = None
    timezone: str | None = None
    work_days: list[int] | None = None
    hours: tuple[int, int] | None = None
    holidays: tuple[str | None, str | None] | None = None  # (country, subdivision)
    dates: list[str] | None = None
    keywords: list[str] | None = None
    # Fields in error (by form field name): :func:`bot.features.raci.store.save_area` raises
    # them together with what it finds resolving names, so every problem is told at once.
    errors: dict[str, str] = field(default_factory=dict)


def refs(raw: str) -> list[str]:
    """``@ana, @data-eng #data "Ana Lopez"``: one reference per word or quoted name, in order,
    each once."""
    found: list[str] = []
    tokens, _ = split_tokens(raw.replace(",", " "))
    for token in tokens:
        token = token.strip()
        if token and token not in found:
            found.append(token)
    return found


def parse_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise UserError('Give the area a name, e.g. "Data pipeline".')
    if len(name) > MAX_NAME:
        raise UserError(f"Keep the area's name under {MAX_NAME} characters.")
    if name.startswith(("@", "#", "-")):
        raise UserError(f'An area\'s name cannot start with {name[0]}: "{name}".')
    return name


def parse_hours(raw: str) -> tuple[int, int]:
    """``09:00-17:00`` (or ``9-17``): the working hours, in minutes after midnight."""
    match = _HOURS.match(raw)
    if not match:
        raise UserError(f'"{raw}" is not working hours; write them like 09:00-17:00.')
    start, end = (_minutes(part) for part in match.groups())
    if end <= start:
        raise UserError(
            f'Working hours "{raw.strip()}" end before they start; write the start first, '
            "e.g. 09:00-17:00 (for a night shift, use two areas)."
        )
    return start, end


def _minutes(part: str) -> int:
    if ":" not in part:
        part = f"{part}:00"
    if part in ("24:00",):
        return 24 * 60
    hour, minute = parse_time(part).split(":")
    return int(hour) * 60 + int(minute)


def format_hours(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def format_days(days: list[int]) -> str:
    if days == [1, 2, 3, 4, 5]:
        return "mon-fri"
    if days == list(range(1, 8)):
        return "daily"
    return ",".join(WEEKDAYS[d - 1][:3] for d in days)


def parse_region(raw: str) -> tuple[str | None, str | None]:
    """``DE``, ``DE BY`` or ``DE-BY`` (ISO country, optional subdivision) checked against the
    ``holidays`` package; empty or ``none``: no public holidays."""
    import holidays

    words = [w for w in re.split(r"[\s,/-]+", raw.strip()) if w]
    if not words or words[0].lower() in ("none", "off", "no"):
        return None, None
    if len(words) > 2:
        raise UserError(f'"{raw}": give a country and at most one subdivision, e.g. DE BY.')
    supported: dict[str, list[str]] = holidays.list_supported_countries()
    country = words[0].upper()
    if country not in supported:
        close = difflib.get_close_matches(country, list(supported), n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UserError(
            f'Unknown public-holiday country "{words[0]}"; use an ISO code such as DE, US or '
            f"FR.{hint}"
        )
    if len(words) == 1:
        return country, None
    subdivisions = [s for s in supported[country] if s.isupper() or s.isdigit()]
    wanted = words[1]
    for code in supported[country]:
        if code.casefold() == wanted.casefold():
            return country, code
    aliases = getattr(holidays.country_holidays(country), "subdivisions_aliases", {})
    for alias, code in aliases.items():
        if alias.casefold() == wanted.casefold():
            return country, code
    if not supported[country]:
        raise UserError(f"{country} has no subdivisions in the holiday calendar; give {country}.")
    shown = ", ".join(subdivisions or supported[country])
    raise UserError(f'Unknown subdivision "{wanted}" of {country}; {country} has {shown}.')


def parse_keywords(raw: str) -> list[str]:
    """``etl, airflow, data pipeline``: comma separated (a keyword may have spaces)."""
    found: list[str] = []
    for part in re.split(r"[,;\n]+", raw):
        keyword = " ".join(part.split())
        if not keyword:
            continue
        if len(keyword) > MAX_KEYWORD:
            raise UserError(f'Keep each keyword under {MAX_KEYWORD} characters: "{keyword}".')
        if keyword.casefold() not in (k.casefold() for k in found):
            found.append(keyword)
    if len(found) > MAX_KEYWORDS:
        raise UserError(f"At most {MAX_KEYWORDS} keywords; you gave {len(found)}.")
    return found


def parse_values(values: dict[str, Any], *, partial: bool = False) -> AreaInput:
    """Check every field given; the fields in error are in the result's ``errors``.

    ``partial`` (a one-line edit): fields not in ``values`` are left None (unchanged);
    otherwise a missing field is empty (the form sends every field)."""
    errors: dict[str, str] = {}
    result = AreaInput()

    def given(name: str) -> bool:
        return not partial or name in values

    def text(name: str) -> str:
        raw = values.get(name, "")
        return (" ".join(raw) if isinstance(raw, list) else str(raw or "")).strip()

    def check(name: str, parse: Any) -> Any:
        if not given(name):
            return None
        try:
            return parse(text(name))
        except UserError as exc:
            errors[name] = exc.message
            return None

    result.name = check("name", parse_name)
    for role in ROLE_FIELDS:
        if given(role):
            result.roles[role] = refs(text(role))
    result.channel = text("channel") if given("channel") else None
    result.timezone = check("timezone", lambda raw: validate_timezone(raw or "UTC"))
    result.work_days = check("days", _days)
    result.hours = check("hours", lambda raw: parse_hours(raw or "09:00-17:00"))
    result.holidays = check("holidays", parse_region)
    result.dates = check("dates", parse_holidays)
    result.keywords = check("keywords", parse_keywords)
    result.errors = errors
    return result


def _days(raw: str) -> list[int]:
    if not raw.strip():
        raise UserError("Name the working days, e.g. mon-fri.")
    return parse_days(raw)


LABELS = {
    "name": "Name",
    "responsible": "Responsible",
    "accountable": "Accountable",
    "consulted": "Consulted",
    "informed": "Informed",
    "channel": "Area channel",
    "timezone": "Time zone",
    "days": "Working days",
    "hours": "Working hours",
    "holidays": "Public holidays",
    "dates": "Other days off",
    "keywords": "Keywords",
}


def raise_errors(errors: dict[str, str]) -> None:
    """One :class:`UserError`: each field's message next to it in a form, and all of them in
    the message (a one-line command shows only the message)."""
    if len(errors) == 1:
        raise UserError(next(iter(errors.values())), errors=errors)
    lines = [f"{len(errors)} things to fix:"]
    lines += [f"• {LABELS.get(name, name)}: {problem}" for name, problem in errors.items()]
    raise UserError("\n".join(lines), errors=errors)


# --- the one-line form ------------------------------------------------------------------------

_OPTION_ALIASES = {
    "r": "responsible",
    "a": "accountable",
    "c": "consulted",
    "i": "informed",
    "tz": "timezone",
    "zone": "timezone",
    "holiday": "holidays",
    "country": "holidays",
    "custom": "dates",
    "keyword": "keywords",
    "rename": "name",
}


# ``--name value``, or ``-r`` ``-a`` ``-c`` ``-i`` for the roles.
_OPTION = re.compile(r"(?:^|\s)(?:--(?=[A-Za-z])|-(?=[RrAaCcIi](?:\s|$)))")


def parse_line(line: str, *, with_name: bool) -> dict[str, str]:
    """``"Data pipeline" --responsible @ana --accountable @bob --hours 9-17``: the raw value of
    each option (and the leading name when ``with_name``), for :func:`parse_values`."""
    values: dict[str, str] = {}
    head, *rest = _OPTION.split(line)
    if with_name:
        tokens, extra = split_tokens(head.strip(), 1)
        name = tokens[0] if tokens else ""
        if extra:
            name = f"{name} {extra}"
        values["name"] = name
    elif head.strip():
        raise UserError(
            f'I did not expect "{head.strip()}"; give only --options, e.g. --accountable @bob.'
        )
    return option_values(rest, FIELDS, _OPTION_ALIASES, "raci", values)


# --- the form ---------------------------------------------------------------------------------


def area_form(initial: dict[str, str] | None = None, state: str = "") -> Form:
    """The form for ``/raci setup`` (defaults) or ``/raci edit`` (the area's values; ``state``
    carries the area's id)."""
    values = initial or {}
    return Form(
        FORM_ID,
        "Edit area" if state else "New RACI area",
        tuple(
            TextField(
                name,
                label,
                required=required,
                initial=values.get(name, default),
                placeholder=placeholder,
            )
            for name, label, required, default, placeholder in _FORM
        ),
        submit_label="Save",
        state=state,
    )
