"""``/kudos board`` and ``/kudos history``.

The board counts kudos received and given in the current week, month or quarter of whoever asks
(their zone), per value, and ranks people by those counts (ties share a rank). Members who opted
out (``/kudos optout``) appear nowhere ranked: not among receivers, not among givers. A private
kudos counts on the board (its words are shown to nobody there); in ``/kudos history`` it is
listed only to its giver, its receivers and their team leads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import Bold, Context, Header, Message, Section, message, text
from bot.errors import UserError
from bot.features.kudos.give import may_see, value_named
from bot.features.kudos.render import known_names, name_of, reason_text
from bot.features.kudos.rules import Rules, local_midnight, zone_of
from bot.timezones import zone
from storage.kudos import Kudos, KudosOptOut, KudosReceiver
from storage.models import Member

PERIODS = ("week", "month", "quarter")
TOP = 10
HISTORY = 20


def period_start(now: datetime, zone_name: str, period: str) -> tuple[datetime, date]:
    """The start of the current week (Monday), month or quarter in the zone."""
    today = now.astimezone(zone(zone_name)).date()
    if period == "week":
        first = today - timedelta(days=today.weekday())
    elif period == "month":
        first = today.replace(day=1)
    else:
        first = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    return local_midnight(first, zone_name), first


def board_filters(period: str | None, value: str | None, rules: Rules) -> tuple[str, str | None]:
    """The two optional words in either order: a period and a ``#value``."""
    chosen_period, chosen_value = "week", None
    for word in (w for w in (period, value) if w):
        if word.startswith("#"):
            chosen_value = value_named(word, rules)
        elif word.lower() in PERIODS:
            chosen_period = word.lower()
        else:
            raise UserError(
                f'"{word}" is neither a period (week, month or quarter) nor a #value '
                f"({rules.values_text()}). Example: `/kudos board month #craft`."
            )
    return chosen_period, chosen_value


@dataclass(frozen=True)
class Ranked:
    rank: int
    name: str
    count: int
    per_value: tuple[tuple[str, int], ...]


def ranking(counts: dict[int, Counter[str]], names: dict[int, str]) -> list[Ranked]:
    totals = sorted(counts, key=lambda m: (-sum(counts[m].values()), names[m].lower()))
    out: list[Ranked] = []
    for position, member_id in enumerate(totals[:TOP], start=1):
        total = sum(counts[member_id].values())
        rank = out[-1].rank if out and out[-1].count == total else position
        per_value = tuple(
            sorted(((v, n) for v, n in counts[member_id].items() if v), key=lambda x: (-x[1], x[0]))
        )
        out.append(Ranked(rank, names[member_id], total, per_value))
    return out


async def board(
    session: AsyncSession,
    workspace_id: int,
    viewer: Member,
    now: datetime,
    period: str,
    value: str | None,
) -> Message:
    zone_name = zone_of(viewer)
    start, first = period_start(now, zone_name, period)
    query = (
        select(Kudos.giver_id, KudosReceiver.receiver_id, Kudos.value)
        .join(KudosReceiver, KudosReceiver.kudos_id == Kudos.id)
        .where(Kudos.workspace_id == workspace_id, Kudos.given_at >= start)
    )
    if value is not None:
        query = query.where(Kudos.value == value)
    rows = (await session.execute(query)).all()
    out_ids = set(
        await session.scalars(
            select(KudosOptOut.member_id)
            .join(Member, Member.id == KudosOptOut.member_id)
            .where(Member.workspace_id == workspace_id)
        )
    )
    received: dict[int, Counter[str]] = {}
    given: dict[int, Counter[str]] = {}
    for giver_id, receiver_id, kudos_value in rows:
        if receiver_id not in out_ids:
            received.setdefault(receiver_id, Counter())[kudos_value or ""] += 1
        if giver_id not in out_ids:
            given.setdefault(giver_id, Counter())[kudos_value or ""] += 1
    ids = set(received) | set(given)
    names = (
        {m.id: name_of(m) for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}
        if ids
        else {}
    )
    title = f"Kudos board: this {period}"
    if value:
        title += f", #{value}"
    blocks: list = [
        Header(title),
        Context(text(f"Since {first:%a} {first.day} {first:%b %Y} ({zone_name}).")),
    ]
    for label, counts in (("Received", received), ("Given", given)):
        blocks.append(Section(text(Bold(label))))
        ranked = ranking(counts, names)
        if not ranked:
            blocks.append(Section(text("Nobody yet.")))
        for row in ranked:
            line = f"{row.rank}. {row.name}: {row.count}"
            if row.per_value and not value:
                line += " (" + ", ".join(f"#{v} {n}" for v, n in row.per_value) + ")"
            blocks.append(Section(text(line)))
    blocks.append(
        Context(
            text("Names only, nobody pinged. Members who opted out (/kudos optout) are not ranked.")
        )
    )
    return message(*blocks, summary=title)


async def history(
    session: AsyncSession, workspace_id: int, viewer: Member, who: Member, now: datetime
) -> Message:
    """The last kudos ``who`` received or gave that ``viewer`` may see, newest first."""
    received_ids = select(KudosReceiver.kudos_id).where(KudosReceiver.receiver_id == who.id)
    kudos_rows = list(
        await session.scalars(
            select(Kudos)
            .where(
                Kudos.workspace_id == workspace_id,
                (Kudos.giver_id == who.id) | Kudos.id.in_(received_ids),
            )
            .order_by(Kudos.given_at.desc(), Kudos.id.desc())
            .limit(HISTORY * 3)
        )
    )
    zone_name = zone_of(viewer)
    whose = "Your" if who.id == viewer.id else f"{name_of(who)}'s"
    blocks: list = [Header(f"{whose} kudos")]
    shown = 0
    hidden = 0
    for kudos in kudos_rows:
        if shown >= HISTORY:
            break
        if not await may_see(session, kudos, viewer):
            hidden += 1
            continue
        shown += 1
        blocks.append(await _history_line(session, kudos, zone_name))
    if shown == 0:
        blocks.append(Section(text("No kudos yet.")))
    if hidden:
        blocks.append(
            Context(text(f"{hidden} private kudos not shown: they are not yours to see."))
        )
    return message(*blocks, summary=f"{whose} kudos")


async def _history_line(session: AsyncSession, kudos: Kudos, zone_name: str) -> Section:
    giver = await session.get(Member, kudos.giver_id)
    receivers = list(
        await session.scalars(
            select(Member)
            .join(KudosReceiver, KudosReceiver.receiver_id == Member.id)
            .where(KudosReceiver.kudos_id == kudos.id)
            .order_by(Member.display_name)
        )
    )
    local = kudos.given_at.astimezone(zone(zone_name))
    head = f"{local:%a} {local.day} {local:%b}: {name_of(giver) if giver else '?'} → "
    head += ", ".join(name_of(r) for r in receivers)
    if kudos.value:
        head += f" #{kudos.value}"
    if kudos.private:
        head += " (private)"
    names = await known_names(session, kudos.workspace_id, kudos.reason)
    return Section(text(Bold(head), ": ") + reason_text(kudos.reason, names))
