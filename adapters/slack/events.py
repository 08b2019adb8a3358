"""Slack payloads as the core's inbound events.

Every event carries a stable id for :attr:`Origin.event_id`, the core's deduplication key:
the Events API's ``event_id`` (the same on every retry), and for slash commands, button presses
and modal submissions the ``trigger_id`` Slack makes for that one invocation. A double click is
two invocations with two trigger ids; :class:`ClickDebouncer` drops the second one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.slack.render import core_action_id, decode_metadata, submitted_values
from bot.events import (
    ActionInvocation,
    Actor,
    CommandInvocation,
    DirectMessageReceived,
    FormSubmission,
    Origin,
)

PLATFORM = "slack"
DOUBLE_CLICK_SECONDS = 2.0


def actor(user_id: str, profile: Mapping[str, Any] | None, fallback_name: str = "") -> Actor:
    """The person, with their Slack profile's name, zone (``tz``) and admin flag when known."""
    if not profile:
        return Actor(user_id, fallback_name or user_id)
    details = profile.get("profile") or {}
    name = (
        details.get("display_name")
        or profile.get("name")
        or details.get("real_name")
        or fallback_name
        or user_id
    )
    admin = bool(
        profile.get("is_admin") or profile.get("is_owner") or profile.get("is_primary_owner")
    )
    return Actor(user_id, str(name), profile.get("tz") or None, admin)


def team_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """The workspace id and name (domain) of any payload."""
    team = body.get("team")
    if isinstance(team, dict):
        return str(team.get("id", "")), str(team.get("domain", ""))
    user = body.get("user")
    if not body.get("team_id") and isinstance(user, dict) and user.get("team_id"):
        return str(user["team_id"]), ""
    return str(body.get("team_id", "")), str(body.get("team_domain", ""))


def command_names(configured: Mapping[str, str]) -> dict[str, str]:
    """``/standup`` -> ``standup`` from ``[slack] commands`` (core name -> slash command)."""
    return {slash.lower(): name for name, slash in configured.items()}


def command_event(body: Mapping[str, Any], command: str, who: Actor) -> CommandInvocation:
    team, domain = team_of(body)
    origin = Origin(
        PLATFORM,
        team,
        f"command:{body.get('trigger_id') or body.get('response_url')}",
        domain,
        body.get("channel_id") or None,
        str(body.get("channel_name", "")),
    )
    return CommandInvocation(origin, who, command, str(body.get("text", "")).strip())


def action_event(
    body: Mapping[str, Any], action: Mapping[str, Any], who: Actor
) -> ActionInvocation:
    team, domain = team_of(body)
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    trigger = body.get("trigger_id") or f"{action.get('action_ts')}:{who.user_id}"
    origin = Origin(PLATFORM, team, f"action:{trigger}", domain, channel or None)
    values: tuple[str, ...] = ()
    value = str(action.get("value", "") or "")
    if action.get("selected_option"):
        value = str(action["selected_option"].get("value", ""))
        values = (value,)
    elif action.get("selected_options"):
        values = tuple(str(o.get("value", "")) for o in action["selected_options"])
        value = values[0] if values else ""
    return ActionInvocation(
        origin,
        who,
        core_action_id(str(action.get("action_id", ""))),
        value,
        values,
        channel or None,
        message_ts or None,
    )


def form_event(body: Mapping[str, Any], who: Actor) -> FormSubmission:
    team, domain = team_of(body)
    view = body.get("view") or {}
    state, channel = decode_metadata(str(view.get("private_metadata", "")))
    trigger = body.get("trigger_id") or f"{view.get('id')}:{view.get('hash')}"
    origin = Origin(PLATFORM, team, f"view:{trigger}", domain, channel)
    return FormSubmission(
        origin, who, str(view.get("callback_id", "")), submitted_values(view), state
    )


def is_member_dm(event: Mapping[str, Any]) -> bool:
    """A member's own new message in their DM with the bot (not an edit, a join, a bot)."""
    return (
        event.get("type") == "message"
        and event.get("channel_type") == "im"
        and not event.get("subtype")
        and not event.get("bot_id")
        and bool(event.get("user"))
    )


def dm_event(body: Mapping[str, Any], who: Actor) -> DirectMessageReceived:
    event = body.get("event") or {}
    team = str(body.get("team_id") or event.get("team") or "")
    channel = str(event.get("channel", ""))
    event_id = str(body.get("event_id") or f"{channel}:{event.get('ts')}")
    origin = Origin(PLATFORM, team, f"event:{event_id}", "", channel or None)
    return DirectMessageReceived(origin, who, str(event.get("text", "")), channel or None)


class ClickDebouncer:
    """The second press of the same button by the same person within a moment is dropped
    (Slack sends each press with its own trigger id, so the core cannot tell them apart)."""

    def __init__(
        self, window: float = DOUBLE_CLICK_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._monotonic = monotonic
        self._seen: dict[tuple[str, ...], float] = {}

    def first(self, event: ActionInvocation) -> bool:
        now = self._monotonic()
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
        key = (
            event.origin.workspace_id,
            event.actor.user_id,
            event.message_id or "",
            event.action_id,
            event.value,
            ",".join(event.values),
        )
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
