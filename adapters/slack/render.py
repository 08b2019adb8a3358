"""The neutral chat model as Block Kit.

User text is escaped (``&``, ``<``, ``>``: the only characters Slack's mrkdwn treats as markup
openers) and every mrkdwn object is ``verbatim``, so ``<!channel>``, ``<!here>``, ``@everyone`` or
``<@U123>`` typed by a member arrive as inert text; a :class:`~bot.chat.UserMention` is the only
thing that renders as ``<@U...>``. Slack's limits (50 blocks a message, 3,000 characters a
section, 10 fields of 2,000, 25 elements an actions block, 100 blocks a modal, a modal title of 24)
are met by splitting into more sections, blocks and messages, never by cutting text away. Labels
of buttons, options and titles (chrome, not content) are shortened with an ellipsis, and a
shortened modal title is shown in full as the modal's first block.

A multi-select (:attr:`Select.max_selected` > 1) is a ``multi_static_select`` with
``max_selected_items``; Slack takes multi-selects in section and input blocks only, not in actions
blocks, so it is the accessory of a section of its own (its placeholder as the section's text), in
its place among the buttons. Its ``block_actions`` carry ``selected_options``
(:func:`adapters.slack.events.action_event` turns them into ``values``).

A :class:`~bot.chat.Chart` needs an image, and an image block needs a public URL that a
self-hosted bot does not have: the message shows the chart's title and alt text in a context
block, and :class:`adapters.slack.port.SlackPort` uploads the PNG (:func:`bot.charts.render_png`)
as a file right after the message (see there); replies and updates show the words only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.prefill import fit
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
    Header,
    Image,
    Inline,
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

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_CHARS = 3000
MAX_FIELD_CHARS = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_CHARS = 150
MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_TITLE = 24
MAX_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_INPUT_CHARS = 3000
MAX_METADATA = 3000
# Slack answers msg_blocks_too_long at about 13.2k characters of blocks; stay well below.
MAX_MESSAGE_CHARS = 11_000
MAX_FALLBACK_CHARS = 3000

_USER_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_SAFE_URL = re.compile(r"^(https?://|mailto:)[^\s]+$", re.I)


class RenderError(ValueError):
    """Content Slack cannot take even after splitting (a value over its limit)."""


def escape(value: str) -> str:
    """mrkdwn-safe text: the three characters Slack asks to escape."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(value: str, limit: int) -> str:
    """Chrome (a label, a title) that must fit: cut with an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


# -- inline text ----------------------------------------------------------------------------------


def _wrap(mark: str, value: str) -> str:
    """``*bold*``: the marks go around the text, spaces outside them, or they do not apply."""
    stripped = value.strip()
    if not stripped:
        return escape(value)
    lead = value[: len(value) - len(value.lstrip())]
    trail = value[len(value.rstrip()) :]
    return f"{lead}{mark}{escape(stripped)}{mark}{trail}"


def inline(part: Inline) -> str:
    if isinstance(part, Plain):
        return escape(part.text)
    if isinstance(part, Bold):
        return _wrap("*", part.text)
    if isinstance(part, Italic):
        return _wrap("_", part.text)
    if isinstance(part, Code):
        return _wrap("`", part.text.replace("`", "ˋ"))
    if isinstance(part, Link):
        if not _SAFE_URL.match(part.url):
            return escape(f"{part.label} ({part.url})" if part.label else part.url)
        url = part.url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
        label = escape(part.label).replace("|", "¦")
        return f"<{url}|{label}>" if label else f"<{url}>"
    if isinstance(part, UserMention):
        if _USER_ID.match(part.user_id):
            return f"<@{part.user_id}>"
        return escape("@" + (part.fallback or part.user_id))
    if isinstance(part, ChannelMention):
        if _CHANNEL_ID.match(part.channel_id):
            return f"<#{part.channel_id}>"
        return escape("#" + (part.fallback or part.channel_id))
    raise TypeError(f"unknown inline part {part!r}")


def mrkdwn(value: Text) -> str:
    return "".join(inline(part) for part in value.parts)


def _split_part(part: Inline, limit: int) -> list[Inline]:
    """One token too long for a block, as several of the same kind (at a space or a line break
    when there is one in the second half of a piece)."""
    if not isinstance(part, Plain | Bold | Italic | Code):
        return [part]
    room = limit - 4  # the marks around bold, italics and code, and their spaces
    pieces: list[Inline] = []
    rest = part.text
    while rest:
        size = 0
        end = 0
        while end < len(rest) and size + len(escape(rest[end])) <= room:
            size += len(escape(rest[end]))
            end += 1
        head = rest[:end]
        if end < len(rest):
            cut = max(head.rfind("\n"), head.rfind(" "))
            if cut > end // 2:
                head = rest[: cut + 1]
        pieces.append(type(part)(head))
        rest = rest[len(head) :]
    return pieces


def chunks(value: Text, limit: int) -> list[str]:
    """The text as mrkdwn strings of at most ``limit`` characters each, split between tokens
    (and inside long plain ones), so that no mention, link or entity is ever cut in two."""
    out: list[str] = []
    current = ""
    for token in value.parts:
        for part in _split_part(token, limit) if len(inline(token)) > limit else [token]:
            rendered = inline(part)
            if len(rendered) > limit:
                raise RenderError(f"an inline element of {len(rendered)} characters")
            if len(current) + len(rendered) > limit:
                out.append(current)
                current = ""
            current += rendered
    if current or not out:
        out.append(current)
    return [chunk if chunk.strip() else " " for chunk in out]


# -- blocks ------------------------------------------------------------------------------------


def _mrkdwn(value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": value, "verbatim": True}


def _plain(value: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": shorten(value, limit) or " ", "emoji": True}


def _button(element: Button) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(element.label, MAX_BUTTON_TEXT),
        "action_id": element.action_id,
    }
    if element.value:
        button["value"] = element.value
    if element.style != "default":
        button["style"] = element.style
    return button


def _option(label: str, value: str) -> dict[str, Any]:
    if len(value) > MAX_OPTION_VALUE:
        raise RenderError(f"an option value of {len(value)} characters (Slack takes 150)")
    return {"text": _plain(label, MAX_OPTION_TEXT), "value": value}


def _select(element: Select) -> dict[str, Any]:
    if len(element.options) > MAX_OPTIONS:
        raise RenderError(f"a select of {len(element.options)} options (Slack takes 100)")
    multiple = element.max_selected > 1
    select: dict[str, Any] = {
        "type": "multi_static_select" if multiple else "static_select",
        "action_id": element.action_id,
        "options": [_option(c.label, c.value) for c in element.options],
    }
    if multiple:
        # Never more than there are options: "choose up to 5" of 3 means all 3.
        select["max_selected_items"] = min(element.max_selected, len(element.options))
    if element.placeholder:
        select["placeholder"] = _plain(element.placeholder, MAX_PLACEHOLDER)
    return select


def _multi_select_section(element: Select) -> dict[str, Any]:
    """A multi-select in a section of its own (Slack has none in actions blocks)."""
    most = min(element.max_selected, len(element.options))
    prompt = element.placeholder.strip() or f"Choose up to {most}"
    return {
        "type": "section",
        "text": _mrkdwn(escape(shorten(prompt, MAX_SECTION_CHARS))),
        "accessory": _select(element),
    }


# Slack refuses two elements with one action_id in a block; the core gives every button of a
# poll the same id (the choice travels in the value only, so logs of action ids never show it).
# A repeat gets "~<n>" appended here, and inbound actions lose it again (core_action_id).
_REPEAT = re.compile(r"~\d+$")


def core_action_id(action_id: str) -> str:
    """The core's action id of an element :func:`_actions` made unique in its block."""
    return _REPEAT.sub("", action_id)


def _unique_ids(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    out = []
    for element in elements:
        action_id = element.get("action_id", "")
        count = seen.get(action_id, 0)
        seen[action_id] = count + 1
        out.append({**element, "action_id": f"{action_id}~{count}"} if count else element)
    return out


def _actions(block: Actions) -> Iterator[dict[str, Any]]:
    """Buttons and single selects in actions blocks of at most 25 elements, in order; each
    multi-select in a section between them."""
    elements: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        for start in range(0, len(elements), MAX_ACTION_ELEMENTS):
            chunk = _unique_ids(elements[start : start + MAX_ACTION_ELEMENTS])
            yield {"type": "actions", "elements": chunk}
        elements.clear()

    for element in block.elements:
        if isinstance(element, Select) and element.max_selected > 1:
            yield from flush()
            yield _multi_select_section(element)
        else:
            elements.append(_button(element) if isinstance(element, Button) else _select(element))
    yield from flush()


def chart_text(chart: Chart) -> Text:
    """What the message shows of a chart: its title and its alt text (the image, when it can
    be uploaded, follows the message as a file)."""
    title = chart.title.strip()
    return Text(
        (Plain(":bar_chart: "), Bold(title), Plain(": " + chart.alt))
        if title
        else (Plain(":bar_chart: " + chart.alt),)
    )


def charts_of(msg: Message) -> list[Chart]:
    return [block for block in msg.blocks if isinstance(block, Chart)]


def blocks(msg: Message) -> list[dict[str, Any]]:
    """Every block of the message, each within Slack's per-block limits (not yet split into
    messages: see :func:`messages`)."""
    out: list[dict[str, Any]] = []
    for block in msg.blocks:
        if isinstance(block, Header):
            if len(block.text) <= MAX_HEADER_CHARS:
                out.append({"type": "header", "text": _plain(block.text, MAX_HEADER_CHARS)})
            else:
                out.extend(_sections(Text((Bold(block.text),))))
        elif isinstance(block, Section):
            out.extend(_sections(block.text))
        elif isinstance(block, Fields):
            out.extend(_fields(block))
        elif isinstance(block, Context | Chart):
            shown = block.text if isinstance(block, Context) else chart_text(block)
            pieces = chunks(shown, MAX_SECTION_CHARS)
            for start in range(0, len(pieces), MAX_CONTEXT_ELEMENTS):
                elements = [_mrkdwn(p) for p in pieces[start : start + MAX_CONTEXT_ELEMENTS]]
                out.append({"type": "context", "elements": elements})
        elif isinstance(block, Divider):
            out.append({"type": "divider"})
        elif isinstance(block, Image):
            out.append(
                {"type": "image", "image_url": block.url, "alt_text": shorten(block.alt, 2000)}
            )
        elif isinstance(block, Actions):
            out.extend(_actions(block))
    return out


def _sections(value: Text) -> Iterator[dict[str, Any]]:
    for piece in chunks(value, MAX_SECTION_CHARS):
        yield {"type": "section", "text": _mrkdwn(piece)}


def _fields(block: Fields) -> Iterator[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for label, value in block.items:
        rendered = f"*{escape(label)}*\n{mrkdwn(value)}" if label else mrkdwn(value)
        if len(rendered) <= MAX_FIELD_CHARS:
            batch.append(_mrkdwn(rendered))
            if len(batch) == MAX_FIELDS:
                yield {"type": "section", "fields": batch}
                batch = []
            continue
        if batch:  # too long for a field: a section of its own, in order
            yield {"type": "section", "fields": batch}
            batch = []
        yield from _sections(Text((Bold(label), Plain("\n"), *value.parts)))
    if batch:
        yield {"type": "section", "fields": batch}


def _size(block: dict[str, Any]) -> int:
    return len(json.dumps(block, ensure_ascii=False))


@dataclass(frozen=True)
class SlackMessage:
    """One chat.postMessage worth: ``text`` is the notification / fallback."""

    text: str
    blocks: list[dict[str, Any]]


def fallback_text(msg: Message) -> str:
    fallback = msg.fallback() or next((c.title for c in charts_of(msg)), "")
    return shorten(escape(fallback), MAX_FALLBACK_CHARS) or " "


def _fits(all_blocks: list[dict[str, Any]]) -> bool:
    return len(all_blocks) <= MAX_BLOCKS and sum(_size(b) for b in all_blocks) <= MAX_MESSAGE_CHARS


def compact(all_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neighbouring text sections joined into one (up to 3,000 characters), so that a long list
    of short lines fits in fewer blocks; nothing is dropped or reordered."""
    out: list[dict[str, Any]] = []
    for block in all_blocks:
        last = out[-1] if out else None
        if (
            last is not None
            and block.get("type") == "section"
            and last.get("type") == "section"
            and set(block) == {"type", "text"}
            and set(last) == {"type", "text"}
            and len(last["text"]["text"]) + 1 + len(block["text"]["text"]) <= MAX_SECTION_CHARS
        ):
            joined = last["text"]["text"] + "\n" + block["text"]["text"]
            out[-1] = {"type": "section", "text": _mrkdwn(joined)}
            continue
        out.append(block)
    return out


def messages(msg: Message) -> list[SlackMessage]:
    """The message as one or more Slack messages, each within 50 blocks and the total size:
    short sections are joined first when that is what it takes to fit in one message."""
    all_blocks = blocks(msg)
    if not _fits(all_blocks):
        all_blocks = compact(all_blocks)
    text = fallback_text(msg)
    if not all_blocks:
        return [SlackMessage(text, [])]
    out: list[SlackMessage] = []
    current: list[dict[str, Any]] = []
    size = 0
    for block in all_blocks:
        block_size = _size(block)
        if current and (len(current) >= MAX_BLOCKS or size + block_size > MAX_MESSAGE_CHARS):
            out.append(SlackMessage(text, current))
            current, size = [], 0
        current.append(block)
        size += block_size
    out.append(SlackMessage(text, current))
    if len(out) > 1:
        total = len(out)
        out = [
            SlackMessage(f"{m.text} ({n}/{total})" if n > 1 else m.text, m.blocks)
            for n, m in enumerate(out, start=1)
        ]
    return out


# -- forms -------------------------------------------------------------------------------------


def encode_metadata(state: str, channel_id: str | None) -> str:
    """The modal's ``private_metadata``: the form's opaque state and where it was opened."""
    data = json.dumps({"s": state, "c": channel_id or ""}, separators=(",", ":"))
    if len(data) > MAX_METADATA:
        raise RenderError(f"form state of {len(state)} characters (Slack keeps 3,000)")
    return data


def decode_metadata(raw: str) -> tuple[str, str | None]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return raw, None
    if not isinstance(data, dict):
        return raw, None
    return str(data.get("s", "")), (str(data.get("c")) or None) if data.get("c") else None


def _input(field: TextField | SelectField) -> dict[str, Any]:
    element: dict[str, Any]
    cut = ""
    if isinstance(field, TextField):
        element = {
            "type": "plain_text_input",
            "action_id": field.name,
            "multiline": field.multiline,
            "max_length": min(field.max_length, MAX_INPUT_CHARS),
        }
        initial, cut = fit(field.initial, element["max_length"])
        if initial:
            element["initial_value"] = initial
        if field.placeholder:
            element["placeholder"] = _plain(field.placeholder, MAX_PLACEHOLDER)
    else:
        if len(field.options) > MAX_OPTIONS:
            raise RenderError(f"a select of {len(field.options)} options (Slack takes 100)")
        options = [_option(c.label, c.value) for c in field.options]
        by_value = {o["value"]: o for o in options}
        chosen = [by_value[v] for v in field.initial if v in by_value]
        element = {
            "type": "multi_static_select" if field.multiple else "static_select",
            "action_id": field.name,
            "options": options,
        }
        if chosen and field.multiple:
            element["initial_options"] = chosen
        elif chosen:
            element["initial_option"] = chosen[0]
    block = {
        "type": "input",
        "block_id": field.name,
        "optional": not field.required,
        "label": _plain(field.label, MAX_LABEL),
        "element": element,
    }
    if cut:
        block["hint"] = _plain(cut, MAX_LABEL)
    return block


def modal(form: Form, channel_id: str | None = None) -> dict[str, Any]:
    """The form as a modal view (``views.open``); its submission comes back as a
    ``view_submission`` with ``callback_id`` = the form id."""
    view_blocks: list[dict[str, Any]] = []
    if len(form.title) > MAX_TITLE:
        view_blocks.append({"type": "header", "text": _plain(form.title, MAX_HEADER_CHARS)})
    view_blocks.extend(_input(field) for field in form.fields)
    if len(view_blocks) > MAX_MODAL_BLOCKS:
        raise RenderError(f"a form of {len(form.fields)} fields (a modal holds 100 blocks)")
    return {
        "type": "modal",
        "callback_id": form.form_id,
        "title": _plain(form.title, MAX_TITLE),
        "submit": _plain(form.submit_label, MAX_TITLE),
        "close": _plain("Cancel", MAX_TITLE),
        "private_metadata": encode_metadata(form.state, channel_id),
        "blocks": view_blocks,
    }


def submitted_values(view: dict[str, Any]) -> dict[str, str | list[str]]:
    """What was typed and chosen in a submitted modal, by field name."""
    values: dict[str, str | list[str]] = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, actions in state.items():
        for action_id, element in actions.items():
            name = action_id or block_id
            kind = element.get("type")
            if kind == "multi_static_select":
                values[name] = [o["value"] for o in element.get("selected_options") or []]
            elif kind == "static_select":
                selected = element.get("selected_option")
                values[name] = selected["value"] if selected else ""
            else:
                values[name] = element.get("value") or ""
    return values


def form_errors(view: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """``response_action: errors`` wants block ids of the view; messages about something else
    go next to the first input, so none is lost."""
    block_ids = [b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"]
    out: dict[str, str] = {}
    stray: list[str] = []
    for name, message in errors.items():
        if name in block_ids:
            out[name] = shorten(message, MAX_LABEL)
        else:
            stray.append(message)
    if stray and block_ids:
        first = block_ids[0]
        out[first] = shorten(" ".join([*stray, out.get(first, "")]).strip(), MAX_LABEL)
    return out
