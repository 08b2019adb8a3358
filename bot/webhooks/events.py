"""The events webhooks carry: their types, the event filter, and the JSON payload.

Every event is ``{"type": ..., "timestamp": ..., "data": {...}}`` (docs/webhooks.md documents
the schema). Types are ``<subject>.<what happened>``: the blocker types below come from the
blocker timeline (``bot.features.blockers.timeline.Kind``); a later feature (kudos, milestones,
the weekly digest) adds its own with :func:`add_event_type` and queues them with
``bot.webhooks.dispatch.queue_event``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import UserError
from bot.features.blockers.timeline import Kind
from storage.models import Blocker, BlockerEvent, Member, Workspace
from storage.raci import RaciArea

# Event type -> what it means (shown by /raci webhook list and help).
EVENT_TYPES: dict[str, str] = {}
TEST_EVENT = "webhook.test"

# Timeline kinds that become events, and their event types.
BLOCKER_EVENTS: dict[str, str] = {
    Kind.OPENED: "blocker.opened",
    Kind.ACKNOWLEDGED: "blocker.acknowledged",
    Kind.ESCALATED: "blocker.escalated",
    Kind.RESOLVED: "blocker.resolved",
    Kind.REOPENED: "blocker.reopened",
    Kind.CANCELLED: "blocker.cancelled",
}
# An endpoint that an escalation level named for a blocker also hears how that blocker ends
# (PagerDuty: the incident it opened gets acknowledged and resolved).
FOLLOW_UPS = frozenset({Kind.ACKNOWLEDGED, Kind.RESOLVED, Kind.CANCELLED})
# Detail keys of a timeline entry that stay inside syncup (keyed by internal member ids).
_PRIVATE_DETAIL = frozenset({"targets", "held"})


def add_event_type(name: str, description: str) -> None:
    """Declare an event type (``subject.what``) so that endpoints can subscribe to it."""
    if name.count(".") != 1 or not name.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"event type {name!r} must look like subject.what")
    EVENT_TYPES[name] = description


for _kind, _description in (
    (Kind.OPENED, "a blocker was opened"),
    (Kind.ACKNOWLEDGED, "someone acknowledged a blocker"),
    (Kind.ESCALATED, "a blocker escalated to the next level of its ladder"),
    (Kind.RESOLVED, "a blocker was resolved"),
    (Kind.REOPENED, "a resolved blocker was reopened"),
    (Kind.CANCELLED, "a blocker was cancelled"),
):
    add_event_type(BLOCKER_EVENTS[_kind], _description)
add_event_type(TEST_EVENT, "a test sent by /raci webhook test")

# What a new endpoint subscribes to without --events.
DEFAULT_EVENTS = {
    "standard": tuple(BLOCKER_EVENTS.values()),
    # A page for every new blocker would be noise: PagerDuty hears of escalations (and of how
    # they end, see FOLLOW_UPS) unless told otherwise.
    "pagerduty": ("blocker.escalated", "blocker.acknowledged", "blocker.resolved"),
}


def parse_events(raw: str | None, fmt: str) -> list[str]:
    """``opened,acknowledged`` (short names or full types, or ``all``) -> sorted event types."""
    if raw is None or not raw.strip():
        return sorted(DEFAULT_EVENTS[fmt])
    subscribable = [name for name in EVENT_TYPES if name != TEST_EVENT]
    wanted: set[str] = set()
    for word in (w.strip().lower() for w in raw.split(",")):
        if not word:
            continue
        if word == "all":
            wanted.update(subscribable)
            continue
        matches = [n for n in subscribable if word in (n, n.split(".", 1)[1])]
        if len(matches) != 1:
            known = ", ".join(n.split(".", 1)[1] for n in subscribable)
            raise UserError(f'Unknown event "{word}"; events: {known} (or all).')
        wanted.add(matches[0])
    if not wanted:
        raise UserError("--events names no event; leave it out for the default set.")
    return sorted(wanted)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": iso(at), "data": data}


def _person(member: Member | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {"id": member.platform_user_id, "name": member.display_name}


def workspace_data(workspace: Workspace) -> dict[str, Any]:
    return {"platform": workspace.platform, "id": workspace.external_id, "name": workspace.name}


async def blocker_data(
    session: AsyncSession, blocker: Blocker, entry: BlockerEvent, now: datetime
) -> dict[str, Any]:
    """The ``data`` of a blocker event: the blocker as it now is, and the change."""
    workspace = await session.get(Workspace, blocker.workspace_id)
    area = await session.get(RaciArea, blocker.area_id) if blocker.area_id else None
    reporter = await session.get(Member, blocker.member_id)
    actor = await session.get(Member, entry.actor_id) if entry.actor_id else None
    waiting_on: dict[str, Any] | None = None
    if blocker.waiting_on_member_id is not None:
        member = await session.get(Member, blocker.waiting_on_member_id)
        if member is not None:
            waiting_on = {"kind": "member", **(_person(member) or {})}
    elif blocker.waiting_on_area_id is not None:
        other = await session.get(RaciArea, blocker.waiting_on_area_id)
        if other is not None:
            waiting_on = {"kind": "area", "id": other.id, "name": other.name}
    detail = {k: v for k, v in (entry.detail or {}).items() if k not in _PRIVATE_DETAIL}
    return {
        "workspace": workspace_data(workspace) if workspace is not None else None,
        "blocker": {
            "id": blocker.id,
            "text": blocker.text,
            "area": None if area is None else {"id": area.id, "name": area.name},
            "severity": str(blocker.severity),
            "status": str(blocker.status),
            "reporter": _person(reporter),
            "waiting_on": waiting_on,
            "opened_at": iso(blocker.created_at),
            "age_seconds": max(0, int((now - blocker.created_at).total_seconds())),
            "source": blocker.source,
            "link": blocker.source_link,
        },
        "change": {"kind": entry.kind, "actor": _person(actor), "detail": detail},
    }


def targeted_endpoint(entry: BlockerEvent) -> int | None:
    """The endpoint an ESCALATED entry's level names (``webhook:<id>``), if any."""
    if entry.kind != Kind.ESCALATED:
        return None
    target = str((entry.detail or {}).get("target") or "")
    prefix, _, raw = target.partition(":")
    if prefix != "webhook" or not raw.isdigit():
        return None
    return int(raw)


def followed(endpoint_id: int, history: Iterable[BlockerEvent]) -> bool:
    """Whether an escalation level of this blocker named the endpoint."""
    return any(targeted_endpoint(entry) == endpoint_id for entry in history)
