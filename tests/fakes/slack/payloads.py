"""What Slack sends to an app: slash commands, interactions and Events API callbacks, built as
Slack builds them, plus a signer for HTTP mode (``X-Slack-Signature`` v0 over the raw body)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

_ids = itertools.count(1)


def trigger_id() -> str:
    return f"{next(_ids)}.1.trigger"


def slash_command(
    command: str,
    text: str,
    *,
    user: str,
    channel: str,
    channel_name: str,
    response_url: str,
    team: str = "T1",
    user_name: str = "",
) -> dict[str, str]:
    return {
        "token": "verification-token",
        "team_id": team,
        "team_domain": "acme",
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name or user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id(),
    }


def block_action(
    action_id: str,
    *,
    user: str,
    channel: str,
    message_ts: str,
    value: str = "",
    response_url: str = "",
    team: str = "T1",
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A1",
        "trigger_id": trigger_id(),
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"ts": message_ts, "type": "message"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def message_action(
    callback_id: str,
    message: dict[str, Any],
    *,
    user: str,
    channel: str,
    channel_name: str,
    response_url: str,
    team: str = "T1",
    trigger: str | None = None,
) -> dict[str, Any]:
    """A message shortcut run on ``message`` (as conversations.history shows it)."""
    return {
        "type": "message_action",
        "token": "verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team, "name": user.lower()},
        "channel": {"id": channel, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger or trigger_id(),
        "response_url": response_url,
        "message_ts": message["ts"],
        "message": message,
    }


def global_shortcut(callback_id: str, *, user: str, team: str = "T1") -> dict[str, Any]:
    """A global shortcut from the shortcuts menu (no channel, no message, no response_url)."""
    return {
        "type": "shortcut",
        "token": "verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id(),
    }


def fill(view: dict[str, Any], values: dict[str, str | list[str]]) -> dict[str, Any]:
    """The view as submitted with ``values`` typed or chosen; the rest keeps initial values."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        name = element["action_id"]
        kind = element["type"]
        given = values.get(name)
        if kind == "plain_text_input":
            value = given if given is not None else element.get("initial_value")
            state[block["block_id"]] = {name: {"type": kind, "value": value}}
        elif kind == "users_select":
            chosen_user = given if given is not None else element.get("initial_user")
            state[block["block_id"]] = {name: {"type": kind, "selected_user": chosen_user}}
        elif kind == "conversations_select":
            state[block["block_id"]] = {name: {"type": kind, "selected_conversation": given}}
        else:
            options = {o["value"]: o for o in element["options"]}
            if kind == "multi_static_select":
                if given is None:
                    chosen = element.get("initial_options", [])
                else:
                    chosen = [options[v] for v in given]
                state[block["block_id"]] = {name: {"type": kind, "selected_options": chosen}}
            else:
                if given is None:
                    one = element.get("initial_option")
                else:
                    one = options[str(given)]
                state[block["block_id"]] = {name: {"type": kind, "selected_option": one}}
    unknown = set(values) - {
        b["element"]["action_id"] for b in view.get("blocks", []) if b.get("type") == "input"
    }
    if unknown:
        raise KeyError(f"no such fields in the view: {sorted(unknown)}")
    return {**view, "state": {"values": state}}


def view_submission(
    view: dict[str, Any],
    values: dict[str, str | list[str]],
    *,
    user: str,
    team: str = "T1",
    response_url: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """``response_url`` makes the URL Slack adds for each ``conversations_select`` with
    ``response_url_enabled`` (the ``response_urls`` of the submission)."""
    body: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A1",
        "trigger_id": trigger_id(),
        "view": fill(view, values),
    }
    urls = []
    for block in view.get("blocks", []):
        element = block.get("element") or {}
        if block.get("type") == "input" and element.get("response_url_enabled"):
            channel = values.get(element["action_id"])
            if channel and response_url is not None:
                urls.append(
                    {
                        "block_id": block["block_id"],
                        "action_id": element["action_id"],
                        "channel_id": channel,
                        "response_url": response_url(),
                    }
                )
    if urls:
        body["response_urls"] = urls
    return body


def event_callback(event: dict[str, Any], *, event_id: str, team: str = "T1") -> dict[str, Any]:
    return {
        "token": "verification-token",
        "team_id": team,
        "api_app_id": "A1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
    }


def dm_event(user: str, text: str, *, channel: str | None = None) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel or f"D{user}",
        "user": user,
        "text": text,
        "ts": f"{time.time():.6f}",
        "event_ts": f"{time.time():.6f}",
    }


# -- HTTP mode -------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers for ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def http_body(kind: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    """The raw body and content type Slack uses for each kind of request."""
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    if kind == "interactive":
        return (
            urlencode({"payload": json.dumps(payload)}).encode(),
            "application/x-www-form-urlencoded",
        )
    return json.dumps(payload).encode(), "application/json"
