"""The neutral chat model as Discord payloads: markdown content (or embeds), components, modals.

* Text tokens become Discord markdown; user text (:class:`Plain`) is escaped so it shows as typed
  and can never form a mention, a header or a link. Every payload carries ``allowed_mentions``
  with ``parse: []``: only :class:`UserMention` tokens (listed in ``users``) ping anyone.
* A message is one Discord message whenever it can be: content up to 2,000 characters, else
  embeds (up to 6,000). A longer post is split into several messages at block, then line,
  boundaries; a longer update (one message can only be edited as one) says how much it left out.
* Buttons and selects are persistent components: their ``custom_id`` carries the core's
  action id (and a button's value), so they work after a restart with no view state. They carry
  the guild too (``g<guild id>/``), since an interaction from a DM has none. Over 100 characters
  is a :class:`RenderError`, never a silent cut.
* Buttons go five to an action row, a select in a row of its own; a message holds five rows
  (25 buttons), and more is a :class:`RenderError` (the core never sends more), not a silent cut.
  A multi-select (:attr:`Select.max_selected` > 1) has ``min_values`` 1 and ``max_values`` up to
  ``max_selected`` (never more than its options, nor 25); its interaction carries ``values``.
* A :class:`~bot.chat.Chart`, with ``images=True`` (outbox posts and edits), is an embed whose
  image is a file sent with the message (``attachment://chart-<n>.png``: the port sends
  ``payload_json`` and ``files[n]`` as multipart/form-data); its ``alt`` is the attachment's
  ``description`` (and the embed's text too when it is longer than a description takes). Without
  (interaction replies), a chart is its title and alt text in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from discord.utils import escape_markdown

from adapters.prefill import fit
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

CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
ROWS = 5
BUTTONS_PER_ROW = 5
SELECT_OPTIONS = 25
CUSTOM_ID_LIMIT = 100
MODAL_FIELDS = 5
MODAL_TITLE = 45
LABEL_LIMIT = 45
LABEL_DESCRIPTION = 100
BUTTON_LABEL = 80
OPTION_TEXT = 100
TEXT_INPUT_MAX = 4000
PLACEHOLDER = 100
EMBED_TITLE = 256
ATTACHMENT_DESCRIPTION = 1024
DIVIDER = "\u2500" * 24
INTERNAL_PREFIX = "~"  # the adapter's own components (form steps); never a core action id
EMBED_COLOR = 0x5865F2

# Component and message types
ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT, LABEL = 1, 2, 3, 4, 18
STYLES = {"primary": 1, "default": 2, "danger": 4}
_GUILD_PREFIX = re.compile(r"^g(\d+)/")


class RenderError(ValueError):
    """The message cannot be shown on Discord as the core built it (too many components, an
    action id too long for a custom_id): a bug to fix in the core, so it fails loudly."""


# -- inline text -------------------------------------------------------------------------------


def escape(value: str) -> str:
    """User text shown verbatim: markdown escaped, ``<`` escaped (no ``<@id>`` mention can be
    typed in), ``@everyone``/``@here`` broken with a zero-width space."""
    out = escape_markdown(value).replace("<", "\\<")
    return re.sub(r"@(everyone|here)", "@\u200b\\1", out)


def _code(value: str) -> str:
    return "`" + value.replace("`", "\u02cb").replace("\n", " ") + "`" if value else ""


def inline(value: Text, users: list[str]) -> str:
    """``value`` as Discord markdown; mentioned user ids are appended to ``users``."""
    out: list[str] = []
    for part in value.parts:
        if isinstance(part, Plain):
            out.append(escape(part.text))
        elif isinstance(part, Bold):
            out.append(f"**{escape(part.text)}**" if part.text.strip() else escape(part.text))
        elif isinstance(part, Italic):
            out.append(f"*{escape(part.text)}*" if part.text.strip() else escape(part.text))
        elif isinstance(part, Code):
            out.append(_code(part.text))
        elif isinstance(part, Link):
            url = part.url.replace(")", "%29").replace(" ", "%20")
            out.append(f"[{escape(part.label)}]({url})" if part.label else f"<{url}>")
        elif isinstance(part, UserMention):
            if part.user_id.isdigit():
                out.append(f"<@{part.user_id}>")
                if part.user_id not in users:
                    users.append(part.user_id)
            else:
                out.append("@" + escape(part.fallback or part.user_id))
        elif isinstance(part, ChannelMention):
            if part.channel_id.isdigit():
                out.append(f"<#{part.channel_id}>")
            else:
                out.append("#" + escape(part.fallback or part.channel_id))
    return "".join(out)


def allowed_mentions(users: list[str]) -> dict[str, Any]:
    return {"parse": [], "users": users[:100], "replied_user": False}


# -- custom ids --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentId:
    action_id: str
    value: str = ""
    guild_id: str | None = None


def encode_custom_id(action_id: str, value: str = "", guild_id: str | None = None) -> str:
    if not action_id or action_id.startswith(INTERNAL_PREFIX) or _GUILD_PREFIX.match(action_id):
        raise RenderError(f"action id {action_id!r} cannot be a Discord custom_id")
    if value and "|" in action_id:
        raise RenderError(f"action id {action_id!r} with a value may not contain '|'")
    custom_id = (f"g{guild_id}/" if guild_id else "") + action_id + (f"|{value}" if value else "")
    if len(custom_id) > CUSTOM_ID_LIMIT:
        raise RenderError(
            f"custom_id for action {action_id!r} is {len(custom_id)} characters; Discord "
            f"allows {CUSTOM_ID_LIMIT}"
        )
    return custom_id


def decode_custom_id(custom_id: str) -> ComponentId:
    guild_id = None
    match = _GUILD_PREFIX.match(custom_id)
    if match:
        guild_id = match.group(1)
        custom_id = custom_id[match.end() :]
    action_id, _, value = custom_id.partition("|")
    return ComponentId(action_id, value, guild_id)


# -- messages ----------------------------------------------------------------------------------


@dataclass
class _Body:
    blocks: list[str]
    images: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    users: list[str]
    attachments: list[dict[str, Any]] = field(default_factory=list)


def chart_filename(n: int) -> str:
    return f"chart-{n}.png"


def chart_files(msg: Message) -> list[tuple[str, bytes]]:
    """The PNG of each chart of ``msg`` with its file name, in order: ``files[n]`` of a send
    whose ``attachments`` have ``id`` n."""
    charts = [block for block in msg.blocks if isinstance(block, Chart)]
    return [(chart_filename(n), render_png(chart)) for n, chart in enumerate(charts)]


def _chart_embed(chart: Chart, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The embed showing the ``n``-th chart's file, and the attachment that describes it."""
    embed: dict[str, Any] = {
        "image": {"url": f"attachment://{chart_filename(n)}"},
        "color": EMBED_COLOR,
    }
    if chart.title.strip():
        embed["title"] = _cut(chart.title.replace("\n", " "), EMBED_TITLE)
    if len(chart.alt) > ATTACHMENT_DESCRIPTION:  # the description is cut: show it all
        embed["description"] = _cut(chart.alt, EMBED_DESCRIPTION_LIMIT)
    attachment = {
        "id": n,
        "filename": chart_filename(n),
        "description": _cut(chart.alt, ATTACHMENT_DESCRIPTION),
    }
    return embed, attachment


def _chart_words(chart: Chart) -> str:
    title = chart.title.replace("\n", " ").strip()
    head = f"\N{BAR CHART} **{escape(title)}**\n" if title else "\N{BAR CHART} "
    return head + escape(chart.alt)


def _body(msg: Message, guild_id: str | None, images: bool = False) -> _Body:
    """``images``: charts as embeds of attached files (the send must carry them), else words."""
    users: list[str] = []
    blocks: list[str] = []
    embeds: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for block in msg.blocks:
        if isinstance(block, Header):
            blocks.append("### " + escape(block.text.replace("\n", " ")))
        elif isinstance(block, Section):
            blocks.append(inline(block.text, users))
        elif isinstance(block, Fields):
            blocks.append(
                "\n".join(
                    f"**{escape(label)}:** {inline(value, users)}" for label, value in block.items
                )
            )
        elif isinstance(block, Context):
            lines = inline(block.text, users).split("\n")
            blocks.append("\n".join(f"-# {line}" if line.strip() else line for line in lines))
        elif isinstance(block, Divider):
            blocks.append(DIVIDER)
        elif isinstance(block, Image):
            embeds.append({"image": {"url": block.url}, "footer": {"text": block.alt[:2048]}})
        elif isinstance(block, Chart):
            if images:
                embed, attachment = _chart_embed(block, len(attachments))
                embeds.append(embed)
                attachments.append(attachment)
            else:
                blocks.append(_chart_words(block))
        elif isinstance(block, Actions):
            rows.extend(_rows(block, guild_id))
    if len(rows) > ROWS:
        raise RenderError(f"{len(rows)} rows of buttons/selects; a Discord message holds {ROWS}")
    if len(embeds) > EMBEDS_PER_MESSAGE:
        raise RenderError(f"{len(embeds)} images and charts; a Discord message holds 10 embeds")
    if not blocks and not embeds and msg.summary:
        blocks.append(escape(msg.summary))
    return _Body([b for b in blocks if b], embeds, rows, users, attachments)


def _rows(block: Actions, guild_id: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    buttons: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal buttons
        if buttons:
            rows.append({"type": ACTION_ROW, "components": buttons})
            buttons = []

    for element in block.elements:
        if isinstance(element, Button):
            if len(buttons) == BUTTONS_PER_ROW:
                flush()
            buttons.append(
                {
                    "type": BUTTON,
                    "style": STYLES.get(element.style, 2),
                    "label": _cut(element.label, BUTTON_LABEL),
                    "custom_id": encode_custom_id(element.action_id, element.value, guild_id),
                }
            )
        elif isinstance(element, Select):
            flush()
            rows.append({"type": ACTION_ROW, "components": [_select(element, guild_id)]})
    flush()
    return rows


def _select(element: Select, guild_id: str | None) -> dict[str, Any]:
    if not 1 <= len(element.options) <= SELECT_OPTIONS:
        raise RenderError(
            f"select {element.action_id!r} has {len(element.options)} options; Discord allows "
            f"1 to {SELECT_OPTIONS}"
        )
    out: dict[str, Any] = {
        "type": STRING_SELECT,
        "custom_id": encode_custom_id(element.action_id, "", guild_id),
        "options": [_option(c.label, c.value) for c in element.options],
        "min_values": 1,
        "max_values": max(1, min(element.max_selected, len(element.options), SELECT_OPTIONS)),
    }
    if element.placeholder:
        out["placeholder"] = _cut(element.placeholder, 150)
    return out


def _option(label: str, value: str, default: bool = False) -> dict[str, Any]:
    if not value or len(value) > OPTION_TEXT:
        raise RenderError(f"select option value {value!r} must be 1-{OPTION_TEXT} characters")
    option: dict[str, Any] = {"label": _cut(label or value, OPTION_TEXT), "value": value}
    if default:
        option["default"] = True
    return option


def _cut(value: str, limit: int) -> str:
    """Bot-written labels only: shortened at a word where possible, with an ellipsis."""
    value = value.strip() or "-"
    if len(value) <= limit:
        return value
    head = value[: limit - 1]
    if " " in head[limit // 2 :]:
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,.;:(") + "\u2026"


def _split(blocks: list[str], limit: int) -> list[str]:
    """Chunks of at most ``limit`` characters, broken between blocks, else between lines, else
    between words; nothing is dropped."""
    pieces: list[str] = []
    for i, block in enumerate(blocks):
        lines = block.split("\n")
        for j, line in enumerate(lines):
            end = "\n\n" if j == len(lines) - 1 and i < len(blocks) - 1 else "\n"
            while len(line) > limit:
                cut = line.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                pieces.append(line[:cut])
                line = line[cut:].lstrip(" ")
            pieces.append(line + end)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if len(current) + len(piece.rstrip("\n")) > limit and current:
            chunks.append(current.rstrip("\n"))
            current = ""
        current += piece
    if current.strip() or not chunks:
        chunks.append(current.rstrip("\n"))
    return [c for c in chunks if c.strip()] or [""]


def render_message(
    msg: Message, *, guild_id: str | None = None, images: bool = False
) -> list[dict[str, Any]]:
    """The payloads of one post (usually one): content, else embeds, else several messages.
    Components, images and charts go on the last one; with ``images`` it carries
    ``attachments`` for the charts' files (:func:`chart_files`)."""
    body = _body(msg, guild_id, images)
    text = "\n\n".join(body.blocks)
    mentions = allowed_mentions(body.users)
    if len(text) <= CONTENT_LIMIT:
        return [_payload(text, body.images, body.rows, mentions, body.attachments)]
    embeds = _as_embeds(body.blocks, body.images)
    if embeds is not None:
        pings = " ".join(f"<@{u}>" for u in body.users)
        return [_payload(pings, embeds + body.images, body.rows, mentions, body.attachments)]
    chunks = _split(body.blocks, CONTENT_LIMIT)
    payloads = [_payload(chunk, [], [], mentions) for chunk in chunks]
    payloads[-1]["embeds"] = body.images
    payloads[-1]["components"] = body.rows
    if body.attachments:
        payloads[-1]["attachments"] = body.attachments
    return payloads


def render_edit(
    msg: Message, *, guild_id: str | None = None, images: bool = False
) -> dict[str, Any]:
    """One payload that replaces a message (an edit cannot add messages): past 6,000
    characters the end is left out, and the message says so. With ``images`` it always lists
    ``attachments``: the charts' new files, and none of the old ones (an edit that drops a
    chart drops its file too)."""
    body = _body(msg, guild_id, images)
    text = "\n\n".join(body.blocks)
    mentions = allowed_mentions(body.users)
    if len(text) <= CONTENT_LIMIT:
        payload = _payload(text, body.images, body.rows, mentions)
    else:
        embeds = _as_embeds(body.blocks, body.images)
        if embeds is None:
            budget = EMBED_TOTAL_LIMIT - 200 - _embed_chars(body.images)
            shown = _split(body.blocks, budget)[0]
            note = f"\u2026 {len(text) - len(shown)} more characters do not fit in one message."
            embeds = _as_embeds([shown, "-# " + note], body.images) or []
        pings = " ".join(f"<@{u}>" for u in body.users)
        payload = _payload(pings, embeds + body.images, body.rows, mentions)
    if images:
        payload["attachments"] = body.attachments
    return payload


def _embed_chars(embeds: list[dict[str, Any]]) -> int:
    """What Discord counts of embeds towards its 6,000 characters."""
    return sum(
        len(e.get("title") or "")
        + len(e.get("description") or "")
        + len((e.get("footer") or {}).get("text") or "")
        for e in embeds
    )


def _as_embeds(blocks: list[str], extra: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The text as embed descriptions, when they fit next to ``extra`` (images, charts)."""
    text = "\n\n".join(blocks)
    if len(text) + _embed_chars(extra) > EMBED_TOTAL_LIMIT - 100:
        return None
    chunks = _split(blocks, EMBED_DESCRIPTION_LIMIT)
    if len(chunks) + len(extra) > EMBEDS_PER_MESSAGE:
        return None
    return [{"description": chunk, "color": EMBED_COLOR} for chunk in chunks]


def _payload(
    content: str,
    embeds: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    mentions: dict[str, Any],
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    payload = {
        "content": content,
        "embeds": list(embeds),
        "components": list(rows),
        "allowed_mentions": mentions,
    }
    if attachments:
        payload["attachments"] = list(attachments)
    return payload


# -- modals ------------------------------------------------------------------------------------


def modal(custom_id: str, title: str, fields: list[FormField], values: dict[str, Any]) -> dict:
    """A modal of at most five fields; ``values`` (what was typed before) win over initials."""
    if not 1 <= len(fields) <= MODAL_FIELDS:
        raise RenderError(f"a modal holds 1 to {MODAL_FIELDS} fields, not {len(fields)}")
    if len(custom_id) > CUSTOM_ID_LIMIT:
        raise RenderError(f"modal custom_id {custom_id!r} is too long")
    return {
        "custom_id": custom_id,
        "title": _cut(title, MODAL_TITLE),
        "components": [_labelled(f, values.get(f.name)) for f in fields],
    }


def _labelled(form_field: FormField, typed: Any) -> dict[str, Any]:
    label = form_field.label.strip()
    out: dict[str, Any] = {"type": LABEL, "label": _cut(label, LABEL_LIMIT)}
    if len(label) > LABEL_LIMIT:
        out["description"] = _cut(label, LABEL_DESCRIPTION)
    if isinstance(form_field, TextField):
        initial = typed if isinstance(typed, str) else form_field.initial
        item: dict[str, Any] = {
            "type": TEXT_INPUT,
            "custom_id": form_field.name,
            "style": 2 if form_field.multiline else 1,
            "required": form_field.required,
            "max_length": min(form_field.max_length, TEXT_INPUT_MAX),
        }
        initial, cut = fit(initial, item["max_length"])
        if initial:
            item["value"] = initial
        if cut:
            out["description"] = _cut(cut, LABEL_DESCRIPTION)
        if form_field.placeholder:
            item["placeholder"] = _cut(form_field.placeholder, PLACEHOLDER)
    else:
        item = _select_field(form_field, typed)
    out["component"] = item
    return out


def _select_field(form_field: SelectField, typed: Any) -> dict[str, Any]:
    if not 1 <= len(form_field.options) <= SELECT_OPTIONS:
        raise RenderError(f"form select {form_field.name!r} has {len(form_field.options)} options")
    if typed is None:
        chosen = set(form_field.initial)
    else:
        chosen = {typed} if isinstance(typed, str) else set(typed)
    return {
        "type": STRING_SELECT,
        "custom_id": form_field.name,
        "options": [_option(c.label, c.value, c.value in chosen) for c in form_field.options],
        "min_values": 1 if form_field.required else 0,
        "max_values": len(form_field.options) if form_field.multiple else 1,
        "required": form_field.required,
    }


def modal_values(components: list[dict[str, Any]]) -> dict[str, str | list[str]]:
    """What a modal submit carries, by field name: text for text inputs, the chosen values for
    selects (labels, and the deprecated action rows, both understood)."""
    values: dict[str, str | list[str]] = {}
    for top in components:
        inner = [top["component"]] if "component" in top else top.get("components", [])
        for item in inner:
            name = item.get("custom_id")
            if not name:
                continue
            if "values" in item:
                values[name] = [str(v) for v in item.get("values") or []]
            else:
                values[name] = str(item.get("value") or "")
    return values
