"""Discord's payload limits, checked the way Discord checks them: a payload that breaks one gets
a 400 with code 50035 ("Invalid Form Body") and the offending paths, so an oversize payload fails
the test that produced it.

Numbers from ``discord-api-docs`` (see ``../shared/reference/platform-limits.md``): message
content 2,000; embeds 10 per message, 6,000 characters in total (title 256, description 4,096,
25 fields of 256/1,024, footer 2,048); 5 action rows of 5 buttons or 1 select; select 25 options
(label/value 100, placeholder 150); custom_id 1-100 and unique; button label 80; modal title 45,
1-5 top-level components, label 45 (description 100), text input max_length/value 4,000,
placeholder 100; nonce 25; allowed_mentions lists 100; command name 1-32 lowercase, description
1-100, 25 options and 25 choices; select ``min_values`` 0-25 and ``max_values`` 1-25, neither
more than its options; attachments: 10 files a message (each at most 10 MiB, the default upload
limit: the server answers 413 / 40005 past it), a description of at most 1,024, each
``files[n]`` listed once in ``attachments`` and each ``attachment://`` an embed names sent with
the message.
"""

from __future__ import annotations

import re
from typing import Any

CONTENT = 2000
EMBEDS = 10
EMBED_TOTAL = 6000
ROWS = 5
BUTTONS_PER_ROW = 5
SELECT_OPTIONS = 25
CUSTOM_ID = 100
MODAL_TOP_LEVEL = 5
NONCE = 25
FILES = 10
FILE_BYTES = 10 * 1024 * 1024
ATTACHMENT_DESCRIPTION = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
USER_COMMAND, MESSAGE_COMMAND = 2, 3
CONTEXT_MENU_COMMANDS = 15  # of each of the two types, per application (and per guild)
LABEL = 18


class Problems:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def length(self, path: str, value: Any, maximum: int, minimum: int = 0) -> None:
        if value is None:
            if minimum:
                self.add(path, "This field is required")
            return
        if not isinstance(value, str):
            self.add(path, "Must be a string")
            return
        if not minimum <= len(value) <= maximum:
            self.add(path, f"Must be between {minimum} and {maximum} in length.")

    def body(self) -> dict[str, Any]:
        return {"code": 50035, "message": "Invalid Form Body", "errors": dict(self.errors)}


def check_message(payload: dict[str, Any], *, edit: bool = False) -> Problems:
    p = Problems()
    content = payload.get("content")
    if content is not None:
        p.length("content", content, CONTENT)
    embeds = payload.get("embeds") or []
    if len(embeds) > EMBEDS:
        p.add("embeds", f"Must be {EMBEDS} or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        where = f"embeds.{i}"
        for key, limit in (("title", 256), ("description", 4096)):
            if embed.get(key) is not None:
                p.length(f"{where}.{key}", embed[key], limit)
                total += len(embed[key])
        fields = embed.get("fields") or []
        if len(fields) > 25:
            p.add(f"{where}.fields", "Must be 25 or fewer in length.")
        for j, item in enumerate(fields):
            p.length(f"{where}.fields.{j}.name", item.get("name"), 256, 1)
            p.length(f"{where}.fields.{j}.value", item.get("value"), 1024, 1)
            total += len(item.get("name") or "") + len(item.get("value") or "")
        footer = (embed.get("footer") or {}).get("text")
        if footer is not None:
            p.length(f"{where}.footer.text", footer, 2048)
            total += len(footer)
    if total > EMBED_TOTAL:
        p.add("embeds", f"Embed size exceeds maximum size of {EMBED_TOTAL}")
    check_components(p, payload.get("components") or [], "components")
    nonce = payload.get("nonce")
    if nonce is not None and len(str(nonce)) > NONCE:
        p.add("nonce", f"Must be {NONCE} or fewer in length.")
    mentions = payload.get("allowed_mentions") or {}
    for key in ("users", "roles"):
        if len(mentions.get(key) or []) > 100:
            p.add(f"allowed_mentions.{key}", "Must be 100 or fewer in length.")
    if (
        not edit
        and not content
        and not embeds
        and not payload.get("components")
        and not payload.get("sticker_ids")
        and not payload.get("attachments")
    ):
        p.add("content", "Cannot send an empty message")
    return p


def check_components(p: Problems, rows: list[dict[str, Any]], where: str) -> None:
    if len(rows) > ROWS:
        p.add(where, f"Must be {ROWS} or fewer in length.")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        path = f"{where}.{i}"
        if row.get("type") != ACTION_ROW:
            p.add(f"{path}.type", "Top-level message components must be action rows")
            continue
        items = row.get("components") or []
        selects = [c for c in items if c.get("type") == STRING_SELECT]
        if not items:
            p.add(f"{path}.components", "Must be between 1 and 5 in length.")
        if selects and len(items) > 1:
            p.add(f"{path}.components", "A select menu must be alone in its action row")
        if len(items) > BUTTONS_PER_ROW:
            p.add(f"{path}.components", f"Must be {BUTTONS_PER_ROW} or fewer in length.")
        for j, item in enumerate(items):
            check_item(p, item, f"{path}.components.{j}", seen)


def check_item(p: Problems, item: dict[str, Any], path: str, seen: set[str]) -> None:
    kind = item.get("type")
    if kind == BUTTON and item.get("style") == 5:
        p.length(f"{path}.url", item.get("url"), 512, 1)
    else:
        custom_id = item.get("custom_id")
        p.length(f"{path}.custom_id", custom_id, CUSTOM_ID, 1)
        if isinstance(custom_id, str):
            if custom_id in seen:
                p.add(f"{path}.custom_id", "Component custom id cannot be duplicated")
            seen.add(custom_id)
    if kind == BUTTON:
        p.length(f"{path}.label", item.get("label"), 80)
    elif kind == STRING_SELECT:
        options = item.get("options") or []
        if not 1 <= len(options) <= SELECT_OPTIONS:
            p.add(f"{path}.options", f"Must be between 1 and {SELECT_OPTIONS} in length.")
        for k, option in enumerate(options):
            p.length(f"{path}.options.{k}.label", option.get("label"), 100, 1)
            p.length(f"{path}.options.{k}.value", option.get("value"), 100, 1)
            if option.get("description") is not None:
                p.length(f"{path}.options.{k}.description", option.get("description"), 100)
        if item.get("placeholder") is not None:
            p.length(f"{path}.placeholder", item.get("placeholder"), 150)
        most, least = int(item.get("max_values", 1)), int(item.get("min_values", 1))
        if int(item.get("max_values", 1)) > max(1, len(options)):
            p.add(f"{path}.max_values", "Must be less than or equal to the number of options")
        if not 1 <= most <= SELECT_OPTIONS:
            p.add(f"{path}.max_values", f"Must be between 1 and {SELECT_OPTIONS}.")
        if not 0 <= least <= SELECT_OPTIONS or least > most:
            p.add(f"{path}.min_values", "Must be between 0 and max_values.")
        if least > len(options):
            p.add(f"{path}.min_values", "Must be less than or equal to the number of options")
    elif kind == TEXT_INPUT:
        if "label" in item:  # the deprecated action-row form carries its label here
            p.length(f"{path}.label", item.get("label"), 45, 1)
        p.length(f"{path}.value", item.get("value"), min(4000, int(item.get("max_length", 4000))))
        p.length(f"{path}.placeholder", item.get("placeholder"), 100)
        if int(item.get("max_length", 4000)) > 4000:
            p.add(f"{path}.max_length", "Must be less than or equal to 4000.")
    else:
        p.add(f"{path}.type", f"Unknown or unsupported component type {kind}")


def check_files(
    p: Problems,
    payload: dict[str, Any],
    files: dict[int, tuple[str, bytes]],
    *,
    kept: set[str] | None = None,
) -> None:
    """``attachments`` against the ``files[n]`` parts sent (n -> file name, bytes): each new one
    (an id that is a part's index) names its part, every part is listed, each is a valid PNG when
    named so, and each ``attachment://`` an embed uses is sent. ``kept``: ids of attachments the
    message has (an edit may keep them)."""
    attachments = payload.get("attachments")
    if attachments is None and files:
        p.add("attachments", "Files were sent without attachments")
    attachments = attachments or []
    if len(attachments) > FILES or len(files) > FILES:
        p.add("attachments", f"Must be {FILES} or fewer in length.")
    listed: set[int] = set()
    names: set[str] = set()
    for i, attachment in enumerate(attachments):
        where = f"attachments.{i}"
        raw_id = attachment.get("id")
        if kept is not None and str(raw_id) in kept:
            names.add(str(attachment.get("filename") or ""))
            continue
        try:
            index = int(raw_id)
        except (TypeError, ValueError):
            p.add(f"{where}.id", "Value is not a snowflake or a file index.")
            continue
        if index not in files or index in listed:
            p.add(f"{where}.id", f"No files[{index}] part for this attachment")
            continue
        listed.add(index)
        filename, data = files[index]
        name = str(attachment.get("filename") or filename)
        names.add(name)
        if attachment.get("description") is not None:
            p.length(f"{where}.description", attachment["description"], ATTACHMENT_DESCRIPTION)
        if name.lower().endswith(".png") and not _valid_png(data):
            p.add(f"files[{index}]", "Not a valid PNG image")
    for index in set(files) - listed:
        p.add(f"files[{index}]", "Not listed in attachments")
    # Stricter than Discord, which shows no image for a name it was not sent: a test would
    # otherwise pass with a picture nobody sees.
    for i, embed in enumerate(payload.get("embeds") or []):
        url = str((embed.get("image") or {}).get("url") or "")
        if url.startswith("attachment://") and url[len("attachment://") :] not in names:
            p.add(f"embeds.{i}.image.url", "Unknown attachment")


def _valid_png(data: bytes) -> bool:
    """The PNG signature, then an IHDR chunk of 13 bytes with a width and height."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33:
        return False
    length, kind = int.from_bytes(data[8:12], "big"), data[12:16]
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return kind == b"IHDR" and length == 13 and width > 0 and height > 0


def check_modal(data: dict[str, Any]) -> Problems:
    p = Problems()
    p.length("data.title", data.get("title"), 45, 1)
    p.length("data.custom_id", data.get("custom_id"), CUSTOM_ID, 1)
    top = data.get("components") or []
    if not 1 <= len(top) <= MODAL_TOP_LEVEL:
        p.add("data.components", f"Must be between 1 and {MODAL_TOP_LEVEL} in length.")
    seen: set[str] = set()
    for i, component in enumerate(top):
        path = f"data.components.{i}"
        if component.get("type") == LABEL:
            p.length(f"{path}.label", component.get("label"), 45, 1)
            if component.get("description") is not None:
                p.length(f"{path}.description", component.get("description"), 100)
            inner = component.get("component") or {}
            if inner.get("type") not in (TEXT_INPUT, STRING_SELECT):
                p.add(f"{path}.component.type", "A label holds a text input or a select")
            check_item(p, inner, f"{path}.component", seen)
        elif component.get("type") == ACTION_ROW:
            items = component.get("components") or []
            if len(items) != 1 or items[0].get("type") != TEXT_INPUT:
                p.add(f"{path}.components", "A modal action row holds one text input")
            for j, item in enumerate(items):
                check_item(p, item, f"{path}.components.{j}", seen)
        else:
            p.add(f"{path}.type", "Modals hold labels (or action rows of text inputs)")
    return p


def check_command(command: dict[str, Any], path: str = "") -> Problems:
    p = Problems()
    _check_command(p, command, path)
    return p


def _check_command(p: Problems, command: dict[str, Any], path: str) -> None:
    if command.get("type") in (USER_COMMAND, MESSAGE_COMMAND):
        _check_context_menu(p, command, path)
        return
    name = command.get("name")
    if not isinstance(name, str) or not _COMMAND_NAME.match(name) or name != name.lower():
        p.add(f"{path}name", "Command name is invalid")
    p.length(f"{path}description", command.get("description"), 100, 1)
    options = command.get("options") or []
    if len(options) > 25:
        p.add(f"{path}options", "Must be 25 or fewer in length.")
    required_done = False
    for i, option in enumerate(options):
        where = f"{path}options.{i}."
        if option.get("type") in (1, 2):
            _check_command(p, option, where)
            continue
        if option.get("required"):
            if required_done:
                p.add(f"{where}required", "Required options must be placed before non-required")
        else:
            required_done = True
        _check_option(p, option, where)


def _check_context_menu(p: Problems, command: dict[str, Any], path: str) -> None:
    """USER (2) and MESSAGE (3) commands: a name of 1-32 characters (any case, spaces), an
    empty description, no options."""
    p.length(f"{path}name", command.get("name"), 32, 1)
    if command.get("description"):
        p.add(f"{path}description", "Context menu commands cannot have description")
    if command.get("options"):
        p.add(f"{path}options", "Context menu commands cannot have options")


def check_unique_names(commands: list[dict[str, Any]]) -> Problems:
    """Names are unique per command type (a slash command and a menu entry may share one)."""
    p = Problems()
    seen: set[tuple[Any, str]] = set()
    for i, command in enumerate(commands):
        key = (command.get("type", 1), str(command.get("name")))
        if key in seen:
            p.add(f"{i}.name", "Application command names must be unique")
        seen.add(key)
    per_type = {kind: sum(1 for c in commands if c.get("type", 1) == kind) for kind in (2, 3)}
    for kind, count in per_type.items():
        if count > CONTEXT_MENU_COMMANDS:
            p.add("commands", f"More than {CONTEXT_MENU_COMMANDS} commands of type {kind}")
    return p


def _check_option(p: Problems, option: dict[str, Any], where: str) -> None:
    name = option.get("name")
    if not isinstance(name, str) or not _COMMAND_NAME.match(name) or name != name.lower():
        p.add(f"{where}name", "Option name is invalid")
    p.length(f"{where}description", option.get("description"), 100, 1)
    choices = option.get("choices") or []
    if len(choices) > 25:
        p.add(f"{where}choices", "Must be 25 or fewer in length.")
    if choices and option.get("autocomplete"):
        p.add(f"{where}autocomplete", "Autocomplete cannot be used with choices")
    for k, choice in enumerate(choices):
        p.length(f"{where}choices.{k}.name", choice.get("name"), 100, 1)


def check_autocomplete(data: dict[str, Any]) -> Problems:
    p = Problems()
    choices = data.get("choices") or []
    if len(choices) > 25:
        p.add("data.choices", "Must be 25 or fewer in length.")
    for k, choice in enumerate(choices):
        p.length(f"data.choices.{k}.name", choice.get("name"), 100, 1)
    return p
