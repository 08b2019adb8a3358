"""The pulse setup form and the question-bank form: their fields, and turning what was typed into
checked settings.

Every problem is reported at once, each next to its field, and nothing is saved until all are
fixed (invariant 8). Names (the channel, the members) are resolved by the command handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.chat import Choice, Form, SelectField, TextField
from bot.errors import UserError
from bot.features.pulse.bank import MAX_BANK_FIELDS, bank_chunks, parse_bank
from bot.features.standups.settings import WEEKDAYS, parse_days, parse_time
from bot.timezones import validate_timezone

SETUP_FORM = "pulse-setup"
BANK_FORM = "pulse-questions"
CONFIRM_FIELD = "confirm"
# Fewer answers than this can never be shown, whatever a team sets (invariant 6).
MIN_THRESHOLD = 3
MAX_THRESHOLD = 50
DEFAULTS: dict[str, Any] = {
    "day": "wed",
    "time": "10:00",
    "every_weeks": 1,
    "open_days": 4,
    "questions_per_round": 3,
    "threshold": 5,
    "digest_day": "mon",
    "digest_time": "09:00",
}
MAX_QUESTIONS_PER_ROUND = 10
MAX_EVERY_WEEKS = 12


@dataclass
class PulseInput:
    """The checked values of a setup form (the channel and members still to be resolved)."""

    team: str
    timezone: str
    day_of_week: int
    time_of_day: str
    every_weeks: int
    open_days: int
    questions_per_round: int
    threshold: int
    digest_day: int
    digest_time: str


def setup_form(initial: dict[str, Any] | None = None, state: str = "") -> Form:
    """The form of ``/pulse setup`` (defaults) or ``/pulse edit`` (``initial`` values)."""
    v = {**DEFAULTS, **(initial or {})}
    return Form(
        SETUP_FORM,
        "Edit pulse" if state else "Team pulse",
        (
            TextField("team", "Team name", initial=v.get("team", ""), placeholder="Platform"),
            TextField(
                "channel",
                "Team channel (results and the digest go here)",
                initial=v.get("channel", ""),
                placeholder="#platform",
            ),
            TextField(
                "participants",
                "Members (@names, or #channel for everyone in it)",
                initial=v.get("participants", ""),
                placeholder="@alice @bob, or #platform",
            ),
            TextField(
                "timezone", "Team time zone", initial=v.get("timezone", ""), placeholder="UTC"
            ),
            TextField("day", "Day the pulse goes out", initial=str(v["day"])),
            TextField("time", "Time (24h, team time)", initial=str(v["time"])),
            TextField("every_weeks", "Every N weeks", initial=str(v["every_weeks"])),
            TextField("open_days", "Days a round stays open", initial=str(v["open_days"])),
            TextField(
                "questions_per_round", "Questions per round", initial=str(v["questions_per_round"])
            ),
            TextField(
                "threshold",
                f"Answers needed before results show ({MIN_THRESHOLD}-{MAX_THRESHOLD})",
                initial=str(v["threshold"]),
            ),
            TextField("digest_day", "Weekly digest day", initial=str(v["digest_day"])),
            TextField("digest_time", "Weekly digest time (24h)", initial=str(v["digest_time"])),
        ),
        submit_label="Save",
        state=state,
    )


def parse_setup(values: dict[str, str | list[str]]) -> PulseInput:
    """Check every field but the channel and the members; raise one :class:`UserError` that
    names each field in error."""
    errors: dict[str, str] = {}

    def raw(name: str) -> str:
        value = values.get(name, "")
        return (" ".join(value) if isinstance(value, list) else value).strip()

    def check(name: str, parse: Any) -> Any:
        try:
            return parse(raw(name))
        except UserError as exc:
            errors[name] = exc.message
            return None

    team = check("team", _team)
    if not raw("participants"):
        errors["participants"] = "Name the members: @alice @bob, or #channel for everyone in it."
    zone = check("timezone", _zone)
    day = check("day", one_day)
    time_of_day = check("time", parse_time)
    every_weeks = check(
        "every_weeks", lambda r: whole(r, 1, MAX_EVERY_WEEKS, "Every N weeks", default=1)
    )
    open_days = check("open_days", lambda r: whole(r, 1, 7 * MAX_EVERY_WEEKS, "Open days"))
    per_round = check(
        "questions_per_round",
        lambda r: whole(r, 1, MAX_QUESTIONS_PER_ROUND, "Questions per round"),
    )
    threshold = check("threshold", parse_threshold)
    digest_day = check("digest_day", one_day)
    digest_time = check("digest_time", parse_time)
    if open_days is not None and every_weeks is not None and open_days > 7 * every_weeks:
        errors["open_days"] = (
            f"A round must close before the next one goes out: at most {7 * every_weeks} days "
            f"for a pulse every {every_weeks} week(s)."
        )
    if errors:
        raise UserError(_summary(errors), errors=errors)
    return PulseInput(
        team=team,
        timezone=zone,
        day_of_week=day,
        time_of_day=time_of_day,
        every_weeks=every_weeks,
        open_days=open_days,
        questions_per_round=per_round,
        threshold=threshold,
        digest_day=digest_day,
        digest_time=digest_time,
    )


def _summary(errors: dict[str, str]) -> str:
    return next(iter(errors.values())) if len(errors) == 1 else f"{len(errors)} fields need fixing."


def _team(raw: str) -> str:
    if not raw:
        raise UserError("Give the team a name, e.g. Platform.")
    if len(raw) > 80:
        raise UserError("Keep the team name under 80 characters.")
    return raw


def _zone(raw: str) -> str:
    if not raw:
        raise UserError("Give the team's time zone, e.g. Europe/Berlin or UTC.")
    return validate_timezone(raw)


def one_day(raw: str) -> int:
    """One weekday (``mon``, ``Tuesday``...) as an ISO weekday number."""
    if not raw:
        raise UserError("Name one day, e.g. wed.")
    days = parse_days(raw)
    if len(days) != 1:
        raise UserError(f'Name one day, not "{raw}"; e.g. {WEEKDAYS[0]} or {WEEKDAYS[2]}.')
    return days[0]


def whole(raw: str, low: int, high: int, what: str, *, default: int | None = None) -> int:
    if not raw and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f'{what}: "{raw}" is not a whole number.') from None
    if not low <= value <= high:
        raise UserError(f"{what} takes a number from {low} to {high}; you gave {value}.")
    return value


def parse_threshold(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise UserError(
            f'"{raw}" is not a number; give how many answers are needed before results show '
            f"(at least {MIN_THRESHOLD})."
        ) from None
    if value < MIN_THRESHOLD:
        raise UserError(
            f"The threshold can't be under {MIN_THRESHOLD}: with fewer answers, people could "
            f"work out who answered what. Use {MIN_THRESHOLD} or more."
        )
    if value > MAX_THRESHOLD:
        raise UserError(f"Use a threshold of at most {MAX_THRESHOLD}.")
    return value


def form_values(pulse: Any, team: Any, channel: str, participants: str) -> dict[str, Any]:
    """A saved pulse as initial form values, for ``/pulse edit``."""
    return {
        "team": team.name,
        "channel": channel,
        "participants": participants,
        "timezone": team.timezone,
        "day": WEEKDAYS[pulse.day_of_week - 1],
        "time": pulse.time_of_day,
        "every_weeks": pulse.every_weeks,
        "open_days": pulse.open_days,
        "questions_per_round": pulse.questions_per_round,
        "threshold": pulse.threshold,
        "digest_day": WEEKDAYS[pulse.digest_day - 1],
        "digest_time": pulse.digest_time,
    }


def describe(pulse: Any, zone: str) -> str:
    weeks = "every week" if pulse.every_weeks == 1 else f"every {pulse.every_weeks} weeks"
    day = WEEKDAYS[pulse.day_of_week - 1].capitalize()
    digest = WEEKDAYS[pulse.digest_day - 1].capitalize()
    return (
        f"{pulse.questions_per_round} question(s) {weeks} on {day} at {pulse.time_of_day} "
        f"({zone}), open {pulse.open_days} day(s); results from {pulse.threshold} answers; "
        f"digest {digest} {pulse.digest_time}"
    )


# -- the question bank form -----------------------------------------------------------------------


def bank_form(bank: list[dict[str, Any]], state: str) -> Form:
    """The bank as editable lines, spread over as many fields as it needs plus one for more."""
    chunks = bank_chunks(bank)[: MAX_BANK_FIELDS - 1]
    fields = [
        TextField(
            f"bank{i}",
            "Questions: kind | question, one per line (kind: scale for 1-5, enps for 0-10)"
            if i == 0
            else f"Questions, continued ({i + 1})",
            required=i == 0,
            multiline=True,
            initial=chunk,
            max_length=3000,
        )
        for i, chunk in enumerate(chunks)
    ]
    fields.append(
        TextField(
            f"bank{len(chunks)}",
            "More questions (optional)",
            required=False,
            multiline=True,
            placeholder="scale | How clear were this week's priorities?",
            max_length=3000,
        )
    )
    return Form(BANK_FORM, "Pulse questions", tuple(fields), submit_label="Save", state=state)


def parse_bank_form(
    values: dict[str, str | list[str]], previous: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """The bank typed in the form's fields (in field order), keys kept for unchanged lines."""
    names = sorted(
        (n for n in values if n.startswith("bank") and n[4:].isdigit()), key=lambda n: int(n[4:])
    )
    parts = []
    for name in names:
        value = values[name]
        parts.append("\n".join(value) if isinstance(value, list) else value)
    try:
        return parse_bank("\n".join(parts), previous)
    except UserError as exc:
        raise UserError(exc.message, errors={names[0] if names else "bank0": exc.message}) from None


# -- confirming a change that removes most of the bank ---------------------------------------------


def removed_most(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> int:
    """How many of ``old``'s questions ``new`` leaves out, when that is most of them (at least
    two, and more than half); 0 otherwise. A reworded question counts as left out."""
    removed = len({q["key"] for q in old} - {q["key"] for q in new})
    return removed if removed >= 2 and removed * 2 > len(old) else 0


def confirm_form(bank: list[dict[str, Any]], before: int, removed: int, state: str) -> Form:
    """The bank form again, with what was typed, after a question: save a bank that leaves out
    most of the ``before`` questions? The bank travels in the fields, so nothing is stored
    until the answer is yes."""
    question = SelectField(
        CONFIRM_FIELD,
        f"Remove {removed} of the {before} questions?",
        (
            Choice(f"Yes, save these {len(bank)} question(s)", "yes"),
            Choice(f"No, keep the {before} questions as they are", "no"),
        ),
    )
    fields = bank_form(bank, state).fields
    return Form(
        BANK_FORM, "Pulse questions: confirm", (question, *fields), submit_label="Save", state=state
    )
