"""What an escalation step needs to say and to whom, loaded once per sweep batch: the members
and RACI cells of the batch's areas (:class:`People`), and the step's message (:func:`message`):
the blocker, who is blocked and since when, the area's RACI and the blocker's buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Context, Fields, Header, Message, Section, Text, text
from bot.core import Core
from bot.features.blockers import cards, ladder
from bot.features.blockers.lookup import local, name_of, span
from bot.features.raci import people
from storage.models import Blocker, BlockerSeverity, BlockerStatus, Member
from storage.raci import RaciArea, RaciAssignment, RaciRole

if TYPE_CHECKING:
    from bot.features.blockers.escalation import Plan


@dataclass
class People:
    """The members and RACI cells one batch needs, loaded in a few queries (not per step)."""

    members: dict[int, Member] = field(default_factory=dict)
    cells: dict[int, list[RaciAssignment]] = field(default_factory=dict)  # by area id
    _roles: dict[tuple[int, str], list[Member]] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, blockers: list[Blocker], areas: set[int]) -> People:
        found = cls()
        if areas:
            rows = await session.scalars(
                select(RaciAssignment)
                .where(RaciAssignment.area_id.in_(areas))
                .order_by(RaciAssignment.id)
            )
            for cell in rows:
                found.cells.setdefault(cell.area_id, []).append(cell)
        ids = {c.member_id for cells in found.cells.values() for c in cells if c.member_id}
        ids |= {b.member_id for b in blockers}
        ids |= {b.waiting_on_member_id for b in blockers if b.waiting_on_member_id}
        await found.add(session, ids)
        return found

    async def add(self, session: AsyncSession, ids: set[int]) -> None:
        wanted = ids - self.members.keys()
        if wanted:
            rows = await session.scalars(select(Member).where(Member.id.in_(wanted)))
            self.members.update({m.id: m for m in rows})

    async def role(
        self, session: AsyncSession, core: Core, area: RaciArea, role: RaciRole
    ) -> list[Member]:
        """:func:`people.role_members`, from the loaded cells when the role holds members
        only (the common case); groups go through the platform as ``people`` does it."""
        key = (area.id, role.value)
        if key not in self._roles:
            cells = [c for c in self.cells.get(area.id, []) if c.role == role.value]
            if any(c.member_id is None and c.who.startswith(people.GROUP) for c in cells):
                self._roles[key] = await people.role_members(session, core, area, role)
            else:
                held = [self.members[c.member_id] for c in cells if c.member_id in self.members]
                self._roles[key] = sorted(held, key=lambda m: (m.display_name.casefold(), m.id))
        return self._roles[key]

    def raci_line(self, area: RaciArea) -> str:
        """``R: @dana · A: @erin · C: @sam`` (the Informed get the weekly digest, not this)."""
        parts = []
        for role in ("R", "A", "C"):
            who = [
                f"@{name_of(self.members.get(c.member_id))}"
                if c.member_id is not None
                else c.label or c.who
                for c in self.cells.get(area.id, [])
                if c.role == role
            ]
            if who:
                parts.append(f"{role}: {', '.join(who)}")
        return f"{area.name}: " + (" · ".join(parts) if parts else "no RACI set yet")


def message(
    found: People, plan: Plan, blocker: Blocker, firing: ladder.Firing, now: datetime
) -> Message:
    """The step's message: the blocker, who is blocked and since when, the area's RACI, the
    buttons. Names are plain text (no mention pings anyone in a channel post)."""
    step = firing.step
    zone = plan.calendar.zone
    age = plan.calendar.between(blocker.created_at, now)
    reporter = found.members.get(blocker.member_id)
    fields: list[tuple[str, Text]] = [
        ("Blocked", text(f"@{name_of(reporter)} since {local(blocker.created_at, zone)}")),
        ("Age", text(f"{span(now - blocker.created_at)} ({span(age)} in business hours)")),
        ("Area", text(plan.area.name)),
        ("Severity", text(BlockerSeverity(blocker.severity).value)),
    ]
    if blocker.waiting_on_member_id is not None:
        waiting = found.members.get(blocker.waiting_on_member_id)
        fields.append(("Waiting on", text(f"@{name_of(waiting)}")))
    blocks: list[Any] = [
        Header(f"Blocker #{blocker.id} escalated (level {step.level})"),
        Section(text(blocker.text)),
        Fields(tuple(fields)),
        Context(text(found.raci_line(plan.area))),
    ]
    if firing.delayed:
        late = "syncup was not running" if firing.skipped else "escalation ran late"
        blocks.append(
            Context(
                text(
                    f"Escalation was delayed ({late}); this is the step due at "
                    f"{local(step.due, zone)}."
                )
            )
        )
    if blocker.status == BlockerStatus.ACKNOWLEDGED:
        blocks.append(Context(text("It was acknowledged, but is still not resolved.")))
    blocks.append(cards.buttons(blocker))
    return Message(
        tuple(blocks), summary=f"Blocker #{blocker.id} escalated to you: {blocker.text[:80]}"
    )
