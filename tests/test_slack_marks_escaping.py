"""User text inside bold, italic and code marks is as inert on Slack as plain text (invariant 5).

A member's answer shown in bold (a name, a question's answer) must not become a ping or a link
because it sits between marks: the marks wrap the escaped text, never raw text.
"""

from __future__ import annotations

import pytest

from adapters.slack import render
from bot.chat import Bold, ChannelMention, Code, Fields, Italic, Link, message, text
from tests.fakes.slack import blockkit

TYPED = "<!channel> & <@U123> <https://evil|click>"


@pytest.mark.parametrize("mark", [Bold, Italic, Code])
def test_text_between_marks_is_escaped_and_pings_nobody(mark: type) -> None:
    [out] = render.messages(message(text("before ", mark(TYPED), " after")))
    shown = out.blocks[0]["text"]["text"]
    assert "<" not in shown and ">" not in shown
    assert "&lt;!channel&gt;" in shown and "&amp;" in shown
    assert blockkit.pings({"text": out.text, "blocks": out.blocks}) == []


def shown(*parts: object) -> str:
    [out] = render.messages(message(text(*parts)))  # type: ignore[arg-type]
    return str(out.blocks[0]["text"]["text"])


@pytest.mark.parametrize("mark", [Bold, Italic])
def test_marks_around_nothing_but_spaces_show_the_spaces(mark: type) -> None:
    # "*  *" would show stray asterisks; the spaces are kept, unmarked.
    assert shown("a", mark("  "), "b") == "a  b"


def test_a_link_shows_as_a_link_whose_address_cannot_close_it_early() -> None:
    assert shown("see ", Link("https://x.test/a<b>c|d", "the <doc> | notes")) == (
        "see <https://x.test/a%3Cb%3Ec%7Cd|the &lt;doc&gt; ¦ notes>"
    )
    assert shown(Link("https://x.test/plain")) == "<https://x.test/plain>"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (Link("javascript:alert(1)", "click <me>"), "click &lt;me&gt; (javascript:alert(1))"),
        (Link("javascript:alert(1)"), "javascript:alert(1)"),
    ],
)
def test_an_address_slack_should_not_open_is_shown_as_text(link: Link, expected: str) -> None:
    assert shown(link) == expected
    assert blockkit.pings({"text": "", "blocks": [{"text": {"text": shown(link)}}]}) == []


@pytest.mark.parametrize(
    ("mention", "expected"),
    [
        (ChannelMention("C0123ABC"), "<#C0123ABC>"),
        (ChannelMention("not-an-id", "general <3"), "#general &lt;3"),
        (ChannelMention("not-an-id"), "#not-an-id"),
    ],
)
def test_only_a_real_channel_id_becomes_a_channel_link(
    mention: ChannelMention, expected: str
) -> None:
    assert shown("in ", mention) == f"in {expected}"


def test_a_field_value_in_several_pieces_shows_them_side_by_side() -> None:
    [out] = render.messages(message(Fields((("Yesterday", text("fixed ", Bold("the <build>"))),))))
    [field] = out.blocks[0]["fields"]
    assert field["text"] == "*Yesterday*\nfixed *the &lt;build&gt;*"
