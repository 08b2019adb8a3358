"""User text on Discord stays inert whatever mark or mention it sits in (invariant 5): exactly
what each inline piece becomes, so a changed escape shows up here and not in a channel."""

from __future__ import annotations

import pytest

from adapters.discord import render
from bot.chat import Bold, ChannelMention, Code, Italic, Link, Text, UserMention, text

ZWSP = "\u200b"


def shown(value: Text) -> tuple[str, list[str]]:
    users: list[str] = []
    return render.inline(value, users), users


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Typed mass pings are broken with a zero-width space, nothing else added.
        (text("hi @everyone and @here"), f"hi @{ZWSP}everyone and @{ZWSP}here"),
        (text(Bold("@everyone")), f"**@{ZWSP}everyone**"),
        # Marks wrap escaped text; around nothing but spaces they would show, so they are left out.
        (text(Italic("x_y")), "*x\\_y*"),
        (text("a", Bold("  "), "b"), "a  b"),
        (text("a", Italic(" "), "b"), "a b"),
        # Code: one line, and nothing at all for empty code (not a pair of stray backticks).
        (text(Code("a\nb")), "`a b`"),
        (text("a", Code(""), "b"), "ab"),
        # A link's address cannot end the link early; with no label it shows as the address.
        (text(Link("https://x.test/a (b)", "doc")), "[doc](https://x.test/a%20(b%29)"),
        (text(Link("https://x.test/a")), "<https://x.test/a>"),
        # Something that is not a platform id is shown as its name, escaped, and pings nobody.
        (text(UserMention("U1", "ann_b")), "@ann\\_b"),
        (text(UserMention("U1")), "@U1"),
        (text(ChannelMention("123")), "<#123>"),
        (text(ChannelMention("gen", "general_x")), "#general\\_x"),
        (text(ChannelMention("gen")), "#gen"),
    ],
)
def test_each_piece_renders_exactly_and_pings_nobody(value: Text, expected: str) -> None:
    assert shown(value) == (expected, [])


def test_a_real_user_id_is_the_one_ping_and_is_allowed_once() -> None:
    assert shown(text(UserMention("42"), " and ", UserMention("42"))) == (
        "<@42> and <@42>",
        ["42"],
    )
