"""User text inside bold, italic and code marks is as inert on Slack as plain text (invariant 5).

A member's answer shown in bold (a name, a question's answer) must not become a ping or a link
because it sits between marks: the marks wrap the escaped text, never raw text.
"""

from __future__ import annotations

import pytest

from adapters.slack import render
from bot.chat import Bold, Code, Italic, message, text
from tests.fakes.slack import blockkit

TYPED = "<!channel> & <@U123> <https://evil|click>"


@pytest.mark.parametrize("mark", [Bold, Italic, Code])
def test_text_between_marks_is_escaped_and_pings_nobody(mark: type) -> None:
    [out] = render.messages(message(text("before ", mark(TYPED), " after")))
    shown = out.blocks[0]["text"]["text"]
    assert "<" not in shown and ">" not in shown
    assert "&lt;!channel&gt;" in shown and "&amp;" in shown
    assert blockkit.pings({"text": out.text, "blocks": out.blocks}) == []
