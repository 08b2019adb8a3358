"""The standup setup form: its fields, and turning what was typed into checked settings.

Every problem is reported at once, each next to its field, and nothing is saved until all are
fixed (invariant 8). Question syntax, one per line::

    What did you do since last time?
    What will you do next?
    blocker: Anything blocking you?
    mood: How are you feeling?
    choice: Which area? | Frontend | Backend | Infra
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.chat import Choice, Form, SelectField, TextField
from bot.errors import UserError
from bot.timezones import validate_timezone

FORM_ID = "standup-setup"
MAX_QUESTIONS = 10
MAX_QUESTION_CHARS = 300
DEFAULT_QUESTIONS = (
    "What did you do since last time?",
    "What will you do next?",
    "blocker: Anything blocking you?",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OPTION_CHOICES = (
    Choice("Answers inside the report message (small teams)", "inline"),
    Choice("Group the report by question", "by_question"),
    Choice("Tag people who have not answered", "tag_missing"),
    Choice("Nudge the channel at 80% of the window", "nudge"),
)
_TIME = re.compile(r"^(\d{1,2})[:.h](\d{2})$")
_DURATION = re.compile(r"^(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?$")


@dataclass
class SetupInput:
    """The checked values of a setup form (names and references still to be resolved)."""

    name: str
    channel: str
    participants: list[str]
    questions: list[dict[str, Any]]
    days: list[int]
    every_weeks: int
    time_of_day: str
    team_timezone: str | None
    reminder_minutes: int | None
    window_minutes: int
    report_mode: str
    report_layout: str
    group_by: str
    tag_missing: bool
    channel_nudge: bool
    holidays: list[str] = field(default_factory=list)


def setup_form(initial: dict[str, Any] | None = None, state: str = "") -> Form:
    """The form for ``/standup setup`` (empty) or ``/standup edit`` (``initial`` values)."""
    v = initial or {}
    return Form(
        FORM_ID,
        "Standup" if not state else "Edit standup",
        (
            TextField("name", "Name", initial=v.get("name", ""), placeholder="Daily standup"),
            TextField(
                "channel", "Report channel", initial=v.get("channel", ""), placeholder="#team"
            ),
            TextField(
                "participants",
                "Participants (@names, or #channel for everyone in it)",
                initial=v.get("participants", ""),
                placeholder="@alice @bob, or #team",
            ),
            TextField(
                "questions",
                "Questions, one per line (prefix blocker:, mood: or choice: ... | a | b)",
                multiline=True,
                initial=v.get("questions", "\n".join(DEFAULT_QUESTIONS)),
            ),
            TextField("days", "Days", initial=v.get("days", "mon-fri"), placeholder="mon-fri"),
            TextField("every_weeks", "Every N weeks", initial=str(v.get("every_weeks", "1"))),
            TextField("time", "Time (24h)", initial=v.get("time", "09:00")),
            TextField(
                "timezone",
                "Time zone: member (each member's own) or a zone for everyone",
                initial=v.get("timezone", "member"),
            ),
            TextField(
                "reminder",
                "Reminder after (minutes, or off)",
                initial=str(v.get("reminder", "60")),
            ),
            TextField("window", "Answer window", initial=v.get("window", "4h")),
            SelectField(
                "report",
                "Report",
                (
                    Choice("Post each answer as it arrives", "each"),
                    Choice("One report when the window closes", "cutoff"),
                ),
                initial=(v.get("report", "each"),),
            ),
            SelectField(
                "options",
                "Options",
                OPTION_CHOICES,
                required=False,
                multiple=True,
                initial=tuple(v.get("options", ())),
            ),
            TextField(
                "holidays",
                "Holidays (dates, comma separated)",
                required=False,
                initial=v.get("holidays", ""),
                placeholder="2026-12-25, 2027-01-01",
            ),
        ),
        submit_label="Save",
        state=state,
    )


def parse_setup(
    values: dict[str, str | list[str]], today: date | None = None, kept_holidays: Iterable[str] = ()
) -> SetupInput:
    """Check every field; raise one :class:`UserError` that names each field in error. With
    ``today`` (the submitter's local date) holidays before it are refused, except
    ``kept_holidays`` (those the standup already has)."""
    errors: dict[str, str] = {}

    def text(name: str) -> str:
        raw = values.get(name, "")
        return (" ".join(raw) if isinstance(raw, list) else raw).strip()

    def check(name: str, parse: Any) -> Any:
        try:
            return parse(text(name))
        except UserError as exc:
            errors[name] = exc.message
            return None

    name = check("name", _name)
    channel = check("channel", _channel)
    participants = check("participants", _participants)
    questions = check("questions", parse_questions)
    days = check("days", parse_days)
    every_weeks = check("every_weeks", _every_weeks)
    time_of_day = check("time", parse_time)
    zone = check("timezone", _zone)
    reminder = check("reminder", _reminder)
    window = check("window", parse_duration)
    report = text("report") or "each"
    if report not in ("each", "cutoff"):
        errors["report"] = 'Choose "each" or "cutoff".'
    raw_options = values.get("options", [])
    options = set(raw_options if isinstance(raw_options, list) else raw_options.split())
    unknown = options - {c.value for c in OPTION_CHOICES}
    if unknown:
        errors["options"] = f"Unknown option {sorted(unknown)[0]}."
    holidays = check("holidays", lambda raw: parse_holidays(raw, today, kept_holidays))
    if reminder is not None and window is not None and reminder >= window:
        errors["reminder"] = (
            f"The reminder ({reminder} min) must come before the answer window closes "
            f"({window} min)."
        )
    if errors:
        first = next(iter(errors.items()))
        summary = f"{first[1]}" if len(errors) == 1 else f"{len(errors)} fields need fixing."
        raise UserError(summary, errors=errors)
    return SetupInput(
        name=name,
        channel=channel,
        participants=participants,
        questions=questions,
        days=days,
        every_weeks=every_weeks,
        time_of_day=time_of_day,
        team_timezone=zone,
        reminder_minutes=reminder,
        window_minutes=window,
        report_mode=report,
        report_layout="inline" if "inline" in options else "thread",
        group_by="question" if "by_question" in options else "person",
        tag_missing="tag_missing" in options,
        channel_nudge="nudge" in options,
        holidays=holidays,
    )


def _name(raw: str) -> str:
    if not raw:
        raise UserError("Give the standup a name, e.g. Daily standup.")
    if len(raw) > 80:
        raise UserError("Keep the name under 80 characters.")
    return raw


def _channel(raw: str) -> str:
    if not raw:
        raise UserError("Name the channel for the report, e.g. #team.")
    return raw


def _participants(raw: str) -> list[str]:
    refs = [p for p in re.split(r"[\s,]+", raw) if p]
    if not refs:
        raise UserError("Name the participants (@alice @bob) or a channel (#team).")
    return refs


def parse_questions(raw: str) -> list[dict[str, Any]]:
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if not lines:
        raise UserError("Add at least one question.")
    if len(lines) > MAX_QUESTIONS:
        raise UserError(f"At most {MAX_QUESTIONS} questions; you gave {len(lines)}.")
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        kind, blocker, choices = "text", False, []
        prefix, sep, rest = line.partition(":")
        tag = prefix.strip().lower()
        if sep and tag in ("blocker", "mood", "choice"):
            line = rest.strip()
            if tag == "blocker":
                blocker = True
            elif tag == "mood":
                kind = "mood"
            else:
                kind = "choice"
                parts = [p.strip() for p in line.split("|")]
                line, choices = parts[0], [p for p in parts[1:] if p]
                if len(choices) < 2:
                    raise UserError(
                        f"Question {number} needs at least two choices: "
                        "choice: Which area? | Frontend | Backend"
                    )
                if len({c.lower() for c in choices}) != len(choices):
                    raise UserError(f"Question {number} has the same choice twice.")
        if not line:
            raise UserError(f"Question {number} is empty.")
        if len(line) > MAX_QUESTION_CHARS:
            raise UserError(f"Question {number} is longer than {MAX_QUESTION_CHARS} characters.")
        if line.lower() in seen:
            raise UserError(f'Question {number} repeats "{line}".')
        seen.add(line.lower())
        questions.append({"text": line, "kind": kind, "choices": choices, "blocker": blocker})
    if sum(q["blocker"] for q in questions) > 1:
        raise UserError("Mark at most one question as the blocker question.")
    return questions


def parse_days(raw: str) -> list[int]:
    """``mon-fri``, ``mon,wed,fri``, ``weekdays``, ``daily``: ISO weekdays (1 = Monday)."""
    words = raw.lower().replace(" ", "")
    if words in ("", "weekdays"):
        return [1, 2, 3, 4, 5]
    if words in ("daily", "everyday", "all"):
        return list(range(1, 8))
    days: set[int] = set()
    for part in words.split(","):
        first, sep, last = part.partition("-")
        start = _weekday(first)
        end = _weekday(last) if sep else start
        if end < start:
            raise UserError(f'"{part}" runs backwards; write it as {WEEKDAYS[end - 1]}-...')
        days.update(range(start, end + 1))
    return sorted(days)


def _weekday(word: str) -> int:
    for number, name in enumerate(WEEKDAYS, 1):
        if len(word) >= 2 and name.startswith(word[:3]):
            return number
    raise UserError(f'Unknown day "{word}"; use mon, tue, wed, thu, fri, sat, sun or mon-fri.')


def _every_weeks(raw: str) -> int:
    try:
        weeks = int(raw or "1")
    except ValueError:
        raise UserError(f'"{raw}" is not a number of weeks; use 1 for every week.') from None
    if not 1 <= weeks <= 12:
        raise UserError("Every N weeks takes a number from 1 to 12.")
    return weeks


def parse_time(raw: str) -> str:
    match = _TIME.match(raw)
    if not match:
        raise UserError(f'"{raw}" is not a time; use 24-hour HH:MM like 09:00.')
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise UserError(f'"{raw}" is not a time of day; use 00:00 to 23:59.')
    return f"{hour:02d}:{minute:02d}"


def _zone(raw: str) -> str | None:
    if raw.lower() in ("", "member", "members", "local", "each"):
        return None
    return validate_timezone(raw)


def _reminder(raw: str) -> int | None:
    if raw.lower() in ("", "off", "no", "none"):
        return None
    try:
        minutes = int(raw)
    except ValueError:
        return parse_duration(raw)
    if minutes < 1:
        raise UserError(f"A reminder needs 1 minute or more (not {minutes}); for none, write off.")
    return minutes


def parse_duration(raw: str) -> int:
    """``4h``, ``90m``, ``1h30m`` or plain minutes: a length in minutes (1 minute to 24 hours)."""
    cleaned = raw.lower().replace(" ", "")
    if cleaned.isdigit():
        minutes = int(cleaned)
    else:
        match = _DURATION.match(cleaned)
        if not cleaned or not match or not any(match.groups()):
            raise UserError(f'"{raw}" is not a length of time; use e.g. 4h, 90m or 1h30m.')
        minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    if not 1 <= minutes <= 24 * 60:
        raise UserError("The answer window must be between 1 minute and 24 hours.")
    return minutes


def parse_holidays(raw: str, today: date | None = None, kept: Iterable[str] = ()) -> list[str]:
    """Dates with no standup. With ``today``, a date before it is refused unless it is one of
    ``kept`` (already saved: an edit form shows the standup's holidays as they are)."""
    days: list[str] = []
    for part in re.split(r"[\s,;]+", raw):
        if not part:
            continue
        try:
            day = date.fromisoformat(part)
        except ValueError:
            raise UserError(f'"{part}" is not a date; use YYYY-MM-DD.') from None
        if day.isoformat() in days:
            raise UserError(f"{day} is listed twice; list each holiday once.")
        if today is not None and day < today and day.isoformat() not in set(kept):
            raise UserError(f"{day} is in the past; holidays are days to come (today is {today}).")
        days.append(day.isoformat())
    return sorted(days)


def parse_date_range(raw: str, today: date) -> tuple[date, date]:
    """``2026-12-24..2026-12-31``, one date, or ``today``/``tomorrow``, for ``/standup ooo``."""
    first, sep, last = raw.strip().partition("..")
    start = _one_date(first, today)
    end = _one_date(last, today) if sep else start
    if end < start:
        raise UserError(
            f"The range ends ({end}) before it starts ({start}); write it as {end}..{start}."
        )
    if start < today:
        raise UserError(f"{start} is in the past; an absence starts today or later.")
    return start, end


def _one_date(word: str, today: date) -> date:
    word = word.strip().lower()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise UserError(
            f'"{word}" is not a date; use YYYY-MM-DD, e.g. /standup ooo 2026-12-24..2026-12-31.'
        ) from None


def describe_schedule(days: list[int], every_weeks: int, time_of_day: str, zone: str | None) -> str:
    if days == [1, 2, 3, 4, 5]:
        when = "Mon-Fri"
    elif len(days) == 7:
        when = "every day"
    else:
        when = ", ".join(WEEKDAYS[d - 1].capitalize() for d in days)
    weeks = "" if every_weeks == 1 else f", every {every_weeks} weeks"
    where = "each member's local time" if zone is None else zone
    return f"{when}{weeks} at {time_of_day} ({where})"


def form_values(standup: Any, channel: str, participants: str) -> dict[str, Any]:
    """A saved standup as initial form values, for ``/standup edit``."""
    lines = []
    for q in standup.questions:
        if q["kind"] == "choice":
            lines.append("choice: " + " | ".join([q["text"], *q["choices"]]))
        elif q["kind"] == "mood":
            lines.append(f"mood: {q['text']}")
        else:
            lines.append(("blocker: " if q["blocker"] else "") + q["text"])
    options = []
    if standup.report_layout == "inline":
        options.append("inline")
    if standup.group_by == "question":
        options.append("by_question")
    if standup.tag_missing:
        options.append("tag_missing")
    if standup.channel_nudge:
        options.append("nudge")
    days = ",".join(WEEKDAYS[d - 1] for d in standup.days)
    return {
        "name": standup.name,
        "channel": channel,
        "participants": participants,
        "questions": "\n".join(lines),
        "days": "mon-fri" if standup.days == [1, 2, 3, 4, 5] else days,
        "every_weeks": standup.every_weeks,
        "time": standup.time_of_day,
        "timezone": standup.team_timezone or "member",
        "reminder": standup.reminder_minutes or "off",
        "window": f"{standup.window_minutes}m",
        "report": standup.report_mode,
        "options": options,
        "holidays": ", ".join(standup.holidays),
    }
