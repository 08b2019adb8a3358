"""The port every platform adapter implements, and what crosses it on the way out.

The core never calls an adapter to send anything directly: features write to the outbox and the
delivery worker hands each row to :meth:`PlatformPort.deliver`. Replies to an inbound event
(ephemeral answers, forms) go back through the adapter's own request/response path instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from bot.chat import Message

# What a platform can show, read by bot.app from optional port attributes:
# ``edit_window`` (a timedelta, or None): messages older than this are not edited (Discord limits
# edits of messages older than an hour); a feature posts a new message instead.
# ``max_select_options`` (an int): the most options one select menu can hold.
DEFAULT_MAX_SELECT_OPTIONS = 25


class Method(StrEnum):
    """Outbound operations; rate limits are kept per (workspace, method)."""

    POST = "post"  # a message in a channel, or a reply in a thread
    DM = "dm"  # a message in a member's direct-message channel
    UPDATE = "update"  # replace an earlier message
    EPHEMERAL = "ephemeral"  # visible to one member in a channel
    # An outbound webhook (bot.webhooks): sent over HTTP by the webhook sender, never by the
    # platform; the row carries the event and the endpoint (``Delivery.data``).
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Target:
    """Where a message goes. ``user_id`` for DMs; ``channel_id`` for posts; ``thread_of`` or
    ``message_id`` are filled in by the worker from the message this one depends on."""

    channel_id: str | None = None
    user_id: str | None = None
    dm_channel_id: str | None = None
    thread_of: str | None = None
    message_id: str | None = None
    # For an UPDATE: every message the original went out as (``message_id`` first), when the
    # platform split it (see :attr:`Receipt.part_ids`); empty when it is one message.
    part_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delivery:
    outbox_id: int
    workspace_id: str  # the platform's workspace / guild id
    method: Method
    target: Target
    message: Message
    idempotency_key: str
    attempt: int
    # The previous attempt started and its outcome was never recorded (a crash): the platform
    # may already have the message. Adapters that can check (Discord's nonce) must not post twice.
    maybe_sent: bool = False
    # A WEBHOOK row's stored payload (its endpoint and event) instead of a chat message; None
    # for every other method. ``message`` is then empty.
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Quota:
    """What a platform says of its rate-limit window in its answer (Discord's
    ``X-RateLimit-Limit``/``-Remaining``/``-Reset-After``/``-Bucket``/``-Scope``): the pacing
    waits for the reset when nothing remains, instead of drawing a 429."""

    limit: int
    remaining: int
    reset_after: float  # seconds until the window resets
    bucket: str | None = None
    # "user" (ours), "global", or "shared" (a resource's limit shared with others: not our pace)
    scope: str | None = None


@dataclass(frozen=True)
class Receipt:
    channel_id: str | None = None
    message_id: str | None = None
    # Every message the delivery's message now is on the platform, in order, when an adapter
    # splits messages and edits them part by part (Discord); None: nothing to record. The worker
    # keeps them on the original's outbox row, and an UPDATE of it gets them as
    # ``Target.part_ids``, so that an edit can change every part and delete the extra ones.
    part_ids: tuple[str, ...] | None = None
    # The platform's rate-limit headers of the answer, when it sends them (Discord).
    quota: Quota | None = None


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` sends per second on average, ``burst`` at once."""

    rate: float
    burst: int


class DeliveryError(Exception):
    """A send failed; ``permanent`` ones are dead-lettered at once, the rest retried."""

    permanent = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentDeliveryError(DeliveryError):
    permanent = True


class RecipientUnreachable(PermanentDeliveryError):
    """The member cannot be messaged at all (Discord 50007: DMs closed; Slack: deactivated
    account). Dead-lettered at once, and the feature that sent it is told (the standup shows
    the member as unreachable and tells its owner)."""


class RateLimited(DeliveryError):
    """HTTP 429: pause this (workspace, method) for ``retry_after`` seconds; not a failure."""

    def __init__(
        self, retry_after: float, message: str = "rate limited", *, quota: Quota | None = None
    ) -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after
        # The platform's rate-limit headers, when it sends them: a "shared" scope is a
        # resource's limit, not this bucket's pace, and does not cut the learned rate.
        self.quota = quota


@runtime_checkable
class PlatformPort(Protocol):
    platform: str

    def rate_limits(self) -> Mapping[Method, RateLimit]:
        """The pacing the platform allows; config may lower or raise it per method."""
        ...

    def channel_rate_limit(self) -> RateLimit | None:
        """Pacing per channel on top of the per-method buckets (Slack: about 1 message a second
        in one channel), applied to POST and UPDATE; None for none."""
        ...

    async def deliver(self, delivery: Delivery) -> Receipt:
        """Send one outbox row. Raise :class:`RateLimited`, :class:`DeliveryError` or
        :class:`PermanentDeliveryError`; anything else counts as a transient failure."""
        ...


# --- what the platform knows about people and channels -----------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    user_id: str
    display_name: str
    timezone: str | None = None  # the profile's IANA zone (Slack's ``tz``); Discord has none
    is_bot: bool = False


@dataclass(frozen=True)
class ChannelInfo:
    channel_id: str
    name: str
    # Whether the bot may post there; when not, ``reason`` says what to do about it, e.g.
    # "Invite @syncup to #team first (/invite @syncup)."
    can_post: bool = True
    reason: str = ""


class DirectoryUnavailable(Exception):
    """The platform will not say (a missing scope or privileged intent); the message says what
    an admin must change, and is shown to the user as it is."""


@runtime_checkable
class PlatformDirectory(Protocol):
    """Optional: ports that can look people and channels up implement this. The core asks when
    a command or form names someone or something it has not seen yet, and to check that the
    bot may post in a report channel. Every method answers None for "no such thing"."""

    async def member_info(
        self, workspace_id: str, *, user_id: str | None = None, name: str | None = None
    ) -> MemberInfo | None: ...

    async def channel_info(
        self, workspace_id: str, *, channel_id: str | None = None, name: str | None = None
    ) -> ChannelInfo | None: ...

    async def channel_members(self, workspace_id: str, channel_id: str) -> list[MemberInfo]:
        """Everyone in the channel (bots left out). Raise :class:`DirectoryUnavailable` when the
        platform needs a permission syncup lacks (Discord's members intent)."""
        ...


@dataclass(frozen=True)
class GroupInfo:
    """A platform user group: a Slack user group (``name`` is its handle, as in @data-eng) or a
    Discord role."""

    group_id: str
    name: str


@runtime_checkable
class PlatformGroups(Protocol):
    """Optional, next to :class:`PlatformDirectory`: ports that know user groups implement it,
    so that a RACI role held by a group reaches the people in it. Answers None for "no such
    group"; raise :class:`DirectoryUnavailable` when a scope or intent is missing."""

    async def group_info(
        self, workspace_id: str, *, group_id: str | None = None, name: str | None = None
    ) -> GroupInfo | None: ...

    async def group_members(self, workspace_id: str, group_id: str) -> list[MemberInfo]:
        """Everyone in the group (bots left out)."""
        ...
