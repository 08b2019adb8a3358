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


InboundEvent = CommandInvocation | ActionInvocation | FormSubmission | DirectMessageReceived
