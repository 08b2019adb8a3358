"""``/raci`` handlers: setup and edit (a form or one line), show, who, delete (with a confirm
button), help."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.chat import (
    Actions,
    Button,
    Chart,
    OpenForm,
    Response,
    Section,
    marked,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.parse import channel_ref
from bot.commands.spec import Permission
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.raci import render
from bot.features.raci.cells import Cell, Names, Resolver, join_references
from bot.features.raci.fields import (
    FORM_ID,
    ROLE_FIELDS,
    area_form,
    format_days,
    format_hours,
    parse_line,
    parse_values,
)
from bot.features.raci.people import GROUP, areas_of, find_area
from bot.features.raci.spec import RACI, SETUP_EXAMPLE
from bot.features.raci.store import (
    FIELD_OF_ROLE,
    current_cells,
    delete_area,
    matrix_of,
    refuse_if_open,
    save_area,
)
from storage.models import Channel, Member
from storage.raci import RaciArea, RaciAssignment, RaciRole

ACTION = "raci"

LINE_HELP = (
    'One line: `/raci setup "Name" --responsible @ana @data-eng --accountable @bob '
    "--consulted @carol --informed #data --channel #data-blockers --timezone Europe/Berlin "
    "--days mon-fri --hours 09:00-17:00 --holidays DE BE --dates 2026-12-24 --keywords etl, "
    "airflow`. `/raci edit AREA` takes the same options (only those to change; --name renames)."
)
WHO_HELP = (
    "People: `@name` (a member, else a user group: Slack user group, Discord role) or a "
    "mention; channels: `#name` (Consulted and Informed only). Accountable is exactly one person."
)


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        blocks = list(helptext.topic(core.specs.values(), "raci").blocks)
        blocks.append(Section(marked(LINE_HELP)))
        blocks.append(Section(marked(WHO_HELP)))
        return reply(*blocks)

    core.add_command(
        RACI,
        {
            "help": show_help,
            "setup": setup,
            "edit": edit,
            "show": show,
            "who": who,
            "delete": delete,
        },
    )
    core.add_form(FORM_ID, save_form)
    core.add_action(ACTION, on_action)


def resolver(ctx: Context) -> Resolver:
    return Resolver(ctx.session, ctx.workspace, ctx.core.directory, ctx.now)


def _channel_here(ctx: Context, *, by_id: bool = False) -> str | None:
    """The channel the command was typed in, as a reference: by name for a form to show, by
    id (``by_id``, when it is a platform id) for the platform to find at once. None in a DM."""
    origin = ctx.event.origin
    if not origin.channel_id or origin.channel_id == ctx.member.dm_channel_id:
        return None
    if origin.channel_id.startswith(("dm-", "D")):  # the console's and Slack's DMs
        return None
    mention = f"<#{origin.channel_id}>"
    if (by_id or not origin.channel_name) and channel_ref(mention).channel_id:
        return mention
    return f"#{origin.channel_name or origin.channel_id}"


# -- setup and edit -------------------------------------------------------------------------------


def _zone_of(ctx: Context) -> str:
    """A new area's time zone unless one is given: its creator's (UTC when syncup does not
    know it), shown in the form and in the reply, so it is easy to change."""
    return ctx.member.timezone or "UTC"


async def setup(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    if not line:
        here = _channel_here(ctx)
        return OpenForm(area_form({"channel": here or "", "timezone": _zone_of(ctx)}))
    try:
        values = parse_line(line, with_name=True)
    except UserError as exc:
        raise UserError(f"{exc.message} Example: `{SETUP_EXAMPLE}`") from None
    if "channel" not in values and (here := _channel_here(ctx, by_id=True)):
        values["channel"] = here
    values.setdefault("timezone", _zone_of(ctx))
    data = parse_values(values, partial=True)
    area = await save_area(resolver(ctx), data, None, ctx.now)
    return await _saved(ctx, area, "Created")


async def edit(ctx: Context, args: dict[str, Any]) -> Response:
    area, line = await _area_and_line(ctx, args["area"], args.get("line"))
    if not line:
        return OpenForm(area_form(await form_values(ctx, area), state=str(area.id)))
    data = parse_values(parse_line(line, with_name=False), partial=True)
    area = await save_area(resolver(ctx), data, area, ctx.now)
    return await _saved(ctx, area, "Saved")


async def _area_and_line(ctx: Context, name: str, line: str | None) -> tuple[RaciArea, str | None]:
    """The area to edit and the options: ``/raci edit Data pipeline --hours 9-17`` without
    quotes names "Data pipeline" too, when no area is called "Data"."""
    try:
        return await find_area(ctx.session, ctx.workspace.id, name), line
    except UserError:
        head, sep, rest = (line or "").partition("--")
        if not head.strip() or head.lstrip().startswith("-"):
            raise
        try:
            found = await find_area(ctx.session, ctx.workspace.id, f"{name} {head}")
        except UserError:
            raise UserError(
                f'Unknown area "{name}" (or "{name} {head.strip()}"); {await _areas_hint(ctx)}'
            ) from None
        return found, f"{sep}{rest}" if sep else None


async def _areas_hint(ctx: Context) -> str:
    names = [area.name for area in await areas_of(ctx.session, ctx.workspace.id)]
    return f"areas: {', '.join(names)}" if names else "there are no areas yet."


async def save_form(ctx: Context, event: FormSubmission) -> Response:
    ctx.require(Permission.TEAM_LEAD)
    area: RaciArea | None = None
    if event.state:
        try:
            area = await ctx.session.get(RaciArea, int(event.state))
        except ValueError:
            area = None
        if area is None or area.workspace_id != ctx.workspace.id:
            raise UserError("That area was deleted meanwhile; create it again with /raci setup.")
    data = parse_values(event.values)
    area = await save_area(resolver(ctx), data, area, ctx.now)
    return await _saved(ctx, area, "Saved" if event.state else "Created")


async def _saved(ctx: Context, area: RaciArea, done: str) -> Response:
    shown = await _area_message(ctx, area, settings=True)
    note = Section(text(f"{done} the area ", area.name, ". Everyone can see it: /raci show"))
    return reply(note, *shown.blocks)


async def form_values(ctx: Context, area: RaciArea) -> dict[str, str]:
    """The area as the form shows it (what the user would type to get it again)."""
    cells = await current_cells(ctx.session, area)
    names = Names(*await _names(ctx, area.workspace_id))
    values = {
        FIELD_OF_ROLE[role]: join_references(names.references(found))
        for role, found in cells.items()
    }
    channel = ""
    if area.channel_id:
        stored = await ctx.session.scalar(
            select(Channel).where(
                Channel.workspace_id == ctx.workspace.id, Channel.external_id == area.channel_id
            )
        )
        channel = f"#{stored.name}" if stored else f"<#{area.channel_id}>"
    holidays = " ".join(part for part in (area.holiday_country, area.holiday_subdivision) if part)
    values.update(
        name=area.name,
        channel=channel,
        timezone=area.timezone,
        days=format_days(area.work_days),
        hours=format_hours(area.day_start_minute, area.day_end_minute),
        holidays=holidays,
        dates=", ".join(area.custom_holidays),
        keywords=", ".join(area.keywords),
    )
    assert set(ROLE_FIELDS) <= set(values)
    return values


async def _names(ctx: Context, workspace_id: int) -> tuple[dict[int, Member], dict[str, str]]:
    members = {
        m.id: m
        for m in await ctx.session.scalars(
            select(Member).where(Member.workspace_id == workspace_id)
        )
    }
    rows = await ctx.session.execute(
        select(RaciAssignment.who, RaciAssignment.label)
        .join(RaciArea, RaciArea.id == RaciAssignment.area_id)
        .where(RaciArea.workspace_id == workspace_id, RaciAssignment.who.startswith(GROUP))
    )
    return members, {who.removeprefix(GROUP): label for who, label in rows}


# -- reading --------------------------------------------------------------------------------------


async def show(ctx: Context, args: dict[str, Any]) -> Response:
    name: str | None = args.get("area")
    if name:
        area = await find_area(ctx.session, ctx.workspace.id, name)
        return reply(*(await _area_message(ctx, area, settings=True)).blocks)
    rows = await matrix_of(ctx.session, ctx.workspace.id)
    shown = render.matrix_message(rows, ctx.workspace.name)
    if not any(isinstance(block, Chart) for block in shown.blocks):
        return reply(*shown.blocks)
    # A picture cannot go in a private reply (Slack's ephemeral messages and Discord's take no
    # files): it goes to the member's DM, through the outbox like any message.
    await ctx.dm(ctx.member, shown, key=f"raci-show:{ctx.event.origin.event_id}")
    return reply(
        text(
            f"{shown.summary}: too wide for a message, so I sent it to you as a picture in a "
            "direct message."
        )
    )


async def who(ctx: Context, args: dict[str, Any]) -> Response:
    area = await find_area(ctx.session, ctx.workspace.id, args["area"])
    return reply(*(await _area_message(ctx, area, settings=False)).blocks)


async def _area_message(ctx: Context, area: RaciArea, *, settings: bool) -> Any:
    cells = await current_cells(ctx.session, area)
    ids = [c.member_id for found in cells.values() for c in found if c.member_id]
    platform_ids = {
        m.id: m.platform_user_id
        for m in await ctx.session.scalars(select(Member).where(Member.id.in_(ids)))
    }
    groups = await _group_members(ctx, area, cells)
    return render.area_message(area, cells, platform_ids, groups, settings=settings)


async def _group_members(
    ctx: Context, area: RaciArea, cells: dict[RaciRole, list[Cell]]
) -> dict[str, list[str]]:
    """Who is in each group the area names, when the platform can say."""
    from bot.port import DirectoryUnavailable, PlatformGroups

    platform = ctx.core.directory
    out: dict[str, list[str]] = {}
    if not isinstance(platform, PlatformGroups):
        return out
    for found in cells.values():
        for cell in found:
            if cell.who.startswith(GROUP) and cell.who not in out:
                try:
                    infos = await platform.group_members(
                        ctx.workspace.external_id, cell.who.removeprefix(GROUP)
                    )
                except DirectoryUnavailable:
                    continue
                names = {info.display_name for info in infos if not info.is_bot}
                out[cell.who] = sorted(names, key=str.casefold)
    return out


# -- deleting -------------------------------------------------------------------------------------


async def delete(ctx: Context, args: dict[str, Any]) -> Response:
    area = await find_area(ctx.session, ctx.workspace.id, args["area"])
    await refuse_if_open(ctx.session, area)
    return reply(
        Section(
            text(
                "Delete the area ",
                area.name,
                " and its RACI? Blockers it had keep their history, without an area.",
            )
        ),
        Actions(
            (
                Button("Delete", f"{ACTION}:delete:{area.id}", style="danger"),
                Button("Keep it", f"{ACTION}:keep:{area.id}"),
            )
        ),
    )


async def on_action(ctx: Context, event: ActionInvocation) -> Response:
    _, verb, raw_id = [*event.action_id.split(":"), "", ""][:3]
    ctx.require(Permission.TEAM_LEAD)
    area = await ctx.session.get(RaciArea, int(raw_id)) if raw_id.isdigit() else None
    if area is None or area.workspace_id != ctx.workspace.id:
        raise UserError("That area is already gone.")
    if verb == "keep":
        return reply(text("Kept the area ", area.name, "."))
    if verb != "delete":
        raise UserError("That button no longer does anything here.")
    name = area.name
    await delete_area(ctx.session, area)
    return reply(text("Deleted the area ", name, " and its RACI."))
