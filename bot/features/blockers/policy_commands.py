"""``/raci policy AREA`` and ``/raci policy default``: show an escalation policy, edit it in a
form (team leads and admins).

The form has one line per level (``TARGET AFTER``: ``responsible 4h``, ``accountable 1d``,
``channel 2d``, ``member:12 30m``, ``channel:C0123 1d``, ``webhook:3 2d``), the number of
repeats and the pause after an acknowledgement. Writing ``default`` as the levels goes back
to the workspace default (for an area) or to the built-in default (for the workspace); no levels
at all is refused. A saved policy re-times the open blockers that use it, in the same
transaction.

``default`` always means the workspace default; an area literally named "default" is edited
with ``/raci edit`` and shown with ``/raci show``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from bot.chat import (
    Actions,
    Button,
    Form,
    FormErrors,
    Header,
    OpenForm,
    Response,
    Section,
    TextField,
    marked,
    reply,
    text,
)
from bot.chat import (
    Context as Small,
)
from bot.commands.spec import OptionSpec, OptionType, Permission, SubcommandSpec
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.blockers import escalation
from bot.features.blockers.business_time import BusinessCalendar, CalendarError
from bot.features.blockers.policy import (
    DEFAULT_POLICY,
    STANDARD_DAY,
    Policy,
    PolicyError,
    parse,
    parse_lines,
)
from bot.features.raci import people
from storage.models import Blocker, BlockerStatus, Member
from storage.raci import BlockerSettings, RaciArea

FORM_ID = "raci-policy"
ACTION = "raci-policy"
DEFAULT = "default"

POLICY = SubcommandSpec(
    "policy",
    "Show an area's escalation policy (or the workspace default) and edit it in a form.",
    (OptionSpec("area", OptionType.TEXT, 'the area\'s name, or "default"'),),
    example="/raci policy data pipeline",
)


async def _subject(ctx: Context, state: str) -> RaciArea | None:
    """The area a button or form is about (None: the workspace default)."""
    if state == DEFAULT:
        return None
    area = await ctx.session.get(RaciArea, int(state)) if state.isdigit() else None
    if area is None or area.workspace_id != ctx.workspace.id:
        raise UserError("That area was deleted meanwhile; /raci show lists the areas.")
    return area


async def _current(ctx: Context, area: RaciArea | None) -> tuple[Policy, str]:
    """The policy in force and where it comes from."""
    settings = await ctx.session.get(BlockerSettings, ctx.workspace.id)
    stored_default = settings.default_policy if settings is not None else None
    day = _calendar(area).day_length if area is not None else STANDARD_DAY
    if area is not None and area.policy:
        return parse(area.policy, day_length=day), "its own policy"
    if stored_default:
        return parse(stored_default, day_length=day), "the workspace default"
    return DEFAULT_POLICY, "the built-in default"


def _calendar(area: RaciArea | None) -> BusinessCalendar:
    if area is None:
        return BusinessCalendar()
    try:
        return BusinessCalendar.for_area(area)
    except CalendarError:
        return BusinessCalendar()


async def show(ctx: Context, args: dict[str, Any]) -> Response:
    name = str(args["area"]).strip()
    area = (
        None
        if name.lower() == DEFAULT
        else await people.find_area(ctx.session, ctx.workspace.id, name)
    )
    policy, source = await _current(ctx, area)
    title = f"Escalation policy: {area.name}" if area else "Escalation policy: workspace default"
    blocks: list[Any] = [Header(title), Section(text("\n".join(policy.describe())))]
    if area is not None:
        blocks.append(Small(text(f"Uses {source}. Business time: {_calendar(area).describe()}.")))
    else:
        blocks.append(Small(text(f"Areas without a policy of their own use it ({source}).")))
    blocks.append(
        Small(
            text(
                "Critical blockers start at the second level at once and count every hour; "
                "low ones stop after the first level."
            )
        )
    )
    if ctx.permission >= Permission.TEAM_LEAD:
        state = str(area.id) if area else DEFAULT
        blocks.append(Actions((Button("Edit policy", f"{ACTION}:edit:{state}"),)))
    return reply(*blocks)


async def on_action(ctx: Context, event: ActionInvocation) -> Response:
    ctx.require(Permission.TEAM_LEAD)
    state = event.action_id.split(":", 2)[-1]
    area = await _subject(ctx, state)
    policy, _source = await _current(ctx, area)
    own = area.policy if area is not None else (await _stored_default(ctx))
    return OpenForm(policy_form(state, policy if own else None, area))


async def _stored_default(ctx: Context) -> dict[str, Any] | None:
    settings = await ctx.session.get(BlockerSettings, ctx.workspace.id)
    return settings.default_policy if settings is not None else None


def policy_form(state: str, policy: Policy | None, area: RaciArea | None) -> Form:
    """``policy`` None: the subject has no policy of its own (the levels field says
    ``default``)."""
    shown = policy or DEFAULT_POLICY
    fallback = "the workspace default" if area is not None else "the built-in default"
    return Form(
        form_id=FORM_ID,
        title="Escalation policy"[:24],
        fields=(
            TextField(
                "levels",
                "Levels: one TARGET AFTER per line",
                multiline=True,
                initial=policy.to_lines() if policy else DEFAULT,
                placeholder=f'e.g. responsible 4h, one per line; "default": {fallback}'[:150],
                max_length=1000,
            ),
            TextField(
                "repeat",
                "Repeat the ladder (0-5 more times)",
                initial=str(shown.repeat),
                max_length=2,
            ),
            TextField(
                "reack",
                "Escalate again this long after an ack",
                initial=str(shown.reack),
                max_length=20,
            ),
        ),
        submit_label="Save",
        state=state,
    )


async def save(ctx: Context, event: FormSubmission) -> Response:
    ctx.require(Permission.TEAM_LEAD)
    area = await _subject(ctx, event.state)
    values = {k: v if isinstance(v, str) else " ".join(v) for k, v in event.values.items()}
    levels = values.get("levels", "").strip()
    data: dict[str, Any] | None = None
    if not levels:
        return FormErrors(
            {"levels": 'A policy needs at least one level, e.g. responsible 4h (or "default")'}
        )
    if levels.lower() != DEFAULT:
        day = _calendar(area).day_length if area is not None else STANDARD_DAY
        try:
            policy = parse_lines(
                levels, values.get("repeat", "0"), values.get("reack", "1d"), day_length=day
            )
        except PolicyError as exc:
            return FormErrors({_field_of(exc.message): exc.message})
        errors = await check_targets(ctx, policy)
        if errors:
            return FormErrors({"levels": errors})
        data = policy.to_json()
    if area is not None:
        area.policy = data
        area.updated_at = ctx.now
        done = f"Saved the escalation policy of {area.name}."
    else:
        settings = await ctx.session.get(BlockerSettings, ctx.workspace.id)
        if settings is None:
            settings = BlockerSettings(workspace_id=ctx.workspace.id, updated_at=ctx.now)
            ctx.session.add(settings)
        settings.default_policy = data
        settings.updated_at = ctx.now
        done = "Saved the workspace's default escalation policy."
    await ctx.session.flush()
    retimed = await retime(ctx, area)
    if retimed:
        ctx.schedules_changed = True
        done += f" {retimed} open blocker(s) re-timed."
    shown = await show(ctx, {"area": area.name if area else DEFAULT})
    assert shown is not None and hasattr(shown, "message")
    return reply(Section(marked(done)), *shown.message.blocks)


def _field_of(message: str) -> str:
    if message.startswith("Repeat"):
        return "repeat"
    if message.startswith("Re-escalate"):
        return "reack"
    return "levels"


async def check_targets(ctx: Context, policy: Policy) -> str:
    """Named members must be in this workspace (a policy naming a stranger is refused)."""
    wanted = {int(lv.ref) for lv in policy.levels if lv.kind == "member"}
    if not wanted:
        return ""
    found = set(
        await ctx.session.scalars(
            select(Member.id).where(Member.id.in_(wanted), Member.workspace_id == ctx.workspace.id)
        )
    )
    missing = sorted(wanted - found)
    if missing:
        listed = ", ".join(f"member:{m}" for m in missing)
        return f"Unknown member(s) {listed}: use the member numbers of this workspace."
    return ""


async def retime(ctx: Context, area: RaciArea | None) -> int:
    """Recompute the next step of the open blockers that use the changed policy."""
    ladder_area = Blocker.waiting_on_area_id
    query = select(Blocker).where(
        Blocker.workspace_id == ctx.workspace.id,
        Blocker.status.in_([BlockerStatus.OPEN, BlockerStatus.ACKNOWLEDGED]),
    )
    if area is not None:
        query = query.where(
            or_(ladder_area == area.id, and_(ladder_area.is_(None), Blocker.area_id == area.id))
        )
    else:
        rows = await ctx.session.execute(
            select(RaciArea.id, RaciArea.policy).where(RaciArea.workspace_id == ctx.workspace.id)
        )
        own = [area_id for area_id, data in rows if data]
        query = query.where(
            or_(ladder_area.is_(None), ladder_area.not_in(own)),
            or_(ladder_area.is_not(None), Blocker.area_id.is_(None), Blocker.area_id.not_in(own)),
        )
    count = 0
    for blocker in await ctx.session.scalars(query.with_for_update()):
        if await escalation.schedule_after_change(ctx.session, blocker, ctx.now):
            count += 1
    return count


def register(core: Core) -> None:
    """``/raci policy`` (H3's /raci must be registered first), its button and its form."""
    core.extend_command("raci", (POLICY,), {"policy": show})
    core.add_action(ACTION, on_action)
    core.add_form(FORM_ID, save)
