"""A blocker's life: opened, acknowledged, snoozed, reassigned, noted, resolved, reopened or
cancelled. Every change is one timeline entry (``timeline.record``), whose listeners redraw the
card and queue webhooks in the same transaction; every change that starts, restarts or stops
the escalation ladder goes through :func:`_ladder_changed`.

Who may acknowledge or resolve (:func:`require_target`): the member it waits on, anyone an
escalation step named, the Responsible and Accountable of its area and of the area it waits on,
its reporter, and admins. Two people pressing Resolve at once: the blocker's row is locked
(``lookup.find(lock=True)``) before its status is read, so the second waits for the first and
is then told who resolved it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commands.spec import Permission
from bot.errors import PermissionDenied, UserError
from bot.features.blockers import timeline
from bot.features.blockers.lookup import local, members, name_of, zone_of
from bot.features.blockers.timeline import Kind
from bot.features.raci import people
from storage.models import Blocker, BlockerEvent, BlockerSeverity, BlockerStatus, Member
from storage.raci import RaciArea, RaciRole

if TYPE_CHECKING:
    from bot.core import Core

MAX_TEXT_CHARS = 2000
SEVERITIES = tuple(s.value for s in BlockerSeverity)
ACTIVE = (BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED)


@dataclass
class Actor:
    """Who changes a blocker, and how: a command's or a button's context, or a standup."""

    session: AsyncSession
    core: Core
    member: Member
    permission: Permission
    now: datetime

    async def record(
        self, blocker: Blocker, kind: str, detail: dict[str, Any] | None = None
    ) -> None:
        """A timeline entry for what this actor just did (see :func:`timeline.record`)."""
        await timeline.record(
            self.session, blocker, kind, self.now, actor_id=self.member.id, detail=detail
        )


def check_text(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise UserError("Say what blocks you: the text is empty.", field="text")
    if len(value) > MAX_TEXT_CHARS:
        raise UserError(
            f"The blocker is {len(value):,} characters long; keep it to {MAX_TEXT_CHARS:,}.",
            field="text",
        )
    return value


def check_severity(raw: str | None) -> BlockerSeverity:
    if raw is None or not raw.strip():
        return BlockerSeverity.NORMAL
    value = raw.strip().lower()
    if value not in SEVERITIES:
        raise UserError(
            f'Unknown severity "{raw.strip()}"; use one of {", ".join(SEVERITIES)}.',
            field="severity",
        )
    return BlockerSeverity(value)


async def _ladder_changed(session: AsyncSession, blocker: Blocker, now: datetime) -> bool:
    """The one place that tells escalation a blocker's ladder starts, restarts or stops
    (contract 7: ``escalation.schedule_after_change``). Returns whether a step is booked; the
    callers have the scheduler read the earliest due time again after commit."""
    from bot.features.blockers import escalation  # it draws cards: imported when first needed

    return await escalation.schedule_after_change(session, blocker, now)


async def open_blocker(
    session: AsyncSession,
    *,
    workspace_id: int,
    reporter: Member,
    text: str,
    now: datetime,
    area: RaciArea | None = None,
    area_suggested: bool = False,
    waiting_member: Member | None = None,
    waiting_area: RaciArea | None = None,
    severity: BlockerSeverity = BlockerSeverity.NORMAL,
    source: str = "command",
    source_link: str | None = None,
    standup_answer_id: int | None = None,
    areas: list[RaciArea] | None = None,
) -> Blocker:
    """A new open blocker with its "opened" entry (the card is drawn by its listener) and its
    ladder started. ``area`` None: suggested from the areas' keywords (the workspace's
    ``areas``, when the caller has them loaded already: a batch of standup answers)."""
    if area is None:
        if areas is None:
            areas = list(
                await session.scalars(select(RaciArea).where(RaciArea.workspace_id == workspace_id))
            )
        area = people.suggest_area(areas, text) if areas else None
        area_suggested = area is not None
    blocker = Blocker(
        workspace_id=workspace_id,
        member_id=reporter.id,
        standup_answer_id=standup_answer_id,
        text=text,
        status=BlockerStatus.OPEN,
        created_at=now,
        updated_at=now,
        source=source,
        source_link=source_link,
        area_id=area.id if area is not None else None,
        waiting_on_member_id=waiting_member.id if waiting_member is not None else None,
        waiting_on_area_id=waiting_area.id if waiting_area is not None else None,
        severity=severity,
    )
    session.add(blocker)
    await session.flush()
    detail: dict[str, Any] = {"source": source, "severity": severity.value}
    if area is not None:
        detail["area_id"] = area.id
        detail["area_suggested"] = area_suggested
    await timeline.record(session, blocker, Kind.OPENED, now, actor_id=reporter.id, detail=detail)
    await _ladder_changed(session, blocker, now)
    return blocker


# -- who may act -----------------------------------------------------------------------------------


async def targets(session: AsyncSession, core: Core, blocker: Blocker) -> set[int]:
    """The members who can unblock it (besides its reporter and admins)."""
    found: set[int] = set()
    if blocker.waiting_on_member_id is not None:
        found.add(blocker.waiting_on_member_id)
    escalations = await session.scalars(
        select(BlockerEvent.detail).where(
            BlockerEvent.blocker_id == blocker.id, BlockerEvent.kind == Kind.ESCALATED
        )
    )
    for detail in escalations:
        found.update(int(t) for t in (detail or {}).get("targets", []) if str(t).isdigit())
    for area_id in {blocker.area_id, blocker.waiting_on_area_id} - {None}:
        area = await session.get(RaciArea, area_id)
        if area is None:
            continue
        for role in (RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE):
            found.update(m.id for m in await people.role_members(session, core, area, role))
    return found


async def require_target(actor: Actor, blocker: Blocker, verb: str) -> None:
    if actor.permission >= Permission.ADMIN or actor.member.id == blocker.member_id:
        return
    if actor.member.id in await targets(actor.session, actor.core, blocker):
        return
    raise PermissionDenied(
        f"You can't {verb} blocker #{blocker.id}: only the member or area it waits on, its "
        "area's Responsible or Accountable, whoever it was escalated to, its reporter and "
        "admins can."
    )


async def _closed_by(actor: Actor, blocker: Blocker) -> str:
    who = (await members(actor.session, {blocker.resolved_by_id})).get(blocker.resolved_by_id or 0)
    when = blocker.resolved_at or blocker.updated_at or actor.now
    state = "resolved" if blocker.status == BlockerStatus.RESOLVED else "cancelled"
    return f"{state} by @{name_of(who)} on {local(when, zone_of(actor.member))}"


async def require_active(actor: Actor, blocker: Blocker) -> None:
    """Open or acknowledged; a closed one says who closed it when."""
    if blocker.status not in ACTIVE:
        raise UserError(
            f"Blocker #{blocker.id} was already {await _closed_by(actor, blocker)}; "
            f"`/blocker reopen {blocker.id}` first if it is back."
        )


# -- changes -------------------------------------------------------------------------------------


async def acknowledge(actor: Actor, blocker: Blocker) -> None:
    await require_target(actor, blocker, "acknowledge")
    await require_active(actor, blocker)
    if blocker.status == BlockerStatus.ACKNOWLEDGED:
        who = (await members(actor.session, {blocker.acknowledged_by_id})).get(
            blocker.acknowledged_by_id or 0
        )
        when = blocker.acknowledged_at or actor.now
        raise UserError(
            f"Blocker #{blocker.id} was already acknowledged by @{name_of(who)} on "
            f"{local(when, zone_of(actor.member))}."
        )
    blocker.status = BlockerStatus.ACKNOWLEDGED
    blocker.acknowledged_at = actor.now
    blocker.acknowledged_by_id = actor.member.id
    blocker.escalation_generation += 1
    await actor.record(blocker, Kind.ACKNOWLEDGED)
    await _ladder_changed(actor.session, blocker, actor.now)


async def resolve(actor: Actor, blocker: Blocker) -> None:
    await require_target(actor, blocker, "resolve")
    await require_active(actor, blocker)
    await _close(actor, blocker, BlockerStatus.RESOLVED, Kind.RESOLVED)


async def cancel(actor: Actor, blocker: Blocker) -> None:
    if actor.permission < Permission.ADMIN and actor.member.id != blocker.member_id:
        raise PermissionDenied(f"Only its reporter and admins can cancel blocker #{blocker.id}.")
    await require_active(actor, blocker)
    await _close(actor, blocker, BlockerStatus.CANCELLED, Kind.CANCELLED)


async def _close(actor: Actor, blocker: Blocker, status: BlockerStatus, kind: str) -> None:
    await close(actor.session, blocker, status, kind, actor.member.id, actor.now)


async def close(
    session: AsyncSession,
    blocker: Blocker,
    status: BlockerStatus,
    kind: str,
    by_id: int,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Resolved or cancelled by ``by_id``: the ladder stops."""
    blocker.status = status
    blocker.resolved_at = now
    blocker.resolved_by_id = by_id
    blocker.snoozed_until = None
    blocker.next_escalation_at = None
    await timeline.record(session, blocker, kind, now, actor_id=by_id, detail=detail)
    await _ladder_changed(session, blocker, now)


async def reopened(session: AsyncSession, blocker: Blocker, now: datetime, by_id: int) -> None:
    blocker.status = BlockerStatus.OPEN
    blocker.resolved_at = None
    blocker.resolved_by_id = None
    blocker.acknowledged_at = None
    blocker.acknowledged_by_id = None
    blocker.escalation_level = 0
    blocker.escalation_round = 0
    blocker.escalation_generation += 1
    await timeline.record(session, blocker, Kind.REOPENED, now, actor_id=by_id)
    await _ladder_changed(session, blocker, now)


async def reopen(actor: Actor, blocker: Blocker) -> None:
    await require_target(actor, blocker, "reopen")
    if blocker.status in ACTIVE:
        raise UserError(f"Blocker #{blocker.id} is still {blocker.status.value}.")
    await reopened(actor.session, blocker, actor.now, actor.member.id)


async def snooze(actor: Actor, blocker: Blocker, until: datetime) -> None:
    await require_target(actor, blocker, "snooze")
    await require_active(actor, blocker)
    if until <= actor.now:
        raise UserError(
            f"{local(until, zone_of(actor.member))} is in the past; snooze until a later time."
        )
    blocker.snoozed_until = until
    await actor.record(blocker, Kind.SNOOZED, {"until": until.isoformat()})
    await _ladder_changed(actor.session, blocker, actor.now)


async def reassign(
    actor: Actor, blocker: Blocker, member: Member | None, area: RaciArea | None
) -> None:
    """What it waits on becomes ``member`` or ``area``; the ladder restarts."""
    await require_target(actor, blocker, "reassign")
    await require_active(actor, blocker)
    if member is not None and member.workspace_id != blocker.workspace_id:
        raise UserError("That member is not in this workspace.")
    new = (member.id if member else None, area.id if area else None)
    if new == (blocker.waiting_on_member_id, blocker.waiting_on_area_id):
        raise UserError(f"Blocker #{blocker.id} already waits on that.")
    blocker.waiting_on_member_id, blocker.waiting_on_area_id = new
    if blocker.status == BlockerStatus.ACKNOWLEDGED:
        blocker.status = BlockerStatus.OPEN
        blocker.acknowledged_at = None
        blocker.acknowledged_by_id = None
    blocker.escalation_level = 0
    blocker.escalation_round = 0
    blocker.escalation_generation += 1
    detail = {"member_id": new[0], "area_id": new[1]}
    await actor.record(blocker, Kind.REASSIGNED, detail)
    await _ladder_changed(actor.session, blocker, actor.now)


async def set_area(actor: Actor, blocker: Blocker, area: RaciArea, *, confirm: bool) -> None:
    """Confirm the suggested area (``confirm``), or move the blocker to another one."""
    if actor.permission < Permission.ADMIN and actor.member.id != blocker.member_id:
        await require_target(actor, blocker, "change the area of")
    await require_active(actor, blocker)
    moved = blocker.area_id != area.id
    blocker.area_id = area.id
    await actor.record(blocker, Kind.AREA, {"area_id": area.id, "confirmed": confirm})
    if moved:
        await _ladder_changed(actor.session, blocker, actor.now)


async def set_severity(actor: Actor, blocker: Blocker, severity: BlockerSeverity) -> None:
    await require_target(actor, blocker, "change the severity of")
    await require_active(actor, blocker)
    if blocker.severity == severity:
        return
    old = blocker.severity
    blocker.severity = severity
    blocker.escalation_generation += 1
    await actor.record(blocker, Kind.SEVERITY, {"from": old.value, "to": severity.value})
    await _ladder_changed(actor.session, blocker, actor.now)


async def note(actor: Actor, blocker: Blocker, raw: str) -> None:
    """Anyone in the workspace may add a note (it changes nothing but the timeline)."""
    value = check_text(raw)
    await actor.record(blocker, Kind.NOTED, {"text": value})


async def reported_again(
    session: AsyncSession, blocker: Blocker, now: datetime, text: str, answer_id: int | None
) -> None:
    """Its reporter named it again in a later standup: the age keeps counting from
    ``created_at``; nothing restarts."""
    blocker.last_reported_at = now
    detail: dict[str, Any] = {"text": text}
    if answer_id is not None:
        detail["answer_id"] = answer_id
    await timeline.record(
        session, blocker, Kind.REPORTED_AGAIN, now, actor_id=blocker.member_id, detail=detail
    )
