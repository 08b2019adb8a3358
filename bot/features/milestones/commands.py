"""``/milestone add|list|edit|done|cancel``: the handlers, the add and edit forms, and the
cancel confirmation's buttons."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.chat import (
    Actions,
    Bold,
    Button,
    Form,
    OpenForm,
    Response,
    Section,
    Text,
    TextField,
    reply,
    text,
)
from bot.commands.parse import ChannelRef, channel_ref, member_ref
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.milestones import render, service
from bot.features.milestones.dates import show_day
from bot.features.milestones.inputs import Changes, check_name, parse_add, parse_edit, unquote
from bot.features.milestones.spec import SUBCOMMANDS
from storage.milestones import Milestone, MilestoneStatus
from storage.models import Channel, Member

ADD_FORM = "milestone-add"
EDIT_FORM = "milestone-edit"
ACTION = "milestone"
MAX_LISTED = 30
MAX_DONE_LISTED = 10


def register(core: Core) -> None:
    core.extend_command(
        "milestone",
        SUBCOMMANDS,
        {"add": add, "list": show_list, "edit": edit, "done": done, "cancel": cancel},
    )
    core.add_form(ADD_FORM, add_form)
    core.add_form(EDIT_FORM, edit_form)
    core.add_action(ACTION, on_action)


def _here(ctx: Context) -> ChannelRef | None:
    origin = ctx.event.origin
    if not origin.channel_id:
        return None
    return ChannelRef(f"#{origin.channel_name or origin.channel_id}", origin.channel_id)


async def _added(ctx: Context, changes: Changes, here: ChannelRef | None) -> Response:
    added = await service.add(ctx, changes, here)
    owner = await ctx.session.get(Member, added.milestone.owner_id)
    where = await _where(ctx, added.milestone)
    return reply(*render.added_reply(added.milestone, added.zone_source, owner, ctx.now, where))


async def _where(ctx: Context, milestone: Milestone) -> Text:
    names = await service.channel_names(ctx.session, ctx.workspace.id)
    return text(service.channel_mention(milestone, names))


# -- add ------------------------------------------------------------------------------------------


async def add(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    if not line:
        here = _here(ctx)
        state = json.dumps({"c": here.channel_id, "n": here.name} if here else {})
        return OpenForm(add_form_for(state))
    today = service.local_today(ctx.now, service.zone_of(ctx.member))
    return await _added(ctx, parse_add(line, today), _here(ctx))


def add_form_for(state: str) -> Form:
    return Form(
        ADD_FORM,
        "New milestone",
        (
            TextField("name", "Name", max_length=128, placeholder="Launch v2"),
            TextField(
                "date",
                "Date (your zone, or the area's)",
                max_length=60,
                placeholder="2027-01-15, 15 Jan, in 3 weeks",
            ),
            TextField(
                "channel",
                "Channel (empty: this one)",
                required=False,
                max_length=100,
                placeholder="#launches",
            ),
            TextField(
                "owner", "Owner (empty: you)", required=False, max_length=100, placeholder="@bob"
            ),
            TextField("area", "Area (optional)", required=False, max_length=80),
        ),
        submit_label="Add",
        state=state,
    )


def _value(values: dict[str, str | list[str]], name: str) -> str:
    value = values.get(name, "")
    if isinstance(value, list):
        return value[0] if value else ""
    return value.strip()


def _field(name: str, exc: UserError) -> UserError:
    """The error shown next to ``name`` in the form (when it names no field itself)."""
    if exc.errors:
        return exc
    return UserError(exc.message, field=name)


async def add_form(ctx: Context, event: FormSubmission) -> Response:
    values = event.values
    try:
        name = check_name(_value(values, "name"))
    except UserError as exc:
        raise _field("name", exc) from None
    state = json.loads(event.state or "{}")
    here = ChannelRef(f"#{state.get('n', '')}", state["c"]) if state.get("c") else None
    changes = Changes(
        name=name,
        date=_value(values, "date"),
        channel=channel_ref(_value(values, "channel")) if _value(values, "channel") else None,
        owner=member_ref(_value(values, "owner")) if _value(values, "owner") else None,
        area=_value(values, "area") or None,
    )
    try:
        return await _added(ctx, changes, here)
    except UserError as exc:
        raise _field(_guess_field(exc.message), exc) from None


def _guess_field(problem: str) -> str:
    """Which form field an error without one is about (a member, an area or a channel)."""
    lowered = problem.lower()
    if "area" in lowered:
        return "area"
    if any(word in lowered for word in ("channel", "post in", "invite")):
        return "channel"
    return "owner"


# -- list -----------------------------------------------------------------------------------------


async def show_list(ctx: Context, args: dict[str, Any]) -> Response:
    session = ctx.session
    open_ones = list(
        await session.scalars(
            select(Milestone)
            .where(
                Milestone.workspace_id == ctx.workspace.id,
                Milestone.status == MilestoneStatus.OPEN.value,
            )
            .order_by(Milestone.due_on, Milestone.id)
            .limit(MAX_LISTED)
        )
    )
    done_ones = list(
        await session.scalars(
            select(Milestone)
            .where(
                Milestone.workspace_id == ctx.workspace.id,
                Milestone.status == MilestoneStatus.DONE.value,
                Milestone.done_at >= ctx.now - render.RECENT_DONE,
            )
            .order_by(Milestone.done_at.desc())
            .limit(MAX_DONE_LISTED)
        )
    )
    ids = {m.owner_id for m in open_ones} | {m.done_by_id for m in done_ones}
    ids.discard(None)
    members = {m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}
    shown = render.list_message(
        [(m, members.get(m.owner_id or 0)) for m in open_ones],
        [(m, members.get(m.done_by_id or 0)) for m in done_ones],
        ctx.now,
        service.zone_of(ctx.member),
        await service.channel_names(session, ctx.workspace.id),
    )
    return reply(*shown.blocks)


# -- edit -----------------------------------------------------------------------------------------


async def edit(ctx: Context, args: dict[str, Any]) -> Response:
    name, changes = parse_edit(args["line"])
    milestone = await service.find(ctx.session, ctx.workspace.id, name)
    if milestone.status == service.DONE:
        raise await service.done_already(ctx, milestone)
    await service.check_can_change(ctx, milestone, "change")
    if changes == Changes():
        return OpenForm(await edit_form_for(ctx, milestone))
    return await _edited(ctx, milestone, changes)


async def _edited(ctx: Context, milestone: Milestone, changes: Changes) -> Response:
    said = await service.edit(ctx, milestone, changes, _here(ctx))
    if not said:
        return reply(text("Nothing changed for ", Bold(milestone.name), "."))
    return reply(
        text("Changed ", Bold(milestone.name), ": ", "; ".join(said), "."),
        text(
            f"Due {show_day(milestone.due_on)} ({milestone.timezone}), in ",
            await _where(ctx, milestone),
            ".",
        ),
    )


async def edit_form_for(ctx: Context, milestone: Milestone) -> Form:
    owner = await ctx.session.get(Member, milestone.owner_id) if milestone.owner_id else None
    channel = await ctx.session.scalar(
        select(Channel).where(
            Channel.workspace_id == ctx.workspace.id, Channel.external_id == milestone.channel_id
        )
    )
    return Form(
        EDIT_FORM,
        "Change milestone",
        (
            TextField("name", "Name", max_length=128, initial=milestone.name),
            TextField(
                "date",
                f"Date ({milestone.timezone})"[:45],
                max_length=60,
                initial=milestone.due_on.isoformat(),
            ),
            TextField(
                "channel",
                "Channel",
                max_length=100,
                initial=f"#{channel.name}" if channel is not None else "",
            ),
            TextField(
                "owner",
                "Owner",
                max_length=100,
                initial=f"@{render.name_of(owner)}" if owner is not None else "",
            ),
            TextField(
                "countdown",
                "Countdown days before (e.g. 14,7,1; none)",
                required=False,
                max_length=60,
                initial=",".join(str(d) for d in milestone.countdown_days) or "none",
            ),
        ),
        state=str(milestone.id),
    )


async def edit_form(ctx: Context, event: FormSubmission) -> Response:
    milestone = await _mine(ctx, event.state)
    await service.check_can_change(ctx, milestone, "change")
    before = await edit_form_for(ctx, milestone)
    initial = {f.name: f.initial for f in before.fields if isinstance(f, TextField)}
    given = {name: _value(event.values, name) for name in initial}
    changed = {k: v for k, v in given.items() if v != initial[k] and (v or k == "countdown")}
    try:
        changes = Changes(
            name=check_name(changed["name"]) if "name" in changed else None,
            date=changed.get("date"),
            channel=channel_ref(changed["channel"]) if "channel" in changed else None,
            owner=member_ref(changed["owner"]) if "owner" in changed else None,
            countdown=(changed["countdown"] or "none") if "countdown" in changed else None,
        )
        return await _edited(ctx, milestone, changes)
    except UserError as exc:
        raise _field(_guess_field(exc.message), exc) from None


async def _mine(ctx: Context, raw_id: str) -> Milestone:
    milestone = await ctx.session.get(Milestone, int(raw_id)) if raw_id.isdigit() else None
    if (
        milestone is None
        or milestone.workspace_id != ctx.workspace.id
        or milestone.status == MilestoneStatus.CANCELLED.value
    ):
        raise UserError("That milestone was cancelled meanwhile; `/milestone list` shows them.")
    if milestone.status == service.DONE:
        raise await service.done_already(ctx, milestone)
    return milestone


# -- done and cancel ------------------------------------------------------------------------------


async def done(ctx: Context, args: dict[str, Any]) -> Response:
    milestone = await service.find(ctx.session, ctx.workspace.id, unquote(args["name"]))
    if milestone.status == service.DONE:
        raise await service.done_already(ctx, milestone)
    await service.check_can_change(ctx, milestone, "mark done")
    if not await service.mark_done(ctx.session, milestone, ctx.now, by=ctx.member, source="hand"):
        raise await service.done_already(ctx, milestone)
    ctx.sent_something = True
    ctx.schedules_changed = True
    return reply(
        text(
            "Marked ",
            Bold(milestone.name),
            " done. The celebration is on its way to ",
            await _where(ctx, milestone),
            ".",
        )
    )


async def cancel(ctx: Context, args: dict[str, Any]) -> Response:
    milestone = await service.find(ctx.session, ctx.workspace.id, unquote(args["name"]))
    if milestone.status == service.DONE:
        raise UserError(f'"{milestone.name}" is done; a done milestone stays in the record.')
    await service.check_can_change(ctx, milestone, "cancel")
    return reply(
        Section(
            text(
                "Cancel the milestone ",
                Bold(milestone.name),
                f" (due {show_day(milestone.due_on)})? Its countdowns stop and its name is free.",
            )
        ),
        Actions(
            (
                Button("Cancel it", f"{ACTION}:cancel:{milestone.id}", style="danger"),
                Button("Keep it", f"{ACTION}:keep:{milestone.id}"),
            )
        ),
    )


async def on_action(ctx: Context, event: ActionInvocation) -> Response:
    _, verb, raw_id = [*event.action_id.split(":"), "", ""][:3]
    milestone = await _mine(ctx, raw_id)
    if verb == "keep":
        return reply(text("Kept ", Bold(milestone.name), "."))
    if verb != "cancel":
        raise UserError("That button no longer does anything here.")
    await service.check_can_change(ctx, milestone, "cancel")
    name = milestone.name
    await service.cancel(ctx.session, milestone, ctx.now)
    ctx.schedules_changed = True
    return reply(text("Cancelled the milestone ", Bold(name), "; its countdowns stop."))
