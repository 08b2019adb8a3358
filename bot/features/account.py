"""``/syncup``: help, per-member settings (time zone) and roles."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from bot import directory
from bot.chat import (
    Actions,
    Bold,
    Choice,
    Code,
    Fields,
    Header,
    Response,
    Select,
    UserMention,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.spec import CommandSpec, OptionSpec, OptionType, Permission, SubcommandSpec
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation
from bot.timezones import COMMON_ZONES, validate_timezone
from storage.models import Member, RoleAssignment, RoleName

SYNCUP = CommandSpec(
    name="syncup",
    description="Your syncup settings, roles and help.",
    subcommands=(
        SubcommandSpec(
            "help",
            "List every command, or explain one.",
            (OptionSpec("topic", OptionType.TEXT, "a command, e.g. timezone", required=False),),
            example="/syncup help timezone",
        ),
        SubcommandSpec("me", "Show what syncup knows about you."),
        SubcommandSpec(
            "timezone",
            "Set your time zone; standups reach you at your local time.",
            (OptionSpec("zone", OptionType.TIMEZONE, "an IANA name such as Europe/Paris"),),
            example="/syncup timezone Europe/Paris",
        ),
        SubcommandSpec(
            "role",
            "Give a member a role: admin, team_lead or member (removes elevated roles).",
            (
                OptionSpec("who", OptionType.MEMBER, "the member, e.g. @bob"),
                OptionSpec("role", OptionType.CHOICE, "the role", choices=tuple(RoleName)),
            ),
            permission=Permission.ADMIN,
            example="/syncup role @bob team_lead",
        ),
        SubcommandSpec("roles", "List the admins and team leads."),
    ),
)


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        specs = core.specs.values()
        if args["topic"]:
            return reply(*helptext.topic(specs, args["topic"]).blocks)
        return reply(*helptext.overview(specs).blocks)

    core.add_command(
        SYNCUP,
        {
            "help": show_help,
            "me": show_me,
            "timezone": set_timezone,
            "role": set_role,
            "roles": list_roles,
        },
    )
    core.add_action(TIMEZONE_ACTION, on_timezone_picked)


async def show_me(ctx: Context, args: dict[str, Any]) -> Response:
    member = ctx.member
    zone = member.timezone
    if zone:
        local = ctx.now.astimezone(ZoneInfo(zone))
        source = "set by you" if member.timezone_set_by_member else "from your profile"
        zone_text = text(f"{zone} ({source}); your local time is {local:%a %H:%M}")
    else:
        zone_text = text("not set; use ", Code("/syncup timezone Europe/Paris"))
    roles = await _roles_of(ctx, member)
    return reply(
        Header("What syncup knows about you"),
        Fields(
            (
                ("Name", text(member.display_name)),
                ("Platform id", text(Code(member.platform_user_id))),
                ("Time zone", zone_text),
                ("Role", text(ctx.permission.name.lower().replace("_", " "))),
                ("Roles given", text(", ".join(roles) or "none")),
                ("Workspace", text(f"{ctx.workspace.name or ctx.workspace.external_id}")),
            )
        ),
    )


TIMEZONE_ACTION = "syncup-timezone"


def timezone_picker() -> Actions:
    """A select of common zones; picking one does what ``/syncup timezone`` does."""
    return Actions(
        (
            Select(
                TIMEZONE_ACTION,
                tuple(Choice(z.replace("_", " "), z) for z in COMMON_ZONES),
                placeholder="Your time zone",
            ),
        )
    )


async def on_timezone_picked(ctx: Context, event: ActionInvocation) -> Response:
    picked = event.values[0] if event.values else event.value
    return await set_timezone(ctx, {"zone": validate_timezone(picked)})


async def set_timezone(ctx: Context, args: dict[str, Any]) -> Response:
    zone: str = args["zone"]
    ctx.member.timezone = zone
    ctx.member.timezone_set_by_member = True
    ctx.member.updated_at = ctx.now
    ctx.schedules_changed = True
    local = ctx.now.astimezone(ZoneInfo(zone))
    return reply(text("Saved: your time zone is ", Bold(zone), f" (now {local:%a %H:%M} there)."))


async def set_role(ctx: Context, args: dict[str, Any]) -> Response:
    target = await directory.resolve_member(
        ctx.session, ctx.workspace, args["who"], ctx.core.directory, now=ctx.now
    )
    role = RoleName(args["role"])
    if target.is_platform_admin and role is not RoleName.ADMIN:
        name = target.display_name or target.platform_user_id
        raise UserError(
            f"{name} is an admin of the workspace on the platform, and so a syncup admin "
            f"whatever role syncup gives them: {role.value.replace('_', ' ')} would change "
            "nothing. Change their admin rights in the platform's settings first."
        )
    if target.id == ctx.member.id and role is not RoleName.ADMIN:
        admins = await _admin_ids(ctx)
        if admins == {ctx.member.id} and not ctx.event.actor.is_platform_admin:
            raise UserError("You are the only admin; make someone else admin first.")
    await ctx.session.execute(
        delete(RoleAssignment).where(
            RoleAssignment.member_id == target.id, RoleAssignment.team_id.is_(None)
        )
    )
    if role is not RoleName.MEMBER:
        ctx.session.add(
            RoleAssignment(
                workspace_id=ctx.workspace.id, member_id=target.id, role=role, granted_at=ctx.now
            )
        )
    mention = UserMention(target.platform_user_id, target.display_name)
    return reply(text("Saved: ", mention, f" is now {role.value.replace('_', ' ')}."))


async def list_roles(ctx: Context, args: dict[str, Any]) -> Response:
    platform_admins = await ctx.session.scalars(
        select(Member.display_name)
        .where(Member.workspace_id == ctx.workspace.id, Member.is_platform_admin.is_(True))
        .order_by(Member.display_name)
    )
    lines = [f"{name}: admin (a workspace admin on the platform)" for name in platform_admins]
    rows = await ctx.session.execute(
        select(RoleAssignment.role, Member.display_name)
        .join(Member, Member.id == RoleAssignment.member_id)
        .where(RoleAssignment.workspace_id == ctx.workspace.id, Member.is_platform_admin.is_(False))
        .order_by(RoleAssignment.role, Member.display_name)
    )
    lines += [f"{name}: {role.value.replace('_', ' ')}" for role, name in rows]
    if not lines:
        return reply(
            "No roles given yet: everyone is a member, and the platform's admins are admins."
        )
    return reply(
        Header("Roles"),
        "\n".join(lines),
        "Everyone else is a member. The platform's workspace admins are listed once they "
        "have used syncup.",
    )


async def _roles_of(ctx: Context, member: Member) -> list[str]:
    roles = await ctx.session.scalars(
        select(RoleAssignment.role).where(RoleAssignment.member_id == member.id)
    )
    return sorted(r.value for r in roles)


async def _admin_ids(ctx: Context) -> set[int]:
    ids = await ctx.session.scalars(
        select(RoleAssignment.member_id).where(
            RoleAssignment.workspace_id == ctx.workspace.id,
            RoleAssignment.role == RoleName.ADMIN,
        )
    )
    return set(ids)
