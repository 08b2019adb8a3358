"""The neutral chat model as plain terminal text.

No markup reaches the terminal: bold, italics and code become their bare text, mentions become
``@name`` / ``#channel``, links ``label (url)``. User text is printed verbatim except for control
characters, which are replaced so that nobody's message can drive the terminal. Buttons and select
options get numbers (``[1] Answer  [2] Skip``) by which the console presses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.chat import (
    Actions,
    Bold,
    Button,
    ChannelMention,
    Code,
    Context,
    Divider,
    Fields,
    Form,
    FormField,
    Header,
    Image,
    Italic,
    Link,
    Message,
    Plain,
    Section,
    Select,
    SelectField,
    Text,
    TextField,
    UserMention,
)

INDENT = "  "
DIVIDER = "─" * 40
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean(value: str) -> str:
    """Text safe for a terminal: control and direction-changing characters replaced."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", value.replace("\t", "    "))


@dataclass(frozen=True)
class Control:
    """Something pressable: a button, or one option of a select menu."""

    number: int
    label: str
    action_id: str
    value: str
    values: tuple[str, ...] = ()


@dataclass
class Rendered:
    lines: list[str] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)


class Renderer:
    """Renders with the workspace's names: ``user_names`` and ``channel_names`` map platform ids
    to what people see; an unknown id falls back to the mention's own fallback, then the id."""

    def __init__(
        self,
        user_names: Mapping[str, str] | None = None,
        channel_names: Mapping[str, str] | None = None,
    ) -> None:
        self.user_names = user_names if user_names is not None else {}
        self.channel_names = channel_names if channel_names is not None else {}

    # -- inline text -----------------------------------------------------------------------

    def user(self, user_id: str, fallback: str = "") -> str:
        return "@" + clean(self.user_names.get(user_id) or fallback or user_id)

    def channel(self, channel_id: str, fallback: str = "") -> str:
        return "#" + clean(self.channel_names.get(channel_id) or fallback or channel_id)

    def text(self, value: Text) -> str:
        out: list[str] = []
        for part in value.parts:
            if isinstance(part, UserMention):
                out.append(self.user(part.user_id, part.fallback))
            elif isinstance(part, ChannelMention):
                out.append(self.channel(part.channel_id, part.fallback))
            elif isinstance(part, Link):
                url = clean(part.url)
                out.append(f"{clean(part.label)} ({url})" if part.label else url)
            elif isinstance(part, Plain | Bold | Italic | Code):
                out.append(clean(part.text))
        return "".join(out)

    # -- messages ----------------------------------------------------------------------------

    def message(self, msg: Message, first_number: int = 1) -> Rendered:
        """The message's lines (each indented) and its controls, numbered from
        ``first_number`` in the order they appear."""
        result = Rendered()
        number = first_number
        for block in msg.blocks:
            if isinstance(block, Header):
                result.lines.extend(_lines(clean(block.text)))
            elif isinstance(block, Section | Context):
                result.lines.extend(_lines(self.text(block.text)))
            elif isinstance(block, Fields):
                for label, value in block.items:
                    body = _lines(self.text(value))
                    result.lines.append(f"{clean(label)}: {body[0]}")
                    result.lines.extend(INDENT + line for line in body[1:])
            elif isinstance(block, Divider):
                result.lines.append(DIVIDER)
            elif isinstance(block, Image):
                result.lines.append(f"[image: {clean(block.alt)}] {clean(block.url)}")
            elif isinstance(block, Actions):
                line, controls = self._actions(block, number)
                number += len(controls)
                result.lines.extend(line)
                result.controls.extend(controls)
        if not result.lines and msg.summary:
            result.lines.extend(_lines(clean(msg.summary)))
        result.lines = [INDENT + line if line else "" for line in result.lines]
        return result

    def _actions(self, block: Actions, number: int) -> tuple[list[str], list[Control]]:
        lines: list[str] = []
        buttons: list[str] = []
        controls: list[Control] = []
        for element in block.elements:
            if isinstance(element, Button):
                label = clean(element.label)
                controls.append(Control(number, label, element.action_id, element.value))
                buttons.append(f"[{number}] {label}")
                number += 1
            elif isinstance(element, Select):
                if buttons:
                    lines.append("  ".join(buttons))
                    buttons = []
                options: list[str] = []
                for choice in element.options:
                    label = clean(choice.label)
                    controls.append(
                        Control(number, label, element.action_id, choice.value, (choice.value,))
                    )
                    options.append(f"[{number}] {label}")
                    number += 1
                title = clean(element.placeholder) or "Choose one"
                lines.append(f"{title}: " + "  ".join(options))
        if buttons:
            lines.append("  ".join(buttons))
        return lines, controls

    # -- forms -------------------------------------------------------------------------------

    def form_title(self, form: Form) -> str:
        return f"Form: {clean(form.title)}  (/cancel to close it)"

    def field_prompt(self, form_field: FormField) -> str:
        """The prompt for one field: ``  Label: ``, ``  Label (optional): ``, with the current
        value in brackets where an empty answer keeps it."""
        label = clean(form_field.label)
        extras: list[str] = []
        if not form_field.required:
            extras.append("optional")
        if isinstance(form_field, SelectField) and form_field.multiple:
            extras.append("numbers separated by spaces")
        keep = self.initial_label(form_field)
        suffix = f" ({', '.join(extras)})" if extras else ""
        current = f" [{keep}]" if keep else ""
        return f"{INDENT}{label}{suffix}{current}: "

    def initial_label(self, form_field: FormField) -> str:
        if isinstance(form_field, TextField):
            return clean(form_field.initial)
        labels = {c.value: c.label for c in form_field.options}
        return ", ".join(clean(labels.get(v, v)) for v in form_field.initial)

    def field_options(self, form_field: SelectField) -> list[str]:
        return [
            f"{INDENT * 2}{n}) {clean(choice.label)}"
            for n, choice in enumerate(form_field.options, start=1)
        ]


def _lines(value: str) -> list[str]:
    return value.split("\n") if value else [""]


def message_number(message_id: str | None) -> str:
    """``m12`` -> ``12``; other ids are shown as they are."""
    if message_id and message_id.startswith("m") and message_id[1:].isdigit():
        return message_id[1:]
    return message_id or "?"


def heading(where: str, *, number: str | None = None, note: str = "") -> str:
    """``#3 → DM to @bob:``, ``#4 → #team (thread of #3):``, ``→ update of #3 in #team:``."""
    prefix = f"#{number} " if number else ""
    return f"{prefix}→ {where}{note}:"


PRIVATE_HEADING = "(only you can see this)"
