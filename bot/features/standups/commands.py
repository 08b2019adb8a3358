"""``/standup`` handlers: setup and edit through a form, list, pause, resume, delete (with a
confirmation), run now, skip, out of office, history and stats."""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat, directory
from bot.chat import (
    Actions,
    Bold,
    Button,
    Header,
    OpenForm,
    Response,
    Section,
    marked,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.parse import MemberRef, channel_ref, member_ref
from bot.commands.spec import Permission
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.standups import fanout
from bot.features.standups import history as history_views
from bot.features.standups.first_prompts import START_ACTION, first_prompts_note, missed_today
from bot.features.standups.prompts import prompt_key, prompt_members
from bot.features.standups.schedules import member_zone
from bot.features.standups.settings import (
    FORM_ID,
    SetupInput,
    describe_schedule,
    form_values,
    parse_date_range,
    parse_setup,
    setup_form,
)
from bot.features.standups.skips import skip_today
from bot.features.standups.spec import STANDUP
from storage.models import Absence, Channel, Member, Standup, StandupParticipant

DEFAULT_HISTORY_DAYS = 7


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        return reply(*helptext.topic(core.specs.values(), "standup").blocks)

    core.add_command(
        STANDUP,
        {
            "help": show_help,
            "setup": open_setup,
            "list": list_standups,
            "edit": open_edit,
            "pause": pause,
            "resume": resume,
            "delete": ask_delete,
            "run": run_now,
            "skip": skip,
            "ooo": out_of_office,
            "history": show_history,
            "stats": show_stats,
        },
    )
    core.add_form(FORM_ID, save_setup)
    core.add_action("standup-delete", confirm_delete)
    core.add_action("standup-keep", keep)
    core.add_action(START_ACTION, start_today)


# -- lookups ------------------------------------------------------------------------------------


async def find_standup(ctx: Context, name: str) -> Standup:
    standups = list(
        await ctx.session.scalars(select(Standup).where(Standup.workspace_id == ctx.workspace.id))
    )
    for standup in standups:
        if standup.name.lower() == name.strip().lower():
            return standup
    names = [s.name for s in standups]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if close:
        hint = f' Did you mean "{close[0]}"?'
    elif names:
        hint = f" Standups here: {', '.join(names)}."
    else:
        hint = " There are none yet; create one with `/standup setup`."
    raise UserError(f'No standup named "{name}".{hint}')


def require_manager(ctx: Context, standup: Standup) -> None:
    if standup.owner_id == ctx.member.id or ctx.permission >= Permission.TEAM_LEAD:
        return
    raise UserError(f'Only the owner of "{standup.name}", team leads and admins can change it.')


async def participants_of(
    session: AsyncSession, standup: Standup, limit: int | None = None
) -> list[Member]:
    return list(
        await session.scalars(
            select(Member)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .where(StandupParticipant.standup_id == standup.id)
            .order_by(Member.display_name, Member.id)
            .limit(limit)
        )
    )


# -- setup and edit -----------------------------------------------------------------------------


async def open_setup(ctx: Context, args: dict[str, Any]) -> Response:
    return OpenForm(setup_form())


async def open_edit(ctx: Context, args: dict[str, Any]) -> Response:
    standup = await find_standup(ctx, args["name"])
    require_manager(ctx, standup)
    channel = await ctx.session.get(Channel, standup.report_channel_id)
    if standup.participants_channel_id is not None:
        source = await ctx.session.get(Channel, standup.participants_channel_id)
        people = f"#{source.name}" if source else ""
    else:
        people = " ".join(f"@{m.display_name}" for m in await participants_of(ctx.session, standup))
    values = form_values(standup, f"#{channel.name}" if channel else "", people)
    return OpenForm(setup_form(values, state=str(standup.id)))


async def save_setup(ctx: Context, event: FormSubmission) -> Response:
    editing: Standup | None = None
    if event.state:
        editing = await ctx.session.get(Standup, int(event.state))
        if editing is None or editing.workspace_id != ctx.workspace.id:
            raise UserError("That standup no longer exists.")
        require_manager(ctx, editing)
    errors: dict[str, str] = {}
    try:
        today = ctx.now.astimezone(ZoneInfo(ctx.member.timezone or "UTC")).date()
        kept = editing.holidays if editing is not None else ()
        parsed = parse_setup(event.values, today, kept)
    except UserError as exc:
        errors.update(exc.errors)
        parsed = None
    channel, people, source = await resolve_references(ctx, event.values, errors)
    name = str(event.values.get("name", "")).strip()
    if name and "name" not in errors:
        clash = await ctx.session.scalar(
            select(Standup).where(
                Standup.workspace_id == ctx.workspace.id,
                Standup.name.ilike(name),
                Standup.id != (editing.id if editing else -1),
            )
        )
        if clash is not None:
            errors["name"] = f'A standup named "{clash.name}" already exists; choose another name.'
    if errors or parsed is None or channel is None:
        summary = next(iter(errors.values())) if len(errors) == 1 else "Some fields need fixing."
        raise UserError(summary, errors=errors)
    standup = editing or Standup(
        workspace_id=ctx.workspace.id, owner_id=ctx.member.id, paused=False, created_at=ctx.now
    )
    _apply(standup, parsed, channel, source, ctx.now)
    if editing is None:
        ctx.session.add(standup)
        await ctx.session.flush()
    await ctx.session.execute(
        delete(StandupParticipant).where(StandupParticipant.standup_id == standup.id)
    )
    for member in people:
        ctx.session.add(StandupParticipant(standup_id=standup.id, member_id=member.id))
    ctx.schedules_changed = True
    verb = "Updated" if editing else "Created"
    when = describe_schedule(
        standup.days, standup.every_weeks, standup.time_of_day, standup.team_timezone
    )
    return reply(
        text(
            f"{verb} ",
            Bold(standup.name),
            f": {when}, {len(people)} participant(s), report in #{channel.name}.",
        ),
        *(first_prompts_note(standup, people, ctx.member, ctx.now) if editing is None else ()),
        chat.Context(marked(f"Try it now with `/standup run {standup.name}`.")),
    )


async def start_today(ctx: Context, event: ActionInvocation) -> Response:
    """The "Ask them now" button after creation: today's prompt for those whose time today has
    passed while their window is still open (see ``first_prompts.py``)."""
    raw = event.action_id.partition(":")[2]
    standup = await ctx.session.get(Standup, int(raw)) if raw.isdigit() else None
    if standup is None or standup.workspace_id != ctx.workspace.id:
        raise UserError("That standup no longer exists.")
    require_manager(ctx, standup)
    if standup.paused:
        raise UserError(f'"{standup.name}" is paused; `/standup resume {standup.name}` first.')
    asked = 0
    prefix = f"standup:{standup.id}:start:{ctx.event.origin.event_id}"
    missed = missed_today(standup, await participants_of(ctx.session, standup), ctx.now)
    # Each member is asked for their own local date: a run per date.
    for day in sorted({m.local_date for m in missed}):
        people = [m.member for m in missed if m.local_date == day]
        asked += len(
            await prompt_members(ctx.session, standup, people, day, ctx.now, key_prefix=prefix)
        )
    ctx.sent_something = True
    ctx.schedules_changed = True
    if not asked:
        return reply(f'Nobody in "{standup.name}" is left to ask today.')
    return reply(f'Asked {asked} participant(s) of "{standup.name}" now, for today.')


async def resolve_references(
    ctx: Context, values: dict[str, str | list[str]], errors: dict[str, str]
) -> tuple[Channel | None, list[Member], Channel | None]:
    """The report channel and the participants; problems are added to ``errors``."""
    platform = ctx.core.directory
    channel: Channel | None = None
    raw_channel = str(values.get("channel", "")).strip()
    if raw_channel and "channel" not in errors:
        try:
            # With a platform directory: also whether the bot may post there (a clear refusal
            # now, not a dead-lettered report on the first standup day).
            channel = await directory.resolve_channel(
                ctx.session,
                ctx.workspace,
                channel_ref(raw_channel),
                platform,
                now=ctx.now,
                to_post=True,
            )
        except UserError as exc:
            errors["channel"] = exc.message
    people: dict[int, Member] = {}
    source: Channel | None = None
    raw_people = str(values.get("participants", "")).replace(",", " ").split()
    for ref in raw_people:
        try:
            if ref.startswith(("#", "<#")):
                source = await directory.resolve_channel(
                    ctx.session, ctx.workspace, channel_ref(ref), platform, now=ctx.now
                )
                in_channel = await directory.members_in_channel(
                    ctx.session, ctx.workspace, source, platform, now=ctx.now
                )
                if not in_channel:
                    if platform is not None:
                        raise UserError(f"Nobody but bots is in #{source.name}.")
                    raise UserError(f"syncup knows nobody in #{source.name} yet.")
                people.update((m.id, m) for m in in_channel)
            else:
                member = await directory.resolve_member(
                    ctx.session, ctx.workspace, member_ref(ref), platform, now=ctx.now
                )
                people[member.id] = member
        except UserError as exc:
            errors.setdefault("participants", exc.message)
    return channel, sorted(people.values(), key=lambda m: m.display_name), source


def _apply(
    standup: Standup, parsed: SetupInput, channel: Channel, source: Channel | None, now: datetime
) -> None:
    standup.name = parsed.name
    standup.report_channel_id = channel.id
    standup.participants_channel_id = source.id if source else None
    standup.questions = parsed.questions
    standup.days = parsed.days
    standup.every_weeks = parsed.every_weeks
    if standup.anchor_date is None or standup.every_weeks != parsed.every_weeks:
        today = now.date()
        standup.anchor_date = today - timedelta(days=today.weekday())
    standup.time_of_day = parsed.time_of_day
    standup.team_timezone = parsed.team_timezone
    standup.reminder_minutes = parsed.reminder_minutes
    standup.window_minutes = parsed.window_minutes
    standup.report_mode = parsed.report_mode
    standup.report_layout = parsed.report_layout
    standup.group_by = parsed.group_by
    standup.tag_missing = parsed.tag_missing
    standup.channel_nudge = parsed.channel_nudge
    standup.holidays = parsed.holidays
    standup.updated_at = now


# -- list, pause, resume, delete ----------------------------------------------------------------


async def list_standups(ctx: Context, args: dict[str, Any]) -> Response:
    standups = list(
        await ctx.session.scalars(
            select(Standup).where(Standup.workspace_id == ctx.workspace.id).order_by(Standup.name)
        )
    )
    if not standups:
        return reply(marked("No standups yet. Create one with `/standup setup`."))
    blocks: list[Any] = [Header("Standups")]
    for standup in standups:
        channel = await ctx.session.get(Channel, standup.report_channel_id)
        count = len(await participants_of(ctx.session, standup))
        when = describe_schedule(
            standup.days, standup.every_weeks, standup.time_of_day, standup.team_timezone
        )
        reminder = (
            f", reminder after {standup.reminder_minutes} min" if standup.reminder_minutes else ""
        )
        state = " (paused)" if standup.paused else ""
        blocks.append(
            Section(
                text(
                    Bold(standup.name),
                    f"{state}: {when}, {count} participant(s), report in "
                    f"#{channel.name if channel else '?'}{reminder}.",
                )
            )
        )
    return reply(*blocks)


async def pause(ctx: Context, args: dict[str, Any]) -> Response:
    return await _set_paused(ctx, args["name"], True)


async def resume(ctx: Context, args: dict[str, Any]) -> Response:
    return await _set_paused(ctx, args["name"], False)


async def _set_paused(ctx: Context, name: str, paused: bool) -> Response:
    standup = await find_standup(ctx, name)
    require_manager(ctx, standup)
    if standup.paused == paused:
        return reply(f'"{standup.name}" is already {"paused" if paused else "running"}.')
    standup.paused = paused
    standup.updated_at = ctx.now
    ctx.schedules_changed = True
    if paused:
        return reply(
            marked(f'Paused "{standup.name}": no prompts until `/standup resume {standup.name}`.')
        )
    return reply(f'Resumed "{standup.name}": prompts start again at the next scheduled time.')


async def ask_delete(ctx: Context, args: dict[str, Any]) -> Response:
    standup = await find_standup(ctx, args["name"])
    require_manager(ctx, standup)
    return reply(
        text(
            "Delete ",
            Bold(standup.name),
            " with all its answers and reports? This cannot be undone.",
        ),
        Actions(
            (
                Button("Delete it", f"standup-delete:{standup.id}", style="danger"),
                Button("Keep it", f"standup-keep:{standup.id}"),
            )
        ),
    )


async def confirm_delete(ctx: Context, event: ActionInvocation) -> Response:
    standup = await ctx.session.get(Standup, int(event.action_id.split(":", 1)[1]))
    if standup is None or standup.workspace_id != ctx.workspace.id:
        raise UserError("That standup is already gone.")
    require_manager(ctx, standup)
    name = standup.name
    await ctx.session.delete(standup)
    ctx.schedules_changed = True
    return reply(f'Deleted "{name}".')


async def keep(ctx: Context, event: ActionInvocation) -> Response:
    return reply("Nothing was deleted.")


# -- run now, skip, out of office -------------------------------------------------------------


async def run_now(ctx: Context, args: dict[str, Any]) -> Response:
    """One run by hand, with one report: everyone is asked now, whatever their local date, and
    nobody's scheduled prompt is taken (the run is its own, beside the day's scheduled one)."""
    standup = await find_standup(ctx, args["name"])
    require_manager(ctx, standup)
    if standup.paused:
        raise UserError(f'"{standup.name}" is paused; `/standup resume {standup.name}` first.')
    run_date = ctx.now.astimezone(ZoneInfo(member_zone(standup, ctx.member))).date()
    occasion = f"manual:{ctx.event.origin.event_id}"
    # The first few now, the others right after this commits (fanout.py): the first DMs do
    # not wait for thousands of others to be queued.
    first = await participants_of(ctx.session, standup, limit=fanout.FIRST_SLICE)
    run_id, asked = await fanout.start(ctx.session, standup, first, run_date, ctx.now, occasion)
    everyone, away_later = await fanout.the_others(ctx.session, standup, first, ctx.now)
    prompted = len(asked) + everyone - len(first) - away_later
    away = everyone - prompted
    ctx.sent_something = True
    core = ctx.core
    # The reminders and the report are booked once the rest are prompted (fanout.finish).
    prefix = fanout.key_prefix(standup.id, occasion)
    # With others to queue, the rest waits for one of these to leave (fanout.first_ones_out).
    first_keys = [prompt_key(prefix, m) for m in asked] if everyone > len(first) else []
    ctx.after_commit(
        lambda: core.spawn(fanout.finish(core, run_id, first_keys), name="standup fan-out")
    )
    if not prompted:
        return reply(f'Nobody in "{standup.name}" can be asked now: everyone is away.')
    note = f" ({away} away)" if away else ""
    return reply(
        f'Sent "{standup.name}" to {prompted} participant(s) now{note}; one report for this '
        "run. Scheduled prompts are not affected."
    )


async def skip(ctx: Context, args: dict[str, Any]) -> Response:
    standup = await find_standup(ctx, args["name"]) if args["name"] else None
    message = await skip_today(ctx.session, standup, ctx.member, ctx.now, ctx)
    ctx.sent_something = True
    return reply(message)


async def out_of_office(ctx: Context, args: dict[str, Any]) -> Response:
    zone = ZoneInfo(ctx.member.timezone or "UTC")
    today = ctx.now.astimezone(zone).date()
    if args["dates"].strip().lower() in ("off", "back", "none"):
        result = await ctx.session.execute(
            delete(Absence).where(Absence.member_id == ctx.member.id, Absence.end_date >= today)
        )
        if not result.rowcount:
            return reply("You have no absence planned.")
        ctx.schedules_changed = True
        return reply("Welcome back: you will get standup prompts again.")
    start, end = parse_date_range(args["dates"], today)
    ctx.session.add(
        Absence(member_id=ctx.member.id, start_date=start, end_date=end, created_at=ctx.now)
    )
    ctx.schedules_changed = True
    span = f"{start}" if start == end else f"{start} to {end}"
    return reply(
        marked(
            f"Out of office {span}: no prompts, and reports show you as away. "
            "`/standup ooo off` ends it early."
        )
    )


# -- history and stats --------------------------------------------------------------------------


async def show_history(ctx: Context, args: dict[str, Any]) -> Response:
    who: MemberRef | None = args["who"]
    days: int | None = args["days"]
    number = who.raw.removeprefix("-") if who is not None else ""
    if who is not None and who.user_id is None and number.isdigit() and days is None:
        who, days = None, int(who.raw)  # "/standup history 14" (and "-3", refused below)
    member = (
        await directory.resolve_member(
            ctx.session, ctx.workspace, who, ctx.core.directory, now=ctx.now
        )
        if who
        else ctx.member
    )
    days = DEFAULT_HISTORY_DAYS if days is None else days  # 0 is refused, not the default
    view = await history_views.history(ctx.session, ctx.workspace.id, member, days, ctx.now)
    return reply(*view.blocks)


async def show_stats(ctx: Context, args: dict[str, Any]) -> Response:
    standup = await find_standup(ctx, args["name"]) if args["name"] else None
    view = await history_views.stats(ctx.session, ctx.workspace.id, ctx.now, standup=standup)
    return reply(*view.blocks)
