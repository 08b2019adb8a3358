"""The neutral chat model as Adaptive Cards (schema 1.5, what Teams renders).

* A message is one card, or several when its JSON would pass :data:`CARD_BYTES` (Teams refuses
  an activity over about 28 KB): it is split between blocks, never cut.
* Text: emphasis and links become the card's markdown; user text (:class:`Plain`) is shown as
  typed, with markdown characters escaped and ``<at>`` defused, so it can neither format nor
  mention. A :class:`UserMention` is ``<at>name</at>`` with a mention entity in the card's
  ``msteams.entities`` (Teams pings only what an entity names).
* Buttons are ``Action.Execute`` with the core's action id (and value) in ``data``; a select is
  an ``Input.ChoiceSet`` with its own "Choose" button. A form is a card of inputs (text,
  multi-line, choice sets) whose submit button carries the form id and state; field errors are
  shown under their inputs when the card is refreshed.
* A chart shows as its title and alt text: Teams needs a public URL for an image, which a
  self-hosted bot may not have.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from adapters.teams.ids import object_id
from bot.chat import (
    FORM_ADAPTER,
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

CARD = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
# Teams refuses an activity over about 28 KB; the card gets this much, the envelope the rest.
CARD_BYTES = 24 * 1024
VERB = "syncup"
# What formats anywhere in a TextBlock's markdown, and what starts a list at a line's start.
_MARKDOWN = re.compile(r"([\\*_~`\[\]])")
_LIST = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)", re.MULTILINE)
_AT = re.compile(r"<(/?)at>", re.IGNORECASE)


class RenderError(Exception):
    """A single block that cannot fit in a card on its own."""


class Mentions:
    """The mention entities a card's text names (deduplicated by user)."""

    def __init__(self) -> None:
        self.entities: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def add(self, user_id: str, name: str) -> str:
        shown = f"<at>{name}</at>"
        if user_id not in self._seen:
            self._seen.add(user_id)
            self.entities.append(
                {
                    "type": "mention",
                    "text": shown,
                    "mentioned": {"id": object_id(user_id), "name": name},
                }
            )
        return shown


def escape(raw: str) -> str:
    """User text as typed: no markdown, no mention markup."""
    escaped = _MARKDOWN.sub(r"\\\1", _AT.sub(r"‹\1at›", raw))
    return _LIST.sub(_unlisted, escaped)


def _unlisted(match: re.Match[str]) -> str:
    """``- x`` and ``2. x`` at a line's start shown as typed, not as a list."""
    marker = match.group(2)
    shown = marker[:-1] + "\\." if marker.endswith(".") else "\\" + marker
    return match.group(1) + shown


def render_text(value: Text, mentions: Mentions) -> str:
    out: list[str] = []
    for part in value.parts:
        if isinstance(part, Plain):
            out.append(escape(part.text))
        elif isinstance(part, Bold):
            out.append(f"**{escape(part.text)}**")
        elif isinstance(part, Italic):
            out.append(f"_{escape(part.text)}_")
        elif isinstance(part, Code):
            out.append(escape(part.text))
        elif isinstance(part, Link):
            label = escape(part.label or part.url)
            out.append(f"[{label}]({part.url})")
        elif isinstance(part, UserMention):
            out.append(mentions.add(part.user_id, part.fallback or part.user_id))
        elif isinstance(part, ChannelMention):
            out.append(escape(f"#{part.fallback or part.channel_id}"))
    return "".join(out)


def _text_block(value: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": value, "wrap": True, **style}


def action_data(action_id: str, value: str = "") -> dict[str, Any]:
    return {"syncup": "action", "action_id": action_id, "value": value}


def _button(button: Button) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "title": button.label,
        "verb": VERB,
        "data": action_data(button.action_id, button.value),
    }
    if button.style == "primary":
        action["style"] = "positive"
    elif button.style == "danger":
        action["style"] = "destructive"
    return action


def _select(select: Select) -> list[dict[str, Any]]:
    input_id = f"select:{select.action_id}"
    choice = {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "placeholder": select.placeholder or "Choose…",
        "isMultiSelect": select.max_selected > 1,
        "style": "compact",
        "choices": [{"title": c.label, "value": c.value} for c in select.options],
    }
    button = {
        "type": "Action.Execute",
        "title": "Choose",
        "verb": VERB,
        "data": {"syncup": "select", "action_id": select.action_id, "input": input_id},
    }
    return [choice, {"type": "ActionSet", "actions": [button]}]


def _elements(block: Any, mentions: Mentions) -> list[dict[str, Any]]:
    if isinstance(block, Header):
        return [_text_block(escape(block.text), size="Large", weight="Bolder")]
    if isinstance(block, Section):
        return [_text_block(render_text(block.text, mentions))]
    if isinstance(block, Fields):
        facts = [
            {"title": escape(title), "value": render_text(value, mentions)}
            for title, value in block.items
        ]
        return [{"type": "FactSet", "facts": facts}]
    if isinstance(block, Context):
        return [_text_block(render_text(block.text, mentions), size="Small", isSubtle=True)]
    if isinstance(block, Divider):
        return [{"type": "Container", "separator": True, "items": []}]
    if isinstance(block, Image):
        return [{"type": "Image", "url": block.url, "altText": block.alt}]
    if isinstance(block, Chart):
        return [
            _text_block(escape(block.title), weight="Bolder"),
            _text_block(escape(block.alt), isSubtle=True),
        ]
    if isinstance(block, Actions):
        out: list[dict[str, Any]] = []
        buttons = [_button(e) for e in block.elements if isinstance(e, Button)]
        for element in block.elements:
            if isinstance(element, Select):
                out.extend(_select(element))
        if buttons:
            out.append({"type": "ActionSet", "actions": buttons})
        return out
    raise RenderError(f"no Teams rendering for {type(block).__name__}")


def card(body: list[dict[str, Any]], mentions: Mentions | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION}
    out["body"] = body
    out["msteams"] = {"width": "Full"}
    if mentions is not None and mentions.entities:
        out["msteams"]["entities"] = mentions.entities
    return out


def size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def render_message(msg: Message) -> list[dict[str, Any]]:
    """The cards a message goes out as: one, or several split between blocks."""
    cards: list[dict[str, Any]] = []
    body: list[dict[str, Any]] = []
    mentions = Mentions()
    for block in msg.blocks:
        own = Mentions()
        elements = _elements(block, own)
        if size(card(elements, own)) > CARD_BYTES:
            raise RenderError(f"one {type(block).__name__} is over {CARD_BYTES} bytes")
        trial = Mentions()
        trial.entities = mentions.entities + [e for e in own.entities if e not in mentions.entities]
        if body and size(card(body + elements, trial)) > CARD_BYTES:
            cards.append(card(body, mentions))
            body, mentions = [], Mentions()
            trial = own
        body.extend(elements)
        mentions.entities = trial.entities
    if body or not cards:
        cards.append(card(body or [_text_block(escape(msg.fallback()) or " ")], mentions))
    return cards


def attachment(content: dict[str, Any]) -> dict[str, Any]:
    return {"contentType": CARD, "content": content}


def activity(content: dict[str, Any], summary: str = "") -> dict[str, Any]:
    """A message activity carrying one card (``summary`` is the notification text)."""
    out: dict[str, Any] = {"type": "message", "attachments": [attachment(content)]}
    if summary:
        out["summary"] = summary[:250]
    entities = content.get("msteams", {}).get("entities")
    if entities:
        out["entities"] = entities
    return out


# --- forms ------------------------------------------------------------------------------------


def form_data(form: Form) -> dict[str, Any]:
    """The whole form rides in its submit button's data: Teams sends the data back with the
    inputs, and a refresh with errors re-renders the form from it (nothing kept in memory)."""
    return {"syncup": "form", "form": FORM_ADAPTER.dump_python(form, mode="json")}


def submitted_form(data: dict[str, Any]) -> Form | None:
    try:
        return FORM_ADAPTER.validate_python(data.get("form"))
    except ValueError:
        return None


def with_values(form: Form, values: dict[str, str | list[str]]) -> Form:
    """The form as submitted (its inputs keep what was typed when it is shown again)."""
    fields: list[TextField | SelectField] = []
    for field in form.fields:
        value = values.get(field.name)
        if isinstance(field, TextField) and isinstance(value, str):
            fields.append(replace(field, initial=value))
        elif isinstance(field, SelectField) and value is not None:
            chosen = (value,) if isinstance(value, str) else tuple(value)
            fields.append(replace(field, initial=tuple(v for v in chosen if v)))
        else:
            fields.append(field)
    return replace(form, fields=tuple(fields))


def render_form(form: Form, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """A form as a card of inputs; ``errors`` shows under the named fields (a refresh)."""
    errors = errors or {}
    body: list[dict[str, Any]] = [_text_block(escape(form.title), size="Medium", weight="Bolder")]
    for field in form.fields:
        if isinstance(field, TextField):
            element: dict[str, Any] = {
                "type": "Input.Text",
                "id": field.name,
                "label": field.label,
                "isRequired": field.required,
                "isMultiline": field.multiline,
                "maxLength": field.max_length,
                "value": field.initial,
            }
            if field.placeholder:
                element["placeholder"] = field.placeholder
        elif isinstance(field, SelectField):
            element = {
                "type": "Input.ChoiceSet",
                "id": field.name,
                "label": field.label,
                "isRequired": field.required,
                "isMultiSelect": field.multiple,
                "style": "compact" if not field.multiple else "expanded",
                "choices": [{"title": c.label, "value": c.value} for c in field.options],
                "value": ",".join(field.initial),
            }
        else:  # pragma: no cover - the model has no other field kind
            raise RenderError(f"no Teams input for {type(field).__name__}")
        if field.required:
            element["errorMessage"] = f"{field.label} is required."
        body.append(element)
        if field.name in errors:
            body.append(_text_block(f"⚠ {escape(errors[field.name])}", color="Attention"))
    unknown = [message for name, message in errors.items() if name not in _names(form)]
    for message in unknown:
        body.append(_text_block(f"⚠ {escape(message)}", color="Attention"))
    submit = {
        "type": "Action.Execute",
        "title": form.submit_label,
        "verb": VERB,
        "data": form_data(form),
        "style": "positive",
    }
    body.append({"type": "ActionSet", "actions": [submit]})
    out = card(body)
    if size(out) > CARD_BYTES:
        raise RenderError(f"the form {form.form_id} is over {CARD_BYTES} bytes")
    return out


def _names(form: Form) -> set[str]:
    return {f.name for f in form.fields}


def form_values(form: Form, data: dict[str, Any]) -> dict[str, str | list[str]]:
    """The inputs of a submitted form card (Teams joins a multi-select's values with commas)."""
    values: dict[str, str | list[str]] = {}
    for field in form.fields:
        raw = data.get(field.name, "")
        raw = raw if isinstance(raw, str) else str(raw)
        if isinstance(field, SelectField) and field.multiple:
            values[field.name] = [v for v in raw.split(",") if v]
        else:
            values[field.name] = raw
    return values
