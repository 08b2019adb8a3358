"""Hooks and rules in storage, and what one verified delivery does.

:func:`deliver` is the whole effect of a delivery, in one transaction: the delivery id is
claimed in ``hook_seen`` (a second delivery with it does nothing), the body is parsed, each
matching rule queues its post in the outbox (invariant 2; the delivery worker paces it to the
channel's limit) and names its milestone to :data:`MILESTONE_DONE`, and the outcome is kept in
the hook's recent deliveries.
"""

from __future__ import annotations

import random
import re
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy import insert as insert_table
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import message
from bot.delivery.outbox import WRITE_SLICE, Outgoing, enqueue_many
from bot.errors import UserError
from bot.features.hooks import sources, templates
from bot.port import Method, Target
from bot.webhooks.formats import new_secret
from bot.webhooks.keys import Keys, KeyUnavailable
from storage.hooks import Hook, HookDelivery, HookRule, HookSeen
from storage.models import Member, Workspace
from storage.upsert import insert_do_nothing

# Deliveries kept per hook for `/milestone hook list`, pruned in about one batch out of
# 1 / PRUNE_CHANCE (a few more may be kept in between).
KEEP_DELIVERIES = 20
PRUNE_CHANCE = 0.1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

# The hook point milestones fill in: ``await fn(session, workspace_id, milestone_name, now)``
# marks the named milestone done (and celebrates it) in the delivery's transaction, returning
# what happened for the deliveries list. Until the milestones feature registers one, a rule's
# milestone is kept and the delivery says it waits for milestones.
MilestoneDone = Callable[[AsyncSession, int, str, datetime], Awaitable[str]]
MILESTONE_DONE: list[MilestoneDone] = []


@dataclass(frozen=True)
class Added:
    hook: Hook
    secret: str


def _secret(source: str) -> str:
    return new_secret() if source == "standard" else secrets.token_urlsafe(32)


async def add_hook(
    session: AsyncSession,
    workspace: Workspace,
    member: Member,
    source: str | None,
    name: str | None,
    keys: Keys,
    now: datetime,
) -> Added:
    source = (source or "").lower()
    if source not in sources.SOURCES:
        raise UserError(
            f"Say which sender: `/milestone hook add {'|'.join(sources.SOURCES)} [NAME]`."
        )
    name = name or source
    if not _NAME.match(name):
        raise UserError(
            f'"{name[:70]}" cannot name a hook: letters, digits, "-", "_" and ".", up to 64.'
        )
    if await _find(session, workspace.id, name) is not None:
        raise UserError(f'There is a hook named "{name}" already; pick another NAME.')
    secret = _secret(source)
    try:
        sealed = keys.box().seal(secret)
    except KeyUnavailable as exc:  # PostgreSQL without [security] secret_key: say what to set
        raise UserError(str(exc)) from None
    hook = Hook(
        workspace_id=workspace.id,
        name=name,
        key=name.casefold(),
        source=source,
        token=secrets.token_urlsafe(24),
        secret=sealed,
        created_by_id=member.id,
        created_at=now,
    )
    session.add(hook)
    await session.flush()
    return Added(hook, secret)


async def _find(session: AsyncSession, workspace_id: int, name: str) -> Hook | None:
    return await session.scalar(
        select(Hook).where(Hook.workspace_id == workspace_id, Hook.key == name.casefold())
    )


async def hook_named(session: AsyncSession, workspace_id: int, name: str | None) -> Hook:
    found = await _find(session, workspace_id, name) if name else None
    if found is not None:
        return found
    known = ", ".join(h.name for h in await hooks(session, workspace_id)) or "none yet"
    what = f'No hook is named "{name[:70]}"' if name else "Name the hook"
    raise UserError(f"{what}; hooks: {known}. `/milestone hook list` shows them.")


async def hooks(session: AsyncSession, workspace_id: int) -> list[Hook]:
    found = await session.scalars(
        select(Hook).where(Hook.workspace_id == workspace_id).order_by(Hook.id)
    )
    return list(found)


async def rules(session: AsyncSession, hook_id: int) -> list[HookRule]:
    found = await session.scalars(
        select(HookRule).where(HookRule.hook_id == hook_id).order_by(HookRule.id)
    )
    return list(found)


async def recent(session: AsyncSession, hook_id: int, limit: int = 5) -> list[HookDelivery]:
    found = await session.scalars(
        select(HookDelivery)
        .where(HookDelivery.hook_id == hook_id)
        .order_by(HookDelivery.id.desc())
        .limit(limit)
    )
    return list(found)


async def add_rule(
    session: AsyncSession,
    hook: Hook,
    *,
    event: str,
    channel_id: str,
    template: str,
    filters: Mapping[str, Any],
    milestone: str | None,
    now: datetime,
) -> HookRule:
    """Check everything first (event, filters, template placeholders), then save."""
    if hook.source == "standard":
        if not _EVENT.match(event):
            raise UserError(f'"{event[:70]}" is not an event type, e.g. `deploy.finished`.')
        allowed_filters: tuple[str, ...] = ()
    else:
        known = sources.events(hook.source)
        if event not in known:
            raise UserError(
                f'A {hook.source} hook has no event "{event[:70]}": use {", ".join(known)}.'
            )
        allowed_filters = sources.FILTERS[event]
    unknown = sorted(set(filters) - set(allowed_filters))
    if unknown:
        takes = ", ".join(f"--{f}" for f in allowed_filters) or "no filters"
        raise UserError(f"{event} cannot be filtered by --{unknown[0]}; it takes {takes}.")
    templates.check(template, sources.placeholders(hook.source, event))
    if milestone is not None and not milestone.strip():
        raise UserError("--milestone needs the milestone's name.")
    rule = HookRule(
        hook_id=hook.id,
        event=event,
        filters=dict(filters),
        channel_id=channel_id,
        template=template,
        milestone=milestone.strip()[:128] if milestone else None,
        created_at=now,
    )
    session.add(rule)
    await session.flush()
    return rule


async def remove_rule(session: AsyncSession, hook: Hook, rule_id: str | None) -> HookRule:
    found = {str(r.id): r for r in await rules(session, hook.id)}
    rule = found.get((rule_id or "").lstrip("#"))
    if rule is None:
        ids = ", ".join(found) or "none"
        raise UserError(f"{hook.name} has no rule {rule_id or '(none given)'}; its rules: {ids}.")
    await session.delete(rule)
    return rule


class Rule(Protocol):
    """What a delivery reads of a rule: a :class:`HookRule`, or a row of its columns."""

    id: int
    hook_id: int
    event: str
    filters: dict[str, Any]
    channel_id: str
    template: str
    milestone: str | None


# Written as tables, not through the ORM: a burst's rows skip its per-row bookkeeping.
_SEEN = HookSeen.__table__
_DELIVERIES = HookDelivery.__table__
# The columns a delivery reads (rows, not ORM objects: a burst reads many).
RULE_COLUMNS = (
    HookRule.id,
    HookRule.hook_id,
    HookRule.event,
    HookRule.filters,
    HookRule.channel_id,
    HookRule.template,
    HookRule.milestone,
)
# Built once: a burst's transactions skip building and keying them anew.
_RULES = (
    select(*RULE_COLUMNS)
    .where(
        HookRule.hook_id.in_(bindparam("hooks", expanding=True)),
        HookRule.event.in_(bindparam("events", expanding=True)),
    )
    .order_by(HookRule.id)
)
_RECORD = insert_table(_DELIVERIES)


def _claim_statement(session: AsyncSession) -> Any:
    return insert_do_nothing(session, _SEEN, ["hook_id", "delivery_id"]).returning(
        _SEEN.c.hook_id, _SEEN.c.delivery_id
    )


def matches(rule: Rule, incoming: sources.Incoming) -> bool:
    if rule.event != incoming.event:
        return False
    for key, wanted in (rule.filters or {}).items():
        if key == "labels":
            if not {str(w).casefold() for w in wanted} & {x.casefold() for x in incoming.labels}:
                return False
        elif incoming.fields.get(key, "").casefold() != str(wanted).casefold():
            return False
    return True


def _delivery_row(
    hook_id: int, delivery_id: str, event: str, outcome: str, reason: str, now: datetime
) -> dict[str, Any]:
    return {
        "hook_id": hook_id,
        "delivery_id": delivery_id[:128],
        "event": event[:64],
        "received_at": now,
        "outcome": outcome,
        "reason": reason[:500],
    }


async def record(
    session: AsyncSession,
    hook_id: int,
    delivery_id: str,
    event: str,
    outcome: str,
    reason: str,
    now: datetime,
) -> None:
    """Keep a delivery (or a test) in the hook's recent list."""
    session.add(HookDelivery(**_delivery_row(hook_id, delivery_id, event, outcome, reason, now)))
    await session.flush()


async def _prune(session: AsyncSession, hook_ids: set[int], now: datetime) -> None:
    """Keep the last KEEP_DELIVERIES deliveries of each hook; forget expired delivery ids.
    Two statements whatever the number of hooks (a burst may touch many)."""
    ranked = (
        select(
            HookDelivery.id,
            func.row_number()
            .over(partition_by=HookDelivery.hook_id, order_by=HookDelivery.id.desc())
            .label("rank"),
        )
        .where(HookDelivery.hook_id.in_(hook_ids))
        .subquery()
    )
    old = select(ranked.c.id).where(ranked.c.rank > KEEP_DELIVERIES)
    await session.execute(delete(HookDelivery).where(HookDelivery.id.in_(old)))
    await session.execute(delete(HookSeen).where(HookSeen.expires_at < now))


@dataclass(frozen=True)
class Arrival:
    """One verified delivery waiting to be acted on."""

    hook_id: int
    workspace_id: int
    source: str
    delivery_id: str
    headers: Mapping[str, str]
    body: bytes
    # The hook's rules by event, when the caller has them (the receiver reads them with the
    # hook); None: read in the delivery's transaction.
    rules: Mapping[str, Sequence[Rule]] | None = None


async def deliver(session: AsyncSession, arrivals: Sequence[Arrival], now: datetime) -> list[str]:
    """The effect of verified deliveries (see the module), many in one transaction and a few
    statements whatever their number (a burst is written together); returns each one's
    outcome: ``duplicate``, ``ignored``, ``ping`` or ``posted``. A delivery id given twice in
    ``arrivals`` is acted on at its first place only."""
    outcomes = ["duplicate"] * len(arrivals)
    first: dict[tuple[int, str], int] = {}
    for index, arrival in enumerate(arrivals):
        first.setdefault((arrival.hook_id, arrival.delivery_id), index)
    # In one order everywhere: two transactions claiming some of the same ids (replicas, or
    # concurrent batches on PostgreSQL) wait for each other rather than deadlock.
    claimed = await _claim(session, sorted(first), sources.seen_until(now))
    fresh = [index for key, index in first.items() if key in claimed]
    if not fresh:
        return outcomes
    parsed: dict[int, sources.Incoming | str] = {}
    for index in fresh:
        arrival = arrivals[index]
        try:
            parsed[index] = sources.parse(arrival.source, arrival.headers, arrival.body)
        except sources.Ignored as exc:
            parsed[index] = str(exc)
    wanted = {
        (arrivals[i].hook_id, p.event)
        for i, p in parsed.items()
        if isinstance(p, sources.Incoming) and arrivals[i].rules is None
    }
    by_event: dict[tuple[int, str], list[Rule]] = defaultdict(list)
    if wanted:
        found = await session.execute(
            _RULES, {"hooks": list({h for h, _ in wanted}), "events": list({e for _, e in wanted})}
        )
        for rule in found:
            by_event[(rule.hook_id, rule.event)].append(rule)
    posts: list[Outgoing] = []
    records: list[dict[str, Any]] = []
    for index in fresh:
        arrival, incoming = arrivals[index], parsed[index]
        if isinstance(incoming, str):
            event = sources.event_header(arrival.source, arrival.headers)
            outcome, reason = "ignored", incoming
        else:
            event = incoming.event
            if arrival.rules is not None:
                rules = arrival.rules.get(event, ())
            else:
                rules = by_event.get((arrival.hook_id, event), [])
            outcome, reason = await _plan(session, arrival, incoming, rules, posts, now)
        outcomes[index] = outcome
        records.append(
            _delivery_row(arrival.hook_id, arrival.delivery_id, event, outcome, reason, now)
        )
    await enqueue_many(session, posts, now)
    # Core inserts (no ORM objects, no ids read back): a burst is a few statements.
    await session.execute(_RECORD, records)
    if random.random() < PRUNE_CHANCE:
        await _prune(session, {r["hook_id"] for r in records}, now)
    return outcomes


async def _claim(
    session: AsyncSession, keys: list[tuple[int, str]], until: datetime
) -> set[tuple[int, str]]:
    """Insert (hook, delivery id) into ``hook_seen``; returns those not there before."""
    stmt = _claim_statement(session)
    claimed: set[tuple[int, str]] = set()
    for start in range(0, len(keys), WRITE_SLICE):
        rows = [
            {"hook_id": h, "delivery_id": d, "expires_at": until}
            for h, d in keys[start : start + WRITE_SLICE]
        ]
        # executemany: one compiled statement for every batch size (SQLAlchemy sends it as
        # multi-row INSERTs with RETURNING).
        claimed.update((h, d) for h, d in await session.execute(stmt, rows))
    return claimed


async def _plan(
    session: AsyncSession,
    arrival: Arrival,
    incoming: sources.Incoming,
    rules: Sequence[Rule],
    posts: list[Outgoing],
    now: datetime,
) -> tuple[str, str]:
    """Outcome and reason of one parsed delivery; its posts are added to ``posts``."""
    if incoming.event == "ping":
        return "ping", "the hook works"
    notes: list[str] = []
    posted = 0
    for rule in rules:
        if not matches(rule, incoming):
            continue
        try:
            shown = templates.render(rule.template, incoming.fields)
        except KeyError as exc:
            notes.append(f"rule {rule.id}: the payload has no {exc.args[0]}")
            continue
        posts.append(
            Outgoing(
                workspace_id=arrival.workspace_id,
                method=Method.POST,
                target=Target(channel_id=rule.channel_id),
                message=message(shown, summary=shown.plain()[:150]),
                key=f"hook:{arrival.hook_id}:{arrival.delivery_id}:{rule.id}",
            )
        )
        posted += 1
        if rule.milestone:
            notes.append(await _milestone_done(session, arrival.workspace_id, rule.milestone, now))
    if not posted:
        return "ignored", "; ".join(notes) or f"no rule matches {incoming.event}"
    return "posted", "; ".join([f"{posted} post(s) queued", *notes])


async def _milestone_done(
    session: AsyncSession, workspace_id: int, name: str, now: datetime
) -> str:
    if not MILESTONE_DONE:
        return f'milestone "{name}" kept for when milestones arrive'
    return "; ".join([await fn(session, workspace_id, name, now) for fn in MILESTONE_DONE])
