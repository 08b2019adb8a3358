"""The neutral chat model as plain terminal text.

No markup reaches the terminal: bold, italics and code become their bare text, mentions become
``@name`` / ``#channel``, links ``label (url)``. User text is printed verbatim except for control
characters, which are replaced so that nobody's message can drive the terminal. Buttons and select
options get labels made of their message's letter and their place in it (``[b1] Answer  [b2]
Skip``), by which the console presses them; the options of a multi-select are chosen together
(``b3 b5``: options 3 and 5), up to its ``max_selected``.

A :class:`~bot.chat.Chart` is one line, its title and the path of its picture: the message around
a chart already says its figures in words (a poll's bars and counts, the digest's scores), so the
console does not print them again as a text chart or as the chart's alt text (the words a screen
reader says in place of the picture). :class:`ChartFiles` writes the PNG
(:func:`bot.charts.render_png`) into the console's charts folder (``[console] charts_dir``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.charts import render_png
from bot.chat import (
    Actions,
    Bold,
    Button,
    ChannelMention,
    Chart,
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
from bot.files import write_private

log = logging.getLogger(__name__)

INDENT = "  "
DIVIDER = "─" * 40
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def clean(value: str) -> str:
    """Text safe for a terminal: control and direction-changing characters replaced."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", value.replace("\t", "    "))


@dataclass(frozen=True)
class Control:
    """Something pressable: a button, or one option of a select menu. ``key`` is what is typed
    to press it (``b2``): the message's letter and ``number``, its place in the message."""

    key: str
    number: int
    label: str
    action_id: str
    value: str
    values: tuple[str, ...] = ()
    # A multi-select's options: how many may be chosen together, and the number of its first
    # option (what tells one menu's options from another's).
    max_selected: int = 1
    menu: int = 0


@dataclass
class Rendered:
    lines: list[str] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)


class ChartFiles:
    """Writes charts as PNG files into ``folder`` (made on first use). A file is named after the
    chart's title and a hash of its data, so the same chart is the same file on every run and
    two charts never overwrite each other."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def save(self, chart: Chart) -> str:
        """Where the picture is (or why it is not)."""
        path = self.folder / chart_file_name(chart)
        try:
            if not path.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                write_private(path, render_png(chart))
        except OSError as exc:
            log.warning("console: cannot write %s: %s", path, exc)
            return f"picture not saved: {clean(exc.strerror or str(exc))} ({path})"
        return f"picture: {path}"


def chart_file_name(chart: Chart) -> str:
    """``pace-this-week-1a2b3c4d.png``: the title, and a hash of what the picture shows."""
    # ``rows`` and ``cells`` (grid charts) only when set: other charts keep the names they had.
    drawn = {
        k: v
        for k, v in asdict(chart).items()
        if k != "alt" and not (k in ("rows", "cells") and not v)
    }
    digest = hashlib.sha256(json.dumps(drawn, sort_keys=True).encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", chart.title.lower()).strip("-")[:40].rstrip("-")
    return f"{slug or 'chart'}-{digest}.png"


class Renderer:
    """Renders with the workspace's names: ``user_names`` and ``channel_names`` map platform ids
    to what people see; an unknown id falls back to the mention's own fallback, then the id.
    ``charts`` writes chart pictures (none written without it)."""

    def __init__(
        self,
        user_names: Mapping[str, str] | None = None,
        channel_names: Mapping[str, str] | None = None,
        charts: ChartFiles | None = None,
    ) -> None:
        self.user_names = user_names if user_names is not None else {}
        self.channel_names = channel_names if channel_names is not None else {}
        self.charts = charts

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

    def message(self, msg: Message, letter: str = "") -> Rendered:
        """The message's lines (each indented) and its controls, labelled ``letter`` and their
        number from 1 in the order they appear."""
        result = Rendered()
        number = 1
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
            elif isinstance(block, Chart):
                result.lines.extend(self.chart(block))
            elif isinstance(block, Actions):
                line, controls = self._actions(block, letter, number)
                number += len(controls)
                result.lines.extend(line)
                result.controls.extend(controls)
        if not result.lines and msg.summary:
            result.lines.extend(_lines(clean(msg.summary)))
        result.lines = [INDENT + line if line else "" for line in result.lines]
        return result

    def _actions(self, block: Actions, letter: str, number: int) -> tuple[list[str], list[Control]]:
        lines: list[str] = []
        buttons: list[str] = []
        controls: list[Control] = []
        for element in block.elements:
            if isinstance(element, Button):
                label = clean(element.label)
                key = f"{letter}{number}"
                controls.append(Control(key, number, label, element.action_id, element.value))
                buttons.append(f"[{key}] {label}")
                number += 1
            elif isinstance(element, Select):
                if buttons:
                    lines.append("  ".join(buttons))
                    buttons = []
                options: list[str] = []
                menu = number
                most = max(1, min(element.max_selected, len(element.options)))
                for choice in element.options:
                    label = clean(choice.label)
                    key = f"{letter}{number}"
                    controls.append(
                        Control(
                            key,
                            number,
                            label,
                            element.action_id,
                            choice.value,
                            (choice.value,),
                            max_selected=most if element.max_selected > 1 else 1,
                            menu=menu,
                        )
                    )
                    options.append(f"[{key}] {label}")
                    number += 1
                if element.max_selected > 1:
                    title = clean(element.placeholder) or f"Choose up to {most}"
                    like = f"{letter}{menu} {letter}{menu + 1}"
                    title += f" (up to {most}: their labels together, like {like})"
                else:
                    title = clean(element.placeholder) or "Choose one"
                lines.append(f"{title}: " + "  ".join(options))
        if buttons:
            lines.append("  ".join(buttons))
        return lines, controls

    def chart(self, chart: Chart) -> list[str]:
        """``[chart: Title; picture: path]``: one line, see the module's docstring."""
        title = clean(chart.title).replace("\n", " ").strip() or "untitled"
        if self.charts is None:
            return [f"[chart: {title}]"]
        return [f"[chart: {title}; {self.charts.save(chart)}]"]

    # -- forms -------------------------------------------------------------------------------

    def form_title(self, form: Form) -> list[str]:
        lines = [f"Form: {clean(form.title)}  (/cancel to close it)"]
        if any(isinstance(f, TextField) and f.multiline for f in form.fields):
            lines.append(MULTILINE_HINT)
        return lines

    def field_prompt(self, form_field: FormField) -> str:
        """The prompt for one field: ``  Label: ``, ``  Label (optional): ``, with the current
        value in brackets where an empty answer keeps it."""
        label = clean(form_field.label)
        extras: list[str] = []
        if not form_field.required and "optional" not in label.lower():
            extras.append("optional")
        if isinstance(form_field, SelectField) and form_field.multiple:
            extras.append("numbers separated by spaces")
        keep = self.initial_label(form_field)
        suffix = f" ({', '.join(extras)})" if extras else ""
        if "\n" in keep:  # several lines: one under the other, as they would be typed
            block = "".join(f"{INDENT * 2}{line}\n" for line in keep.split("\n"))
            return f"{INDENT}{label}{suffix} [\n{block}{INDENT}]: "
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
MULTILINE_HINT = (
    f"{INDENT}(An empty line keeps the value in [brackets]. Several lines in one answer: end\n"
    f'{INDENT} each line but the last with \\, or type """ on a line before them and after them.)'
)
