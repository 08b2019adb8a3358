"""The neutral chat model: what the core says and hears, with no platform in it.

Outgoing: :class:`Message` (blocks), :class:`Form` (a modal of typed fields), ephemeral replies and
updates of earlier messages (see :mod:`bot.delivery.outbox`). Incoming: commands, actions, form
submissions and DMs (see :mod:`bot.events`).

Text carries structure as inline tokens; each adapter renders and escapes them, so user text can
never turn into a mention by accident (invariant 5). Everything is a frozen dataclass that
round-trips through JSON (the outbox stores messages as JSON) via :data:`MESSAGE_ADAPTER`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

# --- inline text -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plain:
    """User or bot text, shown verbatim: never parsed for mentions or markup."""

    text: str
    kind: Literal["plain"] = "plain"


@dataclass(frozen=True)
class Bold:
    text: str
    kind: Literal["bold"] = "bold"


@dataclass(frozen=True)
class Italic:
    text: str
    kind: Literal["italic"] = "italic"


@dataclass(frozen=True)
class Code:
    text: str
    kind: Literal["code"] = "code"


@dataclass(frozen=True)
class Link:
    url: str
    label: str = ""
    kind: Literal["link"] = "link"


@dataclass(frozen=True)
class UserMention:
    """A deliberate mention of a member (platform user id); the only way to ping someone."""

    user_id: str
    fallback: str = ""
    kind: Literal["user"] = "user"


@dataclass(frozen=True)
class ChannelMention:
    channel_id: str
    fallback: str = ""
    kind: Literal["channel"] = "channel"


Inline = Annotated[
    Plain | Bold | Italic | Code | Link | UserMention | ChannelMention,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class Text:
    parts: tuple[Inline, ...] = ()

    def __add__(self, other: Text | str) -> Text:
        return Text(self.parts + text(other).parts)

    def plain(self) -> str:
        """A platform-free rendering (console, fallbacks, logs)."""
        out = []
        for part in self.parts:
            if isinstance(part, UserMention):
                out.append(f"@{part.fallback or part.user_id}")
            elif isinstance(part, ChannelMention):
                out.append(f"#{part.fallback or part.channel_id}")
            elif isinstance(part, Link):
                out.append(f"{part.label} <{part.url}>" if part.label else part.url)
            else:
                out.append(part.text)
        return "".join(out)

    def __len__(self) -> int:
        return len(self.plain())


def text(*parts: Text | Inline | str) -> Text:
    """Build text from pieces; plain strings become :class:`Plain` (verbatim) tokens."""
    tokens: list[Inline] = []
    for part in parts:
        if isinstance(part, Text):
            tokens.extend(part.parts)
        elif isinstance(part, str):
            if part:
                tokens.append(Plain(part))
        else:
            tokens.append(part)
    return Text(tuple(tokens))


def marked(source: str) -> Text:
    """Text from a bot-written string in which `backticked` parts are code (never user text)."""
    pieces = source.split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: keep the string as it is
        return text(source)
    return text(*(Code(p) if i % 2 else p for i, p in enumerate(pieces) if p))


# --- blocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    text: str
    kind: Literal["header"] = "header"


@dataclass(frozen=True)
class Section:
    text: Text
    kind: Literal["section"] = "section"


@dataclass(frozen=True)
class Fields:
    """Label/value pairs shown side by side where the platform can."""

    items: tuple[tuple[str, Text], ...]
    kind: Literal["fields"] = "fields"


@dataclass(frozen=True)
class Context:
    """Small print under a message."""

    text: Text
    kind: Literal["context"] = "context"


@dataclass(frozen=True)
class Divider:
    kind: Literal["divider"] = "divider"


@dataclass(frozen=True)
class Image:
    url: str
    alt: str
    kind: Literal["image"] = "image"


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: Literal["default", "primary", "danger"] = "default"
    kind: Literal["button"] = "button"


@dataclass(frozen=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True)
class Select:
    action_id: str
    options: tuple[Choice, ...]
    placeholder: str = ""
    # More than 1: a multi-select of up to this many options (the action carries ``values``).
    max_selected: int = 1
    kind: Literal["select"] = "select"


@dataclass(frozen=True)
class Actions:
    elements: tuple[Annotated[Button | Select, Field(discriminator="kind")], ...]
    kind: Literal["actions"] = "actions"


@dataclass(frozen=True)
class ChartSeries:
    name: str
    values: tuple[float | None, ...]  # one per label; None where there is no value
    # How many answers each value stands for, written next to it ("62% (8)"); () for none.
    counts: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class Chart:
    """A chart that the adapter sends as a PNG image, drawn by :func:`bot.charts.render_png`
    (so the outbox keeps the data, not the picture). ``alt`` says the same in words, for screen
    readers and wherever no image can go.

    Under the title the chart names ``team``, ``period`` and the number of ``answers``; a
    ``headline`` (``eNPS +20``, ``Average 3.6 of 5``) is the one figure it leads with. ``scale``
    is the value axis, minimum to maximum (1 to 5, -100 to 100, 0 to 100 %): a bar starts at the
    scale's minimum (at zero when zero is inside it), so a 3.5 out of 5 fills five eighths of
    its axis; without a scale the axis is drawn from the data (and zero).

    ``style="grid"`` is a table, not a plot: ``rows`` down the left, ``labels`` across the top,
    and ``cells`` the short text in each (one tuple per row, one string per label), e.g. the
    RACI matrix; ``series`` is empty then.

    ``style="card"`` is a celebration card, not a plot: ``title`` big on a coloured band, the
    ``period`` (the dates) and the ``headline`` under it, and ``rows`` as the people, one chip
    each (a milestone done, :mod:`bot.charts.card`).

    ``style="heatmap"`` is ``rows`` (members) by ``labels`` (days), ``cells`` a status each
    (:mod:`bot.charts.heatmap`); ``style="multiples"`` is a small panel per series on shared
    axes (:mod:`bot.charts.multiples`)."""

    title: str
    labels: tuple[str, ...]
    series: tuple[ChartSeries, ...]
    alt: str
    style: Literal["bar", "line", "grid", "card", "heatmap", "multiples"] = "bar"
    unit: str = ""  # after each value, e.g. "%"
    team: str = ""
    period: str = ""  # "week of 2 Mar", "round of Mon 9 Mar", "2 Mar to 23 Mar"
    answers: int | None = None
    headline: str = ""
    scale: tuple[float, float] | None = None
    rows: tuple[str, ...] = ()
    cells: tuple[tuple[str, ...], ...] = ()
    kind: Literal["chart"] = "chart"


Block = Annotated[
    Header | Section | Fields | Context | Divider | Image | Actions | Chart,
    Field(discriminator="kind"),
]


@dataclass(frozen=True)
class Message:
    blocks: tuple[Block, ...]
    # Notification / fallback text; derived from the blocks when empty.
    summary: str = ""

    def fallback(self) -> str:
        if self.summary:
            return self.summary
        for block in self.blocks:
            if isinstance(block, Header):
                return block.text
            if isinstance(block, Section):
                return block.text.plain()
        return ""


def message(*items: Block | Text | str, summary: str = "") -> Message:
    """A message from blocks; bare text becomes a :class:`Section`."""
    blocks: list[Block] = []
    for item in items:
        if isinstance(item, Text | str):
            blocks.append(Section(text(item)))
        else:
            blocks.append(item)
    return Message(tuple(blocks), summary)


# --- forms -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextField:
    name: str
    label: str
    required: bool = True
    multiline: bool = False
    initial: str = ""
    placeholder: str = ""
    max_length: int = 3000
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class SelectField:
    name: str
    label: str
    options: tuple[Choice, ...]
    required: bool = True
    multiple: bool = False
    initial: tuple[str, ...] = ()
    kind: Literal["select"] = "select"


FormField = Annotated[TextField | SelectField, Field(discriminator="kind")]


@dataclass(frozen=True)
class Form:
    """A modal. ``form_id`` routes the submission back; ``state`` rides along opaque."""

    form_id: str
    title: str
    fields: tuple[FormField, ...]
    submit_label: str = "Save"
    state: str = ""


# --- replies to an inbound event -------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A private answer to the person who acted (ephemeral in a channel, or in their DM)."""

    message: Message


@dataclass(frozen=True)
class OpenForm:
    form: Form


@dataclass(frozen=True)
class FormErrors:
    """Keep the form open and show these messages next to the named fields."""

    errors: dict[str, str] = field(default_factory=dict)


Response = Reply | OpenForm | FormErrors | None


def reply(*items: Block | Text | str) -> Reply:
    return Reply(message(*items))


MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
FORM_ADAPTER: TypeAdapter[Form] = TypeAdapter(Form)
BLOCK_ADAPTER: TypeAdapter[Block] = TypeAdapter(Block)


class MessageDumper:
    """``MESSAGE_ADAPTER.dump_python(msg, mode="json")`` for many similar messages (a prompt
    DM to each of 5,000 members): a block seen before is dumped once and its JSON reused.
    Blocks are frozen, so an equal block dumps to equal JSON."""

    def __init__(self) -> None:
        self._blocks: dict[object, object] = {}
        self._shells: dict[str, dict[str, object]] = {}  # the message without its blocks

    def dump(self, msg: Message) -> dict[str, object]:
        shell = self._shells.get(msg.summary)
        if shell is None:
            shell = MESSAGE_ADAPTER.dump_python(Message((), msg.summary), mode="json")
            self._shells[msg.summary] = shell
        return {**shell, "blocks": [self._block(b) for b in msg.blocks]}

    def _block(self, block: Block) -> object:
        try:
            found = self._blocks.get(block)
        except TypeError:  # a block holding something unhashable: dumped every time
            return BLOCK_ADAPTER.dump_python(block, mode="json")
        if found is None:
            found = self._blocks[block] = BLOCK_ADAPTER.dump_python(block, mode="json")
        return found
