"""The neutral model as Discord payloads: escaping, mentions, splitting, components, modals."""

from __future__ import annotations

import pytest

from adapters.discord import render
from adapters.discord.forms import steps_of
from bot.chat import (
    Actions,
    Bold,
    Button,
    Choice,
    Code,
    Context,
    Fields,
    Header,
    Link,
    Section,
    Select,
    SelectField,
    TextField,
    UserMention,
    message,
    text,
)
from bot.features.standups.settings import setup_form
from tests.fakes.discord import limits


def test_user_text_is_shown_verbatim_and_pings_nobody() -> None:
    msg = message(text("Done: ", "**not bold** @everyone @here <@123> # not a header"))
    [payload] = render.render_message(msg)
    assert payload["allowed_mentions"] == {"parse": [], "users": [], "replied_user": False}
    content = payload["content"]
    assert "\\*\\*not bold\\*\\*" in content
    assert "@\u200beveryone" in content and "@\u200bhere" in content
    assert "\\<@123>" in content


def test_a_meant_mention_pings_only_that_member() -> None:
    msg = message(
        Header("Report"),
        Section(text(UserMention("42", "bob"), " has not answered; ", Bold("soon"))),
        Fields((("Done", text(Code("a`b"))),)),
        Context(text(Link("https://example.com/x y", "docs"))),
    )
    [payload] = render.render_message(msg)
    assert payload["allowed_mentions"]["users"] == ["42"]
    assert payload["content"].splitlines()[0] == "### Report"
    assert "<@42> has not answered; **soon**" in payload["content"]
    assert "**Done:** `a\u02cbb`" in payload["content"]
    assert "-# [docs](https://example.com/x%20y)" in payload["content"]


def test_long_messages_use_embeds_then_split_cleanly() -> None:
    lines = [f"line {i:04d} " + "x" * 80 for i in range(40)]  # ~3,600 characters
    [payload] = render.render_message(message(text("\n".join(lines))))
    assert payload["content"] == ""
    assert sum(len(e["description"]) for e in payload["embeds"]) >= 3500
    assert not limits.check_message(payload).errors

    blocks = [text("\n".join(lines)) for _ in range(3)]  # ~11,000: several messages
    msg = message(*blocks, Actions((Button("Answer", "a:1"),)))
    payloads = render.render_message(msg)
    assert len(payloads) >= 6
    for payload in payloads:
        assert not limits.check_message(payload).errors
        assert len(payload["content"]) <= 2000
        assert all(line.startswith("line ") for line in payload["content"].split("\n") if line)
    assert payloads[-1]["components"] and not payloads[0]["components"]
    shown = "\n".join(p["content"] for p in payloads)
    assert all(f"line {i:04d}" in shown for i in range(40))

    edit = render.render_edit(message(*blocks))
    assert not limits.check_message(edit, edit=True).errors
    assert "more characters do not fit" in edit["embeds"][-1]["description"]


def test_components_within_discords_limits_or_a_loud_error() -> None:
    buttons = tuple(Button(f"B{i}", f"b:{i}") for i in range(7))
    [payload] = render.render_message(message("x", Actions(buttons)))
    assert [len(row["components"]) for row in payload["components"]] == [5, 2]
    assert not limits.check_message(payload).errors
    with pytest.raises(render.RenderError, match="rows"):
        render.render_message(
            message("x", Actions(tuple(Button("B", f"b:{i}") for i in range(26))))
        )
    with pytest.raises(render.RenderError, match="custom_id"):
        render.render_message(message("x", Actions((Button("B", "a:" + "1" * 99),))))
    options = tuple(Choice(str(i), str(i)) for i in range(26))
    with pytest.raises(render.RenderError, match="options"):
        render.render_message(message("x", Actions((Select("tz", options),))))
    select = Select("tz", options[:25], placeholder="Your time zone")
    [payload] = render.render_message(message("x", Actions((Button("A", "a:1"), select))))
    assert [r["components"][0]["type"] for r in payload["components"]] == [2, 3]
    assert not limits.check_message(payload).errors


def test_long_forms_become_steps_of_five_fields_within_limits() -> None:
    form = setup_form()
    steps = steps_of(list(form.fields))
    assert [len(s) for s in steps] == [5, 5, 3]
    for i, step in enumerate(steps):
        modal = render.modal(f"~form:tok:{i}", f"{form.title} ({i + 1}/3)", step, {})
        assert not limits.check_modal(modal).errors, modal
    participants = render.modal("m", "T", steps[0], {})["components"][2]
    assert len(participants["label"]) <= 45
    assert participants["description"].startswith("Participants (@names")


def test_modal_fields_keep_what_was_typed() -> None:
    fields = [
        TextField("a", "A", initial="start"),
        SelectField("b", "B", (Choice("One", "1"), Choice("Two", "2")), multiple=True),
    ]
    modal = render.modal("m", "T", fields, {"a": "typed", "b": ["2"]})
    assert modal["components"][0]["component"]["value"] == "typed"
    options = modal["components"][1]["component"]["options"]
    assert [o.get("default", False) for o in options] == [False, True]
    submitted = [
        {"type": 18, "component": {"type": 4, "custom_id": "a", "value": "x"}},
        {"type": 1, "components": [{"type": 4, "custom_id": "c", "value": "old style"}]},
        {"type": 18, "component": {"type": 3, "custom_id": "b", "values": ["1", "2"]}},
    ]
    assert render.modal_values(submitted) == {"a": "x", "c": "old style", "b": ["1", "2"]}
