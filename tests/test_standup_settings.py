"""The standup setup form: every bad input gets a message next to its field; good input parses."""

from __future__ import annotations

from datetime import date

import pytest

from bot.errors import UserError
from bot.features.standups.settings import (
    describe_schedule,
    parse_date_range,
    parse_days,
    parse_duration,
    parse_questions,
    parse_setup,
    parse_time,
    setup_form,
)

GOOD = {
    "name": "Daily standup",
    "channel": "#team",
    "participants": "@alice @bob",
    "questions": "What did you do?\nWhat will you do?\nblocker: Anything blocking you?",
    "days": "mon-fri",
    "every_weeks": "1",
    "time": "09:00",
    "timezone": "member",
    "reminder": "60",
    "window": "4h",
    "report": "each",
    "options": [],
    "holidays": "",
}


def errors_of(**changes: object) -> dict[str, str]:
    with pytest.raises(UserError) as info:
        parse_setup({**GOOD, **changes})  # type: ignore[dict-item]
    return info.value.errors


def test_defaults_of_the_form_parse() -> None:
    form = setup_form()
    values = {
        f.name: (list(f.initial) if f.kind == "select" else f.initial)  # type: ignore[union-attr]
        for f in form.fields
    }
    values.update(name="Daily", channel="#team", participants="#team")
    parsed = parse_setup(values)
    assert parsed.days == [1, 2, 3, 4, 5]
    assert parsed.time_of_day == "09:00"
    assert parsed.team_timezone is None
    assert (parsed.reminder_minutes, parsed.window_minutes) == (60, 240)
    assert [q["blocker"] for q in parsed.questions] == [False, False, True]
    assert (parsed.report_mode, parsed.report_layout, parsed.group_by) == (
        "each",
        "thread",
        "person",
    )


def test_every_setting_parses() -> None:
    parsed = parse_setup(
        {
            **GOOD,
            "questions": "Done?\nmood: How do you feel?\nchoice: Area? | Frontend | Backend",
            "days": "mon,wed,fri",
            "every_weeks": "2",
            "time": "7.30",
            "timezone": "europe/berlin",
            "reminder": "off",
            "window": "1h30m",
            "report": "cutoff",
            "options": ["inline", "by_question", "tag_missing", "nudge"],
            "holidays": "2026-12-25, 2026-12-24",
        }
    )
    assert parsed.questions[1] == {
        "text": "How do you feel?",
        "kind": "mood",
        "choices": [],
        "blocker": False,
    }
    assert parsed.questions[2]["choices"] == ["Frontend", "Backend"]
    assert parsed.days == [1, 3, 5] and parsed.every_weeks == 2
    assert parsed.time_of_day == "07:30" and parsed.team_timezone == "Europe/Berlin"
    assert parsed.reminder_minutes is None and parsed.window_minutes == 90
    assert (parsed.report_layout, parsed.group_by, parsed.tag_missing, parsed.channel_nudge) == (
        "inline",
        "question",
        True,
        True,
    )
    assert parsed.holidays == ["2026-12-24", "2026-12-25"]


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        (
            {"timezone": "Europe/Pari"},
            "timezone",
            'Unknown timezone "Europe/Pari"; try Europe/Paris.',
        ),
        ({"time": "25:00"}, "time", '"25:00" is not a time of day'),
        ({"time": "9am"}, "time", "use 24-hour HH:MM"),
        ({"questions": "  \n "}, "questions", "Add at least one question."),
        (
            {"questions": "\n".join(f"Q{i}?" for i in range(11))},
            "questions",
            "At most 10 questions; you gave 11.",
        ),
        ({"questions": "Done?\nblocker:   \n"}, "questions", "Question 2 is empty."),
        ({"questions": "Done?\ndone?"}, "questions", 'Question 2 repeats "done?"'),
        ({"questions": "choice: Area? | Only one"}, "questions", "needs at least two choices"),
        (
            {"questions": "blocker: A?\nblocker: B?"},
            "questions",
            "at most one question as the blocker",
        ),
        ({"days": "mon-fry"}, "days", 'Unknown day "fry"'),
        ({"days": "fri-mon"}, "days", "runs backwards"),
        ({"every_weeks": "0"}, "every_weeks", "from 1 to 12"),
        ({"reminder": "soon"}, "reminder", "is not a length of time"),
        ({"reminder": "300"}, "reminder", "must come before the answer window closes"),
        ({"window": "2d"}, "window", "is not a length of time"),
        ({"window": "25h"}, "window", "between 1 minute and 24 hours"),
        ({"holidays": "Christmas"}, "holidays", '"Christmas" is not a date'),
        ({"name": ""}, "name", "Give the standup a name"),
        ({"participants": ""}, "participants", "Name the participants"),
        ({"channel": " "}, "channel", "Name the channel for the report"),
        ({"report": "weekly"}, "report", 'Choose "each" or "cutoff".'),
    ],
)
def test_bad_input_names_the_field(changes: dict[str, str], field: str, says: str) -> None:
    errors = errors_of(**changes)
    assert field in errors
    assert says in errors[field]


def test_several_problems_are_reported_together() -> None:
    errors = errors_of(time="25:00", timezone="Mars/Base", questions="")
    assert set(errors) == {"time", "timezone", "questions"}


def test_small_parsers() -> None:
    assert parse_days("weekdays") == [1, 2, 3, 4, 5]
    assert parse_days("daily") == list(range(1, 8))
    assert parse_days("Tuesday, thu") == [2, 4]
    assert parse_time("9:05") == "09:05"
    assert parse_duration("90") == 90 and parse_duration("2h") == 120
    assert parse_questions("blocker: Stuck?")[0]["blocker"] is True
    assert describe_schedule([1, 2, 3, 4, 5], 1, "09:00", None) == (
        "Mon-Fri at 09:00 (each member's local time)"
    )
    assert describe_schedule([1, 3], 2, "10:00", "Asia/Kolkata") == (
        "Mon, Wed, every 2 weeks at 10:00 (Asia/Kolkata)"
    )


def test_out_of_office_ranges() -> None:
    today = date(2026, 12, 1)
    assert parse_date_range("2026-12-24..2026-12-31", today) == (
        date(2026, 12, 24),
        date(2026, 12, 31),
    )
    assert parse_date_range("tomorrow", today) == (date(2026, 12, 2), date(2026, 12, 2))
    with pytest.raises(UserError, match=r"ends \(2026-12-20\) before it starts \(2026-12-24\)"):
        parse_date_range("2026-12-24..2026-12-20", today)
    with pytest.raises(UserError, match="in the past"):
        parse_date_range("2026-11-01", today)
    with pytest.raises(UserError, match="is not a date"):
        parse_date_range("next week", today)


def test_holidays_in_the_past_or_listed_twice_are_refused_with_the_reason() -> None:
    today = date(2026, 12, 1)
    with pytest.raises(UserError) as past:
        parse_setup({**GOOD, "holidays": "2026-11-30, 2026-12-24"}, today)
    assert past.value.errors["holidays"] == (
        "2026-11-30 is in the past; holidays are days to come (today is 2026-12-01)."
    )
    with pytest.raises(UserError) as twice:
        parse_setup({**GOOD, "holidays": "2026-12-24 2026-12-25 2026-12-24"}, today)
    assert twice.value.errors["holidays"] == "2026-12-24 is listed twice; list each holiday once."
    # Today is not past; one the standup already has stays (an edit form shows it as it is).
    kept = parse_setup({**GOOD, "holidays": "2026-12-01, 2026-11-02"}, today, ["2026-11-02"])
    assert kept.holidays == ["2026-11-02", "2026-12-01"]


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_a_reminder_of_zero_or_less_is_refused_and_off_is_named(raw: str) -> None:
    errors = errors_of(reminder=raw)
    assert (
        errors["reminder"]
        == f"A reminder needs 1 minute or more (not {int(raw)}); for none, write off."
    )
    assert parse_setup({**GOOD, "reminder": "off"}).reminder_minutes is None
