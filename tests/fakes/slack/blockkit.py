"""Block Kit limits as Slack enforces them, written apart from the adapter's renderer so that an
oversize payload fails the test instead of agreeing with the code that made it.

Sources: api.slack.com /reference/block-kit/blocks, /block-elements, /composition-objects,
/reference/surfaces/views (see ../shared/reference/platform-limits.md, section 3).
"""

from __future__ import annotations

import re
from typing import Any

MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
SECTION_TEXT = 3000
FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTIONS = 100
BLOCK_ID = 255
ACTION_ID = 255
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
CALLBACK_ID = 255
INPUT_LABEL = 2000
PLACEHOLDER = 150
INPUT_MAX_LENGTH = 3000
MESSAGE_TEXT = 40_000
BLOCKS_TOTAL = 13_000  # msg_blocks_too_long, observed
# Multi-selects go in section (accessory) and input blocks; actions blocks do not take them
# (the block-elements reference; slackapi/java-slack-sdk#680 gets invalid_blocks for one).
MULTI_SELECTS = frozenset(
    {
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
# Section accessories the fake checks (others are flagged as unsupported).
ACCESSORIES = frozenset({"button", "static_select", "multi_static_select"})

SPECIAL_MENTION = re.compile(r"<!(channel|here|everyone)\b[^>]*>")
USER_MENTION = re.compile(r"<@([UWB][A-Z0-9]+)(?:\|[^>]*)?>")
USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
BARE_SPECIAL = re.compile(r"(?<![\w&])@(channel|here|everyone)\b")


def _text(obj: Any, where: str, limit: int, problems: list[str], kind: str | None = None) -> None:
    if not isinstance(obj, dict) or "text" not in obj or "type" not in obj:
        problems.append(f"{where}: not a text object")
        return
    if kind is not None and obj["type"] != kind:
        problems.append(f"{where}: must be {kind}")
    if obj["type"] not in ("plain_text", "mrkdwn"):
        problems.append(f"{where}: unknown text type {obj['type']}")
    text = obj["text"]
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: empty text")
    elif len(text) > limit:
        problems.append(f"{where}: {len(text)} characters, more than {limit}")


def _option(obj: Any, where: str, problems: list[str]) -> None:
    _text(obj.get("text"), f"{where}.text", OPTION_TEXT, problems, "plain_text")
    value = obj.get("value", "")
    if not value or len(value) > OPTION_VALUE:
        problems.append(f"{where}.value: must be 1-{OPTION_VALUE} characters")


def _element(el: dict[str, Any], where: str, problems: list[str]) -> None:
    action_id = el.get("action_id", "")
    if len(action_id) > ACTION_ID:
        problems.append(f"{where}.action_id: too long")
    kind = el.get("type")
    if kind == "button":
        _text(el.get("text"), f"{where}.text", BUTTON_TEXT, problems, "plain_text")
        if len(el.get("value", "")) > BUTTON_VALUE:
            problems.append(f"{where}.value: too long")
    elif kind in ("static_select", "multi_static_select"):
        options = el.get("options", [])
        if not options or len(options) > OPTIONS:
            problems.append(f"{where}.options: must be 1-{OPTIONS}")
        for n, option in enumerate(options):
            _option(option, f"{where}.options[{n}]", problems)
        if "placeholder" in el:
            _text(el["placeholder"], f"{where}.placeholder", PLACEHOLDER, problems, "plain_text")
        values = {o.get("value") for o in options}
        chosen = el.get("initial_options", []) + (
            [el["initial_option"]] if "initial_option" in el else []
        )
        for option in chosen:
            if option.get("value") not in values:
                problems.append(f"{where}: initial option not among the options")
        if kind == "multi_static_select":
            if "initial_option" in el:
                problems.append(f"{where}: a multi-select takes initial_options")
            most = el.get("max_selected_items")
            if most is not None:
                if not isinstance(most, int) or isinstance(most, bool) or most < 1:
                    problems.append(f"{where}.max_selected_items: must be an integer of 1 or more")
                elif len(chosen) > most:
                    problems.append(f"{where}.initial_options: more than max_selected_items")
        else:
            for key in ("max_selected_items", "initial_options"):
                if key in el:
                    problems.append(f"{where}.{key}: only multi-selects have it")
    elif kind == "plain_text_input":
        max_length = el.get("max_length", INPUT_MAX_LENGTH)
        if max_length > INPUT_MAX_LENGTH:
            problems.append(f"{where}.max_length: more than {INPUT_MAX_LENGTH}")
        if len(el.get("initial_value", "")) > max_length:
            problems.append(f"{where}.initial_value: longer than max_length")
        if "placeholder" in el:
            _text(el["placeholder"], f"{where}.placeholder", PLACEHOLDER, problems, "plain_text")
    elif kind == "users_select":
        initial = el.get("initial_user")
        if initial is not None and not USER_ID.match(str(initial)):
            problems.append(f"{where}.initial_user: not a user id")
    elif kind == "conversations_select":
        for key in ("default_to_current_conversation", "response_url_enabled"):
            if key in el and not isinstance(el[key], bool):
                problems.append(f"{where}.{key}: must be a boolean")
    else:
        problems.append(f"{where}: unsupported element {kind}")


def check_blocks(blocks: list[dict[str, Any]], limit: int, problems: list[str]) -> None:
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks, more than {limit}")
    block_ids: set[str] = set()
    for n, block in enumerate(blocks):
        where = f"blocks[{n}]"
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > BLOCK_ID:
                problems.append(f"{where}.block_id: too long")
            if block_id in block_ids:
                problems.append(f"{where}.block_id: duplicate")
            block_ids.add(block_id)
        kind = block.get("type")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                _text(block["text"], f"{where}.text", SECTION_TEXT, problems)
            if "accessory" in block:
                accessory = block["accessory"]
                if accessory.get("type") not in ACCESSORIES:
                    problems.append(f"{where}.accessory: {accessory.get('type')} cannot be one")
                else:
                    _element(accessory, f"{where}.accessory", problems)
            fields = block.get("fields", [])
            if len(fields) > FIELDS:
                problems.append(f"{where}.fields: {len(fields)}, more than {FIELDS}")
            for m, item in enumerate(fields):
                _text(item, f"{where}.fields[{m}]", FIELD_TEXT, problems)
        elif kind == "header":
            _text(block.get("text"), f"{where}.text", HEADER_TEXT, problems, "plain_text")
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > CONTEXT_ELEMENTS:
                problems.append(f"{where}.elements: must be 1-{CONTEXT_ELEMENTS}")
            for m, item in enumerate(elements):
                _text(item, f"{where}.elements[{m}]", SECTION_TEXT, problems)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > ACTIONS_ELEMENTS:
                problems.append(f"{where}.elements: must be 1-{ACTIONS_ELEMENTS}")
            ids = [e.get("action_id") for e in elements if e.get("action_id")]
            if len(ids) != len(set(ids)):
                problems.append(f"{where}: duplicate action_id")
            for m, element in enumerate(elements):
                if element.get("type") in MULTI_SELECTS:
                    problems.append(
                        f"{where}.elements[{m}]: a multi-select goes in a section or an input, "
                        "not an actions block"
                    )
            for m, element in enumerate(elements):
                _element(element, f"{where}.elements[{m}]", problems)
        elif kind == "input":
            _text(block.get("label"), f"{where}.label", INPUT_LABEL, problems, "plain_text")
            _element(block.get("element", {}), f"{where}.element", problems)
            if "hint" in block:
                _text(block["hint"], f"{where}.hint", INPUT_LABEL, problems, "plain_text")
        elif kind == "image":
            if not block.get("image_url") or not block.get("alt_text"):
                problems.append(f"{where}: image needs image_url and alt_text")
        elif kind != "divider":
            problems.append(f"{where}: unsupported block {kind}")


def check_message(args: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    blocks = args.get("blocks")
    text = args.get("text") or ""
    if len(text) > MESSAGE_TEXT:
        problems.append(f"text: {len(text)} characters")
    if blocks is None:
        if not text:
            problems.append("no_text")
        return problems
    if not isinstance(blocks, list):
        return ["blocks: not a list"]
    check_blocks(blocks, MESSAGE_BLOCKS, problems)
    return problems


def check_view(view: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if view.get("type") != "modal":
        problems.append("view.type: must be modal")
    _text(view.get("title"), "view.title", VIEW_TITLE, problems, "plain_text")
    for key in ("submit", "close"):
        if key in view:
            _text(view[key], f"view.{key}", VIEW_TITLE, problems, "plain_text")
    if len(view.get("private_metadata", "")) > PRIVATE_METADATA:
        problems.append("view.private_metadata: too long")
    if len(view.get("callback_id", "")) > CALLBACK_ID:
        problems.append("view.callback_id: too long")
    check_blocks(view.get("blocks", []), MODAL_BLOCKS, problems)
    if any(b.get("type") == "input" for b in view.get("blocks", [])) and "submit" not in view:
        problems.append("view.submit: required with input blocks")
    return problems


def mrkdwn_texts(args: dict[str, Any]) -> list[tuple[str, bool]]:
    """Every text Slack would parse, with whether it is verbatim (no auto-linking)."""
    out: list[tuple[str, bool]] = []
    if args.get("text"):
        out.append((args["text"], not args.get("link_names")))

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if obj.get("type") == "mrkdwn" and isinstance(obj.get("text"), str):
                out.append((obj["text"], bool(obj.get("verbatim"))))
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(args.get("blocks") or [])
    return out


def pings(args: dict[str, Any]) -> list[str]:
    """Who a message would notify: ``channel``/``here``/``everyone`` and user ids."""
    found: list[str] = []
    for text, verbatim in mrkdwn_texts(args):
        found.extend(SPECIAL_MENTION.findall(text))
        found.extend(USER_MENTION.findall(text))
        if not verbatim:
            found.extend(BARE_SPECIAL.findall(text))
    return found
