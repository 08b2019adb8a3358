"""A milestone's date as typed, the countdown days, the add and edit lines, and the celebration
card (a PNG: deterministic, taller with more people, a long name wrapped)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image

from bot.charts import render_png
from bot.chat import Chart
from bot.errors import UserError
from bot.features.milestones.dates import due_date, parse_countdown, parse_date
from bot.features.milestones.inputs import parse_add, parse_edit

TODAY = date(2026, 12, 7)  # a Monday


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2027-01-15", date(2027, 1, 15)),
        ("15 Jan", date(2027, 1, 15)),
        ("15 January 2027", date(2027, 1, 15)),
        ("Jan 15 2027", date(2027, 1, 15)),
        ("Jan 15, 2027", date(2027, 1, 15)),
        ("jan 15th", date(2027, 1, 15)),
        ("20 Dec", date(2026, 12, 20)),  # this year: not past yet
        ("1 Dec", date(2027, 12, 1)),  # past this year: next year
        ("29 Feb", date(2028, 2, 29)),  # the next leap year
        ("today", TODAY),
        ("tomorrow", date(2026, 12, 8)),
        ("friday", date(2026, 12, 11)),
        ("monday", date(2026, 12, 14)),  # the next one, not today
        ("in 3 days", date(2026, 12, 10)),
        ("in 3 weeks", date(2026, 12, 28)),
        ("in a week", date(2026, 12, 14)),
        ("in 2 months", date(2027, 2, 7)),
        ('"2027-03-01"', date(2027, 3, 1)),
    ],
)
def test_the_accepted_date_forms(typed: str, expected: date) -> None:
    assert parse_date(typed, TODAY) == expected


def test_dates_that_are_refused_say_why_and_the_accepted_forms() -> None:
    for typed in ("someday", "15/01/2027", "Smarch 3", ""):
        with pytest.raises(UserError, match=r'Type it as 2027-01-15, "15 Jan", "Jan 15 2027"'):
            due_date(typed, TODAY, "UTC")
    with pytest.raises(UserError, match="is not a day of the calendar"):
        due_date("2027-02-30", TODAY, "UTC")
    with pytest.raises(UserError, match=r"Sun 6 Dec 2026 is in the past \(today is Mon 7 Dec"):
        due_date("2026-12-06", TODAY, "Europe/Paris")
    with pytest.raises(UserError, match="more than 10 years away"):
        due_date("2040-01-01", TODAY, "UTC")
    assert due_date("today", TODAY, "UTC") == TODAY


def test_countdown_days() -> None:
    assert parse_countdown("14,7,1") == [14, 7, 1]
    assert parse_countdown("1, 7 7") == [7, 1]
    assert parse_countdown("none") == []
    for bad in ("0", "-1", "x", "366", ",", "1,2,3,4,5,6,7,8,9,10,11"):
        with pytest.raises(UserError, match="countdown"):
            parse_countdown(bad)


def test_the_add_line() -> None:
    parsed = parse_add('"Launch v2" Jan 15 2027 #launches --owner @bob --area data pipeline', TODAY)
    assert (parsed.name, parsed.date) == ("Launch v2", "Jan 15 2027")
    assert parsed.channel is not None and parsed.channel.name == "launches"
    assert parsed.owner is not None and parsed.owner.name == "bob"
    assert parsed.area == "data pipeline"
    parsed = parse_add("Launch v2 of the app in 3 weeks --with @a, @b <@U9>", TODAY)
    assert (parsed.name, parsed.date) == ("Launch v2 of the app", "in 3 weeks")
    assert [r.name for r in parsed.with_ or ()] == ["a", "b", "<@U9>"]
    assert parse_add("Sprint 3 15 Jan", TODAY).name == "Sprint 3"
    for line, problem in (
        ("", "needs a NAME and a DATE"),
        ("#team 2027-01-01", "looks like a channel or a person"),
        ("Beta 2027-01-01 #a --channel #b", "Give the channel once"),
        ("Beta 2027-01-01 --owner @a --owner @b", "--owner is given twice"),
        ("Beta 2027-01-01 --color red", "Unknown option --color"),
        ("@bob 2027-01-01", "looks like a channel or a person"),
        ("x" * 129 + " 2027-01-01", "at most 128 characters"),
        ("Beta <#C123|team>", 'When is "Beta" due'),
    ):
        with pytest.raises(UserError, match=problem):
            parse_add(line, TODAY)


def test_the_edit_line() -> None:
    name, changes = parse_edit('"Launch v2" --date in 2 weeks --countdown 14,7,1')
    assert name == "Launch v2"
    assert (changes.date, changes.countdown) == ("in 2 weeks", "14,7,1")
    name, changes = parse_edit("Launch v2")
    assert name == "Launch v2" and changes.date is None and changes.owner is None
    with pytest.raises(UserError, match="Name the milestone"):
        parse_edit("--date friday")


def card(people: tuple[str, ...], title: str = "Launch v2") -> Chart:
    return Chart(
        title=title,
        labels=(),
        series=(),
        alt="a card",
        style="card",
        period="Due Fri 15 Jan 2027 · done Thu 14 Jan 2027 (1 day early)",
        headline="Done in 38 days",
        rows=people,
    )


def test_the_celebration_card_is_a_png_that_grows_with_its_people() -> None:
    few = render_png(card(("bob", "alice")))
    assert few == render_png(card(("bob", "alice")))  # the same card, the same bytes
    many = render_png(card(tuple(f"person number {n}" for n in range(30))))
    long = render_png(card(("bob",), title="A milestone with a long name " * 6))
    sizes = []
    for data in (few, many, long):
        image = Image.open(io.BytesIO(data))
        image.verify()
        sizes.append(Image.open(io.BytesIO(data)).size)
    assert {width for width, _ in sizes} == {800}
    assert sizes[1][1] > sizes[0][1] + 100  # five rows of chips, not one
    assert sizes[2][1] > sizes[0][1]  # the name over more lines
    assert render_png(card((), title="")) != few  # nobody named: still a card
