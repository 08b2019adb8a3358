"""``/blocker`` handlers, the card's buttons, the forms and the "Report as blocker" shortcut."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, or_, select

from bot.chat import (
    ChannelMention,
    Choice,
    Code,
    Form,
    OpenForm,
    Response,
    Section,
    SelectField,
    TextField,
    marked,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.core import Context, Core, Shortcut
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission, ShortcutInvocation
from bot.features.blockers import cards, lookup, service, stats
from bot.features.blockers.inputs import UNTIL_HELP, parse_add, parse_until
from bot.features.blockers.lookup import local, name_of, span, zone_of
from bot.features.blockers.service import MAX_TEXT_CHARS, SEVERITIES, Actor
from bot.features.blockers.spec import ADD_EXAMPLE, BLOCKER
from storage.models import Blocker, BlockerSeverity, BlockerStatus, Channel, Member
from storage.raci import RaciArea, RaciAssignment, RaciRole

ADD_FORM = "blocker-add"
REASSIGN_FORM = "blocker-reassign"
NOTE_FORM = "blocker-note"
SHORTCUT = Shortcut(
    "report_blocker",
    "Report as blocker",
    on="message",
    description="Track this message as a blocker, with an owner and an escalation ladder.",
)
# Blockers listed in one reply; the rest are counted.
LIST_LIMIT = 30


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        blocks = list(helptext.topic(core.specs.values(), "blocker").blocks)
        blocks.append(Section(text("Example: ", Code(ADD_EXAMPLE))))
        blocks.append(Section(marked("Snooze until: " + UNTIL_HELP + " (your time zone).")))
        return reply(*blocks)

    core.add_command(
        BLOCKER,
        {
            "help": show_help,
            "add": add,
            "list": list_blockers,
            "show": show,
            "ack": _verb("ack"),
            "resolve": _verb("resolve"),
            "reopen": _verb("reopen"),
            "cancel": _verb("cancel"),
            "snooze": snooze,
            "reassign": reassign,
            "note": note,
            "stats": stats.command,
        },
    )
    core.add_action(cards.ACTION, on_button)
    core.add_form(ADD_FORM, save_add_form)
    core.add_form(REASSIGN_FORM, save_reassign_form)
    core.add_form(NOTE_FORM, save_note_form)
    core.add_shortcut(SHORTCUT, on_shortcut)
    cards.install()


def actor(ctx: Context) -> Actor:
    return Actor(ctx.session, ctx.core, ctx.member, ctx.permission, ctx.now)


def _changed(ctx: Context) -> None:
    """The card and webhooks were queued by the timeline's listeners: wake the worker; the
    ladder's next due time may have moved: have the scheduler read it again."""
    ctx.sent_something = True
    ctx.schedules_changed = True


# -- adding ------------------------------------------------------------------------------------


def add_form(ctx: Context, *, initial: str = "", state: str = "") -> Form:
    severities = tuple(Choice(s.capitalize(), s) for s in SEVERITIES)
    return Form(
        ADD_FORM,
        "Report a blocker",
        (
            TextField(
                "text",
                "What blocks you?",
                multiline=True,
                initial=initial[:MAX_TEXT_CHARS],
                max_length=MAX_TEXT_CHARS,
            ),
            TextField(
                "area",
                "Area (empty: suggested from the text)",
                required=False,
                max_length=80,
            ),
            TextField(
                "waiting_on",
                "Waiting on (@someone or an area)",
                required=False,
                max_length=120,
            ),
            SelectField("severity", "Severity", severities, initial=("normal",)),
        ),
        submit_label="Report",
        state=state,
    )


async def create(
    ctx: Context,
    raw_text: str,
    area_name: str | None,
    waiting_raw: str | None,
    severity_raw: str | None,
    *,
    source: str,
    link: str | None,
) -> Blocker:
    """Check everything first (nothing is written on bad input), then open the blocker."""
    body = service.check_text(raw_text)
    severity = service.check_severity(severity_raw)
    area: RaciArea | None = None
    if area_name:
        try:
            area = await lookup.area(ctx.session, ctx.workspace.id, area_name)
        except UserError as exc:
            raise UserError(exc.message, field="area") from None
    member: Member | None = None
    waiting_area: RaciArea | None = None
    if waiting_raw:
        try:
            member, waiting_area = await lookup.waiting_on(
                ctx.session, ctx.workspace, waiting_raw, ctx.core.directory, ctx.now
            )
        except UserError as exc:
            raise UserError(exc.message, field="waiting_on") from None
    blocker = await service.open_blocker(
        ctx.session,
        workspace_id=ctx.workspace.id,
        reporter=ctx.member,
        text=body,
        now=ctx.now,
        area=area,
        waiting_member=member,
        waiting_area=waiting_area,
        severity=severity,
        source=source,
        source_link=link,
    )
    _changed(ctx)
    return blocker


async def _opened(ctx: Context, blocker: Blocker) -> Response:
    area = await ctx.session.get(RaciArea, blocker.area_id) if blocker.area_id else None
    said = f"Blocker #{blocker.id} is open"
    if area is not None:
        said += f" in area {area.name}"
        if await cards.area_suggested(ctx.session, blocker):
            said += " (suggested from its text: confirm it on the card)"
    if area is None:
        where = text(
            ". No area matched its text, so its card comes to you by DM; give one with "
            "--area next time, or with Reassign on the card."
        )
    elif not area.channel_id:
        where = text(f". Area {area.name} has no channel yet, so its card comes to you by DM.")
    else:
        channel = await ctx.session.scalar(
            select(Channel).where(
                Channel.workspace_id == ctx.workspace.id, Channel.external_id == area.channel_id
            )
        )
        name = channel.name if channel is not None else area.channel_id
        where = text(". Its card is in ", ChannelMention(area.channel_id, name), ".")
    return reply(text(said) + where)


async def add(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    if not line:
        return OpenForm(add_form(ctx, state=json.dumps({"source": "command"})))
    parsed = parse_add(line)
    blocker = await create(
        ctx,
        parsed.text,
        parsed.area,
        parsed.waiting_on,
        parsed.severity,
        source="command",
        link=None,
    )
    return await _opened(ctx, blocker)


def _one(values: dict[str, str | list[str]], name: str) -> str:
    raw = values.get(name, "")
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return raw.strip()


async def save_add_form(ctx: Context, event: FormSubmission) -> Response:
    try:
        state = json.loads(event.state) if event.state else {}
    except ValueError:
        state = {}
    source = "message" if state.get("source") == "message" else "command"
    link = state.get("link") if source == "message" else None
    blocker = await create(
        ctx,
        _one(event.values, "text"),
        _one(event.values, "area") or None,
        _one(event.values, "waiting_on") or None,
        _one(event.values, "severity") or None,
        source=source,
        link=link or None,
    )
    return await _opened(ctx, blocker)


async def on_shortcut(ctx: Context, event: ShortcutInvocation) -> Response:
    """ "Report as blocker" on a message: the add form, filled in with its text and link."""
    state = json.dumps({"source": "message", "link": event.message_link})
    return OpenForm(add_form(ctx, initial=event.message_text.strip(), state=state))


# -- listing and showing -----------------------------------------------------------------------


async def _my_areas(ctx: Context) -> list[int]:
    return list(
        await ctx.session.scalars(
            select(RaciAssignment.area_id).where(
                RaciAssignment.member_id == ctx.member.id,
                RaciAssignment.role.in_((RaciRole.RESPONSIBLE.value, RaciRole.ACCOUNTABLE.value)),
            )
        )
    )


async def list_blockers(ctx: Context, args: dict[str, Any]) -> Response:
    wanted = (args.get("filter") or "all").strip()
    key = wanted.lower()
    query = select(Blocker).where(
        Blocker.workspace_id == ctx.workspace.id, Blocker.status.in_(service.ACTIVE)
    )
    if key == "mine":
        query = query.where(Blocker.member_id == ctx.member.id)
        title = "Your open blockers"
    elif key in ("waiting-on-me", "waiting on me"):
        # Named as what it waits on, or R/A of the area it waits on; R/A of its own area
        # when it waits on nobody in particular.
        mine = await _my_areas(ctx)
        query = query.where(
            or_(
                Blocker.waiting_on_member_id == ctx.member.id,
                Blocker.waiting_on_area_id.in_(mine),
                and_(
                    Blocker.area_id.in_(mine),
                    Blocker.waiting_on_member_id.is_(None),
                    Blocker.waiting_on_area_id.is_(None),
                ),
            )
        )
        title = "Open blockers waiting on you"
    elif key == "all":
        title = "Open blockers"
    else:
        area = await lookup.area(ctx.session, ctx.workspace.id, wanted)
        query = query.where(or_(Blocker.area_id == area.id, Blocker.waiting_on_area_id == area.id))
        title = f"Open blockers of {area.name}"
    found = list(await ctx.session.scalars(query.order_by(Blocker.created_at, Blocker.id)))
    if not found:
        return reply(text(f"{title}: none."))
    people = await lookup.members(
        ctx.session, {b.member_id for b in found} | {b.waiting_on_member_id for b in found}
    )
    areas = {a.id: a for a in await lookup.areas(ctx.session, ctx.workspace.id)}
    lines = [summary_line(b, people, areas, ctx.now) for b in found[:LIST_LIMIT]]
    if len(found) > LIST_LIMIT:
        lines.append(f"... and {len(found) - LIST_LIMIT} more (oldest first).")
    return reply(text(f"{title} ({len(found)}), oldest first:"), text("\n".join(lines)))


def summary_line(
    blocker: Blocker, people: dict[int, Member], areas: dict[int, RaciArea], now: Any
) -> str:
    bits = [f"#{blocker.id}"]
    if blocker.severity != BlockerSeverity.NORMAL:
        bits.append(f"[{blocker.severity.value}]")
    bits.append(blocker.text if len(blocker.text) <= 80 else blocker.text[:79] + "…")
    about = [f"by @{name_of(people.get(blocker.member_id))}"]
    area = areas.get(blocker.area_id or 0)
    if area is not None:
        about.append(area.name)
    if blocker.waiting_on_member_id is not None:
        about.append(f"waiting on @{name_of(people.get(blocker.waiting_on_member_id))}")
    elif blocker.waiting_on_area_id is not None and blocker.waiting_on_area_id in areas:
        about.append(f"waiting on {areas[blocker.waiting_on_area_id].name}")
    about.append(f"{span(now - blocker.created_at)} old")
    if blocker.status == BlockerStatus.ACKNOWLEDGED:
        about.append("acknowledged")
    return " ".join(bits) + " (" + ", ".join(about) + ")"


async def show(ctx: Context, args: dict[str, Any]) -> Response:
    blocker = await lookup.find(ctx.session, ctx.workspace.id, args["id"])
    msg = await cards.render(ctx.session, blocker, ctx.now, full=True)
    return reply(*msg.blocks)


# -- changes by command ------------------------------------------------------------------------

DONE = {
    "ack": "Acknowledged blocker #{id}; its escalation pauses.",
    "resolve": "Resolved blocker #{id}.",
    "reopen": "Reopened blocker #{id}; its escalation starts again.",
    "cancel": "Cancelled blocker #{id}.",
}


async def _apply(ctx: Context, verb: str, raw_id: str | int) -> Response:
    blocker = await lookup.find(ctx.session, ctx.workspace.id, raw_id, lock=True)
    change = {
        "ack": service.acknowledge,
        "resolve": service.resolve,
        "reopen": service.reopen,
        "cancel": service.cancel,
    }[verb]
    await change(actor(ctx), blocker)
    _changed(ctx)
    return reply(text(DONE[verb].format(id=blocker.id)))


def _verb(verb: str) -> Any:
    async def handler(ctx: Context, args: dict[str, Any]) -> Response:
        return await _apply(ctx, verb, args["id"])

    handler.__name__ = verb
    return handler


async def _snooze(ctx: Context, blocker: Blocker, until_raw: str) -> Response:
    area = await ctx.session.get(RaciArea, blocker.area_id) if blocker.area_id else None
    zone = zone_of(ctx.member)
    until = parse_until(until_raw, ctx.now, zone, area)
    await service.snooze(actor(ctx), blocker, until)
    _changed(ctx)
    return reply(text(f"Snoozed blocker #{blocker.id} until {local(until, zone)} ({zone})."))


async def snooze(ctx: Context, args: dict[str, Any]) -> Response:
    blocker = await lookup.find(ctx.session, ctx.workspace.id, args["id"], lock=True)
    return await _snooze(ctx, blocker, args["until"])


async def _reassign(ctx: Context, blocker: Blocker, to: str, field: str = "to") -> Response:
    try:
        member, area = await lookup.waiting_on(
            ctx.session, ctx.workspace, to, ctx.core.directory, ctx.now
        )
    except UserError as exc:
        raise UserError(exc.message, field=field) from None
    await service.reassign(actor(ctx), blocker, member, area)
    _changed(ctx)
    target = f"@{name_of(member)}" if member is not None else f"area {area.name if area else '?'}"
    return reply(text(f"Blocker #{blocker.id} now waits on {target}; its escalation restarts."))


async def reassign(ctx: Context, args: dict[str, Any]) -> Response:
    blocker = await lookup.find(ctx.session, ctx.workspace.id, args["id"], lock=True)
    return await _reassign(ctx, blocker, args["to"])


async def note(ctx: Context, args: dict[str, Any]) -> Response:
    blocker = await lookup.find(ctx.session, ctx.workspace.id, args["id"], lock=True)
    await service.note(actor(ctx), blocker, args["text"])
    _changed(ctx)
    return reply(text(f"Added your note to blocker #{blocker.id}."))


# -- the card's buttons and their forms --------------------------------------------------------


def reassign_form(blocker: Blocker) -> Form:
    return Form(
        REASSIGN_FORM,
        f"Reassign blocker #{blocker.id}",
        (
            TextField("to", "Waiting on (@someone or an area)", max_length=120),
            TextField("area", "Move to area (optional)", required=False, max_length=80),
        ),
        submit_label="Reassign",
        state=str(blocker.id),
    )


def note_form(blocker: Blocker) -> Form:
    return Form(
        NOTE_FORM,
        f"Note on blocker #{blocker.id}",
        (TextField("text", "Note", multiline=True, max_length=MAX_TEXT_CHARS),),
        submit_label="Add",
        state=str(blocker.id),
    )


async def on_button(ctx: Context, event: ActionInvocation) -> Response:
    parts = event.action_id.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise UserError("That blocker button has expired.")
    verb, raw_id = parts[1], parts[2]
    if verb in DONE:
        return await _apply(ctx, verb, raw_id)
    blocker = await lookup.find(ctx.session, ctx.workspace.id, raw_id, lock=True)
    if verb == "snooze":
        return await _snooze(ctx, blocker, "next business day")
    if verb == "reassign":
        await service.require_target(actor(ctx), blocker, "reassign")
        await service.require_active(actor(ctx), blocker, "reassign")
        return OpenForm(reassign_form(blocker))
    if verb == "note":
        return OpenForm(note_form(blocker))
    if verb == "area":
        area = await ctx.session.get(RaciArea, int(event.value)) if event.value.isdigit() else None
        if area is None or area.workspace_id != ctx.workspace.id:
            raise UserError("That area no longer exists; reassign the blocker instead.")
        await service.set_area(actor(ctx), blocker, area, confirm=True)
        _changed(ctx)
        return reply(text(f"Blocker #{blocker.id} is in area {area.name}."))
    raise UserError("That blocker button has expired.")


async def _form_blocker(ctx: Context, event: FormSubmission) -> Blocker:
    if not event.state.isdigit():
        raise UserError("That form has expired; press the button on the card again.")
    return await lookup.find(ctx.session, ctx.workspace.id, event.state, lock=True)


async def save_reassign_form(ctx: Context, event: FormSubmission) -> Response:
    blocker = await _form_blocker(ctx, event)
    area_name = _one(event.values, "area")
    if area_name:
        try:
            area = await lookup.area(ctx.session, ctx.workspace.id, area_name)
        except UserError as exc:
            raise UserError(exc.message, field="area") from None
        if area.id != blocker.area_id:
            await service.set_area(actor(ctx), blocker, area, confirm=False)
    return await _reassign(ctx, blocker, _one(event.values, "to"))


async def save_note_form(ctx: Context, event: FormSubmission) -> Response:
    blocker = await _form_blocker(ctx, event)
    await service.note(actor(ctx), blocker, _one(event.values, "text"))
    _changed(ctx)
    return reply(text(f"Added your note to blocker #{blocker.id}."))
