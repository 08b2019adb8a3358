"""Giving kudos: the one-line syntax, every check, and what is saved and sent.

Everything is checked before anything is written, and a refusal is a :class:`UserError` (the
core rolls the event back), so a bad kudos saves nothing and sends nothing. What goes out goes
through the outbox in the same transaction: the post in the kudos channel (not for a private
kudos), a DM to each receiver, and for a private kudos a DM to each receiver's team lead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.commands.parse import ChannelRef, MemberRef, channel_ref, member_ref
from bot.core import Context
from bot.errors import UserError
from bot.features.kudos import render
from bot.features.kudos.rules import (
    Rules,
    allowance,
    describe_reset,
    given_this_week,
    rules_of,
)
from bot.features.kudos.spec import GIVE_EXAMPLE
from storage.kudos import Kudos, KudosReceiver
from storage.models import Member, RoleAssignment, RoleName, TeamMember

MAX_REASON = 1000
_RECEIVER = re.compile(r"\s*(<@!?[A-Za-z0-9]+(?:\|[^>]*)?>|@[\w.\-]+)(?=[\s,]|$)[\s,]*")
_FLAG = re.compile(r"(?<!\S)--([A-Za-z][\w-]*)(?!\S)")
_CHANNEL_FLAG = re.compile(r"(?<!\S)--channel(?:\s+|=)(\S+)")
_VALUE = re.compile(r"(?:^|\s)(#[\w\-]+|<#[A-Za-z0-9]+(?:\|[^>]*)?>)\s*$")
_LABELLED_CHANNEL = re.compile(r"<#[^|>]+\|([^>]+)>")


@dataclass(frozen=True)
class KudosInput:
    receivers: tuple[MemberRef, ...]
    reason: str
    value: str | None = None  # as typed, without "#"
    private: bool = False
    channel: ChannelRef | None = None


def parse_line(line: str) -> KudosInput:
    """``@a @b REASON [#value] [--private] [--channel #c]``: leading mentions are the
    receivers, a ``#word`` at the very end is the value; every other ``#`` or ``@`` stays in
    the reason."""
    channel: ChannelRef | None = None
    found = _CHANNEL_FLAG.search(line)
    if found:
        channel = channel_ref(found.group(1))
        line = line[: found.start()] + " " + line[found.end() :]
    private = False
    for flag in _FLAG.findall(line):
        if flag.lower() == "private":
            private = True
        else:
            raise UserError(
                f"Unknown option --{flag}; kudos take --private and --channel #channel. "
                f"Example: `{GIVE_EXAMPLE}`."
            )
    line = _FLAG.sub(" ", line)
    receivers: list[MemberRef] = []
    pos = 0
    while match := _RECEIVER.match(line, pos):
        ref = member_ref(match.group(1))
        if ref.name.lower() in ("channel", "here", "everyone"):
            raise UserError(
                f"Kudos go to people, not to @{ref.name.lower()}: name them, e.g. `{GIVE_EXAMPLE}`."
            )
        if ref not in receivers:
            receivers.append(ref)
        pos = match.end()
    rest = line[pos:].strip()
    value: str | None = None
    found = _VALUE.search(rest)
    if found:
        token = found.group(1)
        # Slack turns "#craft" into a channel link when such a channel exists: its label.
        labelled = _LABELLED_CHANNEL.match(token)
        value = labelled.group(1) if labelled else token.removeprefix("#")
        rest = rest[: found.start()].strip()
    return KudosInput(tuple(receivers), rest, value, private, channel)


def check_shape(parsed: KudosInput, rules: Rules) -> str | None:
    """The checks that need no database: who, why, value, flags. Returns the value's name."""
    if not parsed.receivers:
        raise UserError(
            f"Name who the kudos are for, with an @mention first: `{GIVE_EXAMPLE}`.",
            field="who",
        )
    if not parsed.reason:
        raise UserError(
            f"Say what the kudos are for: a reason after the names, e.g. `{GIVE_EXAMPLE}`.",
            field="reason",
        )
    if len(parsed.reason) > MAX_REASON:
        raise UserError(
            f"Keep the reason to {MAX_REASON:,} characters (this one has {len(parsed.reason):,}).",
            field="reason",
        )
    if parsed.private and parsed.channel is not None:
        raise UserError(
            "A private kudos is posted in no channel: drop --channel, or drop --private to "
            "post it there."
        )
    return value_named(parsed.value, rules)


def value_named(typed: str | None, rules: Rules) -> str | None:
    if typed is None or not typed.strip():
        return None
    wanted = typed.strip().removeprefix("#").lower()
    if wanted in rules.values:
        return wanted
    if not rules.values:
        raise UserError(
            f"This workspace has no kudos values yet, so #{wanted} can't be one; leave it out, "
            "or ask an admin to set them (`/kudos settings values #ownership #craft`).",
            field="value",
        )
    raise UserError(
        f"#{wanted} is not one of this workspace's values: {rules.values_text()}.",
        field="value",
    )


async def resolve_receivers(ctx: Context, refs: tuple[MemberRef, ...]) -> list[Member]:
    people: list[Member] = []
    for ref in refs:
        member = await directory.resolve_member(
            ctx.session, ctx.workspace, ref, ctx.core.directory, now=ctx.now
        )
        if member.id == ctx.member.id:
            raise UserError("Kudos are for thanking someone else: you can't give yourself kudos.")
        if member.id not in {p.id for p in people}:
            people.append(member)
    return people


async def check_limits(ctx: Context, rules: Rules, receivers: list[Member]) -> None:
    """The daily quota and the weekly cap per receiver; the refusal says when each resets."""
    have = await allowance(ctx.session, rules, ctx.member, ctx.now)
    if have.left < len(receivers):
        when = describe_reset(have.resets_at, have.zone, ctx.now)
        if have.left == 0:
            raise UserError(
                f"You have given all {have.quota} of today's kudos. Your quota resets at "
                f"midnight your time: {when}."
            )
        raise UserError(
            f"You have {have.left} kudos left today, not {len(receivers)}: thank fewer people "
            f"now, or the rest after midnight your time ({when})."
        )
    given, next_week = await given_this_week(
        ctx.session, ctx.member, [r.id for r in receivers], ctx.now
    )
    capped = [r for r in receivers if given.get(r.id, 0) >= rules.weekly_per_receiver]
    if capped:
        names = ", ".join(f"@{render.name_of(r)}" for r in capped)
        when = describe_reset(next_week, have.zone, ctx.now)
        raise UserError(
            f"You have already given {names} {rules.weekly_per_receiver} kudos this week, the "
            f"most one person may give another; thank someone else, or again from {when}."
        )


async def where_to_post(ctx: Context, rules: Rules, parsed: KudosInput) -> str | None:
    """The platform channel the kudos is posted in; None: nowhere (private, or given in a DM
    with no kudos channel set)."""
    if parsed.private:
        return None
    if parsed.channel is not None:
        channel = await directory.resolve_channel(
            ctx.session,
            ctx.workspace,
            parsed.channel,
            ctx.core.directory,
            now=ctx.now,
            to_post=True,
        )
        return channel.external_id
    here = ctx.event.origin.channel_id
    in_dm = not here or here == ctx.member.dm_channel_id
    if rules.channel_id and not (rules.post_where_given and not in_dm):
        return rules.channel_id
    return None if in_dm else here


async def give(ctx: Context, parsed: KudosInput) -> render.Given:
    """Check everything, then save the kudos and queue its messages."""
    rules = await rules_of(ctx.session, ctx.workspace.id)
    value = check_shape(parsed, rules)
    receivers = await resolve_receivers(ctx, parsed.receivers)
    # Serialise one giver's kudos (PostgreSQL), so two at once cannot both fit the quota.
    await ctx.session.execute(select(Member.id).where(Member.id == ctx.member.id).with_for_update())
    await check_limits(ctx, rules, receivers)
    channel_id = await where_to_post(ctx, rules, parsed)
    names = await render.known_names(ctx.session, ctx.workspace.id, parsed.reason)
    kudos = Kudos(
        workspace_id=ctx.workspace.id,
        giver_id=ctx.member.id,
        reason=parsed.reason,
        value=value,
        private=parsed.private,
        channel_id=channel_id,
        given_at=ctx.now,
    )
    ctx.session.add(kudos)
    await ctx.session.flush()
    for receiver in receivers:
        ctx.session.add(KudosReceiver(kudos_id=kudos.id, receiver_id=receiver.id))
    await ctx.session.flush()
    given = render.Given(kudos, ctx.member, tuple(receivers), names)
    if channel_id is not None:
        await ctx.post(channel_id, render.post(given))
    for receiver in receivers:
        await ctx.dm(receiver, render.receiver_dm(given, receiver))
    if parsed.private:
        leads = await team_leads(ctx.session, ctx.workspace.id, receivers)
        for lead, led in leads:
            if lead.id != ctx.member.id:
                await ctx.dm(lead, render.lead_dm(given, led))
    left = await allowance(ctx.session, rules, ctx.member, ctx.now)
    return render.Given(kudos, ctx.member, tuple(receivers), names, left)


async def team_leads(
    session: AsyncSession, workspace_id: int, receivers: list[Member]
) -> list[tuple[Member, list[Member]]]:
    """Each team lead of a receiver, with the receivers they lead: a member with the team
    lead role for one of the receiver's teams, or with the workspace-wide team lead role and
    in one of those teams. Receivers are not their own leads here (they get their DM)."""
    ids = [r.id for r in receivers]
    rows = (
        await session.execute(
            select(TeamMember.team_id, TeamMember.member_id).where(TeamMember.member_id.in_(ids))
        )
    ).all()
    teams_of: dict[int, set[int]] = {}
    for team_id, member_id in rows:
        teams_of.setdefault(int(member_id), set()).add(int(team_id))
    team_ids = {t for teams in teams_of.values() for t in teams}
    if not team_ids:
        return []
    in_teams = select(TeamMember.member_id).where(TeamMember.team_id.in_(team_ids))
    assignments = (
        await session.execute(
            select(RoleAssignment.member_id, RoleAssignment.team_id, TeamMember.team_id)
            .outerjoin(TeamMember, TeamMember.member_id == RoleAssignment.member_id)
            .where(
                RoleAssignment.workspace_id == workspace_id,
                RoleAssignment.role == RoleName.TEAM_LEAD,
                or_(
                    RoleAssignment.team_id.in_(team_ids),
                    RoleAssignment.team_id.is_(None) & RoleAssignment.member_id.in_(in_teams),
                ),
            )
        )
    ).all()
    leads_teams: dict[int, set[int]] = {}
    for lead_id, role_team, own_team in assignments:
        team = role_team if role_team is not None else own_team
        if team is not None and int(team) in team_ids:
            leads_teams.setdefault(int(lead_id), set()).add(int(team))
    found: list[tuple[Member, list[Member]]] = []
    for lead_id in sorted(leads_teams):
        if lead_id in ids:
            continue
        led = [r for r in receivers if teams_of.get(r.id, set()) & leads_teams[lead_id]]
        lead = await session.get(Member, lead_id)
        if lead is not None and led:
            found.append((lead, led))
    return found


async def may_see(session: AsyncSession, kudos: Kudos, viewer: Member) -> bool:
    """Whether ``viewer`` may read a private kudos: its giver, a receiver or their team lead."""
    if not kudos.private or viewer.id == kudos.giver_id:
        return True
    receivers = list(
        await session.scalars(
            select(Member)
            .join(KudosReceiver, KudosReceiver.receiver_id == Member.id)
            .where(KudosReceiver.kudos_id == kudos.id)
        )
    )
    if viewer.id in {r.id for r in receivers}:
        return True
    leads = await team_leads(session, kudos.workspace_id, receivers)
    return viewer.id in {lead.id for lead, _ in leads}
