"""A pre-filled form value that is longer than the platform's text input takes.

A message shortcut pre-fills a form with the message's text ("Report as blocker"), and a message
can be longer than a form field may hold (Slack's ``plain_text_input`` takes 3,000 characters,
Discord's text input 4,000, and the feature's own ``max_length`` may be less): the platform
refuses the whole form when the value is longer. So the value is cut, at a line or word end
when there is one near the limit, with an ellipsis, and the form says so next to the field
(:func:`fit` returns the note); never cut silently.
"""

from __future__ import annotations

ELLIPSIS = "\u2026"
# Look back this far for a line or word end to cut at, rather than in the middle of a word.
CLEAN_CUT_WINDOW = 200


def fit(value: str, limit: int) -> tuple[str, str]:
    """``value`` cut to at most ``limit`` characters, and a note saying so ("" when it fits)."""
    if len(value) <= limit:
        return value, ""
    if limit <= 1:
        return value[:limit], note(len(value), limit)
    room = limit - 1  # the ellipsis
    head = value[:room]
    for mark in ("\n", " "):
        at = head.rfind(mark)
        if at >= room - CLEAN_CUT_WINDOW and at > 0:
            head = head[:at]
            break
    head = head.rstrip()
    return head + ELLIPSIS, note(len(value), len(head))


def note(total: int, kept: int) -> str:
    """What the form shows under a cut field (at most 100 characters: Discord's description)."""
    return f"Shortened to the first {kept:,} of {total:,} characters (the most this field takes)."
