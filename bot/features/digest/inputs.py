"""What ``/digest setup`` and ``/digest edit`` take, from the form or from one line of
``--options``, checked all at once: every problem is named next to its field and nothing is
saved until all are fixed (invariant 8). Teams, the channel and the leaders are names here;
:mod:`bot.features.digest.commands` resolves them."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from typing import Any

from bot.chat import Form, TextField
from bot.commands.parse import option_values
from bot.errors import UserError
from bot.features.pulse.settings import one_day
from bot.features.standups.settings import WEEKDAYS, parse_time
from bot.timezones import validate_timezone
from storage.digest import SECTIONS

FORM_ID = "digest-setup"
FIELDS = ("name", "teams", "channel", "day", "time", "timezone", "sections", "leaders")
LABELS = {
    "name": "Name",
    "teams": "Teams",
    "channel": "Channel",
    "day": "Day",
    "time": "Time",
    "timezone": "Time zone",
    "sections": "Sections",
    "leaders": "Leaders",
}
_ALIASES = {"zone": "timezone", "tz": "timezone", "team": "teams", "leader": "leaders",
            "section": "sections", "rename": "name"}  # fmt: skip
DEFAULTS = {"day": "mon", "time": "09:00", "sections": ", ".join(SECTIONS)}
_OPTION = re.compile(r"(?:^|\s)--(?=[A-Za-z])")


@dataclass(frozen=True)
class DigestInput:
    """Checked values; ``None`` for what a one-line edit leaves as it is."""

    name: str | None = None
    teams: tuple[str, ...] | None = None
    channel: str | None = None
    day_of_week: int | None = None
    time_of_day: str | None = None
    timezone: str | None = None
    sections: tuple[str, ...] | None = None
    leaders: str | None = None  # "@ana @bob" or "" for none


def form(initial: dict[str, str] | None = None, state: str = "") -> Form:
    v = {**DEFAULTS, **(initial or {})}
    return Form(
        FORM_ID,
        "Edit digest" if state else "Weekly digest",
        (
            TextField("name", "Name", initial=v.get("name", ""), placeholder="Leadership"),
            TextField(
                "teams",
                "Teams: standups or RACI areas, comma-separated",
                initial=v.get("teams", ""),
                placeholder="Daily, Data pipeline",
            ),
            TextField("channel", "Channel", initial=v.get("channel", ""), placeholder="#leads"),
            TextField("day", "Day", initial=v["day"]),
            TextField("time", "Time (24h)", initial=v["time"]),
            TextField("timezone", "Time zone", initial=v.get("timezone", ""), placeholder="UTC"),
            TextField("sections", f"Sections ({', '.join(SECTIONS)})", initial=v["sections"]),
            TextField(
                "leaders",
                "Leaders who also get it by DM (optional)",
                required=False,
                initial=v.get("leaders", ""),
                placeholder="@ana @bob",
            ),
        ),
        submit_label="Save",
        state=state,
    )


def parse_line(line: str, *, with_name: bool) -> dict[str, str]:
    """``"Leadership" --teams Daily, Data pipeline --channel #leads --day mon``: each option's
    raw value (and the leading name when ``with_name``)."""
    head, *rest = _OPTION.split(line)
    values: dict[str, str] = {}
    if with_name:
        try:
            words = shlex.split(head)
        except ValueError:
            raise UserError('The name has an unclosed quote; e.g. "Leadership".') from None
        values["name"] = " ".join(words)
    elif head.strip():
        raise UserError(f'I did not expect "{head.strip()}"; give only --options, e.g. --day fri.')
    return option_values(rest, FIELDS, _ALIASES, "digest", values)


def parse_values(
    values: dict[str, Any], *, partial: bool = False, errors: dict[str, str] | None = None
) -> DigestInput:
    """Check each field given (all of them unless ``partial``). Problems go into ``errors``
    when it is given (the caller adds its own and reports them all at once), else one
    :class:`UserError` names every field in error."""
    collect = errors is not None
    errors = {} if errors is None else errors

    def raw(name: str) -> str | None:
        if name not in values:
            return None if partial else ""
        value = values[name]
        return (" ".join(value) if isinstance(value, list) else str(value)).strip()

    def check(name: str, parse: Any) -> Any:
        given = raw(name)
        if given is None:
            return None
        try:
            return parse(given)
        except UserError as exc:
            errors[name] = exc.message
            return None

    parsed = DigestInput(
        name=check("name", _name),
        teams=check("teams", _teams),
        channel=check("channel", _channel),
        day_of_week=check("day", _day),
        time_of_day=check("time", parse_time),
        timezone=check("timezone", _zone),
        sections=check("sections", parse_sections),
        leaders=raw("leaders"),
    )
    if errors and not collect:
        raise UserError(summary(errors), errors=errors)
    return parsed


def summary(errors: dict[str, str]) -> str:
    if len(errors) == 1:
        name, problem = next(iter(errors.items()))
        return f"{LABELS.get(name, name)}: {problem}"
    lines = [f"{len(errors)} things to fix:"]
    lines += [f"• {LABELS.get(name, name)}: {problem}" for name, problem in errors.items()]
    return "\n".join(lines)


def _name(raw: str) -> str:
    if not raw:
        raise UserError('Give the digest a name, e.g. "Leadership".')
    if len(raw) > 80:
        raise UserError("Keep the name under 80 characters.")
    return raw


def _teams(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:
        raise UserError(
            "Name at least one team: a standup or a RACI area, e.g. Daily, Data pipeline."
        )
    return names


def _channel(raw: str) -> str:
    if not raw:
        raise UserError("Name the channel the digest goes to, e.g. #leads.")
    return raw


def _day(raw: str) -> int:
    try:
        return one_day(raw)
    except UserError:
        raise UserError(f'"{raw}" is not one day; e.g. {WEEKDAYS[0]} or {WEEKDAYS[4]}.') from None


def _zone(raw: str) -> str:
    if not raw:
        raise UserError("Give the time zone, e.g. Europe/Berlin or UTC.")
    return validate_timezone(raw)


def parse_sections(raw: str) -> tuple[str, ...]:
    words = [w.strip().lower() for w in re.split(r"[,\s]+", raw) if w.strip()]
    if not words:
        raise UserError(f"Turn on at least one section: {', '.join(SECTIONS)}.")
    unknown = [w for w in words if w not in SECTIONS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], SECTIONS, n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise UserError(f'Unknown section "{unknown[0]}".{hint} Sections: {", ".join(SECTIONS)}.')
    return tuple(s for s in SECTIONS if s in words)
