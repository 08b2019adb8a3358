"""``/pulse`` handlers: setup and edit through a form, the question bank form, pause, resume,
run now, list, results and the digest now.

Team leads and admins set pulses up; a pulse's owner, team leads and admins change it (as with
standups). A team's members, team leads and admins may see its latest results privately: the
team's aggregate, shown only from the threshold up, exactly what the team channel gets.
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from bot import chat
from bot.chat import Bold, Header, OpenForm, Response, Section, marked, reply, text
from bot.commands import help as helptext
from bot.commands.spec import Permission
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import FormSubmission
from bot.features.polls.options import describe_local
from bot.features.pulse import digest as views
from bot.features.pulse import runtime
from bot.features.pulse.bank import default_bank, rebase_pointer
from bot.features.pulse.schedules import round_trigger
from bot.features.pulse.scores import round_results
from bot.features.pulse.settings import (
    BANK_FORM,
    CONFIRM_FIELD,
    SETUP_FORM,
    PulseInput,
    bank_form,
    confirm_form,
    describe,
    form_values,
    parse_bank_form,
    parse_setup,
    removed_most,
    setup_form,
)
from bot.features.pulse.spec import PULSE
from bot.features.standups.commands import resolve_references
from bot.scheduling.scheduler import next_fire_time
from bot.timezones import zone as zone_info
from storage.models import Channel, Member, Team, TeamMember
from storage.polls import Pulse, PulseRound


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        return reply(*helptext.topic(core.specs.values(), "pulse").blocks)

    core.add_command(
        PULSE,
        {
            "help": show_help,
            "setup": open_setup,
            "edit": open_edit,
            "questions": open_questions,
            "pause": pause,
            "resume": resume,
            "run": run_now,
            "list": list_pulses,
            "results": show_results,
            "digest": digest_now,
        },
    )
    core.add_form(SETUP_FORM, save_setup)
    core.add_form(BANK_FORM, save_questions)


# -- lookups ------------------------------------------------------------------------------------


async def find_pulse(ctx: Context, name: str) -> tuple[Pulse, Team]:
    rows = (
        await ctx.session.execute(
            select(Pulse, Team)
            .join(Team, Team.id == Pulse.team_id)
            .where(Pulse.workspace_id == ctx.workspace.id)
            .order_by(Team.name)
        )
    ).all()
    wanted = name.strip().removeprefix("#").lower()
    for pulse, team in rows:
        if team.name.lower() == wanted:
            return pulse, team
    names = [team.name for _, team in rows]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if close:
        hint = f' Did you mean "{close[0]}"?'
    elif names:
        hint = f" Teams with a pulse: {', '.join(names)}."
    else:
        hint = " There are none yet; a team lead can start one with `/pulse setup`."
    raise UserError(f'No team named "{name}" has a pulse check.{hint}')


def require_manager(ctx: Context, pulse: Pulse, team: Team) -> None:
    if pulse.owner_id == ctx.member.id or ctx.permission >= Permission.TEAM_LEAD:
        return
    raise UserError(
        f'Only the one who set up the "{team.name}" pulse, team leads and admins can change it.'
    )


async def members_of(ctx: Context, team: Team) -> list[Member]:
    return list(
        await ctx.session.scalars(
            select(Member)
            .join(TeamMember, TeamMember.member_id == Member.id)
            .where(TeamMember.team_id == team.id)
            .order_by(Member.display_name)
        )
    )


async def load(ctx: Context, state: str) -> tuple[Pulse, Team]:
    pulse = await ctx.session.get(Pulse, int(state)) if state.isdigit() else None
    team = await ctx.session.get(Team, pulse.team_id) if pulse is not None else None
    if pulse is None or team is None or pulse.workspace_id != ctx.workspace.id:
        raise UserError("That pulse no longer exists.")
    return pulse, team


def next_round(pulse: Pulse, team: Team, now: datetime) -> str:
    fire = next_fire_time(round_trigger(pulse, team.timezone), now)
    return describe_local(fire, team.timezone) if fire is not None else "none"


# -- setup and edit -----------------------------------------------------------------------------


async def open_setup(ctx: Context, args: dict[str, Any]) -> Response:
    return OpenForm(setup_form({"timezone": ctx.member.timezone or "UTC"}))


async def open_edit(ctx: Context, args: dict[str, Any]) -> Response:
    pulse, team = await find_pulse(ctx, args["team"])
    require_manager(ctx, pulse, team)
    channel = await ctx.session.get(Channel, team.channel_id) if team.channel_id else None
    people = " ".join(f"@{m.display_name}" for m in await members_of(ctx, team))
    values = form_values(pulse, team, f"#{channel.name}" if channel else "", people)
    return OpenForm(setup_form(values, state=str(pulse.id)))


async def save_setup(ctx: Context, event: FormSubmission) -> Response:
    editing: tuple[Pulse, Team] | None = None
    if event.state:
        editing = await load(ctx, event.state)
        require_manager(ctx, *editing)
    else:
        ctx.require(Permission.TEAM_LEAD)
    errors: dict[str, str] = {}
    parsed: PulseInput | None
    try:
        parsed = parse_setup(event.values)
    except UserError as exc:
        errors.update(exc.errors)
        parsed = None
    channel, people, _ = await resolve_references(ctx, event.values, errors)
    team = editing[1] if editing else None
    if parsed is not None:
        team = await _team_for(ctx, parsed.team, editing, errors)
    if errors or parsed is None or channel is None or team is None:
        summary = next(iter(errors.values())) if len(errors) == 1 else "Some fields need fixing."
        raise UserError(summary, errors=errors)
    pulse = editing[0] if editing else None
    if pulse is None:
        pulse = Pulse(
            workspace_id=ctx.workspace.id,
            team_id=team.id,
            owner_id=ctx.member.id,
            bank=default_bank(),
            next_question=0,
            paused=False,
            created_at=ctx.now,
        )
    _apply(pulse, team, parsed, channel, ctx.now)
    if editing is None:
        ctx.session.add(pulse)
    await ctx.session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for member in people:
        ctx.session.add(TeamMember(team_id=team.id, member_id=member.id))
    await ctx.session.flush()
    ctx.schedules_changed = True
    verb = "Updated" if editing else "Created"
    blocks: list[Any] = [
        text(
            f"{verb} the pulse check of ",
            Bold(team.name),
            f": {describe(pulse, team.timezone)}; {len(people)} member(s), results in "
            f"#{channel.name}. Next round: {next_round(pulse, team, ctx.now)}.",
        )
    ]
    if len(people) < pulse.threshold:
        blocks.append(
            chat.Context(
                text(
                    f"Heads-up: {len(people)} member(s) and a threshold of {pulse.threshold} "
                    "different people: results can never show. Add members or lower the "
                    "threshold (3 at least)."
                )
            )
        )
    if editing is None:
        blocks.append(
            chat.Context(
                marked(
                    f"It starts with {len(pulse.bank)} default questions; change them with "
                    f"`/pulse questions {team.name}`, or send a round now with "
                    f"`/pulse run {team.name}`."
                )
            )
        )
    return reply(*blocks)


async def _team_for(
    ctx: Context, name: str, editing: tuple[Pulse, Team] | None, errors: dict[str, str]
) -> Team | None:
    """The team a setup form names: the edited pulse's (renamed), an existing team without a
    pulse, or a new one. A name taken by another pulse's team is an error."""
    found = await ctx.session.scalar(
        select(Team).where(
            Team.workspace_id == ctx.workspace.id, func.lower(Team.name) == name.lower()
        )
    )
    if editing is not None:
        team = editing[1]
        if found is not None and found.id != team.id:
            errors["team"] = f'A team named "{found.name}" already exists; choose another name.'
            return None
        return team
    if found is not None:
        taken = await ctx.session.scalar(select(Pulse.id).where(Pulse.team_id == found.id))
        if taken is not None:
            errors["team"] = (
                f'"{found.name}" already has a pulse check; change it with '
                f"/pulse edit {found.name}."
            )
            return None
        return found
    team = Team(workspace_id=ctx.workspace.id, name=name, timezone="UTC", created_at=ctx.now)
    ctx.session.add(team)
    await ctx.session.flush()
    return team


def _apply(pulse: Pulse, team: Team, parsed: PulseInput, channel: Channel, now: datetime) -> None:
    team.name = parsed.team
    team.channel_id = channel.id
    team.timezone = parsed.timezone
    if pulse.anchor_date is None or pulse.every_weeks != parsed.every_weeks:
        # Weeks of an every-N-weeks pulse count from the Monday of this (team-local) week.
        today = now.astimezone(zone_info(parsed.timezone)).date()
        pulse.anchor_date = today - timedelta(days=today.weekday())
    pulse.day_of_week = parsed.day_of_week
    pulse.time_of_day = parsed.time_of_day
    pulse.every_weeks = parsed.every_weeks
    pulse.open_days = parsed.open_days
    pulse.questions_per_round = parsed.questions_per_round
    pulse.threshold = parsed.threshold
    pulse.digest_day = parsed.digest_day
    pulse.digest_time = parsed.digest_time
    pulse.updated_at = now


# -- the question bank ----------------------------------------------------------------------------


async def open_questions(ctx: Context, args: dict[str, Any]) -> Response:
    pulse, team = await find_pulse(ctx, args["team"])
    require_manager(ctx, pulse, team)
    return OpenForm(bank_form(list(pulse.bank), state=str(pulse.id)))


async def save_questions(ctx: Context, event: FormSubmission) -> Response:
    pulse, team = await load(ctx, event.state)
    require_manager(ctx, pulse, team)
    old = list(pulse.bank)
    bank = parse_bank_form(event.values, old)
    # A submission that leaves out most of the bank (one line typed where 21 stood) is asked
    # about first, on every platform: a follow-up form with what was typed and a yes or no.
    confirmed = event.values.get(CONFIRM_FIELD)
    if confirmed == "no":
        return reply(f"Nothing changed: {team.name} keeps its {len(old)} question(s).")
    removed = removed_most(old, bank)
    if removed and confirmed != "yes":
        return OpenForm(confirm_form(bank, len(old), removed, event.state))
    pulse.next_question = rebase_pointer(old, pulse.next_question, bank)
    pulse.bank = bank
    pulse.updated_at = ctx.now
    kept = len({q["key"] for q in old} & {q["key"] for q in bank})
    new = len(bank) - kept
    return reply(
        text(
            "Saved ",
            Bold(f"{len(bank)} question(s)"),
            f" for {team.name} ({kept} unchanged, {new} new or reworded). Each is asked once "
            f"before any repeats, {min(pulse.questions_per_round, len(bank))} per round.",
        )
    )


# -- pause, resume, run now -----------------------------------------------------------------------


async def pause(ctx: Context, args: dict[str, Any]) -> Response:
    return await _set_paused(ctx, args["team"], True)


async def resume(ctx: Context, args: dict[str, Any]) -> Response:
    return await _set_paused(ctx, args["team"], False)


async def _set_paused(ctx: Context, name: str, paused: bool) -> Response:
    pulse, team = await find_pulse(ctx, name)
    require_manager(ctx, pulse, team)
    if pulse.paused == paused:
        return reply(f'The "{team.name}" pulse is already {"paused" if paused else "running"}.')
    pulse.paused = paused
    pulse.updated_at = ctx.now
    ctx.schedules_changed = True
    if paused:
        return reply(
            marked(
                f'Paused the "{team.name}" pulse: no rounds, reminders or digests until '
                f"`/pulse resume {team.name}`. A round already out still closes and posts its "
                "results."
            )
        )
    return reply(
        f'Resumed the "{team.name}" pulse. Next round: {next_round(pulse, team, ctx.now)}.'
    )


async def run_now(ctx: Context, args: dict[str, Any]) -> Response:
    pulse, team = await find_pulse(ctx, args["team"])
    require_manager(ctx, pulse, team)
    if pulse.paused:
        raise UserError(f'The "{team.name}" pulse is paused; `/pulse resume {team.name}` first.')
    await runtime.close_due_rounds(ctx.session, pulse.id, ctx.now)
    still_open = await runtime.open_round(ctx.session, pulse.id, ctx.now)
    if still_open is not None:
        raise UserError(
            f"The round of {views.day(still_open.period_date)} is still open until "
            f"{describe_local(still_open.closes_at, team.timezone)}; one round at a time."
        )
    members = await members_of(ctx, team)
    if not members:
        raise UserError(f'"{team.name}" has no members; add some with `/pulse edit {team.name}`.')
    period = ctx.now.astimezone(zone_info(team.timezone)).date()
    round_ = await runtime.start_round(
        ctx.session,
        pulse,
        team,
        period=period,
        now=ctx.now,
        closes_at=runtime.closes_at_for(ctx.now, team.timezone, pulse.open_days),
        key_prefix=f"pulse:{pulse.id}:run:{ctx.event.origin.event_id}",
    )
    if round_ is None:
        raise UserError(f'The "{team.name}" pulse already had a round today; one a day at most.')
    ctx.sent_something = True
    ctx.schedules_changed = True
    return reply(
        f"Sent a round of the {team.name} pulse to {len(members)} member(s); it closes "
        f"{describe_local(round_.closes_at, team.timezone)}."
    )


# -- list, results, digest ----------------------------------------------------------------------


async def list_pulses(ctx: Context, args: dict[str, Any]) -> Response:
    rows = (
        await ctx.session.execute(
            select(Pulse, Team, Channel.name, func.count(TeamMember.member_id))
            .join(Team, Team.id == Pulse.team_id)
            .outerjoin(Channel, Channel.id == Team.channel_id)
            .outerjoin(TeamMember, TeamMember.team_id == Team.id)
            .where(Pulse.workspace_id == ctx.workspace.id)
            .group_by(Pulse.id, Team.id, Channel.name)
            .order_by(Team.name)
        )
    ).all()
    if not rows:
        return reply(marked("No pulse checks yet. A team lead can start one with `/pulse setup`."))
    blocks: list[Any] = [Header("Pulse checks")]
    for pulse, team, channel, count in rows:
        state = " (paused)" if pulse.paused else ""
        upcoming = "" if pulse.paused else f" Next round: {next_round(pulse, team, ctx.now)}."
        blocks.append(
            Section(
                text(
                    Bold(team.name),
                    f"{state}: {describe(pulse, team.timezone)}; {count} member(s), "
                    f"{len(pulse.bank)} questions in the bank; results in #{channel or '?'}."
                    f"{upcoming}",
                )
            )
        )
    return reply(*blocks)


async def show_results(ctx: Context, args: dict[str, Any]) -> Response:
    pulse, team = await find_pulse(ctx, args["team"])
    if ctx.permission < Permission.TEAM_LEAD and pulse.owner_id != ctx.member.id:
        member = await ctx.session.scalar(
            select(TeamMember.member_id).where(
                TeamMember.team_id == team.id, TeamMember.member_id == ctx.member.id
            )
        )
        if member is None:
            # The team's channel may be private: its results are for those who see it.
            raise UserError(
                f"The {team.name} pulse results are for its members, team leads and admins."
            )
    latest = await ctx.session.scalar(
        select(PulseRound)
        .where(PulseRound.pulse_id == pulse.id, PulseRound.closed_at.is_not(None))
        .order_by(PulseRound.period_date.desc())
        .limit(1)
    )
    if latest is None:
        still_open = await runtime.open_round(ctx.session, pulse.id, ctx.now)
        when = (
            f" The first results come when the round of {views.day(still_open.period_date)} "
            f"closes, {describe_local(still_open.closes_at, team.timezone)}."
            if still_open is not None
            else ""
        )
        return reply(f"No round of the {team.name} pulse has closed yet.{when}")
    results = await round_results(ctx.session, pulse, latest)
    return reply(*views.results_reply(team.name, latest.period_date, results, pulse.every_weeks))


async def digest_now(ctx: Context, args: dict[str, Any]) -> Response:
    pulse, team = await find_pulse(ctx, args["team"])
    require_manager(ctx, pulse, team)
    posted = await runtime.post_digest(
        ctx.session,
        pulse,
        team,
        ctx.now,
        ctx.now,
        f"pulse:{pulse.id}:digest-now:{ctx.event.origin.event_id}",
    )
    if not posted:
        if team.channel_id is None:
            raise UserError(
                f'"{team.name}" has no channel; set one with `/pulse edit {team.name}`.'
            )
        return reply(
            f"Nothing for a {team.name} digest: no pulse round and no poll closed in the last "
            "7 days."
        )
    ctx.sent_something = True
    return reply(f"Posted the {team.name} digest of the last 7 days.")
