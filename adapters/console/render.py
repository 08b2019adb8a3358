"""The neutral chat model as plain terminal text.

No markup reaches the terminal: bold, italics and code become their bare text, mentions become
``@name`` / ``#channel``, links ``label (url)``. User text is printed verbatim except for control
characters, which are replaced so that nobody's message can drive the terminal. Buttons and select
options get numbers (``[1] Answer  [2] Skip``) by which the console presses them; the options of a
multi-select are chosen together (``3 5``: options 3 and 5), up to its ``max_selected``.

A :class:`~bot.chat.Chart` is its title, a text bar chart (``Yes  ██████████ 62%``, one bar per
label and series, for line charts too: a trend read sideways), its alt text, and the path of its
picture: :class:`ChartFiles` writes the PNG (:func:`bot.charts.render_png`) into the console's
charts folder (``[console] charts_dir``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.charts import format_value, render_png
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
BAR_WIDTH = 30  # characters of the longest bar
LABEL_WIDTH = 24  # at most, for a chart's labels (the alt text has them in full)
EIGHTHS = " ▏▎▍▌▋▊▉"
NO_VALUE = "n/a"
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
        """The line that says where the picture is (or why it is not)."""
        path = self.folder / chart_file_name(chart)
        try:
            if not path.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                write_private(path, render_png(chart))
        except OSError as exc:
            log.warning("console: cannot write %s: %s", path, exc)
            return f"[chart picture not saved: {clean(exc.strerror or str(exc))} ({path})]"
        return f"[chart picture: {path}]"


def chart_file_name(chart: Chart) -> str:
    """``pace-this-week-1a2b3c4d.png``: the title, and a hash of what the picture shows."""
    drawn = {k: v for k, v in asdict(chart).items() if k != "alt"}
    digest = hashlib.sha256(json.dumps(drawn, sort_keys=True).encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", chart.title.lower()).strip("-")[:40].rstrip("-")
    return f"{slug or 'chart'}-{digest}.png"


def chart_lines(chart: Chart) -> list[str]:
    """The chart as text: a bar per label and series (the longest ``BAR_WIDTH`` characters,
    eighths of a character for the rest), ``n/a`` where there is no value."""
    labels = [_fit(clean(label).replace("\n", " "), LABEL_WIDTH) for label in chart.labels]
    series = [
        (clean(s.name), [v if v is not None and math.isfinite(v) else None for v in s.values])
        for s in chart.series
    ]
    values = [v for _, vs in series for v in vs[: len(labels)] if v is not None]
    if not labels or not values:
        return ["No data"]
    most = max(abs(v) for v in values) or 1.0
    label_width = max(len(label) for label in labels)
    name_width = max(len(name) for name, _ in series) if len(series) > 1 else 0
    lines: list[str] = []
    for n, label in enumerate(labels):
        for k, (name, vs) in enumerate(series):
            value = vs[n] if n < len(vs) else None
            head = (label if k == 0 else "").ljust(label_width)
            if name_width:
                head += "  " + name.ljust(name_width)
            if value is None:
                lines.append(f"{head}  {NO_VALUE}")
                continue
            bar = _bar(abs(value) / most * BAR_WIDTH, negative=value < 0)
            shown = format_value(value, chart.unit)
            lines.append(f"{head}  {bar} {shown}" if bar else f"{head}  {shown}")
    return lines


def _bar(length: float, *, negative: bool) -> str:
    if negative:
        return "░" * max(1, round(length)) if length > 0 else ""
    whole, rest = int(length), int((length - int(length)) * 8)
    return "█" * whole + (EIGHTHS[rest] if rest else "")


def _fit(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


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
            elif isinstance(block, Chart):
                result.lines.extend(self.chart(block))
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
                menu = number
                most = max(1, min(element.max_selected, len(element.options)))
                for choice in element.options:
                    label = clean(choice.label)
                    controls.append(
                        Control(
                            number,
                            label,
                            element.action_id,
                            choice.value,
                            (choice.value,),
                            max_selected=most if element.max_selected > 1 else 1,
                            menu=menu,
                        )
                    )
                    options.append(f"[{number}] {label}")
                    number += 1
                if element.max_selected > 1:
                    title = clean(element.placeholder) or f"Choose up to {most}"
                    title += f" (up to {most}: numbers separated by spaces)"
                else:
                    title = clean(element.placeholder) or "Choose one"
                lines.append(f"{title}: " + "  ".join(options))
        if buttons:
            lines.append("  ".join(buttons))
        return lines, controls

    def chart(self, chart: Chart) -> list[str]:
        """Title, text bars, alt text, and where the picture is."""
        lines = [clean(chart.title)] if chart.title.strip() else []
        lines.extend(chart_lines(chart))
        if chart.alt.strip():
            lines.extend(_lines(clean(chart.alt)))
        if self.charts is not None:
            lines.append(self.charts.save(chart))
        return lines

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
