"""One card per blocker, kept up to date in place.

The card lives in its area's channel. A blocker with no area, or whose area has no channel yet,
has its card sent to its reporter by DM instead: the reporter always sees where it stands and
has the buttons, and nobody else's channel gets a card nobody there owns. If the blocker later
gets an area with a channel (the area is confirmed or changed), a new card is posted there and
the old one is no longer updated.

Every timeline entry redraws the card (:func:`on_change`, a timeline listener): the first draw is
posted under ``blocker:<id>:card:<place>``, later ones are updates that depend on that outbox row
(``...:v<n>``, the same scheme as the standup report: see ``report_outbox.Publisher``), queued
only when what the card shows changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    Actions,
    Bold,
    Button,
    Context,
    Fields,
    Header,
    Inline,
    Link,
    Message,
    Plain,
    Section,
    Text,
    UserMention,
    message,
    text,
)
from bot.delivery.outbox import enqueue
from bot.features.blockers import timeline
from bot.features.blockers.lookup import between, local, members, name_of, span, zone_of
from bot.features.blockers.timeline import Change, Kind
from bot.features.standups.report_outbox import Publisher
from bot.port import Method, Target
from storage.models import Blocker, BlockerEvent, BlockerStatus, Member, OutboxMessage
from storage.raci import RaciArea

ACTION = "blocker"
# Timeline entries shown at the foot of a card (the rest: /blocker show).
CARD_ENTRIES = 4

STATUS_LABEL = {
    BlockerStatus.OPEN: "Open",
    BlockerStatus.ACKNOWLEDGED: "Acknowledged",
    BlockerStatus.RESOLVED: "Resolved",
    BlockerStatus.CANCELLED: "Cancelled",
}


def action_id(verb: str, blocker: Blocker) -> str:
    return f"{ACTION}:{verb}:{blocker.id}"


def buttons(blocker: Blocker) -> Actions:
    """The buttons for a blocker, wherever it is shown (its card; escalation DMs)."""
    if blocker.status in (BlockerStatus.RESOLVED, BlockerStatus.CANCELLED):
        return Actions((Button("Reopen", action_id("reopen", blocker)),))
    elements: list[Button] = []
    if blocker.status == BlockerStatus.OPEN:
        elements.append(Button("Acknowledge", action_id("ack", blocker), style="primary"))
    elements += [
        Button("Resolve", action_id("resolve", blocker), style="primary"),
        Button("Snooze", action_id("snooze", blocker)),
        Button("Reassign", action_id("reassign", blocker)),
        Button("Add note", action_id("note", blocker)),
    ]
    return Actions(tuple(elements))


def describe_entry(
    entry: BlockerEvent, people: dict[int, Member], areas: dict[int, RaciArea], zone: str
) -> str:
    """One timeline line: ``Mon 9 Mar 14:05 alice acknowledged``."""
    who = name_of(people.get(entry.actor_id or 0)) if entry.actor_id else "syncup"
    detail = entry.detail or {}
    kind = entry.kind
    what = {
        Kind.OPENED: "opened it",
        Kind.REPORTED_AGAIN: "reported it again in a standup",
        Kind.ACKNOWLEDGED: "acknowledged it",
        Kind.RESOLVED: "resolved it",
        Kind.REOPENED: "reopened it",
        Kind.CANCELLED: "cancelled it",
    }.get(kind, kind)
    if kind == Kind.SNOOZED and detail.get("until"):
        what = f"snoozed it until {local(datetime.fromisoformat(detail['until']), zone)}"
    elif kind == Kind.REASSIGNED:
        target = _waiting_label(detail.get("member_id"), detail.get("area_id"), people, areas)
        what = f"reassigned it to {target}"
    elif kind == Kind.NOTED:
        what = f"noted: {detail.get('text', '')}"
    elif kind == Kind.SEVERITY:
        what = f"changed severity to {detail.get('to')}"
    elif kind == Kind.AREA:
        area = areas.get(detail.get("area_id") or 0)
        verb = "confirmed the area" if detail.get("confirmed") else "moved it to area"
        what = f"{verb} {area.name if area else '?'}"
    elif kind == Kind.ESCALATED:
        label = detail.get("label") or "the next level"
        delayed = " (delayed)" if detail.get("delayed") else ""
        what = f"escalated to {label}, level {detail.get('level', '?')}{delayed}"
        if held := detail.get("held"):  # DMs waiting for their targets' working hours
            first = local(min(datetime.fromisoformat(until) for until in held.values()), zone)
            what += (
                f"; DM held until {first} (working hours)"
                if len(held) == 1
                else f"; {len(held)} DMs held for working hours, the first until {first}"
            )
    return f"{local(entry.at, zone)} {who} {what}"


def _waiting_label(
    member_id: int | None,
    area_id: int | None,
    people: dict[int, Member],
    areas: dict[int, RaciArea],
) -> str:
    if member_id is not None:
        return f"@{name_of(people.get(member_id))}"
    if area_id is not None:
        area = areas.get(area_id)
        return f"area {area.name}" if area else "an area"
    return "nobody named"


async def _context(
    session: AsyncSession,
    blocker: Blocker,
    limit: int | None,
    entries: list[BlockerEvent] | None = None,
) -> tuple[list[BlockerEvent], dict[int, Member], dict[int, RaciArea]]:
    """The timeline (the last ``limit`` entries; ``entries`` when the caller has them: a
    blocker that just opened has one), and the people and areas it names."""
    if entries is None:
        query = select(BlockerEvent).where(BlockerEvent.blocker_id == blocker.id)
        if limit is not None:
            query = query.order_by(BlockerEvent.id.desc()).limit(limit)
        else:
            query = query.order_by(BlockerEvent.id)
        entries = list(await session.scalars(query))
        if limit is not None:
            entries.reverse()
    ids: set[int | None] = {
        blocker.member_id,
        blocker.waiting_on_member_id,
        blocker.acknowledged_by_id,
        blocker.resolved_by_id,
    }
    area_ids = {blocker.area_id, blocker.waiting_on_area_id}
    for entry in entries:
        ids.add(entry.actor_id)
        ids.add((entry.detail or {}).get("member_id"))
        area_ids.add((entry.detail or {}).get("area_id"))
    people = await members(session, ids)
    areas: dict[int, RaciArea] = {}
    for area_id in {a for a in area_ids if a is not None}:
        area = await session.get(RaciArea, area_id)  # loaded already, most of the time
        if area is not None:
            areas[area_id] = area
    return entries, people, areas


async def area_suggested(session: AsyncSession, blocker: Blocker) -> bool:
    """Whether the area came from keywords and nobody has confirmed or changed it since."""
    entries = list(
        await session.scalars(
            select(BlockerEvent)
            .where(
                BlockerEvent.blocker_id == blocker.id,
                BlockerEvent.kind.in_((Kind.OPENED, Kind.AREA)),
            )
            .order_by(BlockerEvent.id.desc())
            .limit(1)
        )
    )
    return (
        bool(entries)
        and entries[0].kind == Kind.OPENED
        and bool((entries[0].detail or {}).get("area_suggested"))
    )


def _suggested_in(entries: list[BlockerEvent]) -> bool:
    """:func:`area_suggested`, from the whole timeline already loaded."""
    last = [e for e in entries if e.kind in (Kind.OPENED, Kind.AREA)][-1:]
    return (
        bool(last)
        and last[0].kind == Kind.OPENED
        and bool((last[0].detail or {}).get("area_suggested"))
    )


def card_zone(blocker: Blocker, areas: dict[int, RaciArea], people: dict[int, Member]) -> str:
    area = areas.get(blocker.area_id or 0)
    return area.timezone if area is not None else zone_of(people.get(blocker.member_id))


async def render(
    session: AsyncSession,
    blocker: Blocker,
    now: Any,
    *,
    full: bool = False,
    entries: list[BlockerEvent] | None = None,
) -> Message:
    """The card (``full``: the whole timeline and the age, for ``/blocker show``)."""
    limit = None if full else CARD_ENTRIES
    entries, people, areas = await _context(session, blocker, limit, entries)
    zone = card_zone(blocker, areas, people)
    reporter = people.get(blocker.member_id)
    severity = "" if blocker.severity.value == "normal" else f" · {blocker.severity.value}"
    blocks: list[Any] = [
        Header(f"Blocker #{blocker.id}{severity}"),
        Section(text(Plain(blocker.text))),
    ]
    status = STATUS_LABEL[blocker.status]
    if blocker.status == BlockerStatus.ACKNOWLEDGED:
        status += f" by @{name_of(people.get(blocker.acknowledged_by_id or 0))}"
    elif (
        blocker.status in (BlockerStatus.RESOLVED, BlockerStatus.CANCELLED) and blocker.resolved_at
    ):
        closer = name_of(people.get(blocker.resolved_by_id or 0))
        status += f" by @{closer} on {local(blocker.resolved_at, zone)}"
    elif blocker.snoozed_until is not None and blocker.snoozed_until > now:
        status += f", snoozed until {local(blocker.snoozed_until, zone)}"
    waiting: Text
    waiter = people.get(blocker.waiting_on_member_id or 0)
    if waiter is not None:
        waiting = text(UserMention(waiter.platform_user_id, name_of(waiter)))
    else:
        waiting = text(_waiting_label(None, blocker.waiting_on_area_id, people, areas))
    area = areas.get(blocker.area_id or 0)
    suggested = area is not None and (
        _suggested_in(entries)
        if entries and entries[0].kind == Kind.OPENED  # every entry is loaded
        else await area_suggested(session, blocker)
    )
    area_text = "none yet" if area is None else area.name + (" (suggested)" if suggested else "")
    opened: list[Inline | str] = [local(blocker.created_at, zone)]
    if full:  # a card is redrawn on changes only: an age there would go stale
        if blocker.resolved_at is None:
            opened.append(f" ({span(now - blocker.created_at)} old)")
        else:
            opened.append(f" (open for {between(blocker.created_at, blocker.resolved_at)})")
    if blocker.last_reported_at is not None:
        opened.append(f", reported again {local(blocker.last_reported_at, zone)}")
    blocks.append(
        Fields(
            (
                ("Status", text(status)),
                ("Reported by", text(f"@{name_of(reporter)}")),
                ("Area", text(area_text)),
                ("Waiting on", waiting),
                ("Opened", text(*opened)),
            )
        )
    )
    if blocker.source_link:
        blocks.append(Context(text("From ", Link(blocker.source_link, "this message"))))
    if entries:
        lines = "\n".join(describe_entry(e, people, areas, zone) for e in entries)
        title = "Timeline" if full else "Latest"
        blocks.append(Context(text(Bold(title), f" ({zone})\n", Plain(lines))))
    actions = buttons(blocker)
    if (
        suggested
        and area is not None
        and blocker.status in (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED)
    ):
        confirm = Button(
            f"Confirm area: {area.name}"[:75], action_id("area", blocker), str(area.id)
        )
        actions = Actions((*actions.elements, confirm))
    blocks.append(actions)
    summary = f"Blocker #{blocker.id} ({status.split(' ')[0].lower()}): {blocker.text}"[:150]
    return message(*blocks, summary=summary)


async def _place(session: AsyncSession, blocker: Blocker) -> tuple[str, Method, Target]:
    area = await session.get(RaciArea, blocker.area_id) if blocker.area_id else None
    if area is not None and area.channel_id:
        return f"c{area.channel_id}", Method.POST, Target(channel_id=area.channel_id)
    reporter = await session.get(Member, blocker.member_id)
    assert reporter is not None
    return (
        "dm",
        Method.DM,
        Target(user_id=reporter.platform_user_id, dm_channel_id=reporter.dm_channel_id),
    )


async def redraw(
    session: AsyncSession,
    blocker: Blocker,
    now: Any,
    entries: list[BlockerEvent] | None = None,
) -> None:
    """Post the card, or update it in place when what it shows changed."""
    place, method, target = await _place(session, blocker)
    base = f"blocker:{blocker.id}:card:{place}"
    msg = await render(session, blocker, now, entries=entries)
    original = blocker.card_outbox_id
    if original is not None:
        key = await session.scalar(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.id == original)
        )
        if key != base:  # the card moves (its area got a channel): a new one there
            original = None
            blocker.card_version = 0
    if original is None:
        # A first post (of a moved card too): its key is unique, so a retried event finds the
        # row it queued before instead of posting twice.
        blocker.card_outbox_id = await enqueue(
            session,
            workspace_id=blocker.workspace_id,
            method=method,
            target=target,
            message=msg,
            key=base,
            now=now,
        )
        blocker.card_version = 0
        return
    out = Publisher(session, blocker.workspace_id, target.channel_id or "", now)
    blocker.card_outbox_id, blocker.card_version = await out.publish(
        base, msg, original=original, version=blocker.card_version
    )


async def on_change(change: Change) -> None:
    opening = change.entry.kind == Kind.OPENED and change.blocker.card_outbox_id is None
    await redraw(change.session, change.blocker, change.now, [change.entry] if opening else None)


def install() -> None:
    timeline.listen(on_change)
