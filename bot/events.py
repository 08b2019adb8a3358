"""Inbound events, as adapters hand them to the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """The person who acted, as the platform describes them."""

    user_id: str
    display_name: str = ""
    # The zone the platform's profile gives (Slack's ``tz``); Discord has none.
    timezone: str | None = None
    is_platform_admin: bool = False


@dataclass(frozen=True)
class Origin:
    """Where an event came from; ``event_id`` is the platform's id for deduplication."""

    platform: str
    workspace_id: str
    event_id: str
    workspace_name: str = ""
    channel_id: str | None = None
    channel_name: str = ""


@dataclass(frozen=True)
class CommandInvocation:
    """``/command sub args``: ``text`` for platforms that give a line (Slack, console), or
    ``options`` already typed (Discord's application commands), never both."""

    origin: Origin
    actor: Actor
    command: str
    text: str = ""
    subcommand: str | None = None
    options: dict[str, Any] | None = None


@dataclass(frozen=True)
class ActionInvocation:
    """A button press or a select choice on an earlier message."""

    origin: Origin
    actor: Actor
    action_id: str
    value: str = ""
    values: tuple[str, ...] = ()
    message_channel_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class FormSubmission:
    origin: Origin
    actor: Actor
    form_id: str
    values: dict[str, str | list[str]] = field(default_factory=dict)
    state: str = ""


@dataclass(frozen=True)
class DirectMessageReceived:
    origin: Origin
    actor: Actor
    text: str
    dm_channel_id: str | None = None


@dataclass(frozen=True)
class ShortcutInvocation:
    """A shortcut run on a message or a person: Slack's message shortcuts, Discord's message
    and user context-menu commands ("Report as blocker", "Give kudos"). ``shortcut_id`` is
    what a feature registered with :meth:`bot.core.Core.add_shortcut`; for a message the
    adapter gives its text and a link to it, for a person their platform user id."""

    origin: Origin
    actor: Actor
    shortcut_id: str
    message_text: str = ""
    message_link: str = ""
    message_author_id: str | None = None
    target_user_id: str | None = None


InboundEvent = (
    CommandInvocation
    | ActionInvocation
    | FormSubmission
    | DirectMessageReceived
    | ShortcutInvocation
)

NUL = "\x00"
NUL_MESSAGE = "Remove the NUL character (\\0) from your {what}: syncup can't store it."


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def nul_fields(event: InboundEvent) -> list[str]:
    """Where ``event`` carries a NUL character (no database stores one in text: PostgreSQL
    refuses it): the form fields holding one, or ``["text"]`` for any other input."""
    if isinstance(event, FormSubmission):
        found = [name for name, value in event.values.items() if _has_nul(value)]
        if not found and _has_nul(event.state):
            found = ["text"]
        return found
    if isinstance(event, CommandInvocation):
        return ["text"] if _has_nul(event.text) or _has_nul(event.options) else []
    if isinstance(event, ActionInvocation):
        return ["text"] if _has_nul(event.value) or _has_nul(event.values) else []
    if isinstance(event, ShortcutInvocation):
        return ["text"] if _has_nul(event.message_text) else []
    return ["text"] if _has_nul(event.text) else []
