"""Message templates with named placeholders: ``Released $tag of ${repo}!``.

Safe substitution only: a placeholder is a name (``$tag``, ``${data.version}``), looked up in
the event's flat fields; no expressions, no indexing, no attribute access (string.Template's
rules, with one dot allowed for Standard Webhooks' ``data.KEY``). The result is chat-model
:class:`~bot.chat.Text` whose every part is a :class:`~bot.chat.Plain` token, which each
platform renders verbatim: nothing in a payload (``<!channel>``, ``@everyone``, a link in
markdown) can ping or format. ``$$`` is a dollar sign.
"""

from __future__ import annotations

import re
import string

from bot.chat import Plain, Text
from bot.errors import UserError

MAX_TEMPLATE_CHARS = 1000
# A value longer than this is cut (with an ellipsis): a PR title cannot flood a channel.
MAX_VALUE_CHARS = 300


class HookTemplate(string.Template):
    idpattern = r"[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_\-]+)?"
    flags = re.ASCII  # names are lower case (data.KEY keeps the sender's case)


def names(template: str) -> list[str]:
    """The placeholders in ``template``; :class:`UserError` for a malformed one."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise UserError(f"A template is at most {MAX_TEMPLATE_CHARS} characters.")
    found: list[str] = []
    for match in HookTemplate.pattern.finditer(template):
        if match.group("invalid") is not None:
            at = match.start("invalid")
            raise UserError(
                f'The template has a "$" at character {at + 1} that starts no placeholder: '
                "write `$name` or `${name}`, or `$$` for a dollar sign."
            )
        name = match.group("named") or match.group("braced")
        if name and name not in found:
            found.append(name)
    return found


def check(template: str, allowed: tuple[str, ...] | None) -> None:
    """Refuse (when the rule is saved) a template with a placeholder the event lacks.
    ``allowed`` None: Standard Webhooks (``type``, ``timestamp``, ``data.KEY``)."""
    if not template.strip():
        raise UserError("The message template is empty; e.g. `Released $tag of $repo`.")
    for name in names(template):
        if allowed is None:
            ok = name in ("type", "timestamp") or name.startswith("data.")
            choices = "type, timestamp, data.KEY"
        else:
            ok = name in allowed
            choices = ", ".join(allowed)
        if not ok:
            raise UserError(
                f'The template uses "${name}", which this event has not: use {choices}.'
            )


def render(template: str, fields: dict[str, str]) -> Text:
    """The message; :class:`KeyError` naming a field the payload lacked (Standard Webhooks'
    ``data.KEY``)."""
    parts: list[Plain] = []
    last = 0
    for match in HookTemplate.pattern.finditer(template):
        if match.start() > last:
            parts.append(Plain(template[last : match.start()]))
        last = match.end()
        if match.group("escaped") is not None:
            parts.append(Plain("$"))
            continue
        name = match.group("named") or match.group("braced")
        value = fields[name]
        if len(value) > MAX_VALUE_CHARS:
            value = value[: MAX_VALUE_CHARS - 1] + "\u2026"
        parts.append(Plain(value))
    if last < len(template):
        parts.append(Plain(template[last:]))
    return Text(tuple(parts))
